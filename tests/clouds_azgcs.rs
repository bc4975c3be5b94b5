//! The foundation's operation suite (put, get, head, ranges, copy, delete,
//! list, multipart 5 MiB + 5 MiB + 1 KiB uploaded in reverse order, abort)
//! through cloudmux with aws-sdk-s3, against buckets whose LocationConstraint
//! is an `azure` location on Azurite or a `gcs` location on fake-gcs-server.
//! Each test starts its emulator on a free loopback port and stops it after.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
};
use aws_sdk_s3::Client;
use cloudmux_e2e::*;

const MIB: usize = 1024 * 1024;
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An emulator child process, killed on drop.
struct Emulator {
    child: Child,
}

impl Emulator {
    fn start(cmd: &str, args: &[String], port: u16) -> Self {
        let mut child = Command::new(cmd)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {cmd} ({e}); run scripts/install-test-deps.sh")
            });
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(s)) = child.try_wait() {
                panic!("{cmd} exited early: {s}");
            }
            assert!(Instant::now() < deadline, "{cmd} did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn azurite() -> (Emulator, String) {
    let port = free_port();
    let args: Vec<String> = [
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &port.to_string(),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let e = Emulator::start("azurite-blob", &args, port);
    let config = format!(
        r#"
[locations.azure-main]
type = "azure"
account = "devstoreaccount1"
account_key = "{AZURITE_KEY}"
endpoint = "http://127.0.0.1:{port}/devstoreaccount1"
container = "cloudmux"
request_timeout_ms = 5000
"#
    );
    let table: cloudmux_data::azure::AzureConfig =
        toml::from_str(config.split_once("type = \"azure\"\n").unwrap().1).unwrap();
    cloudmux_data::azure::AzureBackend::new("setup", &table)
        .unwrap()
        .create_container()
        .await
        .unwrap();
    (e, config)
}

fn fake_gcs_server() -> String {
    cloudmux_e2e::clouds::fake_gcs_binary()
}

async fn fake_gcs() -> (Emulator, String) {
    let port = free_port();
    let args: Vec<String> = [
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        &port.to_string(),
        "-backend",
        "memory",
        "-log-level",
        "error",
        "-public-host",
        &format!("127.0.0.1:{port}"),
        "-external-url",
        &format!("http://127.0.0.1:{port}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let e = Emulator::start(&fake_gcs_server(), &args, port);
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/storage/v1/b"))
        .header("content-type", "application/json")
        .body(r#"{"name":"cloudmux"}"#)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let config = format!(
        r#"
[locations.gcs-main]
type = "gcs"
bucket = "cloudmux"
endpoint = "http://127.0.0.1:{port}"
request_timeout_ms = 5000
"#
    );
    (e, config)
}

async fn bucket_in(c: &Client, bucket: &str, location: &str) {
    ok(c.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(location))
                .build(),
        )
        .send()
        .await);
    let loc = ok(c.get_bucket_location().bucket(bucket).send().await);
    assert_eq!(
        loc.location_constraint().map(|l| l.as_str()),
        Some(location)
    );
}

async fn range(c: &Client, bucket: &str, key: &str, r: &str) -> Vec<u8> {
    let out = ok(c.get_object().bucket(bucket).key(key).range(r).send().await);
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// The operation suite on one bucket.
async fn suite(c: &Client, bucket: &str) {
    let body = random_bytes(2 * MIB + 3);
    let etag = ok(c
        .put_object()
        .bucket(bucket)
        .key("a/b.txt")
        .content_type("text/plain")
        .metadata("color", "blue")
        .body(ByteStream::from(body.clone()))
        .send()
        .await)
    .e_tag()
    .unwrap()
    .to_owned();
    assert_eq!(etag, etag_of(&body));
    assert_eq!(get_object(c, bucket, "a/b.txt").await, body);
    let head = ok(c.head_object().bucket(bucket).key("a/b.txt").send().await);
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(range(c, bucket, "a/b.txt", "bytes=0-9").await, body[..10]);
    assert_eq!(
        range(c, bucket, "a/b.txt", "bytes=1048570-1048589").await,
        body[1048570..1048590]
    );
    assert_eq!(
        range(c, bucket, "a/b.txt", "bytes=-5").await,
        body[body.len() - 5..]
    );

    ok(c.copy_object()
        .bucket(bucket)
        .key("copy.txt")
        .copy_source(format!("{bucket}/a/b.txt"))
        .send()
        .await);
    assert_eq!(get_object(c, bucket, "copy.txt").await, body);
    put_object(c, bucket, "a/b.txt", b"replaced").await;
    assert_eq!(get_object(c, bucket, "a/b.txt").await, b"replaced");
    put_object(c, bucket, "empty", b"").await;
    assert!(get_object(c, bucket, "empty").await.is_empty());
    assert_eq!(
        list_keys(c, bucket).await,
        vec!["a/b.txt".to_owned(), "copy.txt".into(), "empty".into()]
    );

    let parts = [
        random_bytes(5 * MIB),
        random_bytes(5 * MIB),
        random_bytes(1024),
    ];
    let id = ok(c
        .create_multipart_upload()
        .bucket(bucket)
        .key("mpu")
        .send()
        .await)
    .upload_id()
    .unwrap()
    .to_owned();
    let mut done = Vec::new();
    for n in (1..=3).rev() {
        let out = ok(c
            .upload_part()
            .bucket(bucket)
            .key("mpu")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(parts[n as usize - 1].clone()))
            .send()
            .await);
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    done.reverse();
    let out = ok(c
        .complete_multipart_upload()
        .bucket(bucket)
        .key("mpu")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await);
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    assert_eq!(out.e_tag(), Some(multipart_etag(&refs).as_str()));
    assert_eq!(get_object(c, bucket, "mpu").await, parts.concat());
    let r = format!("bytes={}-{}", 5 * MIB - 2, 10 * MIB + 1);
    assert_eq!(
        range(c, bucket, "mpu", &r).await,
        parts.concat()[5 * MIB - 2..=10 * MIB + 1]
    );

    let id = ok(c
        .create_multipart_upload()
        .bucket(bucket)
        .key("gone")
        .send()
        .await)
    .upload_id()
    .unwrap()
    .to_owned();
    ok(c.upload_part()
        .bucket(bucket)
        .key("gone")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(parts[2].clone()))
        .send()
        .await);
    ok(c.abort_multipart_upload()
        .bucket(bucket)
        .key("gone")
        .upload_id(&id)
        .send()
        .await);

    for k in ["a/b.txt", "copy.txt", "empty", "mpu"] {
        ok(c.delete_object().bucket(bucket).key(k).send().await);
    }
    assert!(list_keys(c, bucket).await.is_empty());
    ok(c.delete_bucket().bucket(bucket).send().await);
}

#[tokio::test]
async fn operation_suite_on_azure() {
    let (_az, config) = azurite().await;
    let s = TestServer::start_with(ServerOptions {
        extra_config: config,
        ..Default::default()
    });
    let c = s.client(ALICE);
    bucket_in(&c, "on-azure", "azure-main").await;
    suite(&c, "on-azure").await;
}

#[tokio::test]
async fn operation_suite_on_gcs() {
    let (_gcs, config) = fake_gcs().await;
    let s = TestServer::start_with(ServerOptions {
        extra_config: config,
        ..Default::default()
    });
    let c = s.client(ALICE);
    bucket_in(&c, "on-gcs", "gcs-main").await;
    suite(&c, "on-gcs").await;
}

#[tokio::test]
async fn unknown_location_is_refused() {
    let s = TestServer::start();
    let c = s.client(ALICE);
    let r = c
        .create_bucket()
        .bucket("nowhere")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from("no-such-cloud"))
                .build(),
        )
        .send()
        .await;
    assert_sdk_err(r, 400, "InvalidLocationConstraint");
}
