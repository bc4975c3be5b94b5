//! The write path against its failure model, in process: a real gateway
//! over a real sled store and a real `fs` location in a temporary directory.
//!
//! Races are repeated (50 times each) with the operations started together;
//! cancellation drops each operation's future after every number of polls
//! it takes, then checks that the key holds the old or the new object whole
//! and that later writes go on.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use cloudmux_core::digest::BodyExpectations;
use cloudmux_core::policy::RequestEnv;
use cloudmux_core::{
    CoreError, CreateUploadInput, GetObjectInput, RequestContext, UploadPartInput,
};
use cloudmux_data::fs::{FsBackend, FsConfig};
use cloudmux_data::Backend;

const ROUNDS: usize = 50;

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn double_complete_answers_alike_and_keeps_the_object() {
    let w = setup().await;
    for round in 0..ROUNDS {
        let key = format!("k{round}");
        let data = pattern(round as u8, 3000 + round);
        let (id, etag) = upload_with_part(&w, &key, &data).await;
        let (a, b) = tokio::join!(
            w.gw.complete_upload(&w.who, complete_input(&key, &id, &etag)),
            w.gw.complete_upload(&w.who, complete_input(&key, &id, &etag)),
        );
        let (a, b) = (a.expect("first Complete"), b.expect("second Complete"));
        assert_eq!(a.etag, b.etag, "round {round}");
        assert_eq!(read(&w, "bkt", &key).await.as_deref(), Some(&data[..]));
        // A later retry answers the same, while the object is current.
        let c =
            w.gw.complete_upload(&w.who, complete_input(&key, &id, &etag))
                .await
                .expect("sequential retry");
        assert_eq!(c.etag, a.etag);
        // A retry with other parts is not the same upload.
        let other = complete_input(&key, &id, "00000000000000000000000000000000");
        assert!(matches!(
            w.gw.complete_upload(&w.who, other).await,
            Err(CoreError::NoSuchUpload(_))
        ));
    }
    // Once the key is overwritten, the upload is gone for good.
    let (id, etag) = upload_with_part(&w, "over", b"first").await;
    w.gw.complete_upload(&w.who, complete_input("over", &id, &etag))
        .await
        .expect("complete");
    w.gw.put_object(&w.who, put_input("bkt", "over", b"second"))
        .await
        .expect("overwrite");
    assert!(matches!(
        w.gw.complete_upload(&w.who, complete_input("over", &id, &etag))
            .await,
        Err(CoreError::NoSuchUpload(_))
    ));
    assert_eq!(
        read(&w, "bkt", "over").await.as_deref(),
        Some(&b"second"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn complete_racing_abort_leaves_all_or_nothing() {
    let w = setup().await;
    let (mut completed, mut aborted) = (0, 0);
    for round in 0..ROUNDS {
        let key = format!("k{round}");
        let data = pattern(round as u8, 2000);
        let (id, etag) = upload_with_part(&w, &key, &data).await;
        let (c, a) = tokio::join!(
            w.gw.complete_upload(&w.who, complete_input(&key, &id, &etag)),
            w.gw.abort_upload(&w.who, "bkt", &key, &id),
        );
        match (c, a) {
            (Ok(_), Err(CoreError::NoSuchUpload(_))) => {
                completed += 1;
                assert_eq!(read(&w, "bkt", &key).await.as_deref(), Some(&data[..]));
            }
            (Err(CoreError::NoSuchUpload(_)), Ok(())) => {
                aborted += 1;
                assert_eq!(read(&w, "bkt", &key).await, None);
            }
            (c, a) => panic!("round {round}: Complete {c:?}, Abort {a:?}"),
        }
    }
    assert_eq!(completed + aborted, ROUNDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overwrites_racing_a_delete_leave_one_whole_object_or_none() {
    let w = setup().await;
    for round in 0..ROUNDS {
        let (a, b) = (pattern(1, 5000 + round), pattern(2, 7000 + round));
        w.gw.put_object(&w.who, put_input("bkt", "key", b"old"))
            .await
            .expect("initial put");
        let (ra, rb, rd) = tokio::join!(
            w.gw.put_object(&w.who, put_input("bkt", "key", &a)),
            w.gw.put_object(&w.who, put_input("bkt", "key", &b)),
            delete(&w, "bkt", "key"),
        );
        ra.expect("put a");
        rb.expect("put b");
        rd.expect("delete");
        match read(&w, "bkt", "key").await {
            None => {}
            Some(got) => assert!(got == a || got == b, "round {round}: a mix or old bytes"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_bucket_racing_a_put_never_hides_an_acknowledged_object() {
    let w = world();
    for round in 0..ROUNDS {
        w.gw.create_bucket(&w.who, "race", None, None, None)
            .await
            .expect("create bucket");
        let data = pattern(round as u8, 1000);
        let (put, del) = tokio::join!(
            w.gw.put_object(&w.who, put_input("race", "k", &data)),
            w.gw.delete_bucket(&w.who, "race"),
        );
        match (put, del) {
            (Ok(_), Err(CoreError::BucketNotEmpty(_) | CoreError::OperationAborted(_))) => {
                assert_eq!(read(&w, "race", "k").await.as_deref(), Some(&data[..]));
                delete(&w, "race", "k").await.expect("delete object");
                w.gw.delete_bucket(&w.who, "race")
                    .await
                    .expect("delete bucket");
            }
            (Err(CoreError::NoSuchBucket(_) | CoreError::OperationAborted(_)), Ok(())) => {}
            (Err(CoreError::OperationAborted(_)), Err(CoreError::OperationAborted(_))) => {
                w.gw.delete_bucket(&w.who, "race")
                    .await
                    .expect("delete bucket");
            }
            (p, d) => panic!("round {round}: put {p:?}, delete bucket {d:?}"),
        }
        assert!(matches!(
            read_bucket_gone(&w).await,
            Err(CoreError::NoSuchBucket(_))
        ));
    }
}

async fn read_bucket_gone(w: &World) -> Result<(), CoreError> {
    w.gw.put_object(&w.who, put_input("race", "after", b"x"))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_part_uploaded_twice_at_once_keeps_one_whole_part() {
    let w = setup().await;
    for round in 0..ROUNDS {
        let key = format!("p{round}");
        let up =
            w.gw.create_upload(
                &w.who,
                CreateUploadInput {
                    bucket: "bkt".into(),
                    key: key.clone(),
                    ..Default::default()
                },
            )
            .await
            .expect("create upload");
        let (x, y) = (pattern(3, 4000 + round), pattern(4, 6000 + round));
        let part = |data: &[u8]| UploadPartInput {
            bucket: "bkt".into(),
            key: key.clone(),
            upload_id: up.upload_id.clone(),
            part_number: 1,
            body: body(data),
            expect: BodyExpectations::default(),
        };
        let (px, py) = tokio::join!(
            w.gw.upload_part(&w.who, part(&x)),
            w.gw.upload_part(&w.who, part(&y))
        );
        let (px, py) = (px.expect("part x"), py.expect("part y"));
        // Exactly one of the two ETags completes the upload.
        let cx =
            w.gw.complete_upload(&w.who, complete_input(&key, &up.upload_id, &px.etag))
                .await;
        let done = match cx {
            Ok(_) => x.clone(),
            Err(CoreError::InvalidPart(_)) => {
                w.gw.complete_upload(&w.who, complete_input(&key, &up.upload_id, &py.etag))
                    .await
                    .expect("complete with the other part");
                y.clone()
            }
            Err(e) => panic!("round {round}: {e}"),
        };
        assert_eq!(read(&w, "bkt", &key).await, Some(done));
    }
}

/// Drives `fut`, polling it only when it is woken, and drops it at its
/// `polls`-th pending poll: each poll past the first resumes it from one of
/// its await points. True if it finished first.
async fn poll_then_drop<F: Future>(fut: F, polls: usize) -> bool {
    let mut fut = pin!(fut);
    let mut count = 0;
    std::future::poll_fn(|cx: &mut Context<'_>| {
        count += 1;
        match fut.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(true),
            Poll::Pending if count >= polls => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_writes_leave_old_or_new_whole_and_later_writes_proceed() {
    let w = setup().await;
    let old = pattern(7, 9000);
    let new = pattern(8, 11000);
    for op in ["put", "complete", "delete"] {
        let mut polls = 1;
        loop {
            let key = format!("{op}-{polls}");
            w.gw.put_object(&w.who, put_input("bkt", &key, &old))
                .await
                .expect("old object");
            let upload = match op {
                "complete" => Some(upload_with_part(&w, &key, &new).await),
                _ => None,
            };
            let fut = async {
                match op {
                    "put" => {
                        w.gw.put_object(&w.who, put_input("bkt", &key, &new))
                            .await
                            .map(|_| ())
                    }
                    "complete" => {
                        let (id, etag) = upload.clone().expect("upload");
                        w.gw.complete_upload(&w.who, complete_input(&key, &id, &etag))
                            .await
                            .map(|_| ())
                    }
                    _ => delete(&w, "bkt", &key).await,
                }
            };
            let finished = poll_then_drop(fut, polls).await;
            // A commit still running holds the key's lock; reads that find
            // its bytes replaced wait for it.
            let got = read(&w, "bkt", &key).await;
            match (op, &got) {
                ("delete", None) => {}
                (_, Some(g)) if *g == old || *g == new => {}
                _ => panic!(
                    "{op} dropped after {polls} polls: {:?} bytes",
                    got.map(|g| g.len())
                ),
            }
            let later = pattern(9, 100 + polls);
            w.gw.put_object(&w.who, put_input("bkt", &key, &later))
                .await
                .expect("a later write proceeds");
            assert_eq!(read(&w, "bkt", &key).await, Some(later));
            if finished {
                break;
            }
            polls += 1;
        }
        assert!(
            polls > 1,
            "{op} finished on its first poll: nothing was dropped"
        );
        assert!(polls < 500, "{op} never finished");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_removes_what_no_record_names_and_nothing_else() {
    use cloudmux_meta::MetaStore;
    let w = setup().await;
    let fs = FsBackend::open(&FsConfig {
        path: w.dir.path().join("objects"),
    })
    .expect("the location, opened a second time");
    put_object_bytes(&w, "published", b"kept").await;
    let live = pattern(5, 3000);
    let (live_id, live_etag) = upload_with_part(&w, "live", &live).await;
    // A crash between the upload record's removal and its parts' (inside
    // Complete or Abort) leaves part records of a gone upload.
    let (gone_id, _) = upload_with_part(&w, "gone", b"orphan part").await;
    let mut gone_key = b"u/bkt/gone\0".to_vec();
    gone_key.extend_from_slice(gone_id.as_bytes());
    w.meta
        .commit(
            cloudmux_meta::Txn::new()
                .require_present(gone_key.clone())
                .delete(gone_key),
        )
        .await
        .expect("drop the upload record");
    // A staged body whose request died before any record named it.
    fs.stage(body(b"abandoned")).await.expect("stage");
    let young =
        w.gw.gc_sweep(std::time::Duration::from_secs(3600))
            .await
            .unwrap();
    assert_eq!(
        (young.parts_removed, young.staged_removed),
        (1, 0),
        "{young:?}"
    );
    assert_eq!(young.staged_young, 2, "{young:?}");
    let report = w.gw.gc_sweep(std::time::Duration::ZERO).await.unwrap();
    assert_eq!((report.staged_removed, report.errors), (2, 0), "{report:?}");
    // Only the live upload's part is left in the staging area.
    assert_eq!(fs.list_staged().await.unwrap().len(), 1);
    w.gw.complete_upload(&w.who, complete_input("live", &live_id, &live_etag))
        .await
        .expect("the live upload still completes");
    assert_eq!(read(&w, "bkt", "live").await, Some(live));
    assert_eq!(
        read(&w, "bkt", "published").await.as_deref(),
        Some(&b"kept"[..])
    );
    assert!(fs.list_staged().await.unwrap().is_empty());
}

async fn put_object_bytes(w: &World, key: &str, data: &[u8]) {
    w.gw.put_object(&w.who, put_input("bkt", key, data))
        .await
        .expect("put");
}

#[tokio::test]
async fn a_context_without_an_action_fails_closed_and_one_with_it_meets_the_deny() {
    let w = setup().await;
    // No policy: the ACL decides, as before.
    put_object_bytes(&w, "open", b"fine").await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::bkt/*"}]}"#;
    w.gw.put_bucket_policy(&w.who, "bkt", policy)
        .await
        .expect("put policy");
    // A context naming no S3 action is refused where a policy exists,
    // rather than skipping the Deny.
    let r =
        w.gw.put_object(&w.who, put_input("bkt", "denied", b"x"))
            .await;
    assert!(matches!(r, Err(CoreError::AccessDenied)), "{r:?}");
    // With the action, the Deny statement itself refuses it.
    let put = RequestContext::new(
        w.who.principal().clone(),
        RequestEnv {
            action: Some("s3:PutObject"),
            ..Default::default()
        },
    );
    let r =
        w.gw.put_object(&put, put_input("bkt", "denied", b"x"))
            .await;
    assert!(matches!(r, Err(CoreError::AccessDenied)), "{r:?}");
    assert_eq!(read_outside(&w).await, None);
    // cloudmux's own background work runs under a named system principal.
    let system = RequestContext::system("replication");
    w.gw.put_object(&system, put_input("bkt", "by-system", b"y"))
        .await
        .expect("a system principal acts on every bucket");
}

async fn read_outside(w: &World) -> Option<Vec<u8>> {
    match w
        .gw
        .get_object(
            &w.who,
            GetObjectInput {
                bucket: "bkt".into(),
                key: "denied".into(),
                range: None,
                part_number: None,
                conditions: Default::default(),
                head: true,
                version_id: None,
            },
        )
        .await
    {
        Ok(_) => Some(Vec::new()),
        Err(_) => None,
    }
}
