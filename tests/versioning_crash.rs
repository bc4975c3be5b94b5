//! Crash safety of versioned writes (issue 14): on a versioning-enabled `fs`
//! bucket, 200 PUTs (distinct bodies) and DELETEs (delete markers) over 20
//! keys run 8 at a time; the server is SIGKILLed in the middle and started
//! again on the same data. Then every acknowledged version reads back by its
//! id with exactly its bytes, every acknowledged delete marker is listed,
//! and every listed version is whole (a body that was sent to that key) or
//! a delete marker. The rounds accumulate on one data directory, so each
//! restart also re-checks what earlier rounds acknowledged.
//!
//! Rounds: `CLOUDMUX_VERSIONING_CRASH_ROUNDS` (default 3).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use cloudmux_e2e::versions::*;
use cloudmux_e2e::*;
use rand::Rng as _;

const BUCKET: &str = "vcrash";
const KEYS: usize = 20;
const OPS: usize = 200;
const WORKERS: usize = 8;

fn rounds() -> usize {
    std::env::var("CLOUDMUX_VERSIONING_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

#[derive(Debug, Clone)]
enum Op {
    Put { key: String, body: Arc<Vec<u8>> },
    Delete { key: String },
}

/// What the server acknowledged before the kill.
#[derive(Debug, Clone)]
enum Ack {
    Put {
        key: String,
        id: String,
        body: Arc<Vec<u8>>,
    },
    Marker {
        key: String,
        id: String,
    },
}

fn key(i: usize) -> String {
    format!("k/{i:02}")
}

/// The round's operations; every PUT body starts with its own tag, so no
/// two bodies are equal.
fn ops(round: usize) -> Vec<Op> {
    let mut rng = rand::rng();
    (0..OPS)
        .map(|i| {
            let k = key(rng.random_range(0..KEYS));
            if rng.random_range(0..4) == 0 {
                Op::Delete { key: k }
            } else {
                let mut body = format!("round {round} op {i} key {k}\n").into_bytes();
                body.extend(random_bytes(rng.random_range(1..64 * 1024)));
                Op::Put {
                    key: k,
                    body: Arc::new(body),
                }
            }
        })
        .collect()
}

/// Runs `ops` with `WORKERS` clients, SIGKILLs the server after
/// `kill_after` acknowledgements, and returns every acknowledgement.
async fn run_and_kill(s: &mut TestServer, ops: Arc<Vec<Op>>, kill_after: usize) -> Vec<Ack> {
    let client = s.client(ALICE);
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Ack>();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (client, next, ops, tx) = (client.clone(), next.clone(), ops.clone(), tx.clone());
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(op) = ops.get(i) else { return };
                match op {
                    Op::Put { key, body } => {
                        let res = client
                            .put_object()
                            .bucket(BUCKET)
                            .key(key)
                            .body(ByteStream::from(body.as_ref().clone()))
                            .send()
                            .await;
                        if let Ok(out) = res {
                            assert_eq!(out.e_tag(), Some(etag_of(body).as_str()), "{key}");
                            let id = out
                                .version_id()
                                .expect("acknowledged PUT without version id");
                            assert_version_id_shape(id);
                            let _ = tx.send(Ack::Put {
                                key: key.clone(),
                                id: id.to_owned(),
                                body: body.clone(),
                            });
                        }
                    }
                    Op::Delete { key } => {
                        let res = client.delete_object().bucket(BUCKET).key(key).send().await;
                        if let Ok(out) = res {
                            assert_eq!(out.delete_marker(), Some(true), "DELETE {key}");
                            let id = out.version_id().expect("acknowledged marker without id");
                            assert_version_id_shape(id);
                            let _ = tx.send(Ack::Marker {
                                key: key.clone(),
                                id: id.to_owned(),
                            });
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    let mut acks = Vec::new();
    while acks.len() < kill_after {
        match rx.recv().await {
            Some(a) => acks.push(a),
            None => break,
        }
    }
    s.kill9();
    while let Some(r) = set.join_next().await {
        r.expect("worker panicked");
    }
    while let Ok(a) = rx.try_recv() {
        acks.push(a);
    }
    acks
}

/// Checks the restarted server against everything acknowledged so far and
/// every body ever sent (`sent[key]`).
async fn check(s: &TestServer, acks: &[Ack], sent: &BTreeMap<String, Vec<Arc<Vec<u8>>>>) {
    let c = s.client(ALICE);
    for a in acks {
        if let Ack::Put { key, id, body } = a {
            let r = get_version_raw(s, BUCKET, key, id).await;
            assert_eq!(r.status, 200, "acknowledged {key}@{id}: {}", r.text());
            assert!(
                r.body.as_ref() == body.as_slice(),
                "acknowledged {key}@{id}: {} bytes, not the {} sent",
                r.body.len(),
                body.len()
            );
        }
    }
    let listed = list_all_versions(s, BUCKET, None).await;
    let ids: BTreeSet<(String, String)> = listed
        .iter()
        .map(|l| (l.key.clone(), l.version_id.clone()))
        .collect();
    assert_eq!(ids.len(), listed.len(), "a version is listed twice");
    let markers: BTreeSet<(String, String)> = listed
        .iter()
        .filter(|l| l.delete_marker)
        .map(|l| (l.key.clone(), l.version_id.clone()))
        .collect();
    for a in acks {
        if let Ack::Marker { key, id } = a {
            assert!(
                markers.contains(&(key.clone(), id.clone())),
                "acknowledged delete marker {key}@{id} is not listed"
            );
        }
    }
    let mut by_key: BTreeMap<&str, Vec<&Listed>> = BTreeMap::new();
    for l in &listed {
        by_key.entry(&l.key).or_default().push(l);
    }
    for (key, versions) in by_key {
        let bodies = sent
            .get(key)
            .unwrap_or_else(|| panic!("listed key {key:?} was never written"));
        let latest: Vec<bool> = versions.iter().map(|v| v.is_latest).collect();
        let mut want = vec![false; versions.len()];
        want[0] = true;
        assert_eq!(latest, want, "{key}: IsLatest on the first version only");
        for v in &versions {
            let r = get_version_raw(s, BUCKET, key, &v.version_id).await;
            if v.delete_marker {
                assert_eq!(r.status, 405, "{key}@{}: a listed marker", v.version_id);
                continue;
            }
            assert_eq!(
                r.status,
                200,
                "{key}@{}: listed but {}",
                v.version_id,
                r.text()
            );
            assert!(
                bodies.iter().any(|b| b.as_slice() == r.body.as_ref()),
                "{key}@{}: {} bytes that were never sent to this key",
                v.version_id,
                r.body.len()
            );
            assert_eq!(
                v.etag,
                Some(etag_of(&r.body)),
                "{key}@{}: ETag",
                v.version_id
            );
            assert_eq!(
                v.size,
                Some(r.body.len() as u64),
                "{key}@{}: Size",
                v.version_id
            );
        }
        // The current version is what a plain GET reads.
        let r = s.raw("GET", &format!("/{BUCKET}/{key}")).send().await;
        if versions[0].delete_marker {
            r.assert_error(404, "NoSuchKey");
        } else {
            assert_eq!(r.status, 200, "{key}: {}", r.text());
            assert_eq!(
                r.header("x-amz-version-id").as_deref(),
                Some(versions[0].version_id.as_str()),
                "{key}: GET reads the latest version"
            );
        }
    }
    // The fs layout matches the records once recovery has run: one native
    // file per key whose current version is not a marker, holding that
    // version, and one file under .cloudmux/versions/<key>/ per listed
    // noncurrent version (nothing kept for a write that was undone).
    let root = s.data_dir().join("objects").join(BUCKET);
    let mut native = BTreeSet::new();
    let mut kept = BTreeSet::new();
    for path in walk(&root).into_iter().filter(|p| p.is_file()) {
        let rel = path.strip_prefix(&root).unwrap().display().to_string();
        if let Some(v) = rel.strip_prefix(".cloudmux/versions/") {
            let (key, id) = v.rsplit_once('/').expect("<key>/<version-id>");
            kept.insert((key.to_owned(), id.to_owned()));
        } else if !rel.starts_with(".cloudmux/") {
            native.insert(rel);
        }
    }
    let want_native: BTreeSet<String> = listed
        .iter()
        .filter(|l| l.is_latest && !l.delete_marker)
        .map(|l| l.key.clone())
        .collect();
    let want_kept: BTreeSet<(String, String)> = listed
        .iter()
        .filter(|l| !l.is_latest && !l.delete_marker)
        .map(|l| (l.key.clone(), l.version_id.clone()))
        .collect();
    assert_eq!(native, want_native, "native files vs current versions");
    assert_eq!(kept, want_kept, "kept files vs noncurrent versions");
    // And the server still takes versioned writes.
    let id = put_version(&c, BUCKET, "after", b"after restart").await;
    assert_eq!(
        get_version(&c, BUCKET, "after", &id).await.0,
        b"after restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_versioned_puts_and_deletes() {
    let mut s = TestServer::start();
    let c = s.client(ALICE);
    create_bucket(&c, BUCKET).await;
    enable_versioning(&c, BUCKET).await;
    let mut acks: Vec<Ack> = Vec::new();
    let mut sent: BTreeMap<String, Vec<Arc<Vec<u8>>>> = BTreeMap::new();
    sent.insert("after".into(), vec![Arc::new(b"after restart".to_vec())]);
    for round in 0..rounds() {
        let ops = ops(round);
        for op in &ops {
            if let Op::Put { key, body } = op {
                sent.entry(key.clone()).or_default().push(body.clone());
            }
        }
        // Kill at a different point each round, always mid-stream.
        let kill_after = [60, 110, 30][round % 3];
        let got = run_and_kill(&mut s, Arc::new(ops), kill_after).await;
        assert!(
            got.len() >= kill_after,
            "round {round}: only {} acks",
            got.len()
        );
        eprintln!(
            "round {round}: killed after {kill_after} acknowledgements ({} in all)",
            got.len()
        );
        acks.extend(got);
        s.spawn();
        check(&s, &acks, &sent).await;
    }
}
