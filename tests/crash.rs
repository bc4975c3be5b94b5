//! Crash safety: SIGKILL the server while PUTs are in flight, restart it on
//! the same data, and check that acknowledged writes survived whole and that
//! no partial object is ever visible.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use cloudmux_e2e::*;
use rand::Rng as _;

const COUNT: usize = 200;
const KILL_AFTER: usize = 60;

fn bodies(tag: &str) -> Vec<(String, Arc<Vec<u8>>)> {
    let mut rng = rand::rng();
    (0..COUNT)
        .map(|i| {
            let len = rng.random_range(64 * 1024..=1024 * 1024);
            (format!("obj-{i:03}"), Arc::new(random_bytes(len)))
        })
        .inspect(|(k, _)| assert!(!k.is_empty(), "{tag}"))
        .collect()
}

/// Fires every PUT at once, SIGKILLs the server after `KILL_AFTER`
/// acknowledgements, and returns the indexes of all acknowledged PUTs.
async fn put_all_and_kill(s: &mut TestServer, items: &[(String, Arc<Vec<u8>>)]) -> BTreeSet<usize> {
    let client = s.client(ALICE);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let mut set = tokio::task::JoinSet::new();
    for (i, (key, body)) in items.iter().enumerate() {
        let client = client.clone();
        let key = key.clone();
        let body = body.clone();
        let tx = tx.clone();
        set.spawn(async move {
            let res = client
                .put_object()
                .bucket("crash")
                .key(&key)
                .body(ByteStream::from(body.as_ref().clone()))
                .send()
                .await;
            if let Ok(out) = res {
                // An acknowledgement must carry the right ETag.
                assert_eq!(
                    out.e_tag(),
                    Some(etag_of(&body).as_str()),
                    "ack ETag of {key}"
                );
                let _ = tx.send(i);
            }
        });
    }
    drop(tx);
    let mut acked = BTreeSet::new();
    while acked.len() < KILL_AFTER {
        match rx.recv().await {
            Some(i) => {
                acked.insert(i);
            }
            None => break,
        }
    }
    s.kill9();
    while let Some(r) = set.join_next().await {
        r.expect("put task panicked");
    }
    while let Ok(i) = rx.try_recv() {
        acked.insert(i);
    }
    eprintln!(
        "crash: killed after {} acknowledgements ({} in total before the kill took effect)",
        KILL_AFTER,
        acked.len()
    );
    acked
}

/// Every listed object is whole and one of `candidates[key]`; returns the listing.
async fn check_listing(
    client: &Client,
    candidates: &BTreeMap<String, Vec<Arc<Vec<u8>>>>,
) -> BTreeMap<String, Vec<u8>> {
    let mut seen = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let out = ok(client
            .list_objects_v2()
            .bucket("crash")
            .set_continuation_token(token.clone())
            .send()
            .await);
        for o in out.contents() {
            let key = o.key().expect("key").to_owned();
            let options = candidates
                .get(&key)
                .unwrap_or_else(|| panic!("listed key {key:?} was never written"));
            let got = get_object(client, "crash", &key).await;
            let matched = options.iter().find(|b| b.as_slice() == got.as_slice());
            assert!(
                matched.is_some(),
                "{key}: listed object ({} bytes) matches none of the bodies sent (sizes {:?})",
                got.len(),
                options.iter().map(|b| b.len()).collect::<Vec<_>>()
            );
            assert_eq!(o.size(), Some(got.len() as i64), "{key}: listed Size");
            assert_eq!(
                o.e_tag(),
                Some(etag_of(&got).as_str()),
                "{key}: listed ETag"
            );
            seen.insert(key, got);
        }
        if out.is_truncated() != Some(true) {
            break;
        }
        token = out.next_continuation_token().map(str::to_owned);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_new_puts() {
    let mut s = TestServer::start();
    create_bucket(&s.client(ALICE), "crash").await;
    let items = bodies("new");
    let acked = put_all_and_kill(&mut s, &items).await;
    assert!(
        acked.len() >= KILL_AFTER.min(COUNT),
        "acks: {}",
        acked.len()
    );

    s.spawn();
    let client = s.client(ALICE);
    for &i in &acked {
        let (key, body) = &items[i];
        let got = get_object(&client, "crash", key).await;
        assert!(
            got.as_slice() == body.as_slice(),
            "acknowledged {key} reads back {} bytes, expected {} identical bytes",
            got.len(),
            body.len()
        );
        let h = ok(client.head_object().bucket("crash").key(key).send().await);
        assert_eq!(h.content_length(), Some(body.len() as i64));
        assert_eq!(h.e_tag(), Some(etag_of(body).as_str()));
    }
    let candidates: BTreeMap<String, Vec<Arc<Vec<u8>>>> = items
        .iter()
        .map(|(k, b)| (k.clone(), vec![b.clone()]))
        .collect();
    let listed = check_listing(&client, &candidates).await;
    for &i in &acked {
        assert!(
            listed.contains_key(&items[i].0),
            "acknowledged {} is listed",
            items[i].0
        );
    }
    // Unlisted keys are not readable either (no half-visible object).
    for (key, _) in &items {
        if !listed.contains_key(key) {
            assert_sdk_status(
                client.head_object().bucket("crash").key(key).send().await,
                404,
            );
        }
    }
    // The server still works normally.
    put_object(&client, "crash", "after", b"after restart").await;
    assert_eq!(
        get_object(&client, "crash", "after").await,
        b"after restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_overwrites() {
    let mut s = TestServer::start();
    let client = s.client(ALICE);
    create_bucket(&client, "crash").await;
    let first = bodies("first");
    // Round one, fully acknowledged.
    let mut set = tokio::task::JoinSet::new();
    for chunk in first.chunks(25) {
        let client = client.clone();
        let chunk = chunk.to_vec();
        set.spawn(async move {
            for (k, b) in chunk {
                put_object(&client, "crash", &k, &b).await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("round one");
    }
    drop(client);

    // Round two overwrites every key; kill mid-way.
    let second: Vec<(String, Arc<Vec<u8>>)> = first
        .iter()
        .map(|(k, _)| {
            let len = rand::rng().random_range(64 * 1024..=1024 * 1024);
            (k.clone(), Arc::new(random_bytes(len)))
        })
        .collect();
    let acked = put_all_and_kill(&mut s, &second).await;

    s.spawn();
    let client = s.client(ALICE);
    for &i in &acked {
        let (key, body) = &second[i];
        let got = get_object(&client, "crash", key).await;
        assert!(
            got.as_slice() == body.as_slice(),
            "acknowledged overwrite of {key} lost: read {} bytes",
            got.len()
        );
    }
    let candidates: BTreeMap<String, Vec<Arc<Vec<u8>>>> = first
        .iter()
        .zip(second.iter())
        .map(|((k, a), (_, b))| (k.clone(), vec![a.clone(), b.clone()]))
        .collect();
    let listed = check_listing(&client, &candidates).await;
    assert_eq!(
        listed.len(),
        COUNT,
        "every key was acknowledged in round one, so every key is still listed"
    );
}
