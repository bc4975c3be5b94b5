//! The `s3` location end to end: the foundation's operations (put, get, head,
//! ranges, copy, list, delete, overwrite, multipart complete and abort,
//! placement) on a bucket placed on an fs location, on an s3 location backed
//! by moto, and on an s3 location backed by a second cloudmux; each object is
//! checked in the target with the target's own S3 API. Then the outage test:
//! a hung and a stopped emulator give 503 within the configured timeout, and
//! the location recovers without restarting cloudmux.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
};
use aws_sdk_s3::Client;
use cloudmux_e2e::emulator::{s3_client, start_moto, Emulator};
use cloudmux_e2e::*;

const MIB: usize = 1024 * 1024;
const TARGET: &str = "target-bucket";

/// Where a location's objects can be inspected natively.
enum Native {
    /// An fs location's root directory.
    Fs(PathBuf),
    /// An S3 target: its client and bucket.
    S3(Client),
}

/// An object as the target holds it natively.
#[derive(Debug)]
struct NativeObject {
    data: Vec<u8>,
    content_type: Option<String>,
    meta: HashMap<String, String>,
}

impl Native {
    async fn get(&self, name: &str) -> Option<NativeObject> {
        match self {
            Native::Fs(root) => std::fs::read(root.join(name))
                .ok()
                .map(|data| NativeObject {
                    data,
                    content_type: None,
                    meta: HashMap::new(),
                }),
            Native::S3(c) => {
                let out = c.get_object().bucket(TARGET).key(name).send().await.ok()?;
                let content_type = out.content_type().map(str::to_owned);
                let meta = out.metadata().cloned().unwrap_or_default();
                let data = out.body.collect().await.unwrap().into_bytes().to_vec();
                Some(NativeObject {
                    data,
                    content_type,
                    meta,
                })
            }
        }
    }

    /// Staged data (uploads in flight, parts) and unfinished native
    /// multipart uploads left in the target.
    async fn leftovers(&self) -> Vec<String> {
        match self {
            Native::Fs(root) => {
                let tmp = root.join(".cloudmux/tmp");
                walk(&tmp)
                    .into_iter()
                    .filter(|p| !p.is_dir())
                    .map(|p| p.strip_prefix(&tmp).unwrap().display().to_string())
                    .collect()
            }
            Native::S3(c) => {
                let mut out: Vec<String> = ok(c
                    .list_objects_v2()
                    .bucket(TARGET)
                    .prefix(".cloudmux")
                    .send()
                    .await)
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect();
                let uploads = ok(c.list_multipart_uploads().bucket(TARGET).send().await);
                out.extend(
                    uploads
                        .uploads()
                        .iter()
                        .map(|u| format!("upload of {}", u.key().unwrap_or_default())),
                );
                out
            }
        }
    }
}

/// Starts cloudmux with an s3 location `cloud` pointing at `endpoint`.
fn server_with_s3(endpoint: &str, access: &str, secret: &str, extra: &str) -> TestServer {
    TestServer::start_with(ServerOptions {
        extra_config: format!(
            r#"[locations.cloud]
type = "s3"
endpoint = "{endpoint}"
region = "{REGION}"
bucket = "{TARGET}"
access_key = "{access}"
secret_key = "{secret}"
path_style = true
{extra}
"#
        ),
        ..Default::default()
    })
}

async fn body_of(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// The foundation's operations on bucket `bucket` placed on `location`,
/// checked through cloudmux and natively (`name` maps a key to the target's
/// object name).
async fn suite(
    server: &TestServer,
    location: &str,
    bucket: &str,
    native: &Native,
    name: impl Fn(&str) -> String,
) {
    let c = server.client(ALICE);
    create_bucket_on(&c, bucket, location).await;
    let loc = ok(c.get_bucket_location().bucket(bucket).send().await);
    assert_eq!(
        loc.location_constraint().map(|l| l.as_str()),
        Some(location),
        "GetBucketLocation reports the location name"
    );

    // Put with metadata, then get, head and ranges.
    let data = random_bytes(300_000);
    let put = ok(c
        .put_object()
        .bucket(bucket)
        .key("dir/photo.jpg")
        .content_type("image/jpeg")
        .cache_control("max-age=60")
        .metadata("colour", "blue")
        .metadata("my-key", "Value With Spaces")
        .body(ByteStream::from(data.clone()))
        .send()
        .await);
    assert_eq!(put.e_tag(), Some(etag_of(&data).as_str()));
    let got = ok(c
        .get_object()
        .bucket(bucket)
        .key("dir/photo.jpg")
        .send()
        .await);
    assert_eq!(got.e_tag(), Some(etag_of(&data).as_str()));
    assert_eq!(got.content_type(), Some("image/jpeg"));
    assert_eq!(got.cache_control(), Some("max-age=60"));
    assert_eq!(got.metadata().unwrap()["my-key"], "Value With Spaces");
    assert_eq!(body_of(got).await, data);
    let head = ok(c
        .head_object()
        .bucket(bucket)
        .key("dir/photo.jpg")
        .send()
        .await);
    assert_eq!(head.content_length(), Some(data.len() as i64));
    let range = ok(c
        .get_object()
        .bucket(bucket)
        .key("dir/photo.jpg")
        .range("bytes=1000-1999")
        .send()
        .await);
    assert_eq!(range.content_range(), Some("bytes 1000-1999/300000"));
    assert_eq!(body_of(range).await, &data[1000..2000]);
    let tail = ok(c
        .get_object()
        .bucket(bucket)
        .key("dir/photo.jpg")
        .range("bytes=-10")
        .send()
        .await);
    assert_eq!(body_of(tail).await, &data[data.len() - 10..]);

    let n = native
        .get(&name("dir/photo.jpg"))
        .await
        .expect("the object is a native object in the target");
    assert_eq!(n.data, data);
    if let Native::S3(_) = native {
        assert_eq!(n.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(n.meta.get("colour").map(String::as_str), Some("blue"));
        assert_eq!(
            n.meta.get("my-key").map(String::as_str),
            Some("Value With Spaces")
        );
    }

    // Copy within the location, with and without new metadata.
    let copy = ok(c
        .copy_object()
        .bucket(bucket)
        .key("copy.jpg")
        .copy_source(format!("{bucket}/dir/photo.jpg"))
        .send()
        .await);
    assert_eq!(
        copy.copy_object_result().and_then(|r| r.e_tag()),
        Some(etag_of(&data).as_str())
    );
    let got = ok(c.get_object().bucket(bucket).key("copy.jpg").send().await);
    assert_eq!(got.content_type(), Some("image/jpeg"));
    assert_eq!(got.metadata().unwrap()["colour"], "blue");
    assert_eq!(body_of(got).await, data);
    assert_eq!(native.get(&name("copy.jpg")).await.unwrap().data, data);

    // Overwrite with a body larger than one staging part.
    let big = random_bytes(9 * MIB + 17);
    put_object(&c, bucket, "copy.jpg", &big).await;
    assert_eq!(get_object(&c, bucket, "copy.jpg").await, big);
    assert_eq!(native.get(&name("copy.jpg")).await.unwrap().data, big);

    // Listing.
    put_object(&c, bucket, "dir/b.txt", b"b").await;
    assert_eq!(
        list_keys(&c, bucket).await,
        vec!["copy.jpg", "dir/b.txt", "dir/photo.jpg"]
    );

    // Delete removes the native object.
    ok(c.delete_object()
        .bucket(bucket)
        .key("dir/b.txt")
        .send()
        .await);
    assert!(native.get(&name("dir/b.txt")).await.is_none());
    assert_sdk_err(
        c.get_object().bucket(bucket).key("dir/b.txt").send().await,
        404,
        "NoSuchKey",
    );

    // Multipart: 5 MiB + 5 MiB + 1 KiB, uploaded in reverse order.
    let parts = [
        random_bytes(5 * MIB),
        random_bytes(5 * MIB),
        random_bytes(1024),
    ];
    let id = ok(c
        .create_multipart_upload()
        .bucket(bucket)
        .key("mpu.bin")
        .content_type("application/x-test")
        .metadata("origin", "multipart")
        .send()
        .await)
    .upload_id()
    .unwrap()
    .to_owned();
    let mut etags = vec![String::new(); 3];
    for i in (0..3).rev() {
        let out = ok(c
            .upload_part()
            .bucket(bucket)
            .key("mpu.bin")
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .body(ByteStream::from(parts[i].clone()))
            .send()
            .await);
        etags[i] = out.e_tag().unwrap().to_owned();
    }
    let done = ok(c
        .complete_multipart_upload()
        .bucket(bucket)
        .key("mpu.bin")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(
                    etags
                        .iter()
                        .enumerate()
                        .map(|(i, e)| {
                            CompletedPart::builder()
                                .part_number(i as i32 + 1)
                                .e_tag(e)
                                .build()
                        })
                        .collect(),
                ))
                .build(),
        )
        .send()
        .await);
    let whole: Vec<u8> = parts.concat();
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    assert_eq!(done.e_tag(), Some(multipart_etag(&refs).as_str()));
    assert_eq!(get_object(&c, bucket, "mpu.bin").await, whole);
    let n = native.get(&name("mpu.bin")).await.unwrap();
    assert_eq!(n.data, whole, "one native object holds the whole upload");
    if let Native::S3(_) = native {
        assert_eq!(n.content_type.as_deref(), Some("application/x-test"));
        assert_eq!(n.meta.get("origin").map(String::as_str), Some("multipart"));
    }
    assert_eq!(
        native.leftovers().await,
        Vec::<String>::new(),
        "parts are gone after Complete"
    );

    // Abort removes every staged part.
    let id = ok(c
        .create_multipart_upload()
        .bucket(bucket)
        .key("aborted.bin")
        .send()
        .await)
    .upload_id()
    .unwrap()
    .to_owned();
    for (i, p) in parts.iter().enumerate().rev() {
        ok(c.upload_part()
            .bucket(bucket)
            .key("aborted.bin")
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .body(ByteStream::from(p.clone()))
            .send()
            .await);
    }
    ok(c.abort_multipart_upload()
        .bucket(bucket)
        .key("aborted.bin")
        .upload_id(&id)
        .send()
        .await);
    assert_eq!(
        native.leftovers().await,
        Vec::<String>::new(),
        "parts are gone after Abort"
    );
    assert!(native.get(&name("aborted.bin")).await.is_none());
}

/// Per-object placement: the header sends one object of a bucket on the
/// default location to `location`; an unknown name is refused.
async fn placement(server: &TestServer, location: &str, native: &Native, prefix: &str) {
    let c = server.client(ALICE);
    create_bucket(&c, "placed").await;
    let loc = ok(c.get_bucket_location().bucket("placed").send().await);
    assert_eq!(
        loc.location_constraint()
            .map(|l| l.as_str())
            .filter(|l| !l.is_empty()),
        None
    );
    ok(c.put_object()
        .bucket("placed")
        .key("here.txt")
        .metadata("scal-location-constraint", location)
        .body(ByteStream::from_static(b"placed by header"))
        .send()
        .await);
    assert_eq!(
        get_object(&c, "placed", "here.txt").await,
        b"placed by header"
    );
    assert_eq!(
        native
            .get(&format!("{prefix}placed/here.txt"))
            .await
            .expect("the header placed the object in the cloud")
            .data,
        b"placed by header"
    );
    put_object(&c, "placed", "local.txt", b"default").await;
    assert!(native
        .get(&format!("{prefix}placed/local.txt"))
        .await
        .is_none());
    assert_sdk_err(
        c.put_object()
            .bucket("placed")
            .key("nowhere.txt")
            .metadata("scal-location-constraint", "no-such-location")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        400,
        "InvalidLocationConstraint",
    );
    assert_sdk_err(
        c.create_bucket()
            .bucket("nowhere")
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from("no-such-location"))
                    .build(),
            )
            .send()
            .await,
        400,
        "InvalidLocationConstraint",
    );
}

async fn moto_target(moto: &Emulator) -> Client {
    let target = s3_client(&moto.endpoint(), "test", "test");
    ok(target.create_bucket().bucket(TARGET).send().await);
    target
}

#[tokio::test]
async fn the_suite_runs_on_an_fs_location() {
    let server = TestServer::start();
    let native = Native::Fs(server.data_dir().join("objects2"));
    suite(&server, "second", "on-fs", &native, |k| {
        format!("on-fs/{k}")
    })
    .await;
}

#[tokio::test]
async fn the_suite_runs_on_an_s3_location_backed_by_moto() {
    let moto = start_moto();
    let native = Native::S3(moto_target(&moto).await);
    let server = server_with_s3(&moto.endpoint(), "test", "test", "");
    suite(&server, "cloud", "on-moto", &native, |k| {
        format!("on-moto/{k}")
    })
    .await;
    placement(&server, "cloud", &native, "").await;

    // A copy within the cloud is server-side: cloudmux never reads the source.
    let c = server.client(ALICE);
    let data = random_bytes(100_000);
    put_object(&c, "on-moto", "src.bin", &data).await;
    let before = moto.log().len();
    ok(c.copy_object()
        .bucket("on-moto")
        .key("dst.bin")
        .copy_source("on-moto/src.bin")
        .send()
        .await);
    let during = moto.log()[before..].to_owned();
    assert!(
        !during.contains("GET /target-bucket/on-moto/src.bin"),
        "the copy read the source through cloudmux:\n{during}"
    );
    assert_eq!(get_object(&c, "on-moto", "dst.bin").await, data);
    assert_eq!(native.get("on-moto/dst.bin").await.unwrap().data, data);
    assert!(
        moto.log().contains("GET /target-bucket/on-moto/dst.bin"),
        "moto logs the GETs cloudmux sends"
    );

    // A body that fails its digest leaves nothing in the cloud, small or
    // large (the large one had started a native multipart upload).
    for size in [1000, 9 * MIB] {
        let r = server
            .raw("PUT", "/on-moto/bad-digest")
            .header("content-md5", &md5_b64(b"something else"))
            .body(random_bytes(size))
            .send()
            .await;
        r.assert_error(400, "BadDigest");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = native.leftovers().await;
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "left behind: {left:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(native.get("on-moto/bad-digest").await.is_none());

    // Copies across locations stream: fs to the cloud and back.
    ok(c.copy_object()
        .bucket("on-moto")
        .key("from-fs.txt")
        .copy_source("placed/local.txt")
        .send()
        .await);
    assert_eq!(
        native.get("on-moto/from-fs.txt").await.unwrap().data,
        b"default"
    );
    ok(c.copy_object()
        .bucket("placed")
        .key("from-cloud.bin")
        .copy_source("on-moto/src.bin")
        .send()
        .await);
    assert_eq!(get_object(&c, "placed", "from-cloud.bin").await, data);
    assert!(native.get("placed/from-cloud.bin").await.is_none());
}

#[tokio::test]
async fn the_suite_runs_on_an_s3_location_backed_by_another_cloudmux() {
    let target_server = TestServer::start();
    let target = target_server.client(BOB);
    create_bucket(&target, TARGET).await;
    let native = Native::S3(target);
    let server = server_with_s3(
        &target_server.endpoint(),
        BOB.access_key,
        BOB.secret_key,
        "bucket_match = true",
    );
    suite(&server, "cloud", "mirrored", &native, |k| k.to_owned()).await;
}

#[tokio::test]
async fn a_target_that_is_down_gives_503_within_the_timeout_and_recovers() {
    let mut moto = start_moto();
    let target = moto_target(&moto).await;
    let server = server_with_s3(
        &moto.endpoint(),
        "test",
        "outage-secret-never-logged",
        "request_timeout_ms = 2000\nconnect_timeout_ms = 1000\nmax_retries = 2",
    );
    let c = server.client(ALICE);
    create_bucket_on(&c, "outage", "cloud").await;
    put_object(&c, "outage", "before", b"written before the outage").await;

    let limit = Duration::from_millis(2000 + 1500);
    let expect_503 = |what: &str, started: Instant, r: RawResponse| {
        r.assert_error(503, "ServiceUnavailable");
        let took = started.elapsed();
        assert!(took < limit, "{what} took {took:?} (limit {limit:?})");
    };

    // A hung target (frozen process): every call runs into the timeout.
    moto.pause();
    let t = Instant::now();
    let r = server
        .raw("PUT", "/outage/during")
        .body(b"x".to_vec())
        .send()
        .await;
    expect_503("PUT on a hung target", t, r);
    let t = Instant::now();
    let r = server.raw("GET", "/outage/before").send().await;
    expect_503("GET on a hung target", t, r);
    moto.resume();
    assert_eq!(
        get_object(&c, "outage", "before").await,
        b"written before the outage"
    );
    put_object(&c, "outage", "after-hang", b"back").await;
    assert_eq!(get_object(&c, "outage", "after-hang").await, b"back");

    // A stopped target (connection refused): retries, then 503.
    moto.stop();
    let t = Instant::now();
    let r = server
        .raw("PUT", "/outage/during")
        .body(b"x".to_vec())
        .send()
        .await;
    expect_503("PUT on a stopped target", t, r);
    let t = Instant::now();
    let r = server.raw("GET", "/outage/before").send().await;
    expect_503("GET on a stopped target", t, r);
    let log = server.log();
    assert!(
        log.contains("location unavailable") && log.contains("location cloud"),
        "the log names the location: {log}"
    );
    assert!(!log.contains("outage-secret-never-logged"));

    // The emulator comes back empty (it keeps no state): the operator
    // recreates the target bucket, and cloudmux works again without a restart.
    moto.restart();
    let t = Instant::now();
    let r = server.raw("GET", "/outage/before").send().await;
    expect_503("GET while the target bucket is missing", t, r);
    ok(target.create_bucket().bucket(TARGET).send().await);
    put_object(&c, "outage", "after-restart", b"works again").await;
    assert_eq!(
        get_object(&c, "outage", "after-restart").await,
        b"works again"
    );
    drop(moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overwrites_on_an_s3_location_survive_a_sigkill() {
    const KEYS: usize = 30;
    let moto = start_moto();
    let target = moto_target(&moto).await;
    let mut server = server_with_s3(&moto.endpoint(), "test", "test", "");
    let c = server.client(ALICE);
    create_bucket_on(&c, "crashy", "cloud").await;
    let old: Vec<Vec<u8>> = (0..KEYS).map(|_| random_bytes(20_000)).collect();
    let new: Vec<Vec<u8>> = (0..KEYS).map(|_| random_bytes(300_000)).collect();
    for (i, body) in old.iter().enumerate() {
        put_object(&c, "crashy", &format!("k{i:02}"), body).await;
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let mut set = tokio::task::JoinSet::new();
    for (i, body) in new.iter().enumerate() {
        let (c, tx, body) = (c.clone(), tx.clone(), body.clone());
        set.spawn(async move {
            let r = c
                .put_object()
                .bucket("crashy")
                .key(format!("k{i:02}"))
                .body(ByteStream::from(body))
                .send()
                .await;
            if r.is_ok() {
                let _ = tx.send(i);
            }
        });
    }
    drop(tx);
    let mut acked = std::collections::BTreeSet::new();
    while acked.len() < KEYS / 3 {
        match rx.recv().await {
            Some(i) => {
                acked.insert(i);
            }
            None => break,
        }
    }
    server.kill9();
    while set.join_next().await.is_some() {}
    while let Ok(i) = rx.try_recv() {
        acked.insert(i);
    }

    server.spawn();
    let c = server.client(ALICE);
    for i in 0..KEYS {
        let key = format!("k{i:02}");
        let got = get_object(&c, "crashy", &key).await;
        if acked.contains(&i) {
            assert_eq!(got, new[i], "{key}: an acknowledged overwrite survived");
        } else {
            assert!(
                got == old[i] || got == new[i],
                "{key}: whole old or new data"
            );
        }
        let head = ok(c.head_object().bucket("crashy").key(&key).send().await);
        assert_eq!(head.e_tag(), Some(etag_of(&got).as_str()), "{key}: ETag");
        let native = Native::S3(target.clone())
            .get(&format!("crashy/{key}"))
            .await
            .expect("native object");
        assert_eq!(
            native.data, got,
            "{key}: the cloud holds what cloudmux serves"
        );
    }
}
