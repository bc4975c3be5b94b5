//! A store written by the last release before versioning (main at 9b2f3da:
//! object, intent and bucket records at format version 4) opens and
//! upgrades on read: its objects, tags, ACLs, multipart objects and an
//! unfinished upload are served as they were, become the `null` version,
//! and versioning works on top of them.
//!
//! The old release's binary writes the store in place (so the `fs`
//! location's files keep the inodes their records name), then the current
//! binary opens it. `CLOUDMUX_OLD_BIN` names the old binary;
//! `scripts/test.sh` builds it (`scripts/build-old-release.sh`, which
//! checks out 9b2f3da in a worktree under `target/` and builds it there).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, Tag, Tagging,
    VersioningConfiguration,
};
use cloudmux_e2e::*;

/// The old release's binary.
fn old_binary() -> std::path::PathBuf {
    match std::env::var_os("CLOUDMUX_OLD_BIN") {
        Some(p) => p.into(),
        None => panic!(
            "CLOUDMUX_OLD_BIN is not set: build the release before versioning with \
             scripts/build-old-release.sh and set CLOUDMUX_OLD_BIN to the path it prints \
             (scripts/test.sh does both)"
        ),
    }
}

fn body(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| tag ^ (i % 251) as u8).collect()
}

/// Writes the store with the old release; answers the id of an upload left
/// unfinished.
async fn populate(s: &TestServer) -> String {
    let c = s.client(ALICE);
    ok(c.create_bucket().bucket("old").send().await);
    put_object(&c, "old", "plain", &body(1, 1000)).await;
    put_object(&c, "old", "dir/nested.txt", &body(2, 10)).await;
    ok(c.put_object()
        .bucket("old")
        .key("tagged")
        .body(ByteStream::from(body(3, 100)))
        .tagging("a=1&b=2")
        .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
        .send()
        .await);
    let up = ok(c
        .create_multipart_upload()
        .bucket("old")
        .key("multi")
        .send()
        .await);
    let id = up.upload_id().unwrap().to_owned();
    let mut parts = Vec::new();
    for (n, data) in [(1, body(4, 5 << 20)), (2, body(5, 1 << 20))] {
        let p = ok(c
            .upload_part()
            .bucket("old")
            .key("multi")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(data))
            .send()
            .await);
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag().unwrap())
                .build(),
        );
    }
    ok(c.complete_multipart_upload()
        .bucket("old")
        .key("multi")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await);
    let pending = ok(c
        .create_multipart_upload()
        .bucket("old")
        .key("pending")
        .send()
        .await);
    let pending_id = pending.upload_id().unwrap().to_owned();
    ok(c.upload_part()
        .bucket("old")
        .key("pending")
        .upload_id(&pending_id)
        .part_number(1)
        .body(ByteStream::from(body(6, 1000)))
        .send()
        .await);
    pending_id
}

#[tokio::test]
async fn a_store_written_before_versioning_opens_and_upgrades() {
    let mut s = TestServer::start_with(ServerOptions {
        binary: Some(old_binary()),
        ..Default::default()
    });
    let pending_id = populate(&s).await;
    s.stop();
    s.use_binary(None);
    s.spawn();
    let c = s.client(ALICE);

    // Everything reads back as it was written.
    for (key, want) in [
        ("plain", body(1, 1000)),
        ("dir/nested.txt", body(2, 10)),
        ("tagged", body(3, 100)),
    ] {
        let o = ok(c.get_object().bucket("old").key(key).send().await);
        assert_eq!(o.version_id(), None, "{key}: the null version");
        assert_eq!(o.body.collect().await.unwrap().to_vec(), want, "{key}");
    }
    let multi = ok(c
        .get_object()
        .bucket("old")
        .key("multi")
        .part_number(2)
        .send()
        .await);
    assert_eq!(multi.parts_count(), Some(2));
    assert_eq!(
        multi.body.collect().await.unwrap().to_vec(),
        body(5, 1 << 20)
    );
    let tags = ok(c
        .get_object_tagging()
        .bucket("old")
        .key("tagged")
        .send()
        .await);
    let tags: Vec<(&str, &str)> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key(), t.value()))
        .collect();
    assert_eq!(tags, vec![("a", "1"), ("b", "2")]);
    let anon = s.raw("GET", "/old/tagged").anonymous().send().await;
    assert_eq!(anon.status, 200, "the public-read ACL still holds");
    let versioning = ok(c.get_bucket_versioning().bucket("old").send().await);
    assert_eq!(versioning.status(), None, "never versioned");
    let listed = ok(c.list_object_versions().bucket("old").send().await);
    assert_eq!(listed.versions().len(), 4);
    assert!(listed
        .versions()
        .iter()
        .all(|v| v.version_id() == Some("null") && v.is_latest() == Some(true)));

    // Versioning on top: the old object becomes the noncurrent null version.
    ok(c.put_bucket_versioning()
        .bucket("old")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await);
    let v = put_object_versioned(&c, "old", "plain", &body(9, 500)).await;
    let null = ok(c
        .get_object()
        .bucket("old")
        .key("plain")
        .version_id("null")
        .send()
        .await);
    assert_eq!(null.body.collect().await.unwrap().to_vec(), body(1, 1000));
    let current = ok(c.get_object().bucket("old").key("plain").send().await);
    assert_eq!(current.version_id(), Some(v.as_str()));
    assert_eq!(current.body.collect().await.unwrap().to_vec(), body(9, 500));
    ok(c.put_object_tagging()
        .bucket("old")
        .key("tagged")
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("c").value("3").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await);
    ok(c.delete_object()
        .bucket("old")
        .key("dir/nested.txt")
        .send()
        .await);
    let listed = ok(c
        .list_object_versions()
        .bucket("old")
        .prefix("dir/")
        .send()
        .await);
    assert_eq!(listed.delete_markers().len(), 1);
    assert_eq!(listed.versions()[0].version_id(), Some("null"));

    // The upload begun before the upgrade completes into a new version.
    let part = ok(c
        .list_parts()
        .bucket("old")
        .key("pending")
        .upload_id(&pending_id)
        .send()
        .await);
    let etag = part.parts()[0].e_tag().unwrap().to_owned();
    let done = ok(c
        .complete_multipart_upload()
        .bucket("old")
        .key("pending")
        .upload_id(&pending_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                .build(),
        )
        .send()
        .await);
    assert!(done.version_id().is_some());
    let got = ok(c.get_object().bucket("old").key("pending").send().await);
    assert_eq!(got.body.collect().await.unwrap().to_vec(), body(6, 1000));
}

async fn put_object_versioned(c: &aws_sdk_s3::Client, b: &str, k: &str, data: &[u8]) -> String {
    ok(c.put_object()
        .bucket(b)
        .key(k)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await)
    .version_id()
    .expect("a version id")
    .to_owned()
}
