//! aws-chunked decoder tests: the AWS chunked upload example, signed and
//! unsigned trailers, arbitrary input splits, and every failure.

use bytes::Bytes;
use cloudmux_data::BodyError;
use proptest::prelude::*;

use super::sigv4_tests::doc_chunked_request;
use super::test_support::*;
use super::util::{hex32, hmac_sha256, sha256};
use super::{Authenticated, ChunkSigning, ChunkedSpec, Payload};

const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
const TIMESTAMP: &str = "20130524T000000Z";
const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn key() -> [u8; 32] {
    super::sigv4::signing_key(SECRET, "20130524", "us-east-1")
}

fn hex(digest: &[u8; 32]) -> String {
    String::from_utf8(hex32(digest).to_vec()).unwrap()
}

/// The spec `authenticate` derives from the AWS chunked upload example.
fn doc_spec() -> ChunkedSpec {
    match doc_chunked_request().auth("us-east-1", may_24_2013()) {
        Ok(Authenticated::Signed {
            payload: Payload::Chunked(spec),
            ..
        }) => spec,
        other => panic!("expected a chunked payload, got {other:?}"),
    }
}

/// The body of the AWS chunked upload example: 64 KiB and 1 KiB of `a`.
fn doc_body() -> Vec<u8> {
    let mut body = Vec::new();
    for (size, sig) in [
        (
            65536,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        ),
        (
            1024,
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        ),
        (
            0,
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ),
    ] {
        body.extend_from_slice(format!("{size:x};chunk-signature={sig}\r\n").as_bytes());
        body.extend(std::iter::repeat_n(b'a', size));
        if size > 0 {
            body.extend_from_slice(b"\r\n");
        }
    }
    body.extend_from_slice(b"\r\n");
    body
}

#[test]
fn doc_example_decodes() {
    let body = doc_body();
    assert_eq!(body.len(), 66824, "the example's Content-Length");
    let (out, trailer) = decode(vec![body], doc_spec());
    assert_eq!(out.error, None);
    assert_eq!(out.data, vec![b'a'; 66560]);
    assert_eq!(trailer, None);
}

#[test]
fn doc_example_tampered_data() {
    let mut body = doc_body();
    body[70_000 - 4_000] = b'b';
    let (out, _) = decode(vec![body], doc_spec());
    assert_eq!(out.error, Some(BodyError::ChunkSignature));
    assert!(out.data.len() < 66560);
}

#[test]
fn doc_example_tampered_final_signature() {
    let body = String::from_utf8(doc_body())
        .unwrap()
        .replace("b6c6ea8a", "b6c6ea8b");
    let (out, _) = decode(vec![body.into_bytes()], doc_spec());
    assert_eq!(out.error, Some(BodyError::ChunkSignature));
}

#[test]
fn doc_example_missing_signature() {
    let body = String::from_utf8(doc_body()).unwrap().replace(
        ";chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "",
    );
    let (out, _) = decode(vec![body.into_bytes()], doc_spec());
    assert_eq!(out.error, Some(BodyError::ChunkSignature));
}

#[test]
fn doc_example_wrong_decoded_length() {
    let mut spec = doc_spec();
    spec.decoded_length = Some(66561);
    assert_eq!(
        decode(vec![doc_body()], spec).0.error,
        Some(BodyError::Incomplete)
    );
    let mut spec = doc_spec();
    spec.decoded_length = Some(66559);
    assert!(matches!(
        decode(vec![doc_body()], spec).0.error,
        Some(BodyError::MalformedChunk(_))
    ));
}

#[test]
fn doc_example_truncated() {
    let body = doc_body();
    for cut in [10, 100, 65_600, 66_700, 66_800] {
        let (out, _) = decode(vec![body[..cut].to_vec()], doc_spec());
        assert_eq!(out.error, Some(BodyError::Incomplete), "cut at {cut}");
    }
}

/// Builds a signed aws-chunked body from `chunks`, chaining from `seed`,
/// with an optional trailer (signed if `sign_trailer`).
fn signed_body(
    seed: &str,
    chunks: &[&[u8]],
    trailer: Option<(&str, &str)>,
    sign_trailer: bool,
) -> Vec<u8> {
    let mut previous = seed.to_owned();
    let mut body = Vec::new();
    for data in chunks.iter().copied().chain([&b""[..]]) {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{TIMESTAMP}\n{SCOPE}\n{previous}\n{EMPTY}\n{}",
            hex(&sha256(data))
        );
        previous = hex(&hmac_sha256(&key(), &[string_to_sign.as_bytes()]));
        body.extend_from_slice(
            format!("{:x};chunk-signature={previous}\r\n", data.len()).as_bytes(),
        );
        if !data.is_empty() {
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
    }
    if let Some((name, value)) = trailer {
        let line = format!("{name}:{value}\n");
        body.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
        if sign_trailer {
            let string_to_sign = format!(
                "AWS4-HMAC-SHA256-TRAILER\n{TIMESTAMP}\n{SCOPE}\n{previous}\n{}",
                hex(&sha256(line.as_bytes()))
            );
            let signature = hex(&hmac_sha256(&key(), &[string_to_sign.as_bytes()]));
            body.extend_from_slice(format!("x-amz-trailer-signature:{signature}\r\n").as_bytes());
        }
    }
    body.extend_from_slice(b"\r\n");
    body
}

const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

fn signed_spec(
    trailer: Option<&str>,
    signed_trailer: bool,
    decoded_length: Option<u64>,
) -> ChunkedSpec {
    let mut seed = [0u8; 64];
    seed.copy_from_slice(SEED.as_bytes());
    ChunkedSpec {
        signing: Some(Box::new(ChunkSigning {
            key: key(),
            seed,
            scope: SCOPE.into(),
            timestamp: TIMESTAMP.into(),
        })),
        trailer: trailer.map(str::to_owned),
        signed_trailer,
        decoded_length,
    }
}

const CRC: &str = "x-amz-checksum-crc32";

fn small_signed_trailer_body() -> Vec<u8> {
    signed_body(
        SEED,
        &[b"hello ", b"wor", b"ld"],
        Some((CRC, "DUoRhQ==")),
        true,
    )
}

#[test]
fn signed_trailer_verifies_and_stores_value() {
    let spec = signed_spec(Some(CRC), true, Some(11));
    let (out, trailer) = decode(vec![small_signed_trailer_body()], spec);
    assert_eq!(out.error, None);
    assert_eq!(out.data, b"hello world");
    assert_eq!(trailer.as_deref(), Some("DUoRhQ=="));
}

#[test]
fn signed_trailer_tampered_value() {
    let body = String::from_utf8(small_signed_trailer_body())
        .unwrap()
        .replace("DUoRhQ==", "AAAAAA==");
    let (out, trailer) = decode(
        vec![body.into_bytes()],
        signed_spec(Some(CRC), true, Some(11)),
    );
    assert_eq!(out.error, Some(BodyError::ChunkSignature));
    assert_eq!(trailer, None);
}

#[test]
fn signed_trailer_missing_signature() {
    let body = signed_body(SEED, &[b"hello world"], Some((CRC, "DUoRhQ==")), false);
    let (out, _) = decode(vec![body], signed_spec(Some(CRC), true, None));
    assert_eq!(out.error, Some(BodyError::ChunkSignature));
}

#[test]
fn declared_trailer_missing() {
    let body = signed_body(SEED, &[b"hello world"], None, true);
    let (out, trailer) = decode(vec![body], signed_spec(Some(CRC), true, None));
    assert!(matches!(out.error, Some(BodyError::MalformedTrailer(_))));
    assert_eq!(trailer, None);
    let unsigned = b"b\r\nhello world\r\n0\r\n\r\n".to_vec();
    let (out, _) = decode(vec![unsigned], ChunkedSpec::unsigned(Some(CRC), Some(11)));
    assert!(matches!(out.error, Some(BodyError::MalformedTrailer(_))));
}

#[test]
fn unsigned_trailer_forms() {
    let spec = || ChunkedSpec::unsigned(Some(CRC), Some(11));
    for body in [
        &b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"[..],
        // The final empty line is missing, as some SDKs send it.
        b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n",
        b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==",
        // Chunk signatures on an unsigned body are ignored; names are case-insensitive.
        b"6;chunk-signature=00\r\nhello \r\n5\r\nworld\r\n0\r\nX-Amz-Checksum-CRC32: DUoRhQ== \r\n\r\n",
    ] {
        let (out, trailer) = decode(vec![body.to_vec()], spec());
        assert_eq!(out.error, None, "{}", String::from_utf8_lossy(body));
        assert_eq!(out.data, b"hello world");
        assert_eq!(trailer.as_deref(), Some("DUoRhQ=="));
    }
}

#[test]
fn unsigned_without_trailer_or_length() {
    let (out, trailer) = decode(
        vec![b"3\r\nabc\r\n0\r\n\r\n".to_vec()],
        ChunkedSpec::unsigned(None, None),
    );
    assert_eq!(
        (out.error, out.data, trailer),
        (None, b"abc".to_vec(), None)
    );
    let (out, _) = decode(
        vec![b"3\r\nabc\r\n0\r\n".to_vec()],
        ChunkedSpec::unsigned(None, None),
    );
    assert_eq!(out.error, None);
}

#[test]
fn malformed_framing() {
    let spec = || ChunkedSpec::unsigned(None, None);
    for body in [
        &b"zz\r\nabc\r\n0\r\n\r\n"[..],
        b"3\r\nabcX\r\n0\r\n\r\n",
        b"3\r\nabc\r\n0\r\n\r\ngarbage",
        b"1000001\r\n",
        b"\r\n",
        b"11111111111111111\r\n",
    ] {
        let (out, _) = decode(vec![body.to_vec()], spec());
        assert!(
            matches!(out.error, Some(BodyError::MalformedChunk(_))),
            "{}: {:?}",
            String::from_utf8_lossy(body),
            out.error
        );
    }
    let long_header = format!("3;{}\r\nabc\r\n0\r\n\r\n", "x".repeat(5000));
    let (out, _) = decode(vec![long_header.into_bytes()], spec());
    assert!(matches!(out.error, Some(BodyError::MalformedChunk(_))));
    let (out, _) = decode(
        vec![b"3\r\nabc\r\n0\r\nno colon here\r\n\r\n".to_vec()],
        spec(),
    );
    assert!(matches!(out.error, Some(BodyError::MalformedTrailer(_))));
}

#[test]
fn input_error_passes_through() {
    let stream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"3\r\nab")),
        Err(BodyError::Io("reset".into())),
    ]));
    let slot = std::sync::Arc::new(std::sync::OnceLock::new());
    let out = drain(super::decode_aws_chunked(
        stream,
        ChunkedSpec::unsigned(None, None),
        slot,
    ));
    assert_eq!(out.data, b"ab");
    assert_eq!(out.error, Some(BodyError::Io("reset".into())));
}

/// Decodes `body` split at `cuts` (sorted positions).
fn decode_split(body: &[u8], cuts: &[usize], spec: ChunkedSpec) -> (Drained, Option<String>) {
    let mut pieces = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        pieces.push(body[start..cut].to_vec());
        start = cut;
    }
    pieces.push(body[start..].to_vec());
    decode(pieces, spec)
}

#[test]
fn every_single_split_point() {
    let signed = small_signed_trailer_body();
    let unsigned =
        b"6\r\nhello \r\n5\r\nworld\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n".to_vec();
    for cut in 0..=signed.len() {
        let (out, trailer) = decode_split(&signed, &[cut], signed_spec(Some(CRC), true, Some(11)));
        assert_eq!(
            (out.error, out.data.as_slice()),
            (None, &b"hello world"[..]),
            "cut {cut}"
        );
        assert_eq!(trailer.as_deref(), Some("DUoRhQ=="));
    }
    for cut in 0..=unsigned.len() {
        let (out, trailer) = decode_split(
            &unsigned,
            &[cut],
            ChunkedSpec::unsigned(Some(CRC), Some(11)),
        );
        assert_eq!(
            (out.error, out.data.as_slice()),
            (None, &b"hello world"[..]),
            "cut {cut}"
        );
        assert_eq!(trailer.as_deref(), Some("DUoRhQ=="));
    }
}

#[test]
fn every_byte_separately() {
    let body = small_signed_trailer_body();
    let cuts: Vec<usize> = (1..body.len()).collect();
    let (out, trailer) = decode_split(&body, &cuts, signed_spec(Some(CRC), true, Some(11)));
    assert_eq!(out.error, None);
    assert_eq!(out.data, b"hello world");
    assert_eq!(trailer.as_deref(), Some("DUoRhQ=="));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_splits_signed(mut cuts in proptest::collection::vec(0usize..=1000, 0..12),
                            data in proptest::collection::vec(any::<u8>(), 0..300),
                            chunk in 1usize..80) {
        let chunks: Vec<&[u8]> = data.chunks(chunk).collect();
        let body = signed_body(SEED, &chunks, Some((CRC, "v")), true);
        for cut in &mut cuts {
            *cut = (*cut).min(body.len());
        }
        cuts.sort_unstable();
        let spec = signed_spec(Some(CRC), true, Some(data.len() as u64));
        let (out, trailer) = decode_split(&body, &cuts, spec);
        prop_assert_eq!(out.error, None);
        prop_assert_eq!(out.data, data);
        prop_assert_eq!(trailer.as_deref(), Some("v"));
    }

    #[test]
    fn random_splits_doc_example(mut cuts in proptest::collection::vec(0usize..=66824, 0..20)) {
        cuts.sort_unstable();
        let (out, _) = decode_split(&doc_body(), &cuts, doc_spec());
        prop_assert_eq!(out.error, None);
        prop_assert_eq!(out.data.len(), 66560);
    }

    #[test]
    fn any_flipped_byte_fails_signed(pos in 0usize..200, bit in 0u8..8) {
        let body = small_signed_trailer_body();
        let pos = pos % body.len();
        let mut tampered = body.clone();
        tampered[pos] ^= 1 << bit;
        let (out, trailer) = decode(vec![tampered], signed_spec(Some(CRC), true, Some(11)));
        // A flipped byte may still decode only if it did not change the
        // meaning (case of a hex digit or of the trailer name, or whitespace).
        if out.error.is_none() {
            prop_assert_eq!(out.data, b"hello world".to_vec());
            prop_assert_eq!(trailer.as_deref(), Some("DUoRhQ=="));
        }
    }
}

fn streaming_request(content_sha256: &str) -> Req {
    Req::new(http::Method::PUT, "/bucket/key", None)
        .header("host", "localhost:9000")
        .header("x-amz-date", TIMESTAMP)
        .header("x-amz-content-sha256", content_sha256)
        .header("content-encoding", "gzip,aws-chunked")
        .header("x-amz-decoded-content-length", "11")
        .header("x-amz-trailer", "x-amz-checksum-crc32")
        .header(
            "authorization",
            &format!(
                "AWS4-HMAC-SHA256 Credential={AKID}/20130524/us-east-1/s3/aws4_request, SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-trailer, Signature={}",
                "0".repeat(64)
            ),
        )
}

#[test]
fn streaming_signed_trailer_end_to_end() {
    let mut req = streaming_request("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER");
    let seed = resign_v4(&mut req, may_24_2013());
    let Ok(Authenticated::Signed {
        payload: Payload::Chunked(spec),
        ..
    }) = req.auth("us-east-1", may_24_2013())
    else {
        panic!("expected a chunked payload");
    };
    assert!(spec.chunks_signed() && spec.trailer_signed());
    assert_eq!(spec.trailer_name(), Some(CRC));
    assert_eq!(spec.decoded_length(), Some(11));
    let body = signed_body(&seed, &[b"hello", b" world"], Some((CRC, "DUoRhQ==")), true);
    let (out, trailer) = decode(vec![body.clone()], spec.clone());
    assert_eq!(out.error, None);
    assert_eq!(out.data, b"hello world");
    assert_eq!(trailer.as_deref(), Some("DUoRhQ=="));
    // A body chained from another seed fails at its first chunk.
    let other = signed_body(SEED, &[b"hello", b" world"], Some((CRC, "DUoRhQ==")), true);
    let (out, _) = decode(vec![other], spec);
    assert_eq!(out.error, Some(BodyError::ChunkSignature));
    assert!(out.data.len() < 11);
}

#[test]
fn unsigned_payload_with_aws_chunked_encoding() {
    let mut req = streaming_request("UNSIGNED-PAYLOAD");
    resign_v4(&mut req, may_24_2013());
    let Ok(Authenticated::Signed {
        payload: Payload::Chunked(spec),
        ..
    }) = req.auth("us-east-1", may_24_2013())
    else {
        panic!("expected a chunked payload");
    };
    assert!(!spec.chunks_signed() && !spec.trailer_signed());
    assert_eq!(spec.trailer_name(), Some(CRC));
    let mut plain = streaming_request("UNSIGNED-PAYLOAD");
    plain.headers.remove("content-encoding");
    let value = plain.headers["authorization"]
        .to_str()
        .unwrap()
        .replace("content-encoding;", "");
    plain
        .headers
        .insert("authorization", value.parse().unwrap());
    resign_v4(&mut plain, may_24_2013());
    assert!(matches!(
        plain.auth("us-east-1", may_24_2013()),
        Ok(Authenticated::Signed {
            payload: Payload::Unsigned,
            ..
        })
    ));
}

#[test]
fn anonymous_payloads() {
    let headers = |pairs: &[(&str, &str)]| {
        let mut req = Req::new(http::Method::PUT, "/b/k", None);
        for (name, value) in pairs {
            req = req.header(name, value);
        }
        req.headers
    };
    assert!(matches!(
        super::unsigned_payload(&headers(&[])),
        Ok(Payload::Unsigned)
    ));
    assert!(matches!(
        super::unsigned_payload(&headers(&[("x-amz-content-sha256", EMPTY)])),
        Ok(Payload::Sha256(_))
    ));
    let Ok(Payload::Chunked(spec)) = super::unsigned_payload(&headers(&[
        ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        ("x-amz-trailer", "X-Amz-Checksum-CRC64NVME"),
        ("x-amz-decoded-content-length", "5"),
    ])) else {
        panic!("expected a chunked payload");
    };
    assert_eq!(spec.trailer_name(), Some("x-amz-checksum-crc64nvme"));
    assert_eq!(spec.decoded_length(), Some(5));
    assert!(matches!(
        super::unsigned_payload(&headers(&[("content-encoding", "aws-chunked")])),
        Ok(Payload::Chunked(_))
    ));
    assert!(matches!(
        super::unsigned_payload(&headers(&[("x-amz-content-sha256", "bogus")])),
        Err(super::AuthError::InvalidArgument(_))
    ));
    assert!(matches!(
        super::unsigned_payload(&headers(&[
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "x"),
        ])),
        Err(super::AuthError::InvalidArgument(_))
    ));
}
