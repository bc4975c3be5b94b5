//! Object and bucket tagging: PutObjectTagging / GetObjectTagging /
//! DeleteObjectTagging, PutBucketTagging / GetBucketTagging /
//! DeleteBucketTagging, `x-amz-tagging` on PutObject and
//! CreateMultipartUpload, `x-amz-tagging-directive` on CopyObject,
//! `x-amz-tagging-count` on GET and HEAD, AWS's validation errors, access
//! checks, and tags surviving a restart.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ObjectCannedAcl, Tag, Tagging, TaggingDirective,
};
use aws_sdk_s3::Client;
use cloudmux_e2e::*;

fn tagging(pairs: &[(&str, &str)]) -> Tagging {
    let mut b = Tagging::builder();
    for (k, v) in pairs {
        b = b.tag_set(Tag::builder().key(*k).value(*v).build().expect("tag"));
    }
    b.build().expect("tagging")
}

fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn object_tags(c: &Client, bucket: &str, key: &str) -> Vec<(String, String)> {
    let out = ok(c.get_object_tagging().bucket(bucket).key(key).send().await);
    pairs(out.tag_set())
}

/// PutObjectTagging of `pairs` on `bucket/key`, the SDK's result as is.
async fn put_tags(
    c: &Client,
    bucket: &str,
    key: &str,
    pairs: &[(&str, &str)],
) -> Result<
    aws_sdk_s3::operation::put_object_tagging::PutObjectTaggingOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::put_object_tagging::PutObjectTaggingError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
> {
    c.put_object_tagging()
        .bucket(bucket)
        .key(key)
        .tagging(tagging(pairs))
        .send()
        .await
}

async fn setup() -> TestServer {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_bucket(&alice, "tags").await;
    put_object(&alice, "tags", "obj", b"hello").await;
    s
}

#[tokio::test]
async fn object_tagging_roundtrip() {
    let s = setup().await;
    let alice = s.client(ALICE);
    assert!(object_tags(&alice, "tags", "obj").await.is_empty());
    let head = ok(alice.head_object().bucket("tags").key("obj").send().await);
    let raw = s.raw("HEAD", "/tags/obj").send().await;
    assert_eq!(raw.header("x-amz-tagging-count"), None);
    assert!(head.e_tag().is_some());

    let put = [
        ("color", "blue"),
        ("team", "a b+c-d=e.f_g:h/i@j"),
        ("empty", ""),
    ];
    ok(put_tags(&alice, "tags", "obj", &put).await);
    assert_eq!(object_tags(&alice, "tags", "obj").await, owned(&put));
    let got = ok(alice.get_object().bucket("tags").key("obj").send().await);
    assert_eq!(got.tag_count(), Some(3));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"hello"
    );
    let raw = s.raw("HEAD", "/tags/obj").send().await;
    assert_eq!(raw.header("x-amz-tagging-count").as_deref(), Some("3"));

    // A new PutObjectTagging replaces the whole set.
    ok(put_tags(&alice, "tags", "obj", &[("only", "one")]).await);
    assert_eq!(
        object_tags(&alice, "tags", "obj").await,
        owned(&[("only", "one")])
    );

    let raw = s.raw("GET", "/tags/obj?tagging").send().await;
    raw.assert_success();
    let doc = raw.xml();
    assert_eq!(doc.name, "Tagging");
    let set = doc.child("TagSet").expect("TagSet");
    assert_eq!(set.children.len(), 1);

    let del = s.raw("DELETE", "/tags/obj?tagging").send().await;
    assert_eq!(del.status, 204, "{}", del.text());
    assert!(object_tags(&alice, "tags", "obj").await.is_empty());
    let empty = s.raw("GET", "/tags/obj?tagging").send().await;
    assert!(
        empty.text().contains("<TagSet></TagSet>"),
        "{}",
        empty.text()
    );
    let got = ok(alice.get_object().bucket("tags").key("obj").send().await);
    assert_eq!(got.tag_count(), None);
    assert_eq!(get_object(&alice, "tags", "obj").await, b"hello");

    // The PUT answers 200 with an empty body.
    let body = b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>";
    let put = s
        .raw("PUT", "/tags/obj?tagging")
        .body(body.to_vec())
        .with_content_md5()
        .send()
        .await;
    assert_eq!((put.status, put.body.len()), (200, 0), "{}", put.text());
}

#[tokio::test]
async fn missing_object_and_bucket() {
    let s = setup().await;
    let alice = s.client(ALICE);
    assert_sdk_err(
        alice
            .get_object_tagging()
            .bucket("tags")
            .key("nope")
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    assert_sdk_err(
        put_tags(&alice, "tags", "nope", &[("a", "b")]).await,
        404,
        "NoSuchKey",
    );
    assert_sdk_err(
        alice
            .delete_object_tagging()
            .bucket("tags")
            .key("nope")
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    assert_sdk_err(
        alice
            .get_object_tagging()
            .bucket("nobucket")
            .key("obj")
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
    assert_sdk_err(
        alice.get_bucket_tagging().bucket("nobucket").send().await,
        404,
        "NoSuchBucket",
    );
}

#[tokio::test]
async fn put_object_with_tagging_header() {
    let s = setup().await;
    let alice = s.client(ALICE);
    ok(alice
        .put_object()
        .bucket("tags")
        .key("h")
        .tagging("k1=v1&k%202=v%3Dx%2By&empty=")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await);
    assert_eq!(
        object_tags(&alice, "tags", "h").await,
        owned(&[("k1", "v1"), ("k 2", "v=x+y"), ("empty", "")])
    );
    let head = s.raw("HEAD", "/tags/h").send().await;
    assert_eq!(head.header("x-amz-tagging-count").as_deref(), Some("3"));
    let get = ok(alice.get_object().bucket("tags").key("h").send().await);
    assert_eq!(get.tag_count(), Some(3));

    // Overwriting without the header leaves the new object untagged.
    put_object(&alice, "tags", "h", b"y").await;
    assert!(object_tags(&alice, "tags", "h").await.is_empty());

    assert_sdk_err(
        alice
            .put_object()
            .bucket("tags")
            .key("dup")
            .tagging("a=1&a=2")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        400,
        "InvalidArgument",
    );
    let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
    assert_sdk_err(
        alice
            .put_object()
            .bucket("tags")
            .key("many")
            .tagging(eleven.join("&"))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        400,
        "InvalidTag",
    );
    assert_sdk_err(
        alice
            .put_object()
            .bucket("tags")
            .key("sys")
            .tagging("aws:x=1")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        400,
        "InvalidTag",
    );
    let keys = list_keys(&alice, "tags").await;
    assert_eq!(keys, vec!["h".to_owned(), "obj".to_owned()]);
}

#[tokio::test]
async fn copy_with_tagging_directives() {
    let s = setup().await;
    let alice = s.client(ALICE);
    ok(put_tags(&alice, "tags", "obj", &[("src", "1"), ("other", "2")]).await);

    ok(alice
        .copy_object()
        .bucket("tags")
        .key("copy-default")
        .copy_source("tags/obj")
        .tagging("ignored=yes")
        .send()
        .await);
    assert_eq!(
        object_tags(&alice, "tags", "copy-default").await,
        owned(&[("src", "1"), ("other", "2")])
    );

    ok(alice
        .copy_object()
        .bucket("tags")
        .key("copy-copy")
        .copy_source("tags/obj")
        .tagging_directive(TaggingDirective::Copy)
        .send()
        .await);
    assert_eq!(object_tags(&alice, "tags", "copy-copy").await.len(), 2);

    ok(alice
        .copy_object()
        .bucket("tags")
        .key("copy-replace")
        .copy_source("tags/obj")
        .tagging_directive(TaggingDirective::Replace)
        .tagging("new=tag")
        .send()
        .await);
    assert_eq!(
        object_tags(&alice, "tags", "copy-replace").await,
        owned(&[("new", "tag")])
    );
    assert_eq!(get_object(&alice, "tags", "copy-replace").await, b"hello");

    ok(alice
        .copy_object()
        .bucket("tags")
        .key("copy-none")
        .copy_source("tags/obj")
        .tagging_directive(TaggingDirective::Replace)
        .send()
        .await);
    assert!(object_tags(&alice, "tags", "copy-none").await.is_empty());

    // The metadata directive does not change which tags the copy gets.
    ok(alice
        .copy_object()
        .bucket("tags")
        .key("copy-meta")
        .copy_source("tags/obj")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .content_type("text/plain")
        .send()
        .await);
    assert_eq!(object_tags(&alice, "tags", "copy-meta").await.len(), 2);

    let bad = s
        .raw("PUT", "/tags/copy-bad")
        .header("x-amz-copy-source", "/tags/obj")
        .header("x-amz-tagging-directive", "MERGE")
        .send()
        .await;
    bad.assert_error(400, "InvalidArgument");
    assert_sdk_err(
        alice
            .copy_object()
            .bucket("tags")
            .key("copy-invalid")
            .copy_source("tags/obj")
            .tagging_directive(TaggingDirective::Replace)
            .tagging("aws:k=v")
            .send()
            .await,
        400,
        "InvalidTag",
    );

    // UploadPartCopy of a tagged object still works.
    let up = ok(alice
        .create_multipart_upload()
        .bucket("tags")
        .key("mpcopy")
        .send()
        .await);
    let id = up.upload_id().unwrap();
    let part = ok(alice
        .upload_part_copy()
        .bucket("tags")
        .key("mpcopy")
        .upload_id(id)
        .part_number(1)
        .copy_source("tags/obj")
        .send()
        .await);
    let etag = part.copy_part_result().unwrap().e_tag().unwrap().to_owned();
    ok(alice
        .complete_multipart_upload()
        .bucket("tags")
        .key("mpcopy")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                .build(),
        )
        .send()
        .await);
    assert_eq!(get_object(&alice, "tags", "mpcopy").await, b"hello");
    assert!(object_tags(&alice, "tags", "mpcopy").await.is_empty());
}

#[tokio::test]
async fn multipart_upload_with_tagging() {
    let s = setup().await;
    let alice = s.client(ALICE);
    let up = ok(alice
        .create_multipart_upload()
        .bucket("tags")
        .key("mp")
        .tagging("project=x&stage=raw")
        .send()
        .await);
    let id = up.upload_id().unwrap();
    let data = random_bytes(1000);
    let part = ok(alice
        .upload_part()
        .bucket("tags")
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from(data.clone()))
        .send()
        .await);
    // The tags are not visible before Complete: the object does not exist.
    assert_sdk_err(
        alice
            .get_object_tagging()
            .bucket("tags")
            .key("mp")
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    ok(alice
        .complete_multipart_upload()
        .bucket("tags")
        .key("mp")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await);
    assert_eq!(
        object_tags(&alice, "tags", "mp").await,
        owned(&[("project", "x"), ("stage", "raw")])
    );
    let got = ok(alice.get_object().bucket("tags").key("mp").send().await);
    assert_eq!(got.tag_count(), Some(2));

    assert_sdk_err(
        alice
            .create_multipart_upload()
            .bucket("tags")
            .key("mp2")
            .tagging(format!("k={}", "v".repeat(257)))
            .send()
            .await,
        400,
        "InvalidTag",
    );
}

#[tokio::test]
async fn object_tag_validation_errors() {
    let s = setup().await;
    let alice = s.client(ALICE);
    let put = |t: Tagging| {
        alice
            .put_object_tagging()
            .bucket("tags")
            .key("obj")
            .tagging(t)
            .send()
    };
    let ten: Vec<(String, String)> = (0..10).map(|i| (format!("k{i}"), "v".into())).collect();
    let ten_ref: Vec<(&str, &str)> = ten.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    ok(put(tagging(&ten_ref)).await);
    let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
    let eleven_ref: Vec<(&str, &str)> = eleven
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_sdk_err(put(tagging(&eleven_ref)).await, 400, "InvalidTag");
    let k128 = "k".repeat(128);
    let v256 = "v".repeat(256);
    ok(put(tagging(&[(&k128, &v256)])).await);
    let k129 = "k".repeat(129);
    assert_sdk_err(put(tagging(&[(&k129, "v")])).await, 400, "InvalidTag");
    let v257 = "v".repeat(257);
    assert_sdk_err(put(tagging(&[("k", &v257)])).await, 400, "InvalidTag");
    let dup = put(tagging(&[("k", "1"), ("k", "2")])).await;
    match &dup {
        Err(e) => assert!(
            e.body_text()
                .contains("Cannot provide multiple Tags with the same key"),
            "{}",
            e.body_text()
        ),
        Ok(_) => panic!("duplicate keys accepted"),
    }
    assert_sdk_err(dup, 400, "InvalidTag");
    assert_sdk_err(put(tagging(&[("aws:cost", "1")])).await, 400, "InvalidTag");
    assert_sdk_err(put(tagging(&[("a*b", "1")])).await, 400, "InvalidTag");
    assert_sdk_err(put(tagging(&[("k", "v#")])).await, 400, "InvalidTag");
    assert_sdk_err(put(tagging(&[("", "v")])).await, 400, "InvalidTag");
    // A refused set leaves the stored one unchanged.
    assert_eq!(
        object_tags(&alice, "tags", "obj").await,
        vec![(k128.clone(), v256.clone())]
    );

    for body in [
        &b"<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>"[..],
        b"<Tagging><TagSet>",
        b"<Tagging></Tagging>",
        b"<Other><TagSet></TagSet></Other>",
        b"not xml",
    ] {
        s.raw("PUT", "/tags/obj?tagging")
            .body(body.to_vec())
            .send()
            .await
            .assert_error(400, "MalformedXML");
    }
    let good = b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>";
    s.raw("PUT", "/tags/obj?tagging")
        .body(good.to_vec())
        .header("content-md5", &md5_b64(b"something else"))
        .send()
        .await
        .assert_error(400, "BadDigest");
    assert_eq!(object_tags(&alice, "tags", "obj").await.len(), 1);
    assert_eq!(object_tags(&alice, "tags", "obj").await[0].0, k128);
}

#[tokio::test]
async fn bucket_tagging_roundtrip_and_errors() {
    let s = setup().await;
    let alice = s.client(ALICE);
    assert_sdk_err(
        alice.get_bucket_tagging().bucket("tags").send().await,
        404,
        "NoSuchTagSet",
    );
    let set = [("env", "prod"), ("owner", "alice@example.com")];
    let put = s
        .raw("PUT", "/tags?tagging")
        .body(
            "<Tagging><TagSet><Tag><Key>env</Key><Value>prod</Value></Tag>\
             <Tag><Key>owner</Key><Value>alice@example.com</Value></Tag></TagSet></Tagging>",
        )
        .with_content_md5()
        .send()
        .await;
    assert_eq!(put.status, 204, "{}", put.text());
    let got = ok(alice.get_bucket_tagging().bucket("tags").send().await);
    assert_eq!(pairs(got.tag_set()), owned(&set));

    ok(alice
        .put_bucket_tagging()
        .bucket("tags")
        .tagging(tagging(&[("x", "y")]))
        .send()
        .await);
    let got = ok(alice.get_bucket_tagging().bucket("tags").send().await);
    assert_eq!(pairs(got.tag_set()), owned(&[("x", "y")]));

    let fifty: Vec<(String, String)> = (0..50).map(|i| (format!("k{i}"), "v".into())).collect();
    let fifty_ref: Vec<(&str, &str)> = fifty
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    ok(alice
        .put_bucket_tagging()
        .bucket("tags")
        .tagging(tagging(&fifty_ref))
        .send()
        .await);
    let mut fifty_one = fifty_ref.clone();
    fifty_one.push(("k50", "v"));
    for bad in [
        tagging(&fifty_one),
        tagging(&[("a", "1"), ("a", "2")]),
        tagging(&[("aws:x", "1")]),
        tagging(&[(&"k".repeat(129), "1")]),
        tagging(&[("k", &"v".repeat(257))]),
    ] {
        assert_sdk_err(
            alice
                .put_bucket_tagging()
                .bucket("tags")
                .tagging(bad)
                .send()
                .await,
            400,
            "InvalidTag",
        );
    }
    s.raw("PUT", "/tags?tagging")
        .body("<Tagging><TagSet><Tag>")
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "MalformedXML");
    let got = ok(alice.get_bucket_tagging().bucket("tags").send().await);
    assert_eq!(got.tag_set().len(), 50);

    let del = s.raw("DELETE", "/tags?tagging").send().await;
    assert_eq!(del.status, 204, "{}", del.text());
    assert_sdk_err(
        alice.get_bucket_tagging().bucket("tags").send().await,
        404,
        "NoSuchTagSet",
    );
    // Bucket tags are not object tags.
    assert!(object_tags(&alice, "tags", "obj").await.is_empty());
}

#[tokio::test]
async fn other_accounts_are_denied() {
    let s = setup().await;
    let (alice, bob) = (s.client(ALICE), s.client(BOB));
    ok(put_tags(&alice, "tags", "obj", &[("a", "1")]).await);
    ok(alice
        .put_bucket_tagging()
        .bucket("tags")
        .tagging(tagging(&[("b", "2")]))
        .send()
        .await);
    assert_sdk_err(
        bob.get_object_tagging()
            .bucket("tags")
            .key("obj")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        put_tags(&bob, "tags", "obj", &[("evil", "1")]).await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.delete_object_tagging()
            .bucket("tags")
            .key("obj")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.get_object_tagging()
            .bucket("tags")
            .key("nope")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.get_bucket_tagging().bucket("tags").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.put_bucket_tagging()
            .bucket("tags")
            .tagging(tagging(&[("evil", "1")]))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.delete_bucket_tagging().bucket("tags").send().await,
        403,
        "AccessDenied",
    );
    s.raw("GET", "/tags/obj?tagging")
        .anonymous()
        .send()
        .await
        .assert_error(403, "AccessDenied");
    assert_eq!(
        object_tags(&alice, "tags", "obj").await,
        owned(&[("a", "1")])
    );
    let got = ok(alice.get_bucket_tagging().bucket("tags").send().await);
    assert_eq!(pairs(got.tag_set()), owned(&[("b", "2")]));

    // Whoever may read the object may read its tags; changing them takes what
    // changing its ACL takes.
    ok(alice
        .put_object()
        .bucket("tags")
        .key("public")
        .acl(ObjectCannedAcl::PublicRead)
        .tagging("p=1")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await);
    assert_eq!(
        object_tags(&bob, "tags", "public").await,
        owned(&[("p", "1")])
    );
    assert_sdk_err(
        put_tags(&bob, "tags", "public", &[("evil", "1")]).await,
        403,
        "AccessDenied",
    );

    // An object bob owns in alice's bucket: bob may tag it, and so may alice
    // as the bucket owner.
    ok(alice
        .put_bucket_acl()
        .bucket("tags")
        .grant_write(format!("id={}", owner_id(&s, BOB).await))
        .grant_full_control(format!("id={}", owner_id(&s, ALICE).await))
        .send()
        .await);
    put_object(&bob, "tags", "bobs", b"b").await;
    ok(put_tags(&bob, "tags", "bobs", &[("by", "bob")]).await);
    assert_eq!(
        object_tags(&bob, "tags", "bobs").await,
        owned(&[("by", "bob")])
    );
    ok(put_tags(&alice, "tags", "bobs", &[("by", "alice")]).await);
    assert_eq!(
        object_tags(&alice, "tags", "bobs").await,
        owned(&[("by", "alice")])
    );
}

#[tokio::test]
async fn tags_survive_restart() {
    let mut s = setup().await;
    {
        let alice = s.client(ALICE);
        ok(put_tags(&alice, "tags", "obj", &[("durable", "yes"), ("n", "2")]).await);
        ok(alice
            .put_bucket_tagging()
            .bucket("tags")
            .tagging(tagging(&[("bucket", "tag")]))
            .send()
            .await);
    }
    s.restart();
    let alice = s.client(ALICE);
    assert_eq!(
        object_tags(&alice, "tags", "obj").await,
        owned(&[("durable", "yes"), ("n", "2")])
    );
    let got = ok(alice.get_bucket_tagging().bucket("tags").send().await);
    assert_eq!(pairs(got.tag_set()), owned(&[("bucket", "tag")]));
    let got = ok(alice.get_object().bucket("tags").key("obj").send().await);
    assert_eq!(got.tag_count(), Some(2));
}
