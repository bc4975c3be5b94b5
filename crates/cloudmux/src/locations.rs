//! Building the configured locations' backends, and `cloudmux locations
//! check`: a live test of each location printed as a table.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use cloudmux_data::{Backend, BodyStream};
use futures_util::StreamExt;

use crate::config::{LocationConfig, LocationKind};

/// Opens one location's backend. Errors name the location.
pub fn open(l: &LocationConfig) -> Result<Arc<dyn Backend>, String> {
    let backend: Arc<dyn Backend> = match &l.kind {
        LocationKind::Fs(fs) => Arc::new(
            cloudmux_data::fs::FsBackend::open(fs)
                .map_err(|e| format!("locations.{}: {e}", l.name))?,
        ),
        LocationKind::S3(s3) => Arc::new(
            cloudmux_data::s3::S3Backend::new(&l.name, s3)
                .map_err(|e| format!("locations.{}.{e}", l.name))?,
        ),
        LocationKind::Azure(az) => Arc::new(
            cloudmux_data::azure::AzureBackend::new(&l.name, az)
                .map_err(|e| format!("locations.{}: {e}", l.name))?,
        ),
        LocationKind::Gcs(gcs) => Arc::new(
            cloudmux_data::gcs::GcsBackend::new(&l.name, gcs)
                .map_err(|e| format!("locations.{}: {e}", l.name))?,
        ),
    };
    Ok(backend)
}

/// The location's type and target, for the table (never credentials).
fn describe(l: &LocationConfig) -> (&'static str, String) {
    match &l.kind {
        LocationKind::Fs(fs) => ("fs", fs.path.display().to_string()),
        LocationKind::S3(s3) => (
            "s3",
            format!("{}/{}", s3.endpoint.as_deref().unwrap_or("aws"), s3.bucket),
        ),
        LocationKind::Azure(az) => (
            "azure",
            format!(
                "{}/{}",
                az.endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://{}.blob.core.windows.net", az.account)),
                az.container
            ),
        ),
        LocationKind::Gcs(gcs) => (
            "gcs",
            format!(
                "{}/{}",
                gcs.endpoint
                    .as_deref()
                    .unwrap_or("https://storage.googleapis.com"),
                gcs.bucket
            ),
        ),
    }
}

/// The outcome of one step of a check.
enum Step {
    Ok,
    Failed(String),
    Skipped,
}

impl Step {
    fn cell(&self) -> &'static str {
        match self {
            Step::Ok => "ok",
            Step::Failed(_) => "FAIL",
            Step::Skipped => "-",
        }
    }
}

/// The probe object's content.
const PROBE: &[u8] = b"cloudmux locations check probe\n";

/// Checks one location: it answers with these credentials and its bucket or
/// container exists (`probe`), a probe object can be written (staged), read
/// back intact and deleted. Returns the four steps.
async fn check_one(backend: &dyn Backend) -> [Step; 4] {
    if let Err(e) = backend.probe().await {
        return [
            Step::Failed(e.to_string()),
            Step::Skipped,
            Step::Skipped,
            Step::Skipped,
        ];
    }
    let body: BodyStream = Box::pin(futures_util::stream::once(async {
        Ok(Bytes::from_static(PROBE))
    }));
    let staged = match backend.stage(body).await {
        Ok(s) => s,
        Err(e) => {
            return [
                Step::Ok,
                Step::Failed(e.to_string()),
                Step::Skipped,
                Step::Skipped,
            ]
        }
    };
    let read = match backend.read_staged(&staged, None).await {
        Ok(mut stream) => {
            let mut got = Vec::new();
            let mut failed = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(b) => got.extend_from_slice(&b),
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
            match failed {
                Some(e) => Step::Failed(e),
                None if got == PROBE => Step::Ok,
                None => Step::Failed("the probe object read back differently".into()),
            }
        }
        Err(e) => Step::Failed(e.to_string()),
    };
    let delete = match backend.discard(&staged).await {
        Ok(()) => Step::Ok,
        Err(e) => Step::Failed(e.to_string()),
    };
    [Step::Ok, Step::Ok, read, delete]
}

/// Runs `cloudmux locations check` on the validated locations and prints the
/// table to `out`. Returns whether every location passed.
pub async fn check(locations: &[LocationConfig], out: &mut dyn Write) -> std::io::Result<bool> {
    let mut rows = Vec::new();
    for l in locations {
        let (ty, target) = describe(l);
        let steps = match open(l) {
            Ok(backend) => check_one(backend.as_ref()).await,
            Err(e) => [Step::Failed(e), Step::Skipped, Step::Skipped, Step::Skipped],
        };
        rows.push((l.name.clone(), ty, target, l.default, steps));
    }
    let name_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(8);
    let target_w = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max(6);
    writeln!(
        out,
        "{:<name_w$}  {:<5}  {:<target_w$}  {:<6}  {:<5}  {:<4}  {:<6}  RESULT",
        "LOCATION", "TYPE", "TARGET", "ACCESS", "WRITE", "READ", "DELETE"
    )?;
    let mut all_ok = true;
    let mut details = Vec::new();
    for (name, ty, target, default, steps) in &rows {
        let failed: Vec<&String> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Failed(m) => Some(m),
                _ => None,
            })
            .collect();
        all_ok &= failed.is_empty();
        let shown = if *default {
            format!("{name}*")
        } else {
            name.clone()
        };
        writeln!(
            out,
            "{:<name_w$}  {:<5}  {:<target_w$}  {:<6}  {:<5}  {:<4}  {:<6}  {}",
            shown,
            ty,
            target,
            steps[0].cell(),
            steps[1].cell(),
            steps[2].cell(),
            steps[3].cell(),
            if failed.is_empty() { "OK" } else { "FAIL" }
        )?;
        for m in failed {
            details.push(format!("{name}: {m}"));
        }
    }
    writeln!(out, "(* the default location)")?;
    for d in details {
        writeln!(out, "{d}")?;
    }
    Ok(all_ok)
}

/// Every location's backend, keyed by name.
pub type Backends = HashMap<String, Arc<dyn Backend>>;

/// Opens every location's backend, keyed by name, with the default's name.
pub fn open_all(locations: &[LocationConfig]) -> Result<(Backends, String), String> {
    let mut backends = HashMap::new();
    let mut default = String::new();
    for l in locations {
        if l.default {
            default = l.name.clone();
        }
        backends.insert(l.name.clone(), open(l)?);
    }
    Ok((backends, default))
}
