//! Replays the fuzz corpora as ordinary tests: every file of
//! `fuzz/corpus/<target>/` (the seeds) and of `fuzz/regressions/<target>/`
//! (inputs that once crashed) goes through the same entry point as the fuzz
//! target (`cloudmux_s3::fuzzing`), with no fuzzing time. A missing or empty
//! corpus directory fails, so a moved corpus cannot silently test nothing.
//! The other tests check that the harness reaches the parsers it is meant
//! to exercise.

use std::path::{Path, PathBuf};

use cloudmux_s3::fuzzing;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of a directory, sorted; empty when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Feeds every seed and regression input of `target` to `entry`.
fn replay(target: &str, entry: fn(&[u8])) {
    let corpus = fuzz_dir().join("corpus").join(target);
    let seeds = files(&corpus);
    assert!(
        !seeds.is_empty(),
        "{} is missing or empty; run `python3 fuzz/seeds.py`",
        corpus.display()
    );
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    for path in seeds.iter().chain(&regressions) {
        let data = read(path);
        let outcome = std::panic::catch_unwind(|| entry(&data));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    read(&fuzz_dir().join("corpus").join(target).join(name))
}

#[test]
fn auth_corpus() {
    replay("auth", fuzzing::auth);
}

#[test]
fn aws_chunked_corpus() {
    replay("aws_chunked", fuzzing::aws_chunked);
}

#[test]
fn xml_bodies_corpus() {
    replay("xml_bodies", fuzzing::xml_bodies);
}

#[test]
fn post_object_corpus() {
    replay("post_object", fuzzing::post_object);
}

#[test]
fn bucket_policy_corpus() {
    replay("bucket_policy", fuzzing::bucket_policy);
}

#[test]
fn router_corpus() {
    replay("router", fuzzing::router);
}

#[test]
fn chunked_modes_verify_signatures() {
    assert!(fuzzing::chunked_spec(0).chunks_signed());
    let trailer = fuzzing::chunked_spec(1);
    assert!(trailer.chunks_signed() && trailer.trailer_signed());
    assert!(!fuzzing::chunked_spec(2).chunks_signed());
    let doc = fuzzing::decode_chunked(&seed("aws_chunked", "doc_example_pieces"));
    assert_eq!((doc.error, doc.data.len()), (None, 66560));
    let signed = fuzzing::decode_chunked(&seed("aws_chunked", "signed_trailer_bytewise"));
    assert_eq!(signed.error, None);
    assert_eq!(signed.data, b"hello world");
    assert_eq!(signed.trailer.as_deref(), Some("DUoRhQ=="));
}

#[test]
fn xml_documents_reach_their_handlers() {
    // DELETE publicAccessBlock, PUT acl, cors, tagging, publicAccessBlock.
    let cors = fuzzing::xml_statuses(&seed("xml_bodies", "cors"));
    assert_eq!(cors, [204, 400, 200, 400, 400]);
    let acl = fuzzing::xml_statuses(&seed("xml_bodies", "acl_email"));
    assert_eq!(acl[1], 200);
    let tagging = fuzzing::xml_statuses(&seed("xml_bodies", "tagging_valid"));
    assert_eq!(tagging[3], 204);
    let pab = fuzzing::xml_statuses(&seed("xml_bodies", "public_access_block"));
    assert_eq!(pab[4], 200);
}

#[test]
fn post_forms_reach_the_policy_check() {
    // A form whose policy passes goes on to the (missing) bucket.
    assert_eq!(
        fuzzing::post_status(&seed("post_object", "anonymous_policy")),
        404
    );
    assert_eq!(fuzzing::post_status(&seed("post_object", "v2_signed")), 404);
    assert_eq!(fuzzing::post_status(&seed("post_object", "v4_signed")), 404);
    assert_eq!(
        fuzzing::post_status(&seed("post_object", "expired_policy")),
        403
    );
    assert_eq!(
        fuzzing::post_status(&seed("post_object", "bad_base64")),
        400
    );
}

#[test]
fn router_requests_are_served() {
    use cloudmux_s3::ops::OpsEndpoint;
    use cloudmux_s3::router::Endpoint;
    let live = seed("router", "live");
    assert_eq!(
        fuzzing::classify(&live),
        Some((Some(OpsEndpoint::Live), Endpoint::GetObject))
    );
    assert_eq!(fuzzing::route_status(&live), Some(200));
    let vhost = seed("router", "vhost_list");
    assert_eq!(fuzzing::route_status(&vhost), Some(403));
}
