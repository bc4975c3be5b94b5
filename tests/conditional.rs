//! Conditional writes (`If-None-Match: *`, `If-Match`) on PutObject,
//! CopyObject's destination and CompleteMultipartUpload, answered as S3
//! does: 412 PreconditionFailed, 404 NoSuchKey for `If-Match` on a missing
//! key, 501 NotImplemented for an `If-None-Match` other than `*`, and 409
//! ConditionalRequestConflict when another write finished between the
//! condition's first check and the commit. Racing `If-None-Match: *` PUTs
//! leave exactly one winner, on `fs` and on moto. The server must be built
//! with the `failpoints` feature (the 409 cases hold a write at
//! `commit.checked`).

use std::time::Duration;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use cloudmux_e2e::clouds::{Cloud, Target};
use cloudmux_e2e::{
    assert_sdk_err, create_bucket, create_bucket_on, etag_of, get_object, ok, put_object,
    random_bytes, ServerOptions, TestServer, ADMIN, ALICE,
};

/// A part size S3 accepts for a part other than the last.
const MIN_PART: usize = 5 * 1024 * 1024;

async fn setup() -> (TestServer, Client) {
    let s = TestServer::start();
    let c = s.client(ALICE);
    create_bucket(&c, "cond").await;
    (s, c)
}

/// PutObject of `body` with the given conditions.
async fn put_if(
    c: &Client,
    bucket: &str,
    key: &str,
    body: &[u8],
    if_match: Option<&str>,
    if_none_match: Option<&str>,
) -> Result<String, (u16, String)> {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .set_if_match(if_match.map(str::to_owned))
        .set_if_none_match(if_none_match.map(str::to_owned))
        .send()
        .await
        .map(|o| o.e_tag().unwrap_or_default().to_owned())
        .map_err(status_and_code)
}

/// The HTTP status and S3 error code of a failed SDK call.
fn status_and_code<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> (u16, String) {
    let status = e.raw_response().map_or(0, |r| r.status().as_u16());
    let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
    (status, code.to_owned())
}

/// Holds the next write of any key at `commit.checked` (under its key's
/// lock) for `ms` milliseconds.
async fn hold_next_commit(s: &TestServer, ms: u64) {
    let r = s
        .raw(
            "PUT",
            &format!("/_/failpoints/commit.checked?action=1%2Areturn%28wait%3A{ms}%29"),
        )
        .signed_by(ADMIN)
        .send()
        .await;
    assert_eq!(
        r.status,
        200,
        "arming commit.checked: {} (build the server with --features failpoints)",
        r.text()
    );
}

#[tokio::test]
async fn put_if_none_match_and_if_match() {
    let (s, c) = setup().await;
    let first = put_if(&c, "cond", "k", b"first", None, Some("*"))
        .await
        .expect("If-None-Match: * on a new key succeeds");
    assert_eq!(first, etag_of(b"first"));
    assert_eq!(
        put_if(&c, "cond", "k", b"second", None, Some("*")).await,
        Err((412, "PreconditionFailed".into()))
    );
    assert_eq!(
        put_if(&c, "cond", "k", b"second", Some("\"0123\""), None).await,
        Err((412, "PreconditionFailed".into()))
    );
    assert_eq!(get_object(&c, "cond", "k").await, b"first");
    let second = put_if(&c, "cond", "k", b"second", Some(&first), None)
        .await
        .expect("If-Match with the current ETag succeeds");
    assert_eq!(get_object(&c, "cond", "k").await, b"second");
    // The unquoted ETag matches as well.
    put_if(
        &c,
        "cond",
        "k",
        b"third",
        Some(second.trim_matches('"')),
        None,
    )
    .await
    .expect("If-Match with an unquoted ETag");
    assert_eq!(
        put_if(&c, "cond", "missing", b"x", Some(&first), None).await,
        Err((404, "NoSuchKey".into()))
    );
    // S3 takes only `*` for If-None-Match on a write, and not both headers.
    for (name, value) in [("if-none-match", "\"0123\""), ("if-none-match", "abc")] {
        s.raw("PUT", "/cond/other")
            .header(name, value)
            .body("x")
            .send()
            .await
            .assert_error(501, "NotImplemented");
    }
    s.raw("PUT", "/cond/other")
        .header("if-none-match", "*")
        .header("if-match", &second)
        .body("x")
        .send()
        .await
        .assert_error(501, "NotImplemented");
    assert_sdk_err(
        c.head_object().bucket("cond").key("other").send().await,
        404,
        "NotFound",
    );
}

#[tokio::test]
async fn copy_destination_conditions() {
    let (_s, c) = setup().await;
    put_object(&c, "cond", "src", b"source bytes").await;
    let dst_etag = put_object(&c, "cond", "dst", b"old destination").await;
    let copy = |if_match: Option<&str>, if_none_match: Option<&str>, key: &str| {
        c.copy_object()
            .bucket("cond")
            .key(key)
            .copy_source("cond/src")
            .set_if_match(if_match.map(str::to_owned))
            .set_if_none_match(if_none_match.map(str::to_owned))
            .send()
    };
    assert_sdk_err(
        copy(None, Some("*"), "dst").await,
        412,
        "PreconditionFailed",
    );
    assert_sdk_err(
        copy(Some("\"0123\""), None, "dst").await,
        412,
        "PreconditionFailed",
    );
    assert_sdk_err(copy(Some(&dst_etag), None, "nodst").await, 404, "NoSuchKey");
    assert_eq!(get_object(&c, "cond", "dst").await, b"old destination");
    ok(copy(Some(&dst_etag), None, "dst").await);
    assert_eq!(get_object(&c, "cond", "dst").await, b"source bytes");
    ok(copy(None, Some("*"), "fresh").await);
    assert_eq!(get_object(&c, "cond", "fresh").await, b"source bytes");
    // A copy onto itself that only changes metadata checks them too.
    let self_copy = c
        .copy_object()
        .bucket("cond")
        .key("src")
        .copy_source("cond/src")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .if_none_match("*")
        .send()
        .await;
    assert_sdk_err(self_copy, 412, "PreconditionFailed");
}

/// Creates an upload of `key` with one part of `body` and returns the
/// upload id and the part list to complete it with.
async fn one_part_upload(c: &Client, key: &str, body: &[u8]) -> (String, CompletedMultipartUpload) {
    let id = ok(c
        .create_multipart_upload()
        .bucket("cond")
        .key(key)
        .send()
        .await)
    .upload_id()
    .expect("UploadId")
    .to_owned();
    let etag = ok(c
        .upload_part()
        .bucket("cond")
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await)
    .e_tag()
    .expect("ETag")
    .to_owned();
    let parts = CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
        .build();
    (id, parts)
}

#[tokio::test]
async fn complete_conditions_and_retry() {
    let (_s, c) = setup().await;
    let complete = |key: &str,
                    id: &str,
                    parts: &CompletedMultipartUpload,
                    if_match: Option<&str>,
                    if_none_match: Option<&str>| {
        c.complete_multipart_upload()
            .bucket("cond")
            .key(key)
            .upload_id(id)
            .multipart_upload(parts.clone())
            .set_if_match(if_match.map(str::to_owned))
            .set_if_none_match(if_none_match.map(str::to_owned))
            .send()
    };
    // If-None-Match on a new key succeeds, and its retry answers the same.
    let (id, parts) = one_part_upload(&c, "mp", b"multipart one").await;
    let first = ok(complete("mp", &id, &parts, None, Some("*")).await);
    let again = ok(complete("mp", &id, &parts, None, Some("*")).await);
    assert_eq!(
        first.e_tag(),
        again.e_tag(),
        "a retried Complete answers as the first"
    );
    assert_eq!(get_object(&c, "cond", "mp").await, b"multipart one");

    // A second upload of the same key: 412 with If-None-Match, 412 with a
    // stale If-Match, success with the current ETag; the upload survives a
    // refused Complete.
    let (id2, parts2) = one_part_upload(&c, "mp", b"multipart two").await;
    assert_sdk_err(
        complete("mp", &id2, &parts2, None, Some("*")).await,
        412,
        "PreconditionFailed",
    );
    assert_sdk_err(
        complete("mp", &id2, &parts2, Some("\"0123\""), None).await,
        412,
        "PreconditionFailed",
    );
    assert_eq!(get_object(&c, "cond", "mp").await, b"multipart one");
    let current = first.e_tag().expect("ETag").to_owned();
    ok(complete("mp", &id2, &parts2, Some(&current), None).await);
    assert_eq!(get_object(&c, "cond", "mp").await, b"multipart two");

    // If-Match on a key that does not exist.
    let (id3, parts3) = one_part_upload(&c, "mp-missing", b"x").await;
    assert_sdk_err(
        complete("mp-missing", &id3, &parts3, Some(&current), None).await,
        404,
        "NoSuchKey",
    );
}

#[tokio::test]
async fn a_write_that_finishes_first_makes_the_conditional_write_conflict() {
    let (s, c) = setup().await;
    // PutObject: the unconditional write holds the key's lock at its commit
    // while the conditional one passes its first check and waits.
    hold_next_commit(&s, 1500).await;
    let blocker = {
        let c = c.clone();
        tokio::spawn(async move { put_object(&c, "cond", "k", b"unconditional").await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        put_if(&c, "cond", "k", b"conditional", None, Some("*")).await,
        Err((409, "ConditionalRequestConflict".into()))
    );
    blocker.await.expect("blocker");
    assert_eq!(get_object(&c, "cond", "k").await, b"unconditional");

    // If-Match: the ETag held at the start, a write replaced it meanwhile.
    let etag = put_object(&c, "cond", "m", b"v1").await;
    hold_next_commit(&s, 1500).await;
    let blocker = {
        let c = c.clone();
        tokio::spawn(async move { put_object(&c, "cond", "m", b"v2").await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        put_if(&c, "cond", "m", b"v3", Some(&etag), None).await,
        Err((409, "ConditionalRequestConflict".into()))
    );
    blocker.await.expect("blocker");
    assert_eq!(get_object(&c, "cond", "m").await, b"v2");

    // CompleteMultipartUpload with If-None-Match while a PUT of the key
    // finishes: 409, and the upload is still there to be completed later.
    let (id, parts) = one_part_upload(&c, "mp", b"the upload").await;
    hold_next_commit(&s, 1500).await;
    let blocker = {
        let c = c.clone();
        tokio::spawn(async move { put_object(&c, "cond", "mp", b"the put").await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let res = c
        .complete_multipart_upload()
        .bucket("cond")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(parts.clone())
        .if_none_match("*")
        .send()
        .await;
    assert_sdk_err(res, 409, "ConditionalRequestConflict");
    blocker.await.expect("blocker");
    assert_eq!(get_object(&c, "cond", "mp").await, b"the put");
    ok(c.complete_multipart_upload()
        .bucket("cond")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(parts)
        .send()
        .await);
    assert_eq!(get_object(&c, "cond", "mp").await, b"the upload");
}

/// `rounds` rounds of `clients` concurrent `If-None-Match: *` PUTs of one
/// new key each: exactly one succeeds, every other gets 412 or 409, and
/// the key holds the winner's bytes.
async fn race(c: &Client, bucket: &str, rounds: usize, clients: usize) {
    let (mut conflicts, mut refused) = (0, 0);
    for round in 0..rounds {
        let key = format!("race/{round}");
        let mut tasks = Vec::new();
        for i in 0..clients {
            let (c, bucket, key) = (c.clone(), bucket.to_owned(), key.clone());
            let mut body = format!("round {round} client {i} ").into_bytes();
            body.extend(random_bytes(64 + i * 37));
            tasks.push(tokio::spawn(async move {
                let res = put_if(&c, &bucket, &key, &body, None, Some("*")).await;
                (body, res)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (body, res) = t.await.expect("client task");
            match res {
                Ok(etag) => winners.push((body, etag)),
                Err((409, code)) if code == "ConditionalRequestConflict" => conflicts += 1,
                Err((412, code)) if code == "PreconditionFailed" => refused += 1,
                Err(other) => panic!("round {round}: a loser got {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        let (body, etag) = &winners[0];
        assert_eq!(etag, &etag_of(body), "round {round}: the winner's ETag");
        let stored = get_object(c, bucket, &key).await;
        assert!(
            stored == *body,
            "round {round}: the stored bytes are the winner's"
        );
    }
    assert_eq!(conflicts + refused, rounds * (clients - 1));
    eprintln!("{rounds} rounds: {conflicts} losers got 409, {refused} got 412");
}

#[tokio::test]
async fn racing_if_none_match_puts_on_fs() {
    let (_s, c) = setup().await;
    race(&c, "cond", 100, 8).await;
}

#[tokio::test]
async fn racing_if_none_match_puts_on_moto() {
    let target = Target::create(Cloud::Moto).await;
    let s = TestServer::start_with(ServerOptions {
        extra_config: target.location_config(30_000),
        ..Default::default()
    });
    let c = s.client(ALICE);
    create_bucket_on(&c, "condcloud", "cloud").await;
    race(&c, "condcloud", 100, 8).await;
    // Every round's winner is the one object the cloud holds for its key.
    let listing = target.listing().await;
    let raced = listing
        .objects
        .keys()
        .filter(|k| k.contains("race/"))
        .count();
    assert_eq!(raced, 100, "one native object per round: {listing:?}");
}

#[tokio::test]
async fn a_refused_large_conditional_put_keeps_nothing() {
    // A refused write keeps nothing: a 6 MiB If-None-Match PUT over an
    // existing key is answered once its body has arrived (the client sees
    // the 412, not a broken connection) and leaves the old bytes and no
    // staged leftovers.
    let (s, c) = setup().await;
    put_object(&c, "cond", "big", b"small original").await;
    let big = random_bytes(MIN_PART + 1024 * 1024);
    assert_eq!(
        put_if(&c, "cond", "big", &big, None, Some("*")).await,
        Err((412, "PreconditionFailed".into()))
    );
    assert_eq!(get_object(&c, "cond", "big").await, b"small original");
    let leftovers: Vec<_> = cloudmux_e2e::walk(&s.data_dir().join("objects"))
        .into_iter()
        .filter(|p| {
            std::fs::metadata(p)
                .map(|m| m.len() > 1024 * 1024)
                .unwrap_or(false)
        })
        .collect();
    assert!(leftovers.is_empty(), "no staged bytes left: {leftovers:?}");
}
