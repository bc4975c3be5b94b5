//! `cloudmux meta export FILE` and `cloudmux meta import FILE`: the online
//! metadata backup.
//!
//! Export asks a running server for a consistent snapshot of its metadata
//! store (`GET /_/meta/export`, signed with SigV4 by an `admin = true`
//! account whose keys come from `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY`, region from `AWS_REGION` or `AWS_DEFAULT_REGION`),
//! checks it, and writes it to FILE. Import loads such a file into the
//! configured metadata store, which must be empty (a new store), with the
//! server stopped. Object data stays where it is: a restore makes the
//! locations' objects reachable again.

use std::path::Path;
use std::time::SystemTime;

use crate::config::Config;

/// Reads one environment variable, naming it when it is missing.
fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// `cloudmux meta export FILE`: saves the snapshot of the server at
/// `endpoint` and answers the number of entries saved.
pub async fn export(file: &Path, endpoint: &str) -> Result<usize, String> {
    let access = env("AWS_ACCESS_KEY_ID")?;
    let secret = env("AWS_SECRET_ACCESS_KEY")?;
    let region = env("AWS_REGION")
        .or_else(|_| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".into());
    let url = format!(
        "{}{}",
        endpoint.trim_end_matches('/'),
        cloudmux_s3::ops::META_EXPORT_PATH
    );
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| format!("{url}: no host"))?;
    let mut req = http::Request::builder()
        .method("GET")
        .uri(&url)
        .header("host", &host)
        .body(())
        .map_err(|e| e.to_string())?;
    let identity = aws_credential_types::Credentials::new(access, secret, None, None, "env").into();
    let mut settings = aws_sigv4::http_request::SigningSettings::default();
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = aws_sigv4::http_request::SignableRequest::new(
        "GET",
        url.clone(),
        req.headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v))),
        aws_sigv4::http_request::SignableBody::Bytes(&[]),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(&mut req);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let mut call = client.get(&url);
    for (k, v) in req.headers() {
        call = call.header(k.as_str(), v.as_bytes());
    }
    let resp = call.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    let entries = cloudmux_meta::backup::decode(&bytes).map_err(|e| e.to_string())?;
    let tmp = file.with_extension("partial");
    std::fs::write(&tmp, &bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(entries.len())
}

/// `cloudmux meta import FILE`: loads a backup into the (empty) metadata
/// store of `cfg` and answers the number of entries loaded.
pub async fn import(file: &Path, cfg: &Config) -> Result<usize, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let store = cloudmux_meta::SledStore::open(&cfg.metadata.path)
        .map_err(|e| format!("metadata.path {}: {e}", cfg.metadata.path.display()))?;
    cloudmux_meta::backup::import(&store, &bytes)
        .await
        .map_err(|e| e.to_string())
}
