//! Crash safety on the cloud locations (issue 11): SIGKILL cloudmux while
//! 200 writers put new keys and overwrite existing ones on a bucket placed on
//! an `s3` location backed by moto, an `azure` location backed by Azurite and
//! a `gcs` location backed by fake-gcs-server, restart it on the same data and
//! check the invariant key by key. `tests/crash.rs` does the same on `fs`.
//!
//! How: each test creates a fresh native bucket or container in its
//! emulator (one emulator process per test binary, started lazily and shared
//! by the tests of the binary), starts a cloudmux whose `cloud` location
//! points at it (`[gc] min_age_secs = 0`, so the startup sweep after the
//! restart removes every unreferenced leftover at once) and a bucket `crash`
//! on that location. It first writes 100 keys and waits for every
//! acknowledgement. Then each crash round (2 by default,
//! `CLOUDMUX_CRASH_ROUNDS`) starts 200 writers at once: 100 overwrites of
//! keys that hold an object and 100 new keys, 1 KiB to 16 MiB, a few of them
//! multipart uploads (5 MiB parts) and one single PUT above the 8 MiB
//! staging part of the cloud backends; most are a few KiB. After a seeded
//! number of acknowledgements the server gets SIGKILL; it is started again on
//! the same data and checked, and the next round starts from what it holds.
//!
//! Checked after each restart, through cloudmux: a key whose write was
//! acknowledged reads back exactly that body with its ETag; a key whose
//! overwrite was not acknowledged holds the older acknowledged body or the
//! whole in-flight one, never anything else (and reading it must work); a
//! new key never acknowledged is absent or holds its whole in-flight body; a
//! key not written in the round holds what it held before; the listing shows exactly the
//! readable keys, each with the ETag and size of the bytes read; no upload of
//! an acknowledged CompleteMultipartUpload is still open. Then, after the
//! uploads that the kill left open are aborted (as their client would), the
//! emulated cloud is listed through its own API (S3 ListObjectsV2 and
//! ListMultipartUploads; Azure List Blobs with uncommitted blobs and each
//! blob's uncommitted blocks; the GCS JSON API object list): it must hold
//! exactly the native names `crash/<key>` of the listed keys, each with the
//! bytes cloudmux serves, and no staged leftover, temp object, uncommitted
//! block or native multipart upload.
//!
//! Randomness is seeded: the seed is printed, and `CLOUDMUX_CRASH_SEED=<n>`
//! replays the same bodies, sizes, write order and kill points (the timing
//! of the writes themselves is up to the machine). Failure messages quote
//! the server log (run at `CLOUDMUX_LOG=info`), the cloud's own view of the
//! object concerned and, for moto and fake-gcs-server, the emulator's
//! requests for it; `CLOUDMUX_E2E_KEEP=1` keeps the server's directory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use cloudmux_e2e::clouds::{Cloud, Target};
use cloudmux_e2e::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// Part size of the multipart uploads.
const PART: usize = 5 * MIB;
/// Keys written before the first crash round, and keys overwritten in each.
const OVERWRITES: usize = 100;
/// Writers running at once in a crash round.
const WRITERS: usize = 200;
/// The cloudmux bucket; its objects are `crash/<key>` in the cloud.
const BUCKET: &str = "crash";
/// Azurite's well-known development account.
/// The cloud location's `request_timeout_ms`: also how long recovery waits
/// before it decides that an interrupted write never reached the cloud (a
/// copy the killed process sent may land until then).
const GRACE_MS: u64 = 10_000;

/// Waits until recovery has resolved every interrupted write (no intent
/// record is left) and the garbage collection after the publish grace has
/// run in the process started when the log was `log_len` bytes long.
async fn wait_for_recovery(s: &TestServer, log_len: usize) {
    let deadline = Instant::now() + Duration::from_millis(4 * GRACE_MS);
    while !s.log()[log_len..].contains("garbage collection after the publish grace") {
        assert!(
            Instant::now() < deadline,
            "no garbage collection after the publish grace"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        let resp = s.raw("GET", "/_/meta/export").signed_by(ADMIN).send().await;
        assert_eq!(resp.status, 200, "export: {}", resp.text());
        let entries = cloudmux_meta::backup::decode(&resp.body).expect("decode export");
        if !entries.iter().any(|(k, _)| k.starts_with(b"w/")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "interrupted writes still unresolved after {} ms",
            4 * GRACE_MS
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One object write: a single PutObject, or a multipart upload in 5 MiB
/// parts.
#[derive(Clone)]
struct Write {
    key: String,
    body: Arc<Vec<u8>>,
    multipart: bool,
}

impl Write {
    /// The ETag cloudmux gives the object this write makes.
    fn etag(&self) -> String {
        if self.multipart {
            let parts: Vec<&[u8]> = self.body.chunks(PART).collect();
            multipart_etag(&parts)
        } else {
            etag_of(&self.body)
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} of {} bytes",
            if self.multipart {
                "multipart upload"
            } else {
                "PUT"
            },
            self.body.len()
        )
    }
}

/// How one write ended.
#[derive(Debug, Default)]
struct Outcome {
    acked: bool,
    /// The multipart upload it created, if it got that far.
    upload_id: Option<String>,
    error: Option<String>,
    finished: Option<Instant>,
}

fn body(rng: &mut StdRng, len: usize) -> Arc<Vec<u8>> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    Arc::new(v)
}

/// Sizes for `n` writes: `multipart` multipart uploads of 6 to 16 MiB,
/// `large` single PUTs of 9 to 16 MiB (above the 8 MiB staging part),
/// `medium` of 64 KiB to 2 MiB, the rest 1 to 32 KiB; shuffled.
fn sizes(
    rng: &mut StdRng,
    n: usize,
    multipart: usize,
    large: usize,
    medium: usize,
) -> Vec<(usize, bool)> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(if i < multipart {
            (rng.random_range(6 * MIB..=16 * MIB), true)
        } else if i < multipart + large {
            (rng.random_range(9 * MIB..=16 * MIB), false)
        } else if i < multipart + large + medium {
            (rng.random_range(64 * KIB..=2 * MIB), false)
        } else {
            (rng.random_range(KIB..=32 * KIB), false)
        });
    }
    out.shuffle(rng);
    out
}

/// One write for each of `keys`, sized by [`sizes`], in a random order.
fn writes(
    rng: &mut StdRng,
    keys: Vec<String>,
    multipart: usize,
    large: usize,
    medium: usize,
) -> Vec<Write> {
    let sizes = sizes(rng, keys.len(), multipart, large, medium);
    let mut out: Vec<Write> = keys
        .into_iter()
        .zip(sizes)
        .map(|(key, (len, multipart))| Write {
            key,
            body: body(rng, len),
            multipart,
        })
        .collect();
    out.shuffle(rng);
    out
}

/// Runs one write to the end; the upload id of a multipart upload is
/// recorded as soon as it is known.
async fn write(client: &Client, w: &Write, out: &mut Outcome) -> Result<String, String> {
    let err = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    if !w.multipart {
        let r = client
            .put_object()
            .bucket(BUCKET)
            .key(&w.key)
            .body(ByteStream::from(w.body.as_ref().clone()))
            .send()
            .await
            .map_err(|e| err("PutObject", &aws_sdk_s3::error::DisplayErrorContext(e)))?;
        return Ok(r.e_tag().unwrap_or_default().to_owned());
    }
    let id = client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&w.key)
        .send()
        .await
        .map_err(|e| {
            err(
                "CreateMultipartUpload",
                &aws_sdk_s3::error::DisplayErrorContext(e),
            )
        })?
        .upload_id()
        .expect("upload id")
        .to_owned();
    out.upload_id = Some(id.clone());
    let mut parts = Vec::new();
    for (i, chunk) in w.body.chunks(PART).enumerate() {
        let n = i as i32 + 1;
        let r = client
            .upload_part()
            .bucket(BUCKET)
            .key(&w.key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| err("UploadPart", &aws_sdk_s3::error::DisplayErrorContext(e)))?;
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap_or_default())
                .build(),
        );
    }
    let r = client
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(&w.key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            err(
                "CompleteMultipartUpload",
                &aws_sdk_s3::error::DisplayErrorContext(e),
            )
        })?;
    Ok(r.e_tag().unwrap_or_default().to_owned())
}

/// Starts every write at once; `acks` hears the index of each acknowledged
/// one. An acknowledgement must carry the ETag of the body sent.
fn spawn_writes(
    client: &Client,
    writes: &[Write],
    acks: tokio::sync::mpsc::UnboundedSender<usize>,
) -> tokio::task::JoinSet<(usize, Outcome)> {
    let mut set = tokio::task::JoinSet::new();
    for (i, w) in writes.iter().enumerate() {
        let (client, w, acks) = (client.clone(), w.clone(), acks.clone());
        set.spawn(async move {
            let mut out = Outcome::default();
            match write(&client, &w, &mut out).await {
                Ok(etag) => {
                    assert_eq!(etag, w.etag(), "acknowledged ETag of {}", w.key);
                    out.acked = true;
                    let _ = acks.send(i);
                }
                Err(e) => out.error = Some(e),
            }
            out.finished = Some(Instant::now());
            (i, out)
        });
    }
    set
}

/// The server log lines that mention one of `needles`, plus its startup
/// lines, warnings and errors but the one line per recovered overwrite (at
/// most the last 300).
fn log_excerpt(s: &TestServer, needles: &[&str]) -> String {
    let log = s.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| {
            needles.iter().any(|n| l.contains(n))
                || (["WARN", "ERROR", "listening", "garbage collection"]
                    .iter()
                    .any(|n| l.contains(n))
                    && !l.contains("recovered an overwrite"))
        })
        .collect();
    lines[lines.len().saturating_sub(300)..].join("\n")
}

/// A wall-clock time to the millisecond, UTC, to compare with log lines.
fn clock(t: SystemTime) -> String {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_millis();
    format!("{} +{ms:03} ms", httpdate::fmt_http_date(t))
}

/// A GET through cloudmux: the bytes and the ETag, or `None` for 404.
async fn read_key(client: &Client, key: &str) -> Result<Option<(Vec<u8>, String)>, String> {
    match client.get_object().bucket(BUCKET).key(key).send().await {
        Ok(out) => {
            let etag = out.e_tag().unwrap_or_default().to_owned();
            let len = out.content_length();
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| format!("reading the body: {e}"))?
                .into_bytes()
                .to_vec();
            if len != Some(bytes.len() as i64) {
                return Err(format!(
                    "Content-Length {len:?} but {} bytes arrived",
                    bytes.len()
                ));
            }
            Ok(Some((bytes, etag)))
        }
        Err(e) if e.status() == 404 => Ok(None),
        Err(e) => Err(format!(
            "GET failed: {} (status {})",
            aws_sdk_s3::error::DisplayErrorContext(&e),
            e.status()
        )),
    }
}

/// Every object the cloudmux listing shows: key, size and ETag.
async fn list_objects(client: &Client) -> BTreeMap<String, (i64, String)> {
    let mut out = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let page = ok(client
            .list_objects_v2()
            .bucket(BUCKET)
            .set_continuation_token(token.take())
            .send()
            .await);
        for o in page.contents() {
            out.insert(
                o.key().expect("key").to_owned(),
                (
                    o.size().unwrap_or(-1),
                    o.e_tag().unwrap_or_default().to_owned(),
                ),
            );
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    out
}

/// The open multipart uploads of the bucket: (key, upload id).
async fn list_uploads(client: &Client) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (mut key_marker, mut id_marker) = (None, None);
    loop {
        let page = ok(client
            .list_multipart_uploads()
            .bucket(BUCKET)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(id_marker.take())
            .send()
            .await);
        out.extend(page.uploads().iter().map(|u| {
            (
                u.key().unwrap_or_default().to_owned(),
                u.upload_id().unwrap_or_default().to_owned(),
            )
        }));
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        id_marker = page.next_upload_id_marker().map(str::to_owned);
    }
    out
}

fn seed() -> u64 {
    match std::env::var("CLOUDMUX_CRASH_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("CLOUDMUX_CRASH_SEED={s:?}: {e}")),
        Err(_) => rand::rng().random(),
    }
}

/// Crash rounds per test: `CLOUDMUX_CRASH_ROUNDS`, default 2.
fn rounds() -> usize {
    std::env::var("CLOUDMUX_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(2)
}

/// What a key was found to hold after a restart.
enum Held {
    /// Nothing (404).
    Absent,
    /// The last write acknowledged before the kill.
    Acknowledged(Write),
    /// A write that was in flight at the kill and not acknowledged, whole.
    InFlight(Write),
}

/// Reads `key` after the restart and checks it against the invariant:
/// `older` is its last acknowledged write before this round (if any),
/// `this` the write of this round (if any) and how it ended.
async fn check_key(
    s: &TestServer,
    target: &Target,
    client: &Client,
    ctx: &str,
    key: &str,
    older: Option<&Write>,
    this: Option<(&Write, &Outcome)>,
) -> Held {
    let got = match read_key(client, key).await {
        Ok(got) => got,
        Err(e) => panic!(
            "{ctx} {key}: {e}\nthe native object: {}\nserver log:\n{}",
            target.describe(&format!("{BUCKET}/{key}")).await,
            log_excerpt(s, &[key])
        ),
    };
    let acked = this.filter(|(_, o)| o.acked).map(|(w, _)| w);
    let last_acked = acked.or(older);
    let Some((bytes, etag)) = got else {
        assert!(
            last_acked.is_none(),
            "{ctx} {key}: the acknowledged {} is gone (404){}\nserver log:\n{}",
            last_acked.map(Write::describe).unwrap_or_default(),
            if acked.is_none() && this.is_some() {
                " after an unacknowledged overwrite"
            } else {
                ""
            },
            log_excerpt(s, &[key])
        );
        return Held::Absent;
    };
    let holds = |w: &Write| w.body.as_slice() == bytes.as_slice();
    let held = match (this, acked) {
        (Some((w, _)), Some(_)) => {
            assert!(
                holds(w),
                "{ctx} {key}: the acknowledged {} reads back {} other bytes ({etag}){}\n\
                 server log:\n{}",
                w.describe(),
                bytes.len(),
                if older.is_some_and(holds) {
                    ": the older acknowledged write came back"
                } else {
                    ""
                },
                log_excerpt(s, &[key])
            );
            Held::Acknowledged(w.clone())
        }
        (Some((w, _)), None) if holds(w) => Held::InFlight(w.clone()),
        _ => match older.filter(|o| holds(o)) {
            Some(o) => Held::Acknowledged(o.clone()),
            None => panic!(
                "{ctx} {key}: reads back {} bytes ({etag}) that are neither {} nor {}: \
                 a mix or a stranger\nserver log:\n{}",
                bytes.len(),
                older
                    .map(|o| format!("the acknowledged {}", o.describe()))
                    .unwrap_or_else(|| "an acknowledged write".into()),
                this.map(|(w, _)| format!("the in-flight {}", w.describe()))
                    .unwrap_or_else(|| "a write in flight".into()),
                log_excerpt(s, &[key])
            ),
        },
    };
    let w = match &held {
        Held::Acknowledged(w) | Held::InFlight(w) => w,
        Held::Absent => unreachable!(),
    };
    assert_eq!(etag, w.etag(), "{ctx} {key}: GET ETag");
    held
}

/// The whole scenario on one cloud (see the module documentation).
async fn crash_on(cloud: Cloud) {
    let started = Instant::now();
    let seed = seed();
    let rounds = rounds();
    eprintln!(
        "{cloud:?}: seed {seed}, {rounds} rounds (replay with CLOUDMUX_CRASH_SEED={seed} \
         CLOUDMUX_CRASH_ROUNDS={rounds})"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let target = Target::create(cloud).await;
    let mut s = TestServer::start_with(ServerOptions {
        extra_config: format!(
            "{}\n[gc]\nmin_age_secs = 0\n",
            target.location_config(GRACE_MS)
        ),
        env: vec![("CLOUDMUX_LOG".into(), "info".into())],
        ..Default::default()
    });
    create_bucket_on(&s.client(ALICE), BUCKET, "cloud").await;

    // Round zero: the keys to be overwritten are written and acknowledged.
    let prefill = writes(
        &mut rng,
        (0..OVERWRITES).map(|i| format!("old/{i:03}")).collect(),
        1,
        1,
        5,
    );
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let mut set = spawn_writes(&s.client(ALICE), &prefill, tx);
    while let Some(r) = set.join_next().await {
        let (i, out) = r.expect("prefill writer panicked");
        assert!(
            out.acked,
            "[{cloud:?}, CLOUDMUX_CRASH_SEED={seed}] prefill of {} failed: {:?}",
            prefill[i].key, out.error
        );
    }
    eprintln!(
        "{cloud:?}: {OVERWRITES} keys written in {:?}",
        started.elapsed()
    );
    // Every key's last acknowledged write, which it must hold when no
    // write to it is in flight (`None`: it must be absent).
    let mut durable: BTreeMap<String, Option<Write>> = prefill
        .into_iter()
        .map(|w| (w.key.clone(), Some(w)))
        .collect();

    for round in 1..=rounds {
        let ctx = format!("[{cloud:?} round {round}, CLOUDMUX_CRASH_SEED={seed}]");
        let mut overwritten: Vec<String> = durable
            .iter()
            .filter(|(_, w)| w.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        overwritten.shuffle(&mut rng);
        overwritten.truncate(OVERWRITES);
        let fresh = WRITERS - overwritten.len();
        let keys = overwritten
            .into_iter()
            .chain((0..fresh).map(|i| format!("new{round}/{i:03}")))
            .collect();
        let crash = writes(&mut rng, keys, 2, 1, 10);
        let kill_after = rng.random_range(10..=150);

        // 200 writers at once; SIGKILL after `kill_after` acknowledgements.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut set = spawn_writes(&s.client(ALICE), &crash, tx);
        let mut acks_seen = 0;
        while acks_seen < kill_after {
            match rx.recv().await {
                Some(_) => acks_seen += 1,
                None => break,
            }
        }
        let killed_at = Instant::now();
        let wall = SystemTime::now();
        s.kill9();
        let mut outcomes: Vec<Outcome> = (0..crash.len()).map(|_| Outcome::default()).collect();
        while let Some(r) = set.join_next().await {
            let (i, out) = r.expect("crash-round writer panicked");
            outcomes[i] = out;
        }
        let acked = outcomes.iter().filter(|o| o.acked).count();
        let failed_before: Vec<String> = outcomes
            .iter()
            .zip(&crash)
            .filter(|(o, _)| o.error.is_some() && o.finished.is_some_and(|t| t < killed_at))
            .map(|(o, w)| format!("{}: {}", w.key, o.error.as_deref().unwrap_or_default()))
            .collect();
        eprintln!(
            "{ctx}: killed at {} after {acks_seen} acknowledgements (planned {kill_after}); \
             {acked} of {WRITERS} writes acknowledged in all; {} failed before the kill{}",
            clock(wall),
            failed_before.len(),
            if failed_before.is_empty() {
                String::new()
            } else {
                format!(": {:?}", &failed_before[..failed_before.len().min(5)])
            }
        );

        let log_len = s.log().len();
        s.spawn();
        wait_for_recovery(&s, log_len).await;
        let client = s.client(ALICE);

        // Key by key: the last acknowledged write, or a whole in-flight one.
        let this: BTreeMap<&str, (&Write, &Outcome)> = crash
            .iter()
            .zip(&outcomes)
            .map(|(w, o)| (w.key.as_str(), (w, o)))
            .collect();
        let all: BTreeSet<String> = durable
            .keys()
            .cloned()
            .chain(crash.iter().map(|w| w.key.clone()))
            .collect();
        let (mut acknowledged, mut in_flight, mut absent) = (0, 0, 0);
        let mut present: BTreeMap<String, Write> = BTreeMap::new();
        for key in &all {
            let older = durable.get(key).and_then(Option::as_ref);
            let held = check_key(
                &s,
                &target,
                &client,
                &ctx,
                key,
                older,
                this.get(key.as_str()).copied(),
            )
            .await;
            let now = match held {
                Held::Absent => {
                    absent += 1;
                    None
                }
                Held::Acknowledged(w) => {
                    acknowledged += 1;
                    Some(w)
                }
                Held::InFlight(w) => {
                    in_flight += 1;
                    Some(w)
                }
            };
            if let Some(w) = &now {
                present.insert(key.clone(), w.clone());
            }
            durable.insert(key.clone(), now);
        }
        eprintln!(
            "{ctx}: {} keys hold their last acknowledged write, {in_flight} an unacknowledged \
             one; {absent} absent",
            acknowledged
        );

        // The listing shows exactly the readable keys, with their ETag and
        // size.
        let listed = list_objects(&client).await;
        assert_eq!(
            listed.keys().collect::<Vec<_>>(),
            present.keys().collect::<Vec<_>>(),
            "{ctx} the listing shows exactly the keys that read back"
        );
        for (key, (size, etag)) in &listed {
            let w = &present[key];
            assert_eq!(*size, w.body.len() as i64, "{ctx} {key}: listed Size");
            assert_eq!(*etag, w.etag(), "{ctx} {key}: listed ETag");
        }

        // No acknowledged Complete left its upload open; the uploads the
        // kill interrupted are aborted, as their clients would.
        let acked_uploads: BTreeSet<&str> = outcomes
            .iter()
            .filter(|o| o.acked)
            .filter_map(|o| o.upload_id.as_deref())
            .collect();
        let open = list_uploads(&client).await;
        for (key, id) in &open {
            assert!(
                !acked_uploads.contains(id.as_str()),
                "{ctx} {key}: the upload {id} of an acknowledged Complete is still open"
            );
            ok(client
                .abort_multipart_upload()
                .bucket(BUCKET)
                .key(key)
                .upload_id(id)
                .send()
                .await);
        }
        assert!(
            list_uploads(&client).await.is_empty(),
            "{ctx} uploads left after Abort"
        );

        // The cloud holds exactly the listed objects, with the bytes
        // cloudmux serves, and nothing else.
        let native = target.listing().await;
        let expected: BTreeMap<String, u64> = present
            .iter()
            .map(|(k, w)| (format!("{BUCKET}/{k}"), w.body.len() as u64))
            .collect();
        let extra: Vec<&String> = native
            .objects
            .keys()
            .filter(|n| !expected.contains_key(*n))
            .collect();
        let mut extra_details = Vec::new();
        for name in &extra {
            extra_details.push(target.describe(name).await);
        }
        let missing: Vec<&String> = expected
            .keys()
            .filter(|n| !native.objects.contains_key(*n))
            .collect();
        assert!(
            extra.is_empty() && missing.is_empty() && native.leftovers.is_empty(),
            "{ctx} the native listing differs from the records ({} open uploads aborted):\n\
             not named by a record: {extra:?}\nmissing: {missing:?}\nother leftovers: {:?}\n\
             the unnamed objects: {extra_details:#?}\nserver log:\n{}",
            open.len(),
            native.leftovers,
            log_excerpt(
                &s,
                &extra
                    .iter()
                    .map(|n| &n[BUCKET.len() + 1..])
                    .collect::<Vec<_>>()
            )
        );
        for (name, size) in &native.objects {
            assert_eq!(size, &expected[name], "{ctx} {name}: native size");
            let w = &present[&name[BUCKET.len() + 1..]];
            assert!(
                target.read(name).await == *w.body,
                "{ctx} {name}: the native bytes differ from what cloudmux serves"
            );
        }
        eprintln!(
            "{ctx}: {} native objects match the records ({} open uploads aborted); {:?} so far",
            native.objects.len(),
            open.len(),
            started.elapsed()
        );
    }

    // The server still works normally.
    let client = s.client(ALICE);
    put_object(&client, BUCKET, "after", b"after the restart").await;
    assert_eq!(
        get_object(&client, BUCKET, "after").await,
        b"after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_puts_and_overwrites_on_moto() {
    crash_on(Cloud::Moto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_puts_and_overwrites_on_azurite() {
    crash_on(Cloud::Azurite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_puts_and_overwrites_on_fake_gcs() {
    crash_on(Cloud::FakeGcs).await;
}
