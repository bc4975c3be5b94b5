//! The group commit of [`SledStore`] with injected flushes: held at a door,
//! failing, or panicking. Everything else (sled, the commit path, the driver)
//! is the real thing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::*;

const ROUNDS: usize = 50;
const LONG: Duration = Duration::from_secs(20);

/// A door the flush closure can be made to wait at.
#[derive(Default)]
struct Door {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Door {
    fn pass(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

/// Polls `cond` until it holds; panics after [`LONG`].
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A store whose flushes are counted, whose first flush waits at the returned
/// door, and whose flush number `fail` (1-based) fails; the others are sled's
/// real flush.
fn scripted(dir: &Path, fail: usize) -> (Arc<SledStore>, Arc<AtomicUsize>, Arc<Door>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let door = Arc::new(Door::default());
    let (c, d) = (calls.clone(), door.clone());
    let store = SledStore::open_with_flush(dir, move |db| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            d.pass();
        }
        if n == fail {
            return Err(sled::Error::Io(std::io::Error::other("injected EIO")));
        }
        db.flush().map(drop)
    })
    .unwrap();
    (Arc::new(store), calls, door)
}

fn put(key: &str) -> Txn {
    Txn::new().put(key.as_bytes().to_vec(), b"v".to_vec())
}

/// Reopens the store at `dir` once sled has let go of it.
async fn reopen(dir: &Path) -> SledStore {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        match SledStore::open(dir) {
            Ok(s) => return s,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "reopen: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn assert_poisoned<T: fmt::Debug>(what: &str, res: Result<T>) {
    match res {
        Err(MetaError::Poisoned(why)) => assert!(why.contains("injected"), "{what}: {why}"),
        other => panic!("{what}: expected Poisoned, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_commit_mid_flush_blocks_no_one() {
    for _ in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let (store, calls, door) = scripted(dir.path(), 0);
        {
            let dropped = store.commit(put("a"));
            tokio::pin!(dropped);
            tokio::select! {
                _ = &mut dropped => panic!("the first flush is held at the door"),
                _ = until("first flush starts", || calls.load(Ordering::SeqCst) == 1) => {}
            }
        }
        // A commit arriving while the abandoned flush still runs.
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.commit(put("b")).await }
        });
        door.open();
        tokio::time::timeout(LONG, waiting)
            .await
            .expect("a commit after the dropped one completes")
            .unwrap()
            .unwrap();
        // And one arriving after it ended.
        tokio::time::timeout(LONG, store.commit(put("c")))
            .await
            .expect("a later commit completes")
            .unwrap();
        assert!(store.get(b"c").await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_fails_its_commits_and_poisons_the_store() {
    const COMMITS: usize = 16;
    for _ in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        // Flush 1 (held) succeeds, flush 2 fails.
        let (store, calls, door) = scripted(dir.path(), 2);
        let first = tokio::spawn({
            let store = store.clone();
            async move { store.commit(put("first")).await }
        });
        until("first flush starts", || calls.load(Ordering::SeqCst) == 1).await;
        // Concurrent commits applied while flush 1 runs: not covered by it.
        let mut tasks = Vec::new();
        for i in 0..COMMITS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.commit(put(&format!("k{i}"))).await
            }));
        }
        let applied =
            || (0..COMMITS).all(|i| store.db.contains_key(format!("k{i}").as_bytes()).unwrap());
        until("all commits applied", applied).await;
        door.open();
        tokio::time::timeout(LONG, first)
            .await
            .unwrap()
            .unwrap()
            .expect("flush 1 succeeded");
        for t in tasks {
            let res = tokio::time::timeout(LONG, t).await.unwrap().unwrap();
            assert_poisoned("a commit covered by the failed flush", res);
        }
        // No flush runs once the store is poisoned.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_poisoned("get", store.get(b"first").await);
        assert_poisoned("scan", store.scan(b"a", b"z", 10).await);
        assert_poisoned("commit", store.commit(put("later")).await);
        assert_poisoned(
            "acquire_lease",
            store.acquire_lease("l", "h", Duration::from_secs(1)).await,
        );
        assert_poisoned("release_lease", store.release_lease("l", "h").await);
        let message = store.get(b"first").await.unwrap_err().to_string();
        assert!(message.contains("restart"), "{message}");
        // A restart reloads what was flushed.
        drop(store);
        let store = reopen(dir.path()).await;
        assert_eq!(store.get(b"first").await.unwrap(), Some(b"v".to_vec()));
        store.commit(put("after restart")).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_flush_poisons_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with_flush(dir.path(), |_| panic!("injected panic")).unwrap();
    let res = tokio::time::timeout(LONG, store.commit(put("a")))
        .await
        .unwrap();
    assert!(matches!(res, Err(MetaError::Poisoned(_))), "{res:?}");
    assert!(matches!(store.get(b"a").await, Err(MetaError::Poisoned(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_joining_during_a_flush_share_the_next() {
    for _ in 0..ROUNDS {
        let calls = Arc::new(AtomicUsize::new(0));
        let door = Arc::new(Door::default());
        let (c, d) = (calls.clone(), door.clone());
        let group = GroupCommit::new(move || {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                d.pass();
            }
            Ok(())
        });
        let first = tokio::spawn(group.join().wait());
        until("first flush starts", || calls.load(Ordering::SeqCst) == 1).await;
        let tickets: Vec<_> = (0..32).map(|_| tokio::spawn(group.join().wait())).collect();
        door.open();
        tokio::time::timeout(LONG, first)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        for t in tickets {
            tokio::time::timeout(LONG, t)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one flush for the batch");
    }
}
