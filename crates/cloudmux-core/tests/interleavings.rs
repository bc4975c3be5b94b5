//! Races with each interleaving forced, in process: one request is held at a
//! failpoint gate (`cloudmux_core::faults::gate`) at a chosen step while the
//! other runs as far as it can, then the first is let go. Each interleaving
//! of `tests/write_safety.rs`'s free races is thus run deterministically, not
//! left to chance on two cores.
//!
//! Needs the `failpoints` feature (`scripts/test.sh` builds with it).
#![cfg(feature = "failpoints")]

use std::path::Path;
use std::time::Duration;

use cloudmux_core::faults;
use cloudmux_core::{CoreError, CreateUploadInput, ListPartsInput};
use tokio::task::JoinHandle;

/// Gates are process-wide: the tests of this file take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a request that must be blocked gets to run before the test
/// checks that it is still waiting.
const SETTLE: Duration = Duration::from_millis(100);

mod common;
use common::*;

/// A fresh world with bucket `bkt` and no failpoint armed or gated.
async fn fresh() -> World {
    faults::clear();
    setup().await
}

/// Every regular file under the location's bucket directories (the staging
/// area excluded), relative to the location root.
fn published_files(w: &World) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(rel);
            }
        }
    }
    let root = w.dir.path().join("objects");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

/// [`published_files`] once no new key's move to its native name is
/// pending (a new key's file reaches its native name just after the write
/// is answered; see `moves.rs`).
async fn settled_files(w: &World) -> Vec<String> {
    for _ in 0..200 {
        if pending_moves(w).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pending_moves(w).await, 0, "a move is still pending");
    published_files(w)
}

/// Asserts that `task` is still waiting (blocked behind the held request).
async fn assert_waiting<T>(task: &JoinHandle<T>, what: &str) {
    tokio::time::sleep(SETTLE).await;
    assert!(
        !task.is_finished(),
        "{what} should wait for the held request"
    );
}

fn spawn_complete(
    w: &World,
    key: &str,
    id: &str,
    etag: &str,
) -> JoinHandle<Result<String, CoreError>> {
    let (gw, who, input) = (w.gw.clone(), w.who.clone(), complete_input(key, id, etag));
    tokio::spawn(async move { gw.complete_upload(&who, input).await.map(|o| o.etag) })
}

fn spawn_put(w: &World, key: &str, data: &[u8]) -> JoinHandle<Result<String, CoreError>> {
    let (gw, who, input) = (w.gw.clone(), w.who.clone(), put_input("bkt", key, data));
    tokio::spawn(async move { gw.put_object(&who, input).await.map(|o| o.etag) })
}

fn spawn_delete(w: &World, key: &str) -> JoinHandle<Result<(), CoreError>> {
    let (gw, who, key) = (w.gw.clone(), w.who.clone(), key.to_owned());
    tokio::spawn(async move {
        let input = cloudmux_core::DeleteInput {
            key,
            ..Default::default()
        };
        gw.delete_object(&who, "bkt", input).await.map(|_| ())
    })
}

fn spawn_abort(w: &World, key: &str, id: &str) -> JoinHandle<Result<(), CoreError>> {
    let (gw, who, key, id) = (w.gw.clone(), w.who.clone(), key.to_owned(), id.to_owned());
    tokio::spawn(async move { gw.abort_upload(&who, "bkt", &key, &id).await })
}

/// The second Complete arrives while the first is between making its bytes
/// durable and committing (a new key on `fs` takes the two-phase commit, so
/// that is `commit.persisted`): it waits, then answers as the first did.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_complete_during_the_first_commit_answers_alike() {
    let _serial = SERIAL.lock().await;
    let w = fresh().await;
    let data = pattern(7, 3000);
    let (id, etag) = upload_with_part(&w, "k", &data).await;
    let gate = faults::gate("commit.persisted");
    let first = spawn_complete(&w, "k", &id, &etag);
    gate.reached().await;
    let second = spawn_complete(&w, "k", &id, &etag);
    assert_waiting(&second, "the retried Complete").await;
    gate.open();
    let a = first.await.unwrap().expect("first Complete");
    let b = second.await.unwrap().expect("retried Complete");
    assert_eq!(a, b);
    assert_eq!(read(&w, "bkt", "k").await, Some(data));
    faults::clear();
}

/// Abort arrives while Complete holds the key: the object is whole and the
/// Abort finds no upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abort_during_complete_finds_no_upload() {
    let _serial = SERIAL.lock().await;
    let w = fresh().await;
    let data = pattern(8, 2000);
    let (id, etag) = upload_with_part(&w, "k", &data).await;
    let gate = faults::gate("complete.assembled");
    let complete = spawn_complete(&w, "k", &id, &etag);
    gate.reached().await;
    let abort = spawn_abort(&w, "k", &id);
    assert_waiting(&abort, "the Abort").await;
    gate.open();
    complete.await.unwrap().expect("Complete");
    assert!(matches!(
        abort.await.unwrap(),
        Err(CoreError::NoSuchUpload(_))
    ));
    assert_eq!(read(&w, "bkt", "k").await, Some(data));
    faults::clear();
}

/// Complete arrives while Abort holds the key: no object, and the Complete
/// finds no upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn complete_during_abort_finds_no_upload() {
    let _serial = SERIAL.lock().await;
    let w = fresh().await;
    let (id, etag) = upload_with_part(&w, "k", &pattern(9, 2000)).await;
    let gate = faults::gate("abort.committed");
    let abort = spawn_abort(&w, "k", &id);
    gate.reached().await;
    let complete = spawn_complete(&w, "k", &id, &etag);
    assert_waiting(&complete, "the Complete").await;
    gate.open();
    abort.await.unwrap().expect("Abort");
    assert!(matches!(
        complete.await.unwrap(),
        Err(CoreError::NoSuchUpload(_))
    ));
    assert_eq!(read(&w, "bkt", "k").await, None);
    assert_eq!(settled_files(&w).await, Vec::<String>::new());
    faults::clear();
}

/// Overwrite B and DELETE C arrive while overwrite A is between publishing
/// and committing: both wait, and the key ends as B or deleted, never as the
/// old object or A.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overwrite_and_delete_during_an_overwrite_apply_after_it() {
    let _serial = SERIAL.lock().await;
    let w = fresh().await;
    w.gw.put_object(&w.who, put_input("bkt", "k", b"old"))
        .await
        .expect("initial put");
    let (a, b) = (pattern(1, 5000), pattern(2, 7000));
    let gate = faults::gate("commit.published");
    let put_a = spawn_put(&w, "k", &a);
    gate.reached().await;
    let put_b = spawn_put(&w, "k", &b);
    let del = spawn_delete(&w, "k");
    assert_waiting(&put_b, "overwrite B").await;
    assert!(!del.is_finished(), "the DELETE should wait");
    gate.open();
    put_a.await.unwrap().expect("overwrite A");
    put_b.await.unwrap().expect("overwrite B");
    del.await.unwrap().expect("DELETE");
    match read(&w, "bkt", "k").await {
        None => assert_eq!(settled_files(&w).await, Vec::<String>::new()),
        Some(got) => {
            assert!(got == b, "the key holds the old object or A");
            assert_eq!(settled_files(&w).await.len(), 1);
        }
    }
    faults::clear();
}

/// A PUT arrives while a DELETE of the key has committed but not yet
/// removed the bytes: the DELETE's cleanup never removes the new object.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_put_during_a_delete_keeps_its_bytes() {
    let _serial = SERIAL.lock().await;
    let w = fresh().await;
    w.gw.put_object(&w.who, put_input("bkt", "k", b"old"))
        .await
        .expect("initial put");
    let new = pattern(3, 4000);
    let gate = faults::gate("delete.committed");
    let del = spawn_delete(&w, "k");
    gate.reached().await;
    let put = spawn_put(&w, "k", &new);
    assert_waiting(&put, "the PUT").await;
    gate.open();
    del.await.unwrap().expect("DELETE");
    put.await.unwrap().expect("PUT");
    assert_eq!(read(&w, "bkt", "k").await, Some(new.clone()));
    // A sweep settles nothing that a record names.
    w.gw.gc_sweep(Duration::ZERO).await.expect("gc");
    assert_eq!(read(&w, "bkt", "k").await, Some(new));
    faults::clear();
}

/// A PUT arrives while DeleteBucket has marked the bucket: it is refused
/// with OperationAborted, and the bucket goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_put_during_delete_bucket_is_refused() {
    let _serial = SERIAL.lock().await;
    let w = fresh().await;
    let gate = faults::gate("bucket.marked");
    let (gw, who) = (w.gw.clone(), w.who.clone());
    let del = tokio::spawn(async move { gw.delete_bucket(&who, "bkt").await });
    gate.reached().await;
    let put =
        w.gw.put_object(&w.who, put_input("bkt", "k", b"data"))
            .await;
    assert!(
        matches!(put, Err(CoreError::OperationAborted(_))),
        "PUT during DeleteBucket: {put:?}"
    );
    gate.open();
    del.await.unwrap().expect("DeleteBucket");
    assert_eq!(read(&w, "bkt", "k").await, None);
    assert_eq!(settled_files(&w).await, Vec::<String>::new());
    faults::clear();
}

/// DeleteBucket arrives while a PUT of a new key is between making its
/// bytes durable and committing: either the PUT is acknowledged and the
/// bucket stays with the object, or the PUT fails and nothing of it is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_bucket_during_a_put_never_hides_an_acknowledged_object() {
    let _serial = SERIAL.lock().await;
    let w = fresh().await;
    let data = pattern(4, 3000);
    let gate = faults::gate("commit.persisted");
    let put = spawn_put(&w, "k", &data);
    gate.reached().await;
    let (gw, who) = (w.gw.clone(), w.who.clone());
    let del = tokio::spawn(async move { gw.delete_bucket(&who, "bkt").await });
    // DeleteBucket does not take object locks: let it run to its end first.
    let del = del.await.unwrap();
    gate.open();
    let put = put.await.unwrap();
    match (put, del) {
        (Ok(_), Err(CoreError::BucketNotEmpty(_) | CoreError::OperationAborted(_))) => {
            assert_eq!(read(&w, "bkt", "k").await, Some(data));
        }
        (Err(CoreError::NoSuchBucket(_) | CoreError::OperationAborted(_)), Ok(())) => {
            assert_eq!(read(&w, "bkt", "k").await, None);
            assert_eq!(settled_files(&w).await, Vec::<String>::new());
        }
        (p, d) => panic!("PUT {p:?}, DeleteBucket {d:?}"),
    }
    faults::clear();
}

/// The same part number uploaded twice, the second while the first waits
/// between making its bytes durable and committing its record: exactly one
/// whole part is kept, and it completes the upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_part_twice_keeps_the_last_committed() {
    let _serial = SERIAL.lock().await;
    let w = fresh().await;
    let up =
        w.gw.create_upload(
            &w.who,
            CreateUploadInput {
                bucket: "bkt".into(),
                key: "k".into(),
                ..Default::default()
            },
        )
        .await
        .expect("create upload");
    let (x, y) = (pattern(5, 4000), pattern(6, 6000));
    let gate = faults::gate("part.persisted");
    let (gw, who, input) = (
        w.gw.clone(),
        w.who.clone(),
        part_input("k", &up.upload_id, &x),
    );
    let first = tokio::spawn(async move { gw.upload_part(&who, input).await });
    gate.reached().await;
    let second =
        w.gw.upload_part(&w.who, part_input("k", &up.upload_id, &y))
            .await
            .expect("second part");
    gate.open();
    let first = first.await.unwrap().expect("first part");
    let parts =
        w.gw.list_parts(
            &w.who,
            ListPartsInput {
                bucket: "bkt".into(),
                key: "k".into(),
                upload_id: up.upload_id.clone(),
                marker: 0,
                max_parts: 1000,
            },
        )
        .await
        .expect("list parts");
    assert_eq!(parts.parts.len(), 1);
    assert_eq!(parts.parts[0].etag, first.etag, "the last committed part");
    assert!(matches!(
        w.gw.complete_upload(&w.who, complete_input("k", &up.upload_id, &second.etag))
            .await,
        Err(CoreError::InvalidPart(_))
    ));
    w.gw.complete_upload(&w.who, complete_input("k", &up.upload_id, &first.etag))
        .await
        .expect("complete");
    assert_eq!(read(&w, "bkt", "k").await, Some(x));
    faults::clear();
}

/// A read and a copy arrive while a new key's move to its native name is
/// under way (the record names the staged copy, which is already renamed):
/// both find the data at its native name at once, without waiting for the
/// move; the file ends at its native name and no move is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_during_a_new_keys_move_reads_it_whole() {
    let _serial = SERIAL.lock().await;
    let w = fresh().await;
    let data = pattern(8, 5000);
    let gate = faults::gate("move.published");
    w.gw.put_object(&w.who, put_input("bkt", "k", &data))
        .await
        .expect("PUT acknowledged before its move");
    gate.reached().await;
    assert_eq!(pending_moves(&w).await, 1, "the move is under way");
    let got = tokio::time::timeout(SETTLE * 10, read(&w, "bkt", "k"))
        .await
        .expect("the read should not wait for the move");
    assert_eq!(got, Some(data.clone()));
    gate.open();
    for _ in 0..100 {
        if pending_moves(&w).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(read(&w, "bkt", "k").await, Some(data));
    assert_eq!(published_files(&w), vec!["bkt/k".to_owned()]);
    assert_eq!(pending_moves(&w).await, 0);
    faults::clear();
}

/// A new key's move fails after the rename (its task gives up, leaving the
/// move record): the acknowledged object still reads back whole, the next
/// GC sweep finishes the move, and an overwrite after a second failed move
/// settles it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_move_is_finished_later_and_reads_work_meanwhile() {
    let _serial = SERIAL.lock().await;
    let w = fresh().await;
    let data = pattern(9, 5000);
    faults::configure("move.published", "1*return(error)").unwrap();
    w.gw.put_object(&w.who, put_input("bkt", "k", &data))
        .await
        .expect("PUT acknowledged before its move");
    // The move's task runs after the answer: wait for it to give up.
    for _ in 0..100 {
        if published_files(&w) == vec!["bkt/k".to_owned()] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(SETTLE).await;
    assert_eq!(pending_moves(&w).await, 1, "the failed move is left");
    assert_eq!(read(&w, "bkt", "k").await, Some(data.clone()));
    w.gw.gc_sweep(Duration::from_secs(3600)).await.expect("gc");
    assert_eq!(pending_moves(&w).await, 0, "the sweep finishes the move");
    assert_eq!(read(&w, "bkt", "k").await, Some(data));

    faults::configure("move.published", "1*return(error)").unwrap();
    w.gw.put_object(&w.who, put_input("bkt", "k2", b"first"))
        .await
        .expect("PUT k2");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(pending_moves(&w).await, 1, "the failed move is left");
    let second = pattern(10, 3000);
    w.gw.put_object(&w.who, put_input("bkt", "k2", &second))
        .await
        .expect("overwrite k2");
    assert_eq!(pending_moves(&w).await, 0, "the overwrite settles the move");
    assert_eq!(read(&w, "bkt", "k2").await, Some(second));
    assert_eq!(
        published_files(&w),
        vec!["bkt/k".to_owned(), "bkt/k2".to_owned()]
    );
    faults::clear();
}

/// How many move records the store holds.
async fn pending_moves(w: &World) -> usize {
    use cloudmux_meta::MetaStore;
    w.meta
        .scan(b"m/", b"m0", 1000)
        .await
        .expect("scan moves")
        .len()
}

/// A copy of a new key onto itself (a metadata rewrite) reads its source
/// while the key's data is still staged, and commits after the move to the
/// native name: the rewrite still applies (same bytes, another locator).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_metadata_rewrite_across_a_move_applies() {
    let _serial = SERIAL.lock().await;
    let w = fresh().await;
    let data = pattern(11, 4000);
    let gate = faults::gate("move.published");
    w.gw.put_object(&w.who, put_input("bkt", "k", &data))
        .await
        .expect("PUT acknowledged before its move");
    gate.reached().await;
    let (gw, who) = (w.gw.clone(), w.who.clone());
    let meta = cloudmux_core::records::ObjectMeta {
        user: vec![("origin".into(), "changed".into())],
        ..Default::default()
    };
    let input = cloudmux_core::CopyObjectInput {
        src_bucket: "bkt".into(),
        src_key: "k".into(),
        src_version_id: None,
        bucket: "bkt".into(),
        key: "k".into(),
        replace_metadata: true,
        meta,
        replace_tagging: false,
        conditions: Default::default(),
        dest_conditions: Default::default(),
        acl: None,
        location: None,
        sse: None,
        checksum_algorithm: None,
        lock: Default::default(),
    };
    let copy = tokio::spawn(async move { gw.copy_object(&who, input).await });
    assert_waiting(&copy, "the rewrite").await;
    gate.open();
    copy.await
        .unwrap()
        .expect("the rewrite of a key whose data moved meanwhile");
    assert_eq!(read(&w, "bkt", "k").await, Some(data));
    faults::clear();
}
