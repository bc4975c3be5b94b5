//! Versioned writes and deletes racing on one key, in process: a real
//! gateway over a real sled store and a real `fs` location. Each round
//! starts the operations together (repeated 50 times); then every version
//! listed reads back whole by its id, every acknowledged version is listed,
//! and the location holds exactly one file per version with bytes.

use std::collections::BTreeSet;

use cloudmux_core::records::Versioning;
use cloudmux_core::{CoreError, DeleteInput, GetObjectInput, ListVersionsInput};

const ROUNDS: usize = 50;

mod common;
use common::*;

async fn read_version(w: &World, key: &str, id: &str) -> Result<Vec<u8>, CoreError> {
    use futures_util::StreamExt;
    let out =
        w.gw.get_object(
            &w.who,
            GetObjectInput {
                bucket: "bkt".into(),
                key: key.into(),
                version_id: Some(id.into()),
                ..Default::default()
            },
        )
        .await?;
    let mut body = out.body.expect("a body");
    let mut data = Vec::new();
    while let Some(chunk) = body.next().await {
        data.extend_from_slice(&chunk.expect("body chunk"));
    }
    Ok(data)
}

/// Every version of `key`: (id, is a delete marker, is latest).
async fn versions(w: &World, key: &str) -> Vec<(String, bool, bool)> {
    let page =
        w.gw.list_versions(
            &w.who,
            ListVersionsInput {
                bucket: "bkt".into(),
                prefix: key.into(),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .expect("list versions");
    assert!(!page.is_truncated);
    page.versions
        .iter()
        .filter(|v| v.key == key)
        .map(|v| {
            (
                v.record.version.id.clone().unwrap_or_else(|| "null".into()),
                v.record.version.delete_marker,
                v.is_latest,
            )
        })
        .collect()
}

/// Files under the location's bucket directory (current and kept versions).
fn files(w: &World) -> usize {
    fn walk(p: &std::path::Path, n: &mut usize) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                walk(&e.path(), n);
            } else if t.is_file() {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(&w.dir.path().join("objects").join("bkt"), &mut n);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versioned_puts_deletes_and_version_deletes_race_without_loss() {
    let w = setup().await;
    w.gw.put_bucket_versioning(&w.who, "bkt", Some(Versioning::Enabled), None)
        .await
        .expect("enable versioning");
    for round in 0..ROUNDS {
        let key = format!("k{round}");
        let first = pattern(round as u8, 3000);
        let v1 =
            w.gw.put_object(&w.who, put_input("bkt", &key, &first))
                .await
                .expect("first version")
                .version_id
                .expect("an id");
        let second = pattern(round as u8 ^ 0x55, 4000);
        let third = pattern(round as u8 ^ 0xaa, 5000);
        // A PUT, a delete marker, another PUT and the delete of the first
        // version by id, all at once.
        let (a, b, c, d) = tokio::join!(
            w.gw.put_object(&w.who, put_input("bkt", &key, &second)),
            w.gw.delete_object(
                &w.who,
                "bkt",
                DeleteInput {
                    key: key.clone(),
                    ..Default::default()
                }
            ),
            w.gw.put_object(&w.who, put_input("bkt", &key, &third)),
            w.gw.delete_object(
                &w.who,
                "bkt",
                DeleteInput {
                    key: key.clone(),
                    version_id: Some(v1.clone()),
                    ..Default::default()
                }
            ),
        );
        let a = a.expect("PUT").version_id.expect("id");
        let marker = b.expect("DELETE").version_id.expect("marker id");
        let c = c.expect("PUT").version_id.expect("id");
        d.expect("DELETE of a version");
        let listed = versions(&w, &key).await;
        let ids: BTreeSet<&str> = listed.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(
            ids.len(),
            listed.len(),
            "round {round}: a version listed twice"
        );
        let want: BTreeSet<&str> = [a.as_str(), marker.as_str(), c.as_str()].into();
        assert_eq!(ids, want, "round {round}: {listed:?}");
        assert_eq!(
            listed.iter().filter(|(_, _, latest)| *latest).count(),
            1,
            "round {round}: one latest"
        );
        assert!(listed[0].2, "round {round}: the newest is the latest");
        for (id, body) in [(&a, &second), (&c, &third)] {
            assert_eq!(&read_version(&w, &key, id).await.expect("read"), body);
        }
        assert!(matches!(
            read_version(&w, &key, &marker).await,
            Err(CoreError::DeleteMarker { by_id: true, .. })
        ));
        assert!(matches!(
            read_version(&w, &key, &v1).await,
            Err(CoreError::NoSuchVersion { .. })
        ));
        // The current version reads as the newest listed one says.
        let current = read(&w, "bkt", &key).await;
        match &listed[0] {
            (_, true, _) => assert_eq!(current, None, "round {round}"),
            (id, false, _) => {
                assert_eq!(
                    current,
                    Some(read_version(&w, &key, id).await.expect("read"))
                )
            }
        }
    }
    // Two versions with bytes per key, each one file (current at the
    // native name, noncurrent as a kept copy), nothing else.
    assert_eq!(files(&w), 2 * ROUNDS, "files in the location");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_the_current_version_racing_a_put_keeps_every_other_version() {
    let w = setup().await;
    w.gw.put_bucket_versioning(&w.who, "bkt", Some(Versioning::Enabled), None)
        .await
        .expect("enable versioning");
    for round in 0..ROUNDS {
        let key = format!("p{round}");
        let old = pattern(round as u8, 2000);
        let cur = pattern(round as u8 ^ 0x0f, 2500);
        let new = pattern(round as u8 ^ 0xf0, 3500);
        let v_old =
            w.gw.put_object(&w.who, put_input("bkt", &key, &old))
                .await
                .expect("old")
                .version_id
                .expect("id");
        let v_cur =
            w.gw.put_object(&w.who, put_input("bkt", &key, &cur))
                .await
                .expect("current")
                .version_id
                .expect("id");
        let (put, del) = tokio::join!(
            w.gw.put_object(&w.who, put_input("bkt", &key, &new)),
            w.gw.delete_object(
                &w.who,
                "bkt",
                DeleteInput {
                    key: key.clone(),
                    version_id: Some(v_cur.clone()),
                    ..Default::default()
                }
            ),
        );
        let v_new = put.expect("PUT").version_id.expect("id");
        del.expect("DELETE of the current version");
        let listed = versions(&w, &key).await;
        let ids: Vec<&str> = listed.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(ids, vec![v_new.as_str(), v_old.as_str()], "round {round}");
        assert_eq!(read(&w, "bkt", &key).await, Some(new.clone()));
        assert_eq!(read_version(&w, &key, &v_old).await.expect("old"), old);
    }
    assert_eq!(files(&w), 2 * ROUNDS, "files in the location");
}
