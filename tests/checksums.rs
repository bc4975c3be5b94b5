//! The 2025 checksum model with aws-sdk-s3: COMPOSITE and FULL_OBJECT
//! multipart checksums (full-object CRCs combined from the parts), which
//! algorithm allows which type, BadDigest for a wrong checksum in a header,
//! a trailer or on Complete, part checksums on `partNumber` reads, and
//! GetObjectAttributes with its pages of parts. Expected values are computed
//! here (`Checksum` in the support crate), never taken from the server.

use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::get_object_attributes::GetObjectAttributesOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    Checksum as SdkChecksum, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    ObjectAttributes, ObjectPart,
};
use aws_sdk_s3::Client;
use base64::Engine;
use cloudmux_e2e::*;

const MIB: usize = 1024 * 1024;
const MIN_PART: usize = 5 * MIB;

async fn setup() -> (TestServer, Client) {
    let s = TestServer::start();
    let c = s.client(ALICE);
    create_bucket(&c, "cks").await;
    (s, c)
}

/// The completed part `part` with `value` as its `alg` checksum (and no
/// other).
fn with_part_checksum(part: CompletedPart, alg: Checksum, value: String) -> CompletedPart {
    let b = CompletedPart::builder()
        .set_part_number(part.part_number())
        .set_e_tag(part.e_tag().map(str::to_owned));
    match alg {
        Checksum::Crc32 => b.checksum_crc32(value),
        Checksum::Crc32c => b.checksum_crc32_c(value),
        Checksum::Crc64Nvme => b.checksum_crc64_nvme(value),
        Checksum::Sha1 => b.checksum_sha1(value),
        Checksum::Sha256 => b.checksum_sha256(value),
    }
    .build()
}

fn complete_value(out: &CompleteMultipartUploadOutput, alg: Checksum) -> Option<&str> {
    match alg {
        Checksum::Crc32 => out.checksum_crc32(),
        Checksum::Crc32c => out.checksum_crc32_c(),
        Checksum::Crc64Nvme => out.checksum_crc64_nvme(),
        Checksum::Sha1 => out.checksum_sha1(),
        Checksum::Sha256 => out.checksum_sha256(),
    }
}

fn attributes_value(c: &SdkChecksum, alg: Checksum) -> Option<&str> {
    match alg {
        Checksum::Crc32 => c.checksum_crc32(),
        Checksum::Crc32c => c.checksum_crc32_c(),
        Checksum::Crc64Nvme => c.checksum_crc64_nvme(),
        Checksum::Sha1 => c.checksum_sha1(),
        Checksum::Sha256 => c.checksum_sha256(),
    }
}

fn object_part_value(p: &ObjectPart, alg: Checksum) -> Option<&str> {
    match alg {
        Checksum::Crc32 => p.checksum_crc32(),
        Checksum::Crc32c => p.checksum_crc32_c(),
        Checksum::Crc64Nvme => p.checksum_crc64_nvme(),
        Checksum::Sha1 => p.checksum_sha1(),
        Checksum::Sha256 => p.checksum_sha256(),
    }
}

/// Creates an upload of `key` declaring `alg` and `kind`, uploads `parts`
/// with their checksums (sent by the SDK) and returns the upload id and the
/// completed-part list, each part carrying its checksum.
async fn upload_parts(
    c: &Client,
    key: &str,
    alg: Checksum,
    kind: Option<ChecksumType>,
    parts: &[&[u8]],
) -> (String, Vec<CompletedPart>) {
    let out = ok(c
        .create_multipart_upload()
        .bucket("cks")
        .key(key)
        .checksum_algorithm(alg.sdk())
        .set_checksum_type(kind.clone())
        .send()
        .await);
    assert_eq!(
        out.checksum_algorithm(),
        Some(&alg.sdk()),
        "{alg:?} on create"
    );
    if let Some(kind) = &kind {
        assert_eq!(out.checksum_type(), Some(kind), "{alg:?} type on create");
    }
    let id = out.upload_id().expect("UploadId").to_owned();
    let mut done = Vec::new();
    for (i, body) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = ok(c
            .upload_part()
            .bucket("cks")
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(alg.sdk())
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await);
        let part = CompletedPart::builder()
            .part_number(n)
            .e_tag(out.e_tag().expect("part ETag"))
            .build();
        done.push(with_part_checksum(part, alg, alg.b64(body)));
    }
    (id, done)
}

async fn attributes(
    c: &Client,
    key: &str,
    max: Option<i32>,
    marker: Option<&str>,
) -> GetObjectAttributesOutput {
    ok(c.get_object_attributes()
        .bucket("cks")
        .key(key)
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::Checksum)
        .object_attributes(ObjectAttributes::ObjectParts)
        .object_attributes(ObjectAttributes::StorageClass)
        .object_attributes(ObjectAttributes::ObjectSize)
        .set_max_parts(max)
        .set_part_number_marker(marker.map(str::to_owned))
        .send()
        .await)
}

/// FULL_OBJECT multipart uploads with CRC32, CRC32C and CRC64NVME: the
/// object's checksum is the CRC of all its bytes (combined from the part
/// CRCs), shown by Complete, HEAD and GET (which the SDK validates) and
/// GetObjectAttributes, with the parts' own CRCs listed.
#[tokio::test]
async fn full_object_crc_checksums_of_multipart_objects() {
    let (s, c) = setup().await;
    let p1 = random_bytes(MIN_PART);
    let p2 = random_bytes(3 * 1024 + 7);
    let whole = [p1.as_slice(), p2.as_slice()].concat();
    for alg in [Checksum::Crc32, Checksum::Crc32c, Checksum::Crc64Nvme] {
        let key = format!("full-{alg:?}");
        let (id, parts) =
            upload_parts(&c, &key, alg, Some(ChecksumType::FullObject), &[&p1, &p2]).await;
        let expected = alg.b64(&whole);
        let out = ok(c
            .complete_multipart_upload()
            .bucket("cks")
            .key(&key)
            .upload_id(&id)
            .checksum_type(ChecksumType::FullObject)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await);
        assert_eq!(
            complete_value(&out, alg),
            Some(expected.as_str()),
            "{alg:?} complete"
        );
        assert_eq!(out.checksum_type(), Some(&ChecksumType::FullObject));

        let r = s
            .raw("HEAD", &format!("/cks/{key}"))
            .header("x-amz-checksum-mode", "ENABLED")
            .send()
            .await;
        assert_eq!(
            r.header(alg.header()),
            Some(expected.clone()),
            "{alg:?} HEAD"
        );
        assert_eq!(
            r.header("x-amz-checksum-type").as_deref(),
            Some("FULL_OBJECT")
        );
        let r = s.raw("HEAD", &format!("/cks/{key}")).send().await;
        assert_eq!(
            r.header(alg.header()),
            None,
            "no checksum without checksum mode"
        );

        let got = ok(c
            .get_object()
            .bucket("cks")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await);
        assert_eq!(got.checksum_type(), Some(&ChecksumType::FullObject));
        let body = got.body.collect().await.expect("body").into_bytes();
        assert!(body.as_ref() == whole.as_slice(), "{alg:?} body");

        let attrs = attributes(&c, &key, None, None).await;
        let sum = attrs.checksum().expect("Checksum");
        assert_eq!(attributes_value(sum, alg), Some(expected.as_str()));
        assert_eq!(sum.checksum_type(), Some(&ChecksumType::FullObject));
        let op = attrs.object_parts().expect("ObjectParts");
        assert_eq!(op.total_parts_count(), Some(2));
        let listed: Vec<(Option<i32>, Option<i64>, Option<String>)> = op
            .parts()
            .iter()
            .map(|p| {
                (
                    p.part_number(),
                    p.size(),
                    object_part_value(p, alg).map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(
            listed,
            vec![
                (Some(1), Some(p1.len() as i64), Some(alg.b64(&p1))),
                (Some(2), Some(p2.len() as i64), Some(alg.b64(&p2))),
            ]
        );
    }
}

/// Which algorithm allows which type, as S3 has it: CRC64NVME is
/// full-object only (and FULL_OBJECT by default), SHA1 and SHA256 are
/// composite only, and a type needs an algorithm. Each refusal is
/// InvalidRequest and creates nothing.
#[tokio::test]
async fn checksum_types_allowed_per_algorithm() {
    let (s, c) = setup().await;
    for (alg, kind) in [
        ("CRC64NVME", "COMPOSITE"),
        ("SHA1", "FULL_OBJECT"),
        ("SHA256", "FULL_OBJECT"),
        ("CRC32", "PARTIAL"),
    ] {
        let r = s
            .raw("POST", "/cks/types?uploads")
            .header("x-amz-checksum-algorithm", alg)
            .header("x-amz-checksum-type", kind)
            .send()
            .await;
        r.assert_error(400, "InvalidRequest");
    }
    let r = s
        .raw("POST", "/cks/types?uploads")
        .header("x-amz-checksum-type", "FULL_OBJECT")
        .send()
        .await;
    r.assert_error(400, "InvalidRequest");
    let r = s
        .raw("POST", "/cks/types?uploads")
        .header("x-amz-checksum-algorithm", "MD4")
        .send()
        .await;
    r.assert_error(400, "InvalidRequest");
    let listed = ok(c.list_multipart_uploads().bucket("cks").send().await);
    assert!(
        listed.uploads().is_empty(),
        "a refused create left an upload"
    );

    for (alg, kind, want) in [
        ("CRC64NVME", None, "FULL_OBJECT"),
        ("CRC32", None, "COMPOSITE"),
        ("CRC32C", Some("FULL_OBJECT"), "FULL_OBJECT"),
        ("SHA256", Some("COMPOSITE"), "COMPOSITE"),
    ] {
        let mut req = s
            .raw("POST", "/cks/types?uploads")
            .header("x-amz-checksum-algorithm", alg);
        if let Some(k) = kind {
            req = req.header("x-amz-checksum-type", k);
        }
        let r = req.send().await;
        r.assert_success();
        assert_eq!(r.header("x-amz-checksum-algorithm").as_deref(), Some(alg));
        assert_eq!(
            r.header("x-amz-checksum-type").as_deref(),
            Some(want),
            "{alg}"
        );
    }
}

/// Complete must repeat the upload's declaration: another checksum type is
/// BadDigest (as the CompleteMultipartUpload reference says), another
/// algorithm is InvalidRequest, a wrong object checksum (FULL_OBJECT) or a
/// wrong part checksum is BadDigest; none of them completes the upload, and
/// the right values then do.
#[tokio::test]
async fn complete_checks_the_declared_checksums() {
    let (s, c) = setup().await;
    let p1 = random_bytes(MIN_PART);
    let p2 = random_bytes(1000);
    let whole = [p1.as_slice(), p2.as_slice()].concat();
    let (id, parts) = upload_parts(
        &c,
        "full",
        Checksum::Crc32c,
        Some(ChecksumType::FullObject),
        &[&p1, &p2],
    )
    .await;
    let doc = CompletedMultipartUpload::builder()
        .set_parts(Some(parts.clone()))
        .build();
    let send = |kind: Option<ChecksumType>, crc32c: Option<String>| {
        c.complete_multipart_upload()
            .bucket("cks")
            .key("full")
            .upload_id(&id)
            .set_checksum_type(kind)
            .set_checksum_crc32_c(crc32c)
            .multipart_upload(doc.clone())
            .send()
    };
    assert_sdk_err(
        send(Some(ChecksumType::Composite), None).await,
        400,
        "BadDigest",
    );
    let wrong = Checksum::Crc32c.b64(&p1);
    assert_sdk_err(send(None, Some(wrong)).await, 400, "BadDigest");
    let r = s.raw("HEAD", "/cks/full").send().await;
    assert_eq!(r.status, 404, "a refused Complete made the object");
    let r = s
        .raw("POST", &format!("/cks/full?uploadId={}", encode_query(&id)))
        .header("x-amz-checksum-crc32", &Checksum::Crc32.b64(&whole))
        .body(complete_xml(&parts, Checksum::Crc32c))
        .send()
        .await;
    r.assert_error(400, "InvalidRequest");

    let mut bad = parts.clone();
    bad[1] = with_part_checksum(bad[1].clone(), Checksum::Crc32c, Checksum::Crc32c.b64(b"x"));
    let out = c
        .complete_multipart_upload()
        .bucket("cks")
        .key("full")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(bad))
                .build(),
        )
        .send()
        .await;
    assert_sdk_err(out, 400, "BadDigest");
    let r = s
        .raw("POST", &format!("/cks/full?uploadId={}", encode_query(&id)))
        .body(complete_xml(&parts, Checksum::Crc32))
        .send()
        .await;
    r.assert_error(400, "InvalidRequest");

    let expected = Checksum::Crc32c.b64(&whole);
    let out = ok(send(Some(ChecksumType::FullObject), Some(expected.clone())).await);
    assert_eq!(out.checksum_crc32_c(), Some(expected.as_str()));
    assert_eq!(get_object(&c, "cks", "full").await, whole);
}

/// The CompleteMultipartUpload document with each part's checksum named
/// as `alg`'s element (whatever algorithm computed it).
fn complete_xml(parts: &[CompletedPart], alg: Checksum) -> String {
    let mut doc = String::from("<CompleteMultipartUpload>");
    for p in parts {
        let value = p
            .checksum_crc32()
            .or(p.checksum_crc32_c())
            .or(p.checksum_crc64_nvme())
            .or(p.checksum_sha1())
            .or(p.checksum_sha256())
            .unwrap_or_default();
        let name = format!(
            "Checksum{}",
            alg.header()["x-amz-checksum-".len()..].to_uppercase()
        );
        doc.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag><{name}>{value}</{name}></Part>",
            p.part_number().unwrap_or_default(),
            xml_escape(p.e_tag().unwrap_or_default()),
        ));
    }
    doc.push_str("</CompleteMultipartUpload>");
    doc
}

/// A composite upload whose Complete lists one part with a wrong checksum
/// answers BadDigest, and one whose parts carry no checksums InvalidRequest
/// (S3 requires them); the composite object then completes with `-N` on
/// GET/HEAD, the part's own checksum on `partNumber` reads, and
/// GetObjectAttributes pages through the parts (`x-amz-max-parts`,
/// `x-amz-part-number-marker`) with the checksum without its `-N`.
#[tokio::test]
async fn composite_object_parts_and_attributes() {
    let (s, c) = setup().await;
    let alg = Checksum::Sha256;
    let p1 = random_bytes(MIN_PART);
    let p2 = random_bytes(MIN_PART + 11);
    let p3 = random_bytes(2048);
    let bodies: [&[u8]; 3] = [&p1, &p2, &p3];
    let (id, parts) = upload_parts(&c, "comp", alg, None, &bodies).await;
    let mut bad = parts.clone();
    bad[0] = with_part_checksum(bad[0].clone(), alg, alg.b64(&p2));
    assert_sdk_err(
        c.complete_multipart_upload()
            .bucket("cks")
            .key("comp")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(bad))
                    .build(),
            )
            .send()
            .await,
        400,
        "BadDigest",
    );
    let bare: Vec<CompletedPart> = parts
        .iter()
        .map(|p| {
            CompletedPart::builder()
                .set_part_number(p.part_number())
                .set_e_tag(p.e_tag().map(str::to_owned))
                .build()
        })
        .collect();
    assert_sdk_err(
        c.complete_multipart_upload()
            .bucket("cks")
            .key("comp")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(bare))
                    .build(),
            )
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    let composite = alg.composite(&bodies);
    let out = ok(c
        .complete_multipart_upload()
        .bucket("cks")
        .key("comp")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await);
    assert_eq!(out.checksum_sha256(), Some(composite.as_str()));
    assert_eq!(out.checksum_type(), Some(&ChecksumType::Composite));

    let h = ok(c
        .head_object()
        .bucket("cks")
        .key("comp")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await);
    assert_eq!(h.checksum_sha256(), Some(composite.as_str()));
    assert_eq!(h.checksum_type(), Some(&ChecksumType::Composite));

    for (n, body) in bodies.iter().enumerate() {
        let n = n as i32 + 1;
        let got = ok(c
            .get_object()
            .bucket("cks")
            .key("comp")
            .part_number(n)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await);
        assert_eq!(
            got.checksum_sha256(),
            Some(alg.b64(body).as_str()),
            "part {n}"
        );
        assert_eq!(got.checksum_type(), Some(&ChecksumType::Composite));
        assert_eq!(got.parts_count(), Some(3));
        let bytes = got.body.collect().await.expect("part body").into_bytes();
        assert!(bytes.as_ref() == *body, "part {n} body");
        let r = s
            .raw("HEAD", &format!("/cks/comp?partNumber={n}"))
            .header("x-amz-checksum-mode", "ENABLED")
            .send()
            .await;
        assert_eq!(r.header(alg.header()), Some(alg.b64(body)), "HEAD part {n}");
    }

    let total = (p1.len() + p2.len() + p3.len()) as i64;
    let first = attributes(&c, "comp", Some(2), None).await;
    assert_eq!(
        first.e_tag(),
        Some(multipart_etag(&bodies).trim_matches('"'))
    );
    assert_eq!(first.object_size(), Some(total));
    assert_eq!(first.storage_class().map(|s| s.as_str()), Some("STANDARD"));
    let sum = first.checksum().expect("Checksum");
    assert_eq!(
        sum.checksum_sha256(),
        Some(composite.rsplit_once('-').expect("-N").0)
    );
    assert_eq!(sum.checksum_type(), Some(&ChecksumType::Composite));
    let op = first.object_parts().expect("ObjectParts");
    assert_eq!(op.total_parts_count(), Some(3));
    assert_eq!(op.max_parts(), Some(2));
    assert_eq!(op.is_truncated(), Some(true));
    assert_eq!(op.part_number_marker(), Some("0"));
    assert_eq!(op.next_part_number_marker(), Some("2"));
    let numbers: Vec<_> = op.parts().iter().map(|p| p.part_number()).collect();
    assert_eq!(numbers, vec![Some(1), Some(2)]);
    assert_eq!(op.parts()[1].checksum_sha256(), Some(alg.b64(&p2).as_str()));
    assert_eq!(op.parts()[1].size(), Some(p2.len() as i64));

    let rest = attributes(&c, "comp", Some(2), Some("2")).await;
    let op = rest.object_parts().expect("ObjectParts");
    assert_eq!(op.is_truncated(), Some(false));
    assert_eq!(op.part_number_marker(), Some("2"));
    assert_eq!(op.next_part_number_marker(), Some("3"));
    let listed: Vec<_> = op
        .parts()
        .iter()
        .map(|p| {
            (
                p.part_number(),
                p.size(),
                p.checksum_sha256().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(listed, vec![(Some(3), Some(2048), Some(alg.b64(&p3)))]);

    let r = s
        .raw("GET", "/cks/comp?attributes")
        .header("x-amz-object-attributes", "ObjectParts")
        .header("x-amz-max-parts", "many")
        .send()
        .await;
    r.assert_error(400, "InvalidArgument");
}

/// A checksum that does not match the body is BadDigest whether it comes in
/// a header or in an aws-chunked trailer, and nothing is stored; two
/// checksum headers or a malformed value are InvalidRequest.
#[tokio::test]
async fn wrong_checksum_header_or_trailer_is_bad_digest() {
    let (s, c) = setup().await;
    let body = b"the body the checksum should cover".to_vec();
    let r = s
        .raw("PUT", "/cks/hdr")
        .header(
            "x-amz-checksum-crc32c",
            &Checksum::Crc32c.b64(b"another body"),
        )
        .body(body.clone())
        .send()
        .await;
    r.assert_error(400, "BadDigest");
    let r = s
        .raw("PUT", "/cks/hdr")
        .header("x-amz-checksum-crc32", &Checksum::Crc32.b64(&body))
        .header("x-amz-checksum-sha1", &Checksum::Sha1.b64(&body))
        .body(body.clone())
        .send()
        .await;
    r.assert_error(400, "InvalidRequest");
    let r = s
        .raw("PUT", "/cks/hdr")
        .header("x-amz-checksum-crc64nvme", "not base64!")
        .body(body.clone())
        .send()
        .await;
    r.assert_error(400, "InvalidRequest");
    assert_eq!(s.raw("HEAD", "/cks/hdr").send().await.status, 404);

    let trailer_put = |value: String| {
        let mut framed = format!("{:x}\r\n", body.len()).into_bytes();
        framed.extend_from_slice(&body);
        framed
            .extend_from_slice(format!("\r\n0\r\nx-amz-checksum-crc32:{value}\r\n\r\n").as_bytes());
        s.raw("PUT", "/cks/trl")
            .payload_hash("STREAMING-UNSIGNED-PAYLOAD-TRAILER")
            .header("content-encoding", "aws-chunked")
            .header("x-amz-decoded-content-length", &body.len().to_string())
            .header("x-amz-trailer", "x-amz-checksum-crc32")
            .body(framed)
            .send()
    };
    let r = trailer_put(Checksum::Crc32.b64(b"wrong")).await;
    r.assert_error(400, "BadDigest");
    assert_eq!(s.raw("HEAD", "/cks/trl").send().await.status, 404);
    let r = trailer_put(Checksum::Crc32.b64(&body)).await;
    r.assert_success();
    assert_eq!(
        r.header("x-amz-checksum-crc32"),
        Some(Checksum::Crc32.b64(&body))
    );
    let h = ok(c
        .head_object()
        .bucket("cks")
        .key("trl")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await);
    assert_eq!(
        h.checksum_crc32(),
        Some(Checksum::Crc32.b64(&body).as_str())
    );
    assert_eq!(h.checksum_type(), Some(&ChecksumType::FullObject));
}

/// A single-part object: GetObjectAttributes gives its checksum and no
/// ObjectParts, and `partNumber=1` with checksum mode gives the object's
/// checksum (the part is the whole object).
#[tokio::test]
async fn single_part_object_attributes_and_part_one() {
    let (s, c) = setup().await;
    let body = random_bytes(70_000);
    ok(c.put_object()
        .bucket("cks")
        .key("one")
        .checksum_algorithm(Checksum::Crc64Nvme.sdk())
        .body(ByteStream::from(body.clone()))
        .send()
        .await);
    let attrs = attributes(&c, "one", None, None).await;
    assert!(attrs.object_parts().is_none(), "{attrs:?}");
    let sum = attrs.checksum().expect("Checksum");
    assert_eq!(
        sum.checksum_crc64_nvme(),
        Some(Checksum::Crc64Nvme.b64(&body).as_str())
    );
    assert_eq!(sum.checksum_type(), Some(&ChecksumType::FullObject));
    assert_eq!(attrs.object_size(), Some(body.len() as i64));
    let r = s
        .raw("HEAD", "/cks/one?partNumber=1")
        .header("x-amz-checksum-mode", "ENABLED")
        .send()
        .await;
    assert_eq!(
        r.header("x-amz-checksum-crc64nvme"),
        Some(Checksum::Crc64Nvme.b64(&body))
    );
}

/// The checksum algorithms of the 2025 model that cloudmux does not
/// implement (SHA512, MD5, XXHASH64, XXHASH3, XXHASH128) are refused with
/// 400 InvalidRequest naming the header, never ignored: on PutObject (also
/// through aws-sdk-s3 with the value set), UploadPart, CompleteMultipartUpload
/// (as a header and as a part's element), and as `x-amz-sdk-checksum-algorithm`
/// or trailer; nothing is stored and the upload stays open.
#[tokio::test]
async fn unimplemented_checksum_algorithms_are_refused() {
    let (s, c) = setup().await;
    let body = b"a body with an unsupported checksum".to_vec();
    // Well-formed values of each algorithm's length (64, 16, 8, 8, 16 bytes).
    for (name, len) in [
        ("x-amz-checksum-sha512", 64),
        ("x-amz-checksum-md5", 16),
        ("x-amz-checksum-xxhash64", 8),
        ("x-amz-checksum-xxhash3", 8),
        ("x-amz-checksum-xxhash128", 16),
        ("x-amz-checksum-bogus", 4),
    ] {
        let value = base64::engine::general_purpose::STANDARD.encode(vec![7u8; len]);
        let r = s
            .raw("PUT", "/cks/unsupported")
            .header(name, &value)
            .body(body.clone())
            .send()
            .await;
        r.assert_error(400, "InvalidRequest");
        assert!(r.text().contains(name), "{name}: {}", r.text());
    }
    assert_eq!(s.raw("HEAD", "/cks/unsupported").send().await.status, 404);

    // The SDK sends the value it was given in the header of its name.
    let sha512 = base64::engine::general_purpose::STANDARD.encode([1u8; 64]);
    let out = c
        .put_object()
        .bucket("cks")
        .key("unsupported")
        .checksum_sha512(&sha512)
        .body(ByteStream::from(body.clone()))
        .send()
        .await;
    assert_sdk_err(out, 400, "InvalidRequest");
    assert_eq!(s.raw("HEAD", "/cks/unsupported").send().await.status, 404);

    // As the algorithm the client asks the server to compute, or as trailer.
    s.raw("PUT", "/cks/unsupported")
        .header("x-amz-sdk-checksum-algorithm", "SHA512")
        .body(body.clone())
        .send()
        .await
        .assert_error(400, "InvalidRequest");
    let mut framed = format!("{:x}\r\n", body.len()).into_bytes();
    framed.extend_from_slice(&body);
    framed.extend_from_slice(
        format!("\r\n0\r\nx-amz-checksum-md5:{}\r\n\r\n", md5_b64(&body)).as_bytes(),
    );
    s.raw("PUT", "/cks/unsupported")
        .payload_hash("STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", &body.len().to_string())
        .header("x-amz-trailer", "x-amz-checksum-md5")
        .body(framed)
        .send()
        .await
        .assert_error(400, "InvalidRequest");
    assert_eq!(s.raw("HEAD", "/cks/unsupported").send().await.status, 404);

    // Multipart: CreateMultipartUpload with the algorithm, UploadPart with
    // the header, Complete with the header or a part element.
    let r = s
        .raw("POST", "/cks/mpu?uploads")
        .header("x-amz-checksum-algorithm", "SHA512")
        .send()
        .await;
    r.assert_error(400, "InvalidRequest");
    let up = ok(c
        .create_multipart_upload()
        .bucket("cks")
        .key("mpu")
        .send()
        .await);
    let id = up.upload_id().unwrap_or_default().to_owned();
    let part_path = format!("/cks/mpu?partNumber=1&uploadId={}", encode_query(&id));
    let r = s
        .raw("PUT", &part_path)
        .header("x-amz-checksum-sha512", &sha512)
        .body(body.clone())
        .send()
        .await;
    r.assert_error(400, "InvalidRequest");
    assert!(r.text().contains("x-amz-checksum-sha512"), "{}", r.text());
    let r = s.raw("PUT", &part_path).body(body.clone()).send().await;
    r.assert_success();
    let etag = r.header("etag").unwrap_or_default();
    let complete_path = format!("/cks/mpu?uploadId={}", encode_query(&id));
    let doc = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        xml_escape(&etag)
    );
    let r = s
        .raw("POST", &complete_path)
        .header(
            "x-amz-checksum-xxhash3",
            &base64::engine::general_purpose::STANDARD.encode([2u8; 8]),
        )
        .body(doc.clone())
        .send()
        .await;
    r.assert_error(400, "InvalidRequest");
    let with_elem = doc.replace(
        "</ETag>",
        &format!("</ETag><ChecksumSHA512>{sha512}</ChecksumSHA512>"),
    );
    let r = s.raw("POST", &complete_path).body(with_elem).send().await;
    r.assert_error(400, "InvalidRequest");
    assert!(r.text().contains("ChecksumSHA512"), "{}", r.text());
    assert_eq!(s.raw("HEAD", "/cks/mpu").send().await.status, 404);
    // The upload is still open and completes without them.
    s.raw("POST", &complete_path)
        .body(doc)
        .send()
        .await
        .assert_success();
    assert_eq!(get_object(&c, "cks", "mpu").await, body);
}
