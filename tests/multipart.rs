//! Multipart uploads: create/upload/copy/complete/abort, listings, the
//! multipart ETag rule, part-size and part-order errors, part numbers,
//! partNumber reads and composite checksums.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use cloudmux_e2e::*;

const MIB: usize = 1024 * 1024;
const MIN_PART: usize = 5 * MIB;

async fn setup() -> (TestServer, Client) {
    let s = TestServer::start();
    let c = s.client(ALICE);
    create_bucket(&c, "mpu").await;
    (s, c)
}

async fn create(c: &Client, key: &str) -> String {
    let out = ok(c
        .create_multipart_upload()
        .bucket("mpu")
        .key(key)
        .send()
        .await);
    out.upload_id().expect("UploadId").to_owned()
}

async fn upload(c: &Client, key: &str, id: &str, n: i32, body: &[u8]) -> String {
    let out = ok(c
        .upload_part()
        .bucket("mpu")
        .key(key)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await);
    out.e_tag().expect("part ETag").to_owned()
}

fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(*e).build())
                .collect(),
        ))
        .build()
}

async fn complete(
    c: &Client,
    key: &str,
    id: &str,
    parts: &[(i32, &str)],
) -> Result<
    aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadError,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
> {
    c.complete_multipart_upload()
        .bucket("mpu")
        .key(key)
        .upload_id(id)
        .multipart_upload(completed(parts))
        .send()
        .await
}

async fn upload_ids(c: &Client) -> Vec<String> {
    let out = ok(c.list_multipart_uploads().bucket("mpu").send().await);
    out.uploads()
        .iter()
        .filter_map(|u| u.upload_id().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn complete_two_parts_and_etag_rule() {
    let (s, c) = setup().await;
    let p1 = random_bytes(MIN_PART);
    let p2 = random_bytes(123_457);
    let id = create(&c, "obj").await;
    let e1 = upload(&c, "obj", &id, 1, &p1).await;
    let e2 = upload(&c, "obj", &id, 2, &p2).await;
    assert_eq!(e1, etag_of(&p1), "part ETag is the part's md5");
    assert_eq!(e2, etag_of(&p2));

    // Not visible before completion.
    assert_sdk_status(c.head_object().bucket("mpu").key("obj").send().await, 404);
    assert_eq!(upload_ids(&c).await, vec![id.clone()]);

    let out = ok(complete(&c, "obj", &id, &[(1, &e1), (2, &e2)]).await);
    let expected_etag = multipart_etag(&[&p1, &p2]);
    assert_eq!(
        out.e_tag(),
        Some(expected_etag.as_str()),
        "md5 of md5s + -2"
    );
    assert_eq!(out.bucket(), Some("mpu"));
    assert_eq!(out.key(), Some("obj"));
    assert!(out.location().is_some_and(|l| !l.is_empty()), "Location");

    let whole: Vec<u8> = [p1.as_slice(), p2.as_slice()].concat();
    let g = ok(c.get_object().bucket("mpu").key("obj").send().await);
    assert_eq!(g.e_tag(), Some(expected_etag.as_str()));
    assert_eq!(g.content_length(), Some(whole.len() as i64));
    let got = g.body.collect().await.expect("body").into_bytes();
    assert!(
        got.as_ref() == whole.as_slice(),
        "multipart body is the concatenation"
    );
    assert!(
        upload_ids(&c).await.is_empty(),
        "completed upload is no longer listed"
    );

    // Listed with the multipart ETag and full size.
    let l = ok(c.list_objects_v2().bucket("mpu").send().await);
    let o = &l.contents()[0];
    assert_eq!(o.e_tag(), Some(expected_etag.as_str()));
    assert_eq!(o.size(), Some(whole.len() as i64));

    // Raw XML of a completion.
    let id = create(&c, "raw").await;
    let e = upload(&c, "raw", &id, 1, b"tiny").await;
    let body = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        xml_escape(&e)
    );
    let r = s
        .raw("POST", &format!("/mpu/raw?uploadId={}", encode_query(&id)))
        .body(body)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let x = r.xml();
    assert_eq!(x.name, "CompleteMultipartUploadResult");
    assert_eq!(x.text_of("Bucket").as_deref(), Some("mpu"));
    assert_eq!(x.text_of("Key").as_deref(), Some("raw"));
    assert_eq!(x.text_of("ETag"), Some(multipart_etag(&[b"tiny"])));
}

#[tokio::test]
async fn single_small_part_and_sparse_part_numbers() {
    let (_s, c) = setup().await;
    // A lone last part may be tiny.
    let id = create(&c, "one").await;
    let e = upload(&c, "one", &id, 1, b"x").await;
    let out = ok(complete(&c, "one", &id, &[(1, &e)]).await);
    assert_eq!(out.e_tag(), Some(multipart_etag(&[b"x"]).as_str()));
    assert_eq!(get_object(&c, "mpu", "one").await, b"x");

    // Non-consecutive part numbers; unlisted uploaded parts are dropped.
    let p1 = random_bytes(MIN_PART);
    let p3 = random_bytes(MIN_PART + 1);
    let p7 = random_bytes(1000);
    let id = create(&c, "sparse").await;
    let e1 = upload(&c, "sparse", &id, 1, &p1).await;
    let _e2 = upload(&c, "sparse", &id, 2, b"not included").await;
    let e3 = upload(&c, "sparse", &id, 3, &p3).await;
    let e7 = upload(&c, "sparse", &id, 7, &p7).await;
    let out = ok(complete(&c, "sparse", &id, &[(1, &e1), (3, &e3), (7, &e7)]).await);
    assert_eq!(out.e_tag(), Some(multipart_etag(&[&p1, &p3, &p7]).as_str()));
    let got = get_object(&c, "mpu", "sparse").await;
    assert!(got == [p1.as_slice(), p3.as_slice(), p7.as_slice()].concat());
}

#[tokio::test]
async fn reuploading_a_part_replaces_it() {
    let (_s, c) = setup().await;
    let id = create(&c, "re").await;
    let _old = upload(&c, "re", &id, 1, b"old part").await;
    let new = upload(&c, "re", &id, 1, b"new part").await;
    let parts = ok(c
        .list_parts()
        .bucket("mpu")
        .key("re")
        .upload_id(&id)
        .send()
        .await);
    assert_eq!(parts.parts().len(), 1);
    assert_eq!(parts.parts()[0].e_tag(), Some(new.as_str()));
    ok(complete(&c, "re", &id, &[(1, &new)]).await);
    assert_eq!(get_object(&c, "mpu", "re").await, b"new part");
}

#[tokio::test]
async fn abort_then_no_such_upload() {
    let (s, c) = setup().await;
    let id = create(&c, "ab").await;
    let e = upload(&c, "ab", &id, 1, b"part").await;
    let r = s
        .raw("DELETE", &format!("/mpu/ab?uploadId={}", encode_query(&id)))
        .send()
        .await;
    assert_eq!(r.status, 204, "AbortMultipartUpload: {}", r.text());

    assert_sdk_err(
        c.upload_part()
            .bucket("mpu")
            .key("ab")
            .upload_id(&id)
            .part_number(2)
            .body(ByteStream::from_static(b"late"))
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    assert_sdk_err(
        c.list_parts()
            .bucket("mpu")
            .key("ab")
            .upload_id(&id)
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    assert_sdk_err(
        complete(&c, "ab", &id, &[(1, &e)]).await,
        404,
        "NoSuchUpload",
    );
    assert_sdk_err(
        c.abort_multipart_upload()
            .bucket("mpu")
            .key("ab")
            .upload_id(&id)
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    assert!(upload_ids(&c).await.is_empty());
    assert_sdk_status(c.head_object().bucket("mpu").key("ab").send().await, 404);
}

#[tokio::test]
async fn unknown_upload_id() {
    let (_s, c) = setup().await;
    assert_sdk_err(
        c.upload_part()
            .bucket("mpu")
            .key("k")
            .upload_id("no-such-upload-id")
            .part_number(1)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    assert_sdk_err(
        complete(&c, "k", "no-such-upload-id", &[(1, "\"x\"")]).await,
        404,
        "NoSuchUpload",
    );
    // An upload id of another key is not valid for this key.
    let id = create(&c, "real").await;
    assert_sdk_err(
        c.upload_part()
            .bucket("mpu")
            .key("other-key")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
}

#[tokio::test]
async fn upload_part_copy_with_ranges() {
    let (_s, c) = setup().await;
    let src = random_bytes(MIN_PART + 2 * MIB);
    put_object(&c, "mpu", "source", &src).await;
    let id = create(&c, "assembled").await;
    let first = format!("bytes=0-{}", MIN_PART - 1);
    let out = ok(c
        .upload_part_copy()
        .bucket("mpu")
        .key("assembled")
        .upload_id(&id)
        .part_number(1)
        .copy_source("mpu/source")
        .copy_source_range(&first)
        .send()
        .await);
    let r1 = out.copy_part_result().expect("CopyPartResult");
    assert_eq!(r1.e_tag(), Some(etag_of(&src[..MIN_PART]).as_str()));
    assert!(r1.last_modified().is_some());
    let e1 = r1.e_tag().expect("etag").to_owned();

    let second = format!("bytes={}-{}", MIN_PART, MIN_PART + 999);
    let out = ok(c
        .upload_part_copy()
        .bucket("mpu")
        .key("assembled")
        .upload_id(&id)
        .part_number(3)
        .copy_source("mpu/source")
        .copy_source_range(&second)
        .send()
        .await);
    let e2 = out
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .expect("etag")
        .to_owned();
    assert_eq!(e2, etag_of(&src[MIN_PART..MIN_PART + 1000]));

    // Whole-object copy as part 2 (the small range above is part 3, the last).
    let out = ok(c
        .upload_part_copy()
        .bucket("mpu")
        .key("assembled")
        .upload_id(&id)
        .part_number(2)
        .copy_source("mpu/source")
        .send()
        .await);
    let e3 = out
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .expect("etag")
        .to_owned();
    assert_eq!(e3, etag_of(&src));

    ok(complete(&c, "assembled", &id, &[(1, &e1), (2, &e3), (3, &e2)]).await);
    let got = get_object(&c, "mpu", "assembled").await;
    let want = [&src[..MIN_PART], &src[..], &src[MIN_PART..MIN_PART + 1000]].concat();
    assert!(got == want, "UploadPartCopy ranges assembled correctly");

    // A range outside the source is rejected.
    let id = create(&c, "bad-range").await;
    let res = c
        .upload_part_copy()
        .bucket("mpu")
        .key("bad-range")
        .upload_id(&id)
        .part_number(1)
        .copy_source("mpu/source")
        .copy_source_range(format!("bytes={}-{}", src.len(), src.len() + 10))
        .send()
        .await;
    assert_sdk_err(res, 416, "InvalidRange");
}

#[tokio::test]
async fn list_parts_pagination() {
    let (s, c) = setup().await;
    let id = create(&c, "lp").await;
    let mut etags = Vec::new();
    for n in 1..=5 {
        let body = format!("part number {n}").repeat(n as usize);
        etags.push((upload(&c, "lp", &id, n, body.as_bytes()).await, body.len()));
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        let out = ok(c
            .list_parts()
            .bucket("mpu")
            .key("lp")
            .upload_id(&id)
            .max_parts(2)
            .set_part_number_marker(marker.clone())
            .send()
            .await);
        assert_eq!(out.max_parts(), Some(2));
        for p in out.parts() {
            let n = p.part_number().expect("PartNumber");
            let (etag, size) = &etags[(n - 1) as usize];
            assert_eq!(p.e_tag(), Some(etag.as_str()), "part {n} ETag");
            assert_eq!(p.size(), Some(*size as i64), "part {n} Size");
            assert!(p.last_modified().is_some());
            seen.push(n);
        }
        if out.is_truncated() != Some(true) {
            break;
        }
        marker = out.next_part_number_marker().map(str::to_owned);
        assert_eq!(
            marker.as_deref(),
            seen.last().map(|n| n.to_string()).as_deref(),
            "NextPartNumberMarker"
        );
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    assert_eq!(pages, 3);

    // Raw view of the first page.
    let r = s
        .raw(
            "GET",
            &format!(
                "/mpu/lp?uploadId={}&max-parts=2&part-number-marker=3",
                encode_query(&id)
            ),
        )
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let x = r.xml();
    assert_eq!(x.name, "ListPartsResult");
    assert_eq!(x.text_of("UploadId"), Some(id.clone()));
    assert_eq!(x.text_of("Key").as_deref(), Some("lp"));
    assert_eq!(x.text_of("PartNumberMarker").as_deref(), Some("3"));
    assert_eq!(x.texts("Part", "PartNumber"), vec!["4", "5"]);
    assert_eq!(x.text_of("IsTruncated").as_deref(), Some("false"));
    assert_eq!(x.text_of("NextPartNumberMarker").as_deref(), Some("5"));
    assert_eq!(x.text_of("MaxParts").as_deref(), Some("2"));
    assert!(x.child("Initiator").is_some() && x.child("Owner").is_some());
}

#[tokio::test]
async fn list_multipart_uploads_filters_and_markers() {
    let (_s, c) = setup().await;
    let mut all = Vec::new();
    for key in ["a/1", "a/2", "a/2", "b/1", "c"] {
        all.push((key.to_owned(), create(&c, key).await));
    }
    // Full listing is ordered by key.
    let out = ok(c.list_multipart_uploads().bucket("mpu").send().await);
    let keys: Vec<&str> = out.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, vec!["a/1", "a/2", "a/2", "b/1", "c"]);
    for u in out.uploads() {
        assert!(u.initiated().is_some());
        assert_eq!(u.owner().and_then(|o| o.display_name()), Some("alice"));
    }

    // Prefix.
    let out = ok(c
        .list_multipart_uploads()
        .bucket("mpu")
        .prefix("a/")
        .send()
        .await);
    let keys: Vec<&str> = out.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, vec!["a/1", "a/2", "a/2"]);

    // Delimiter.
    let out = ok(c
        .list_multipart_uploads()
        .bucket("mpu")
        .delimiter("/")
        .send()
        .await);
    let keys: Vec<&str> = out.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, vec!["c"]);
    let prefixes: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, vec!["a/", "b/"]);

    // key-marker alone skips every upload of that key and before.
    let out = ok(c
        .list_multipart_uploads()
        .bucket("mpu")
        .key_marker("a/2")
        .send()
        .await);
    let keys: Vec<&str> = out.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, vec!["b/1", "c"]);

    // Paging one at a time with key-marker + upload-id-marker visits each upload once.
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut id_marker: Option<String> = None;
    for _ in 0..10 {
        let out = ok(c
            .list_multipart_uploads()
            .bucket("mpu")
            .max_uploads(1)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await);
        for u in out.uploads() {
            seen.push((
                u.key().expect("key").to_owned(),
                u.upload_id().expect("id").to_owned(),
            ));
        }
        if out.is_truncated() != Some(true) {
            break;
        }
        key_marker = out.next_key_marker().map(str::to_owned);
        id_marker = out.next_upload_id_marker().map(str::to_owned);
        assert!(key_marker.is_some(), "NextKeyMarker when truncated");
    }
    let mut seen_sorted = seen.clone();
    seen_sorted.sort();
    let mut all_sorted = all.clone();
    all_sorted.sort();
    assert_eq!(
        seen_sorted, all_sorted,
        "every upload exactly once: {seen:?}"
    );
}

#[tokio::test]
async fn entity_too_small() {
    let (_s, c) = setup().await;
    let id = create(&c, "small").await;
    let e1 = upload(&c, "small", &id, 1, &random_bytes(MIB)).await;
    let e2 = upload(&c, "small", &id, 2, &random_bytes(MIB)).await;
    assert_sdk_err(
        complete(&c, "small", &id, &[(1, &e1), (2, &e2)]).await,
        400,
        "EntityTooSmall",
    );
    assert_sdk_status(c.head_object().bucket("mpu").key("small").send().await, 404);
    // The upload survives a failed completion.
    let parts = ok(c
        .list_parts()
        .bucket("mpu")
        .key("small")
        .upload_id(&id)
        .send()
        .await);
    assert_eq!(parts.parts().len(), 2);
    // 5 MiB minus one byte is still too small.
    let id = create(&c, "almost").await;
    let e1 = upload(&c, "almost", &id, 1, &random_bytes(MIN_PART - 1)).await;
    let e2 = upload(&c, "almost", &id, 2, b"last").await;
    assert_sdk_err(
        complete(&c, "almost", &id, &[(1, &e1), (2, &e2)]).await,
        400,
        "EntityTooSmall",
    );
}

#[tokio::test]
async fn invalid_part() {
    let (_s, c) = setup().await;
    let p1 = random_bytes(MIN_PART);
    let id = create(&c, "ip").await;
    let e1 = upload(&c, "ip", &id, 1, &p1).await;
    let e2 = upload(&c, "ip", &id, 2, b"end").await;
    // Wrong ETag.
    assert_sdk_err(
        complete(
            &c,
            "ip",
            &id,
            &[(1, &e1), (2, "\"0123456789abcdef0123456789abcdef\"")],
        )
        .await,
        400,
        "InvalidPart",
    );
    // A part that was never uploaded.
    assert_sdk_err(
        complete(&c, "ip", &id, &[(1, &e1), (3, &e2)]).await,
        400,
        "InvalidPart",
    );
    assert_sdk_status(c.head_object().bucket("mpu").key("ip").send().await, 404);
    // Still completable with the right list.
    ok(complete(&c, "ip", &id, &[(1, &e1), (2, &e2)]).await);
}

#[tokio::test]
async fn invalid_part_order() {
    let (_s, c) = setup().await;
    let id = create(&c, "order").await;
    let e1 = upload(&c, "order", &id, 1, &random_bytes(MIN_PART)).await;
    let e2 = upload(&c, "order", &id, 2, &random_bytes(MIN_PART)).await;
    assert_sdk_err(
        complete(&c, "order", &id, &[(2, &e2), (1, &e1)]).await,
        400,
        "InvalidPartOrder",
    );
    assert_sdk_status(c.head_object().bucket("mpu").key("order").send().await, 404);
}

#[tokio::test]
async fn part_number_bounds() {
    let (s, c) = setup().await;
    let id = create(&c, "bounds").await;
    for n in [0, 10001, -1] {
        let r = s
            .raw(
                "PUT",
                &format!("/mpu/bounds?partNumber={n}&uploadId={}", encode_query(&id)),
            )
            .body("x")
            .send()
            .await;
        r.assert_error(400, "InvalidArgument");
    }
    let e1 = upload(&c, "bounds", &id, 1, b"first").await;
    let e_max = upload(&c, "bounds", &id, 10000, b"last").await;
    let parts = ok(c
        .list_parts()
        .bucket("mpu")
        .key("bounds")
        .upload_id(&id)
        .send()
        .await);
    let numbers: Vec<i32> = parts
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect();
    assert_eq!(numbers, vec![1, 10000]);
    // Part 1 is tiny and not last -> too small; completing with 10000 alone is fine.
    ok(complete(&c, "bounds", &id, &[(10000, &e_max)]).await);
    let _ = e1;
    assert_eq!(get_object(&c, "mpu", "bounds").await, b"last");
}

#[tokio::test]
async fn complete_with_no_parts_is_malformed() {
    let (s, c) = setup().await;
    let id = create(&c, "none").await;
    let r = s
        .raw("POST", &format!("/mpu/none?uploadId={}", encode_query(&id)))
        .body("<CompleteMultipartUpload></CompleteMultipartUpload>")
        .send()
        .await;
    r.assert_error(400, "MalformedXML");
    assert_sdk_status(c.head_object().bucket("mpu").key("none").send().await, 404);
}

#[tokio::test]
async fn get_part_number_of_multipart_object() {
    let (s, c) = setup().await;
    let p1 = random_bytes(MIN_PART);
    let p2 = random_bytes(MIN_PART);
    let p3 = random_bytes(1024);
    let id = create(&c, "parts").await;
    let e1 = upload(&c, "parts", &id, 1, &p1).await;
    let e2 = upload(&c, "parts", &id, 2, &p2).await;
    let e3 = upload(&c, "parts", &id, 3, &p3).await;
    ok(complete(&c, "parts", &id, &[(1, &e1), (2, &e2), (3, &e3)]).await);
    let total = p1.len() + p2.len() + p3.len();

    let r = s.raw("GET", "/mpu/parts?partNumber=2").send().await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes {}-{}/{total}", MIN_PART, 2 * MIN_PART - 1))
    );
    assert_eq!(r.header("x-amz-mp-parts-count").as_deref(), Some("3"));
    assert_eq!(r.header("content-length"), Some(MIN_PART.to_string()));
    assert!(r.body.as_ref() == p2.as_slice(), "part 2 bytes");
    assert_eq!(r.header("etag"), Some(multipart_etag(&[&p1, &p2, &p3])));

    let r = s.raw("HEAD", "/mpu/parts?partNumber=3").send().await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-length").as_deref(), Some("1024"));
    assert_eq!(r.header("x-amz-mp-parts-count").as_deref(), Some("3"));
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes {}-{}/{total}", 2 * MIN_PART, total - 1))
    );

    let out = ok(c
        .get_object()
        .bucket("mpu")
        .key("parts")
        .part_number(1)
        .send()
        .await);
    assert_eq!(out.parts_count(), Some(3));
    let got = out.body.collect().await.expect("body").into_bytes();
    assert!(got.as_ref() == p1.as_slice());

    let r = s.raw("GET", "/mpu/parts?partNumber=4").send().await;
    r.assert_error(416, "InvalidPartNumber");
}

#[tokio::test]
async fn multipart_composite_checksums() {
    let (s, c) = setup().await;
    for alg in [
        Checksum::Crc32,
        Checksum::Crc32c,
        Checksum::Sha1,
        Checksum::Sha256,
    ] {
        let key = format!("ck-{alg:?}");
        let out = ok(c
            .create_multipart_upload()
            .bucket("mpu")
            .key(&key)
            .checksum_algorithm(alg.sdk())
            .send()
            .await);
        assert_eq!(
            out.checksum_algorithm(),
            Some(&alg.sdk()),
            "{alg:?} echoed on create"
        );
        let id = out.upload_id().expect("id").to_owned();
        let p1 = random_bytes(MIN_PART);
        let p2 = random_bytes(4321);
        let mut parts = Vec::new();
        for (n, body) in [(1, &p1), (2, &p2)] {
            let out = ok(c
                .upload_part()
                .bucket("mpu")
                .key(&key)
                .upload_id(&id)
                .part_number(n)
                .checksum_algorithm(alg.sdk())
                .body(ByteStream::from(body.clone()))
                .send()
                .await);
            let value = match alg {
                Checksum::Crc32 => out.checksum_crc32(),
                Checksum::Crc32c => out.checksum_crc32_c(),
                Checksum::Sha1 => out.checksum_sha1(),
                _ => out.checksum_sha256(),
            }
            .map(str::to_owned);
            assert_eq!(value, Some(alg.b64(body)), "{alg:?} part {n} checksum");
            let mut part = CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().expect("etag"));
            part = match alg {
                Checksum::Crc32 => part.checksum_crc32(alg.b64(body)),
                Checksum::Crc32c => part.checksum_crc32_c(alg.b64(body)),
                Checksum::Sha1 => part.checksum_sha1(alg.b64(body)),
                _ => part.checksum_sha256(alg.b64(body)),
            };
            parts.push(part.build());
        }
        let out = ok(c
            .complete_multipart_upload()
            .bucket("mpu")
            .key(&key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await);
        let expected = alg.composite(&[&p1, &p2]);
        let value = match alg {
            Checksum::Crc32 => out.checksum_crc32(),
            Checksum::Crc32c => out.checksum_crc32_c(),
            Checksum::Sha1 => out.checksum_sha1(),
            _ => out.checksum_sha256(),
        };
        assert_eq!(
            value,
            Some(expected.as_str()),
            "{alg:?} composite checksum on complete"
        );

        let r = s
            .raw("HEAD", &format!("/mpu/{key}"))
            .header("x-amz-checksum-mode", "ENABLED")
            .send()
            .await;
        assert_eq!(
            r.header(alg.header()),
            Some(expected.clone()),
            "{alg:?} HEAD"
        );
        let h = ok(c
            .head_object()
            .bucket("mpu")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await);
        assert_eq!(h.e_tag(), Some(multipart_etag(&[&p1, &p2]).as_str()));
    }
}

#[tokio::test]
async fn multipart_part_with_wrong_checksum() {
    let (s, c) = setup().await;
    let id = create(&c, "wrong").await;
    let r = s
        .raw(
            "PUT",
            &format!("/mpu/wrong?partNumber=1&uploadId={}", encode_query(&id)),
        )
        .header("x-amz-checksum-crc32", &Checksum::Crc32.b64(b"other"))
        .body("part body")
        .send()
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        matches!(
            r.code().as_deref(),
            Some("BadDigest" | "XAmzContentChecksumMismatch")
        ),
        "{}",
        r.text()
    );
    let parts = ok(c
        .list_parts()
        .bucket("mpu")
        .key("wrong")
        .upload_id(&id)
        .send()
        .await);
    assert!(
        parts.parts().is_empty(),
        "no part stored after a checksum mismatch"
    );
}

#[tokio::test]
async fn part_number_with_range_is_invalid() {
    let (s, c) = setup().await;
    let id = create(&c, "pr").await;
    let e = upload(&c, "pr", &id, 1, b"only part").await;
    ok(complete(&c, "pr", &id, &[(1, &e)]).await);
    let r = s
        .raw("GET", "/mpu/pr?partNumber=1")
        .header("range", "bytes=0-3")
        .send()
        .await;
    r.assert_error(400, "InvalidRequest");
    for n in ["0", "10001", "abc"] {
        let r = s
            .raw("GET", &format!("/mpu/pr?partNumber={n}"))
            .send()
            .await;
        assert_eq!(r.status, 400, "partNumber={n}: {}", r.text());
    }
}

/// What a retrying SDK does when its first CompleteMultipartUpload times out:
/// the same call again, at the same time or after the first succeeded. Both
/// answer 200 with the same ETag and the object stays readable (12 rounds,
/// the reproduction, which lost the object in 11 of 12 before).
#[tokio::test]
async fn retried_complete_answers_like_the_first_and_keeps_the_object() {
    let (_s, c) = setup().await;
    let first = random_bytes(MIN_PART);
    let last = random_bytes(1000);
    for round in 0..12 {
        let key = format!("retried-{round}");
        let id = create(&c, &key).await;
        let e1 = upload(&c, &key, &id, 1, &first).await;
        let e2 = upload(&c, &key, &id, 2, &last).await;
        let parts = [(1, e1.as_str()), (2, e2.as_str())];
        let (a, b) = tokio::join!(
            complete(&c, &key, &id, &parts),
            complete(&c, &key, &id, &parts)
        );
        let (a, b) = (ok(a), ok(b));
        assert_eq!(a.e_tag(), b.e_tag(), "round {round}");
        assert_eq!(a.e_tag(), Some(multipart_etag(&[&first, &last]).as_str()));
        let body = get_object(&c, "mpu", &key).await;
        assert!(body.len() == first.len() + last.len() && body[..first.len()] == first[..]);
        let again = ok(complete(&c, &key, &id, &parts).await);
        assert_eq!(again.e_tag(), a.e_tag());
    }
    // Once the key holds another object, the upload is gone.
    let id = create(&c, "replaced").await;
    let e = upload(&c, "replaced", &id, 1, b"only part").await;
    ok(complete(&c, "replaced", &id, &[(1, &e)]).await);
    put_object(&c, "mpu", "replaced", b"newer").await;
    assert_sdk_err(
        complete(&c, "replaced", &id, &[(1, &e)]).await,
        404,
        "NoSuchUpload",
    );
    assert_eq!(get_object(&c, "mpu", "replaced").await, b"newer");
}

/// `partNumber` on GET and HEAD as S3 validates it: 400 InvalidArgument
/// (naming the argument) outside 1..=10000 or not a number, checked before
/// the key is looked up; 416 InvalidPartNumber (with the part count) past
/// the object's parts, and past part 1 of an object not uploaded in parts.
#[tokio::test]
async fn part_number_reads_are_validated_like_s3() {
    let (s, c) = setup().await;
    put_object(&c, "mpu", "single", b"one piece").await;
    let r = s.raw("GET", "/mpu/single?partNumber=1").send().await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.text(), "one piece");
    assert_eq!(r.header("x-amz-mp-parts-count"), None);
    for method in ["GET", "HEAD"] {
        let r = s.raw(method, "/mpu/single?partNumber=2").send().await;
        assert_eq!(
            r.status, 416,
            "{method} partNumber=2 of a single-part object"
        );
    }
    let r = s.raw("GET", "/mpu/single?partNumber=2").send().await;
    r.assert_error(416, "InvalidPartNumber");
    let x = r.xml();
    assert_eq!(x.text_of("PartNumberRequested").as_deref(), Some("2"));
    assert_eq!(x.text_of("ActualPartCount").as_deref(), Some("1"));

    let (p1, p2) = (random_bytes(MIN_PART), random_bytes(1024));
    let id = create(&c, "two").await;
    let e1 = upload(&c, "two", &id, 1, &p1).await;
    let e2 = upload(&c, "two", &id, 2, &p2).await;
    ok(complete(&c, "two", &id, &[(1, &e1), (2, &e2)]).await);
    let r = s.raw("GET", "/mpu/two?partNumber=3").send().await;
    r.assert_error(416, "InvalidPartNumber");
    assert_eq!(r.xml().text_of("ActualPartCount").as_deref(), Some("2"));
    assert_sdk_status(
        c.head_object()
            .bucket("mpu")
            .key("two")
            .part_number(3)
            .send()
            .await,
        416,
    );

    for n in ["0", "10001", "-1", "abc", ""] {
        for key in ["two", "no-such-key"] {
            let r = s
                .raw("GET", &format!("/mpu/{key}?partNumber={n}"))
                .send()
                .await;
            r.assert_error(400, "InvalidArgument");
            let x = r.xml();
            assert_eq!(x.text_of("ArgumentName").as_deref(), Some("partNumber"));
            assert_eq!(x.text_of("ArgumentValue").as_deref(), Some(n));
            let r = s
                .raw("HEAD", &format!("/mpu/{key}?partNumber={n}"))
                .send()
                .await;
            assert_eq!(r.status, 400, "HEAD {key} partNumber={n}");
        }
    }
}

/// UploadPartCopy's `x-amz-copy-source-range`: a value not of the form
/// `bytes=first-last` (first <= last) is 400 InvalidArgument; a range that
/// starts past the source is 416 InvalidRange; one that starts inside but
/// ends past it is 400 InvalidArgument naming the source's size.
#[tokio::test]
async fn upload_part_copy_range_errors() {
    let (s, c) = setup().await;
    put_object(&c, "mpu", "src", &[7u8; 100]).await;
    let id = create(&c, "dst").await;
    let copy = |range: &str| {
        s.raw(
            "PUT",
            &format!("/mpu/dst?partNumber=1&uploadId={}", encode_query(&id)),
        )
        .header("x-amz-copy-source", "mpu/src")
        .header("x-amz-copy-source-range", range)
        .send()
    };
    for bad in [
        "byte=1-2",
        "bytes=5-",
        "bytes=-5",
        "bytes=a-b",
        "bytes=3-1",
        "1-2",
        "bytes=1-2,4-5",
    ] {
        let r = copy(bad).await;
        r.assert_error(400, "InvalidArgument");
        assert_eq!(
            r.xml().text_of("ArgumentName").as_deref(),
            Some("x-amz-copy-source-range"),
            "{bad}"
        );
    }
    copy("bytes=100-120")
        .await
        .assert_error(416, "InvalidRange");
    let r = copy("bytes=50-100").await;
    r.assert_error(400, "InvalidArgument");
    assert!(r.text().contains("size: 100"), "{}", r.text());
    let r = copy("bytes=90-99").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let parts = ok(c
        .list_parts()
        .bucket("mpu")
        .key("dst")
        .upload_id(&id)
        .send()
        .await);
    assert_eq!(parts.parts().len(), 1);
    assert_eq!(parts.parts()[0].size(), Some(10));
}
