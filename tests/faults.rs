//! The fault matrix: at every registered failpoint of the write paths
//! (`cloudmux_core::faults::REGISTRY`), each operation that passes it is run
//! with the point armed to inject an error, a panic or a process exit. Then
//! the server is killed and started again (recovery and a GC sweep run at
//! startup, with `[gc] min_age_secs = 0`), and the invariant is checked:
//! - the key holds the old object or the new one, whole (an acknowledged
//!   write: the new one), and every listed object reads back whole;
//! - no intent and no garbage record is left;
//! - the location's raw listing equals what the records name: every file
//!   outside the staging area is the data of an object record, and every
//!   staged entry is a part of a live upload.
//!
//! A point that no case reaches fails the test, so a new step cannot go
//! untested. Every cell runs on `fs`; on moto, Azurite and fake-gcs-server
//! a seeded sample reaching every point runs (`CLOUDMUX_FAULTS=full` runs
//! every cell there too). The server must be built with the `failpoints` feature
//! (`cargo build --bin cloudmux --features failpoints`; `scripts/test.sh`
//! does). In CI a seeded sample runs that still reaches every point
//! (`CLOUDMUX_FAULTS=sample`, the default, with `CLOUDMUX_FAULTS_SEED`); the
//! whole matrix is `CLOUDMUX_FAULTS=full` (see `scripts/fault-matrix.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use cloudmux_core::records::{self, GarbageRecord, ObjectRecord, PartRecord};
use cloudmux_e2e::clouds::{Cloud, Target};
use cloudmux_e2e::{ServerOptions, TestServer, ADMIN, ALICE};
use cloudmux_meta::codec;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// The operations of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    PutNew,
    PutOverwrite,
    CopyNew,
    CopyOverwrite,
    Complete,
    Abort,
    PartReplace,
    Delete,
    DeleteObjects,
    DeleteBucket,
    /// An overwrite in a versioned bucket: the old version is kept aside.
    PutVersioned,
    /// A delete in a versioned bucket: a delete marker, the old version
    /// kept aside.
    DeleteVersioned,
    /// A delete of the current version by id: the older one is made
    /// current again (its bytes go back to the native name).
    DeleteCurrentVersion,
}

impl Op {
    /// The failpoints each operation passes, in order, on `fs` (`local`)
    /// or on a cloud. A new key on `fs` takes the two-phase commit (its
    /// record names the staged copy, moved to the native name after the
    /// answer); a cloud publishes first.
    fn points(self, local: bool) -> &'static [&'static str] {
        match self {
            Op::PutNew if local => &[
                "put.staged",
                "commit.checked",
                "commit.persisted",
                "commit.staged",
                "move.published",
            ],
            Op::CopyNew if local => &[
                "copy.staged",
                "commit.checked",
                "commit.staged",
                "move.published",
            ],
            Op::Complete if local => &[
                "complete.assembled",
                "commit.checked",
                "commit.persisted",
                "commit.staged",
                "move.published",
                "complete.committed",
            ],
            Op::PutNew => &[
                "put.staged",
                "commit.checked",
                "commit.intent",
                "commit.published",
                "commit.committed",
            ],
            Op::PutOverwrite => &[
                "put.staged",
                "commit.checked",
                "commit.intent",
                "commit.persisted",
                "commit.published",
                "commit.committed",
            ],
            Op::CopyNew => &[
                "copy.staged",
                "commit.checked",
                "commit.intent",
                "commit.published",
            ],
            Op::CopyOverwrite => &[
                "copy.staged",
                "commit.intent",
                "commit.persisted",
                "commit.published",
                "commit.committed",
            ],
            Op::Complete => &[
                "complete.assembled",
                "commit.checked",
                "commit.intent",
                "commit.published",
                "commit.committed",
                "complete.committed",
            ],
            Op::Abort => &["abort.committed"],
            Op::PartReplace => &["part.persisted", "part.committed"],
            Op::Delete | Op::DeleteObjects => {
                &["delete.checked", "delete.committed", "garbage.removed"]
            }
            Op::DeleteBucket => &["bucket.marked"],
            Op::PutVersioned => &[
                "put.staged",
                "commit.checked",
                "commit.intent",
                "commit.kept",
                "commit.persisted",
                "commit.published",
                "commit.committed",
            ],
            Op::DeleteVersioned => &[
                "delete.checked",
                "delete.kept",
                "delete.committed",
                "garbage.removed",
            ],
            Op::DeleteCurrentVersion => &[
                "delete.checked",
                "commit.checked",
                "commit.intent",
                "commit.persisted",
                "commit.published",
                "commit.committed",
                "garbage.removed",
            ],
        }
    }

    const ALL: [Op; 13] = [
        Op::PutNew,
        Op::PutOverwrite,
        Op::CopyNew,
        Op::CopyOverwrite,
        Op::Complete,
        Op::Abort,
        Op::PartReplace,
        Op::Delete,
        Op::DeleteObjects,
        Op::DeleteBucket,
        Op::PutVersioned,
        Op::DeleteVersioned,
        Op::DeleteCurrentVersion,
    ];
}

const ACTIONS: [&str; 3] = ["error", "panic", "exit"];

/// How much of the matrix a location runs when `CLOUDMUX_FAULTS` is not
/// `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sample {
    /// Every cell.
    Full,
    /// A seeded sample reaching every point once.
    EveryPoint,
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy)]
struct Case {
    op: Op,
    point: &'static str,
    action: &'static str,
}

/// The cases to run: every cell, or a seeded sample that still reaches
/// every registered point with some action.
fn cases(sample: Sample, local: bool) -> Vec<Case> {
    let all: Vec<Case> = Op::ALL
        .iter()
        .flat_map(|&op| {
            op.points(local).iter().flat_map(move |&point| {
                ACTIONS
                    .iter()
                    .map(move |&action| Case { op, point, action })
            })
        })
        .collect();
    if sample == Sample::Full || std::env::var("CLOUDMUX_FAULTS").as_deref() == Ok("full") {
        return all;
    }
    let seed: u64 = std::env::var("CLOUDMUX_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("fault matrix sample, seed {seed} (CLOUDMUX_FAULTS_SEED={seed} replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut shuffled = all.clone();
    shuffled.shuffle(&mut rng);
    let mut picked = Vec::new();
    let mut covered = BTreeSet::new();
    for case in &shuffled {
        if covered.insert(case.point) {
            picked.push(*case);
        }
    }
    picked
}

/// The check after the restart (the last one of a case).
const AFTER: &str = "after the restart";

const OLD: &[u8] = b"the old object, acknowledged before the fault";

fn new_body() -> Vec<u8> {
    (0..70_000u32).map(|i| (i % 241) as u8).collect()
}

fn src_body() -> Vec<u8> {
    (0..50_000u32).map(|i| (i % 239) as u8 ^ 0x5a).collect()
}

fn part_body(tag: u8) -> Vec<u8> {
    (0..30_000u32)
        .map(|i| tag.wrapping_add((i % 233) as u8))
        .collect()
}

/// What a case set up, for its checks.
#[derive(Default)]
struct Setup {
    upload_id: Option<String>,
    /// Versioned cases: the version ids written before the fault, oldest
    /// first, with their bodies.
    versions: Vec<(String, Vec<u8>)>,
}

/// A second body, written over `OLD` before a versioned case's fault.
const NEWER: &[u8] = b"a newer object, current before the version's delete";

/// Puts `body` at `bucket/k`; returns its version id.
async fn put_version(c: &Client, bucket: &str, body: &[u8]) -> String {
    let out = cloudmux_e2e::ok(
        c.put_object()
            .bucket(bucket)
            .key("k")
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await,
    );
    out.version_id().expect("a version id").to_owned()
}

async fn setup(c: &Client, bucket: &str, op: Op, location: &str) -> Setup {
    cloudmux_e2e::create_bucket_on(c, bucket, location).await;
    let mut s = Setup::default();
    match op {
        Op::PutOverwrite | Op::CopyOverwrite | Op::Delete | Op::DeleteObjects => {
            cloudmux_e2e::put_object(c, bucket, "k", OLD).await;
        }
        _ => {}
    }
    if matches!(op, Op::CopyNew | Op::CopyOverwrite) {
        cloudmux_e2e::put_object(c, bucket, "src", &src_body()).await;
    }
    if matches!(
        op,
        Op::PutVersioned | Op::DeleteVersioned | Op::DeleteCurrentVersion
    ) {
        cloudmux_e2e::ok(
            c.put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await,
        );
        let old = put_version(c, bucket, OLD).await;
        s.versions.push((old, OLD.to_vec()));
        if op == Op::DeleteCurrentVersion {
            let newer = put_version(c, bucket, NEWER).await;
            s.versions.push((newer, NEWER.to_vec()));
        }
    }
    if matches!(op, Op::Complete | Op::Abort | Op::PartReplace) {
        let up = cloudmux_e2e::ok(
            c.create_multipart_upload()
                .bucket(bucket)
                .key("k")
                .send()
                .await,
        );
        let id = up.upload_id().expect("upload id").to_owned();
        upload_part(c, bucket, &id, &part_body(1))
            .await
            .expect("upload part 1");
        s.upload_id = Some(id);
    }
    s
}

async fn upload_part(c: &Client, bucket: &str, id: &str, data: &[u8]) -> Result<String, String> {
    c.upload_part()
        .bucket(bucket)
        .key("k")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .map(|o| o.e_tag().unwrap_or_default().to_owned())
        .map_err(|e| format!("{e:?}"))
}

async fn complete(c: &Client, bucket: &str, id: &str) -> Result<(), String> {
    let parts = c
        .list_parts()
        .bucket(bucket)
        .key("k")
        .upload_id(id)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let done = CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .parts()
                .iter()
                .map(|p| {
                    CompletedPart::builder()
                        .part_number(p.part_number().unwrap_or(1))
                        .e_tag(p.e_tag().unwrap_or_default())
                        .build()
                })
                .collect(),
        ))
        .build();
    c.complete_multipart_upload()
        .bucket(bucket)
        .key("k")
        .upload_id(id)
        .multipart_upload(done)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

/// Runs the operation; `Ok` when the server acknowledged it.
async fn run_op(c: &Client, bucket: &str, op: Op, s: &Setup) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Debug| format!("{e:?}");
    match op {
        Op::PutVersioned => c
            .put_object()
            .bucket(bucket)
            .key("k")
            .body(ByteStream::from(new_body()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err(&e)),
        Op::DeleteVersioned => c
            .delete_object()
            .bucket(bucket)
            .key("k")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err(&e)),
        Op::DeleteCurrentVersion => c
            .delete_object()
            .bucket(bucket)
            .key("k")
            .version_id(&s.versions.last().expect("two versions").0)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err(&e)),
        Op::PutNew | Op::PutOverwrite => c
            .put_object()
            .bucket(bucket)
            .key("k")
            .body(ByteStream::from(new_body()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err(&e)),
        Op::CopyNew | Op::CopyOverwrite => c
            .copy_object()
            .bucket(bucket)
            .key("k")
            .copy_source(format!("{bucket}/src"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err(&e)),
        Op::Complete => complete(c, bucket, s.upload_id.as_deref().unwrap()).await,
        Op::Abort => c
            .abort_multipart_upload()
            .bucket(bucket)
            .key("k")
            .upload_id(s.upload_id.as_deref().unwrap())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err(&e)),
        Op::PartReplace => upload_part(c, bucket, s.upload_id.as_deref().unwrap(), &part_body(2))
            .await
            .map(|_| ()),
        Op::Delete => c
            .delete_object()
            .bucket(bucket)
            .key("k")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err(&e)),
        Op::DeleteObjects => {
            let out = c
                .delete_objects()
                .bucket(bucket)
                .delete(
                    Delete::builder()
                        .objects(ObjectIdentifier::builder().key("k").build().unwrap())
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .map_err(|e| err(&e))?;
            if out.errors().is_empty() {
                Ok(())
            } else {
                Err(format!("{:?}", out.errors()))
            }
        }
        Op::DeleteBucket => c
            .delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err(&e)),
    }
}

/// The object's bytes, `None` when it does not exist; panics on any other
/// error (an unreadable record).
async fn read(c: &Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    match c.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => {
            let size = o.content_length().unwrap_or(-1);
            let data = o.body.collect().await.expect("object body").to_vec();
            assert_eq!(data.len() as i64, size, "{bucket}/{key}: size");
            Some(data)
        }
        Err(e) => {
            let code = e.as_service_error().and_then(|s| {
                use aws_sdk_s3::error::ProvideErrorMetadata;
                s.code().map(str::to_owned)
            });
            match code.as_deref() {
                Some("NoSuchKey" | "NoSuchBucket") => None,
                _ => panic!("reading {bucket}/{key}: {e:?}"),
            }
        }
    }
}

/// Checks the key's contents against what the operation allows.
async fn check_key(c: &Client, bucket: &str, case: Case, acked: bool, s: &Setup, when: &str) {
    let got = read(c, bucket, "k").await;
    let new = new_body();
    let src = src_body();
    let ctx = format!("{case:?} ({when}, acknowledged: {acked})");
    let allowed: Vec<Option<Vec<u8>>> = match case.op {
        Op::PutNew if acked => vec![Some(new)],
        Op::PutNew => vec![None, Some(new)],
        Op::PutOverwrite if acked => vec![Some(new)],
        Op::PutOverwrite => vec![Some(OLD.to_vec()), Some(new)],
        Op::CopyNew if acked => vec![Some(src)],
        Op::CopyNew => vec![None, Some(src)],
        Op::CopyOverwrite if acked => vec![Some(src)],
        Op::CopyOverwrite => vec![Some(OLD.to_vec()), Some(src)],
        Op::Complete if acked => vec![Some(part_body(1))],
        Op::Complete => vec![None, Some(part_body(1))],
        Op::Abort | Op::PartReplace | Op::DeleteBucket => vec![None],
        Op::Delete | Op::DeleteObjects if acked => vec![None],
        Op::Delete | Op::DeleteObjects => vec![None, Some(OLD.to_vec())],
        Op::PutVersioned if acked => vec![Some(new)],
        Op::PutVersioned => vec![Some(OLD.to_vec()), Some(new)],
        Op::DeleteVersioned if acked => vec![None],
        Op::DeleteVersioned => vec![None, Some(OLD.to_vec())],
        Op::DeleteCurrentVersion if acked => vec![Some(OLD.to_vec())],
        Op::DeleteCurrentVersion => vec![Some(OLD.to_vec()), Some(NEWER.to_vec())],
    };
    assert!(
        allowed.contains(&got),
        "{ctx}: the key holds {:?} bytes, none of the allowed outcomes",
        got.as_ref().map(Vec::len)
    );
    if !s.versions.is_empty() {
        check_versions(c, bucket, case, acked, s, &got, &ctx).await;
    }
    if matches!(case.op, Op::CopyNew | Op::CopyOverwrite) {
        assert_eq!(
            read(c, bucket, "src").await,
            Some(src_body()),
            "{ctx}: source"
        );
    }
    if case.op == Op::PartReplace && when == AFTER {
        // The upload holds one whole part, the old or (acknowledged) the new
        // one, and completes to it.
        let id = s.upload_id.as_deref().unwrap();
        complete(c, bucket, id)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: completing after the fault: {e}"));
        let got = read(c, bucket, "k").await;
        let ok = if acked {
            got == Some(part_body(2))
        } else {
            got == Some(part_body(1)) || got == Some(part_body(2))
        };
        assert!(ok, "{ctx}: the completed upload is not one whole part");
        c.delete_object().bucket(bucket).key("k").send().await.ok();
    }
    if case.op == Op::Abort && acked {
        let uploads = cloudmux_e2e::ok(c.list_multipart_uploads().bucket(bucket).send().await);
        assert!(
            uploads.uploads().is_empty(),
            "{ctx}: the aborted upload is listed"
        );
    }
    if case.op == Op::DeleteBucket && acked {
        assert!(
            c.head_bucket().bucket(bucket).send().await.is_err(),
            "{ctx}: the deleted bucket is still there"
        );
    }
}

/// A versioned case: every version listed reads back whole by its id,
/// every version acknowledged before the fault is still there (but the one
/// an acknowledged delete removed), and the current one is what `got` read.
async fn check_versions(
    c: &Client,
    bucket: &str,
    case: Case,
    acked: bool,
    s: &Setup,
    got: &Option<Vec<u8>>,
    ctx: &str,
) {
    let listing = cloudmux_e2e::ok(c.list_object_versions().bucket(bucket).send().await);
    let mut listed: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    let mut latest = None;
    for v in listing.versions() {
        let id = v.version_id().expect("version id").to_owned();
        let o = c
            .get_object()
            .bucket(bucket)
            .key("k")
            .version_id(&id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{ctx}: listed version {id} does not read: {e:?}"));
        let data = o.body.collect().await.expect("version body").to_vec();
        assert_eq!(
            Some(data.len() as u64),
            v.size().map(|n| n as u64),
            "{ctx}: version {id} size"
        );
        if v.is_latest() == Some(true) {
            latest = Some(Some(data.clone()));
        }
        listed.insert(id, Some(data));
    }
    for m in listing.delete_markers() {
        if m.is_latest() == Some(true) {
            latest = Some(None);
        }
        listed.insert(m.version_id().unwrap_or_default().to_owned(), None);
    }
    assert_eq!(
        latest.as_ref(),
        Some(got),
        "{ctx}: the latest listed version is not what GET reads"
    );
    for (n, (id, body)) in s.versions.iter().enumerate() {
        let removed = case.op == Op::DeleteCurrentVersion && n + 1 == s.versions.len();
        match listed.get(id) {
            Some(Some(data)) => assert_eq!(data, body, "{ctx}: version {id} changed"),
            Some(None) => panic!("{ctx}: version {id} became a delete marker"),
            None if removed && (acked || got.as_deref() == Some(OLD)) => {}
            None => panic!("{ctx}: acknowledged version {id} is gone"),
        }
    }
    let extra = listed.len()
        - s.versions
            .iter()
            .filter(|(id, _)| listed.contains_key(id))
            .count();
    let expected_extra = match case.op {
        Op::PutVersioned | Op::DeleteVersioned => usize::from(got.as_deref() != Some(OLD)),
        _ => 0,
    };
    assert_eq!(
        extra, expected_extra,
        "{ctx}: versions listed beyond those written: {listed:?}"
    );
}

/// The metadata store's entries, from the admin export.
async fn export(server: &TestServer) -> Vec<(Vec<u8>, Vec<u8>)> {
    let resp = server
        .raw("GET", "/_/meta/export")
        .signed_by(ADMIN)
        .send()
        .await;
    assert_eq!(resp.status, 200, "export: {}", resp.text());
    cloudmux_meta::backup::decode(&resp.body).expect("decode export")
}

/// Files under `root`, relative, with `/` separators.
fn files(root: &Path) -> BTreeSet<String> {
    cloudmux_e2e::walk(root)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The staging prefixes of the cloud locations (current and legacy).
const CLOUD_STAGING: [&str; 2] = [".cloudmux-staging/", ".cloudmux/tmp/"];

/// Waits until recovery has resolved every interrupted write (a cloud's
/// are resolved after its publish grace), then returns the export.
async fn settled_export(server: &TestServer, ctx: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let entries = export(server).await;
        if !entries
            .iter()
            .any(|(k, _)| k.starts_with(records::INTENTS_PREFIX))
            || std::time::Instant::now() > deadline
        {
            return entries;
        }
        eprintln!("{ctx}: waiting for recovery to resolve an interrupted write");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The raw listing of the location (`local` on fs, `cloud` on the cloud
/// `target`) against the records.
async fn check_raw_listing(server: &TestServer, target: Option<&Target>, ctx: &str) {
    let location = if target.is_some() { "cloud" } else { "local" };
    let entries = settled_export(server, ctx).await;
    let mut named: BTreeSet<String> = BTreeSet::new();
    let mut staged: BTreeSet<String> = BTreeSet::new();
    let mut left: BTreeMap<String, usize> = BTreeMap::new();
    for (k, v) in &entries {
        if k.starts_with(b"o/") || k.starts_with(b"v/") {
            let rec: ObjectRecord = codec::decode(v).expect("object record");
            if rec.location == location && !rec.version.delete_marker {
                named.insert(rec.data.locator.clone());
            }
        } else if k.starts_with(b"p/") {
            let part: PartRecord = codec::decode(v).expect("part record");
            staged.insert(part.staged.id.clone());
        } else if k.starts_with(records::INTENTS_PREFIX) {
            *left.entry("intent".into()).or_default() += 1;
        } else if k.starts_with(records::MOVES_PREFIX) {
            *left.entry("move".into()).or_default() += 1;
        } else if k.starts_with(records::GARBAGE_PREFIX) {
            let g: GarbageRecord = codec::decode(v).expect("garbage record");
            *left
                .entry(format!("garbage {}", g.data.locator))
                .or_default() += 1;
        }
    }
    assert!(
        left.is_empty(),
        "{ctx}: records left after recovery and GC: {left:?}"
    );
    let (published, in_staging, leftovers) = match target {
        None => {
            let all = files(&server.data_dir().join("objects"));
            let published = all
                .iter()
                .filter(|p| !p.starts_with(".cloudmux/"))
                .cloned()
                .collect();
            let in_tmp = all
                .iter()
                .filter_map(|p| p.strip_prefix(".cloudmux/tmp/"))
                .map(|p| p.replacen('/', ".", 1))
                .collect();
            (published, in_tmp, Vec::new())
        }
        Some(t) => {
            let listing = t.listing().await;
            let (staging, published): (BTreeSet<String>, BTreeSet<String>) = listing
                .objects
                .into_keys()
                .partition(|n| CLOUD_STAGING.iter().any(|p| n.starts_with(p)));
            (published, staging, listing.leftovers)
        }
    };
    assert_eq!(published, named, "{ctx}: published data vs object records");
    assert_eq!(
        in_staging, staged,
        "{ctx}: staging area vs part records of live uploads"
    );
    assert!(
        leftovers.is_empty(),
        "{ctx}: native leftovers: {leftovers:?}"
    );
}

/// The server's registered failpoints.
async fn registry(server: &TestServer) -> Vec<String> {
    let resp = server
        .raw("GET", "/_/failpoints")
        .signed_by(ADMIN)
        .send()
        .await;
    assert_eq!(
        resp.status,
        200,
        "{} (build the server with `cargo build --bin cloudmux --features failpoints`)",
        resp.text()
    );
    resp.text()
        .lines()
        .filter_map(|l| l.split('\t').next())
        .map(str::to_owned)
        .collect()
}

/// Arms `point` to fire once with `action`.
async fn arm(server: &TestServer, point: &str, action: &str) {
    let resp = server
        .raw(
            "PUT",
            &format!("/_/failpoints/{point}?action=1%2Areturn%28{action}%29"),
        )
        .signed_by(ADMIN)
        .send()
        .await;
    assert_eq!(
        resp.status,
        200,
        "arming {point}: {} (is the server built with --features failpoints?)",
        resp.text()
    );
}

/// Runs the matrix's `cases` on one location: `fs` when `target` is
/// `None`, else the emulated cloud `target`. Fails when a registered point
/// of the write paths is never reached.
async fn run_matrix(target: Option<&Target>, sample: Sample) {
    let cases = cases(sample, target.is_none());
    let location = if target.is_some() { "cloud" } else { "local" };
    let cloud_config = target
        .map(|t| t.location_config(CLOUD_TIMEOUT_MS))
        .unwrap_or_default();
    let mut server = TestServer::start_with(ServerOptions {
        extra_config: format!("{cloud_config}\n[gc]\nmin_age_secs = 0\n"),
        ..Default::default()
    });
    let registry = registry(&server).await;
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    eprintln!("{location}: {} cases", cases.len());
    for (n, case) in cases.iter().enumerate() {
        let bucket = format!("fault-{n}");
        let ctx = format!("{location} case {n} {case:?}");
        let c = server.client(ALICE);
        let s = setup(&c, &bucket, case.op, location).await;
        let log_before = server.log().len();
        arm(&server, case.point, case.action).await;
        let acked = tokio::time::timeout(Duration::from_secs(60), run_op(&c, &bucket, case.op, &s))
            .await
            .unwrap_or_else(|_| panic!("{ctx}: the operation hung"))
            .is_ok();
        let fired = format!("failpoint fired: {} {}", case.point, case.action);
        // A new key's move runs after the answer, so its point may fire a
        // moment later.
        let mut hit = false;
        for _ in 0..100 {
            let log = server.log();
            hit = log[log_before.min(log.len())..].contains(&fired);
            if hit {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let log = server.log();
        hit = hit || log[log_before.min(log.len())..].contains(&fired);
        assert!(hit, "{ctx}: the point was not reached by the operation");
        reached.insert(case.point);
        if case.action != "exit" {
            // The running server already answers consistently.
            check_key(&c, &bucket, *case, acked, &s, "before the restart").await;
        }
        server.kill9();
        server.spawn();
        let c = server.client(ALICE);
        settled_export(&server, &ctx).await;
        check_key(&c, &bucket, *case, acked, &s, AFTER).await;
        check_raw_listing(&server, target, &ctx).await;
    }
    let never: Vec<String> = registry
        .iter()
        .filter(|name| {
            !reached.contains(name.as_str())
                && !IO_POINTS.contains(&name.as_str())
                && (target.is_none() || !LOCAL_POINTS.contains(&name.as_str()))
        })
        .cloned()
        .collect();
    assert!(
        never.is_empty(),
        "{location}: registered failpoints never reached: {never:?}"
    );
}

/// The cloud locations' `request_timeout_ms`, which is also how long
/// recovery waits before it decides that an interrupted write never reached
/// the cloud.
const CLOUD_TIMEOUT_MS: u64 = 2_000;

/// The whole matrix on `fs` (108 cells, about half a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_failpoint_keeps_the_invariant() {
    run_matrix(None, Sample::Full).await;
}

/// A seeded sample reaching every point on an `s3` location backed by moto
/// (`CLOUDMUX_FAULTS=full` runs every cell).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_failpoint_keeps_the_invariant_on_moto() {
    run_matrix(Some(&Target::create(Cloud::Moto).await), Sample::EveryPoint).await;
}

/// The same on an `azure` location backed by Azurite.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_failpoint_keeps_the_invariant_on_azurite() {
    run_matrix(
        Some(&Target::create(Cloud::Azurite).await),
        Sample::EveryPoint,
    )
    .await;
}

/// The same on a `gcs` location backed by fake-gcs-server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_failpoint_keeps_the_invariant_on_fake_gcs() {
    run_matrix(
        Some(&Target::create(Cloud::FakeGcs).await),
        Sample::EveryPoint,
    )
    .await;
}

/// The failpoints of the durability layers, reached by
/// [`an_io_error_acknowledges_nothing_it_did_not_make_durable`].
const IO_POINTS: [&str; 2] = ["meta.flush", "fs.sync"];

/// The failpoints of the two-phase commit of new keys, which only `fs`
/// takes (see `Op::points`).
const LOCAL_POINTS: [&str; 2] = ["commit.staged", "move.published"];

/// Puts `n` new keys `{prefix}{i}` at once; returns which were acknowledged.
async fn put_burst(c: &Client, bucket: &str, prefix: &str, n: usize) -> Vec<bool> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let c = c.clone();
        let (bucket, key) = (bucket.to_owned(), format!("{prefix}{i}"));
        set.spawn(async move {
            let ok = c
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(burst_body(i)))
                .send()
                .await
                .is_ok();
            (i, ok)
        });
    }
    let mut acked = vec![false; n];
    while let Some(done) = set.join_next().await {
        let (i, ok) = done.expect("put task");
        acked[i] = ok;
    }
    acked
}

fn burst_body(i: usize) -> Vec<u8> {
    (0..5000 + i).map(|j| (i * 7 + j) as u8).collect()
}

/// Every acknowledged key of the burst reads back whole; the others are
/// absent or whole.
async fn check_burst(c: &Client, bucket: &str, prefix: &str, acked: &[bool], when: &str) {
    for (i, &ok) in acked.iter().enumerate() {
        let got = read(c, bucket, &format!("{prefix}{i}")).await;
        if ok {
            assert_eq!(
                got,
                Some(burst_body(i)),
                "{prefix}{i} ({when}): acknowledged, lost"
            );
        } else {
            assert!(
                got.is_none() || got == Some(burst_body(i)),
                "{prefix}{i} ({when}): not whole"
            );
        }
    }
}

/// Arms `point` to fail the next group flush (the first of the burst), puts a
/// burst of 32 keys `{prefix}N`, and checks that the point fired and that
/// some PUT failed. Returns which PUTs were acknowledged.
async fn fail_one_flush(server: &TestServer, c: &Client, point: &str, prefix: &str) -> Vec<bool> {
    let resp = server
        .raw(
            "PUT",
            &format!("/_/failpoints/{point}?action=1%2Areturn%28error%29"),
        )
        .signed_by(ADMIN)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let acked = put_burst(c, "io-errors", prefix, 32).await;
    assert!(
        server.log().contains(&format!("failpoint fired: {point}")),
        "{point} not reached"
    );
    assert!(
        acked.contains(&false),
        "a failed {point} acknowledged every write"
    );
    acked
}

/// A failed metadata flush or `syncfs` fails every request it covered: no
/// request it covered is acknowledged, a failed metadata store makes
/// readiness fail, and after a restart every acknowledged write is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_io_error_acknowledges_nothing_it_did_not_make_durable() {
    let mut server = TestServer::start_with(ServerOptions {
        extra_config: "[gc]\nmin_age_secs = 0\n".into(),
        ..Default::default()
    });
    let c = server.client(ALICE);
    cloudmux_e2e::create_bucket(&c, "io-errors").await;

    // The metadata store: a few flushes succeed, then one fails.
    let acked = fail_one_flush(&server, &c, "meta.flush", "m").await;
    let mut ready = 0;
    for _ in 0..50 {
        ready = server
            .raw("GET", "/_/health/ready")
            .anonymous()
            .send()
            .await
            .status;
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 503, "readiness with a failed metadata store");
    server.kill9();
    server.spawn();
    let c = server.client(ALICE);
    check_burst(
        &c,
        "io-errors",
        "m",
        &acked,
        "after a failed metadata flush",
    )
    .await;
    check_raw_listing(&server, None, "meta.flush").await;

    // The fs location: a few syncs succeed, then one fails.
    let acked = fail_one_flush(&server, &c, "fs.sync", "f").await;
    check_burst(&c, "io-errors", "f", &acked, "after a failed syncfs").await;
    server.kill9();
    server.spawn();
    let c = server.client(ALICE);
    check_burst(
        &c,
        "io-errors",
        "f",
        &acked,
        "after a failed syncfs and a restart",
    )
    .await;
    check_raw_listing(&server, None, "fs.sync").await;
}
