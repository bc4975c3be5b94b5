//! The soak's checker: replays the history against what the server and the
//! locations hold once the load is over and the final garbage collection
//! has run.
//!
//! - **Acknowledged writes lost**: a key whose content (GetObject; absent
//!   on 404) is neither the value of its last acknowledged write (the body
//!   of a PUT or Complete, absent for a DELETE) nor that of an uncertain
//!   write issued after it (nor of a write the client stopped waiting for);
//!   plus every anomaly the clients saw (an acknowledged upload answering
//!   NoSuchUpload) and every upload still open after an acknowledged Abort
//!   or Complete.
//! - **Unreadable records**: a key ListObjectsV2 lists whose GET fails or
//!   whose bytes differ from the listed size or ETag (MD5, or the multipart
//!   form over 5 MiB parts), a listed key no client ever wrote, and a key
//!   GET reads that the listing leaves out.
//! - **Orphans after GC**: whatever each location's own service holds
//!   beyond the native names of the listed objects: on `fs` every file
//!   under the root but the objects' files (plain `<bucket>/<key>`, or
//!   `<bucket>/.cloudmux/keys/<sha256 of key>` for keys that cannot be
//!   paths; the temp area's directories are cloudmux's own and hold no file
//!   when nothing is staged); on moto every object but `<bucket>/<key>` and
//!   every unfinished multipart upload; on Azure every blob, uncommitted
//!   ones included, and on GCS every object but `<bucket>/<key>`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use md5::Md5;
use sha2::{Digest, Sha256};

use super::load::{etag_of, PART};
use super::native::Natives;
use super::{
    blocks, list_uploads, request, OpKind, OpRecord, Outcome, SoakBucket, FS_BUCKET, S3_BUCKET,
};
use crate::client::{element, unescape, S3Client};

/// GETs in flight at once.
const GETS: usize = 8;

/// What the checker found.
#[derive(Default)]
pub(crate) struct Report {
    /// Acknowledged writes lost, one line each.
    pub lost: Vec<String>,
    /// Unreadable records, one line each.
    pub unreadable: Vec<String>,
    /// Native names no record explains, one line each.
    pub orphans: Vec<String>,
    /// Keys compared with the history.
    pub keys_checked: usize,
    /// Objects ListObjectsV2 listed.
    pub objects_listed: usize,
    /// Figures that are not failures.
    pub info: Vec<String>,
}

impl Report {
    /// The one summary line.
    pub fn summary_line(&self) -> String {
        format!(
            "acknowledged writes lost: {}, unreadable records: {}, orphans after GC: {}",
            self.lost.len(),
            self.unreadable.len(),
            self.orphans.len()
        )
    }

    /// Whether nothing was found.
    pub fn clean(&self) -> bool {
        self.lost.is_empty() && self.unreadable.is_empty() && self.orphans.is_empty()
    }

    /// The info lines and at most `max` lines of each non-empty finding.
    pub fn details(&self, max: usize) -> String {
        let mut s = String::new();
        for i in &self.info {
            s.push_str(&format!("  {i}\n"));
        }
        for (name, items) in [
            ("acknowledged writes lost", &self.lost),
            ("unreadable records", &self.unreadable),
            ("orphans after GC", &self.orphans),
        ] {
            if items.is_empty() {
                continue;
            }
            s.push_str(&format!("{name} ({}):\n", items.len()));
            for line in items.iter().take(max) {
                s.push_str(&format!("  {line}\n"));
            }
            if items.len() > max {
                s.push_str(&format!("  ... and {} more\n", items.len() - max));
            }
        }
        s
    }

    /// Everything, for the report file.
    pub fn text(&self) -> String {
        format!("{}{}\n", self.details(usize::MAX), self.summary_line())
    }
}

/// What GetObject found.
enum Seen {
    Absent,
    Present {
        len: u64,
        sha256: String,
        md5: String,
        multipart_etag: String,
    },
    Failed(String),
}

/// One listed object: ETag (without quotes) and size.
type Listed = BTreeMap<String, (String, u64)>;

/// Runs the checks (see the module documentation).
pub(crate) async fn check(
    client: &Arc<S3Client>,
    buckets: &[SoakBucket],
    records: &[OpRecord],
    natives: &Natives,
    extra_lost: Vec<String>,
) -> Result<Report, String> {
    let mut report = Report {
        lost: extra_lost,
        ..Report::default()
    };
    let mut listed: HashMap<&str, Listed> = HashMap::new();
    for b in buckets {
        let l = list_objects(client, b.name).await?;
        report.objects_listed += l.len();
        report.info.push(format!(
            "{} ({}): {} objects listed",
            b.name,
            b.location,
            l.len()
        ));
        listed.insert(b.name, l);
        let open = list_uploads(client, b.name).await?;
        if !open.is_empty() {
            report.info.push(format!(
                "{}: {} multipart uploads still open after the final restart",
                b.name,
                open.len()
            ));
        }
    }

    let mut history: BTreeMap<(&str, &str), Vec<&OpRecord>> = BTreeMap::new();
    for r in records {
        if let Some(a) = &r.anomaly {
            report.lost.push(format!(
                "{}/{}: {a} (client {} seq {}; attempts {})",
                r.bucket,
                r.key,
                r.client,
                r.seq,
                r.attempts.join(" ")
            ));
        }
        if r.op.writes_key() {
            history.entry((&r.bucket, &r.key)).or_default().push(r);
        }
    }
    for ops in history.values_mut() {
        ops.sort_by_key(|r| r.seq);
    }

    let mut keys: BTreeSet<(String, String)> = history
        .keys()
        .map(|(b, k)| (b.to_string(), k.to_string()))
        .collect();
    for (b, l) in &listed {
        keys.extend(l.keys().map(|k| (b.to_string(), k.clone())));
    }
    report.keys_checked = keys.len();
    let seen = get_all(client, keys.iter().cloned().collect()).await;

    for ((bucket, key), seen) in &seen {
        let in_list = listed.get(bucket.as_str()).and_then(|l| l.get(key));
        match (seen, in_list) {
            (Seen::Failed(e), _) => report
                .unreadable
                .push(format!("{bucket}/{key}: GET failed: {e}")),
            (Seen::Absent, Some(_)) => report
                .unreadable
                .push(format!("{bucket}/{key}: listed, but GET answers 404")),
            (Seen::Present { .. }, None) => report.unreadable.push(format!(
                "{bucket}/{key}: GET reads it, but the listing leaves it out"
            )),
            (
                Seen::Present {
                    len,
                    md5,
                    multipart_etag,
                    ..
                },
                Some((etag, size)),
            ) => {
                let want = if etag.contains('-') {
                    multipart_etag
                } else {
                    md5
                };
                if len != size || want != etag {
                    report.unreadable.push(format!(
                        "{bucket}/{key}: listed with size {size} and ETag {etag}, GET gave {len} bytes whose ETag is {want}"
                    ));
                }
            }
            (Seen::Absent, None) => {}
        }
        let ops = history.get(&(bucket.as_str(), key.as_str()));
        let Some(ops) = ops else {
            if !matches!(seen, Seen::Absent) {
                report.unreadable.push(format!(
                    "{bucket}/{key}: listed, but no client ever wrote it"
                ));
            }
            continue;
        };
        let value = match seen {
            Seen::Failed(_) => continue,
            Seen::Absent => None,
            Seen::Present { sha256, .. } => Some(sha256.as_str()),
        };
        if let Some(why) = judge(ops, value) {
            report.lost.push(format!("{bucket}/{key}: {why}"));
        }
    }

    orphans(&mut report, buckets, &listed, natives).await?;
    Ok(report)
}

/// Why `value` (a body hash, `None` for absent) is not a value the history
/// `ops` of one key allows, or `None` when it is.
fn judge(ops: &[&OpRecord], value: Option<&str>) -> Option<String> {
    let mut allowed: Vec<Option<&str>> = vec![None];
    let mut floating: Vec<Option<&str>> = Vec::new();
    let mut last_ack = None;
    for (i, r) in ops.iter().enumerate() {
        let v = match r.op {
            OpKind::Delete => None,
            _ => r.sha256.as_deref(),
        };
        match r.outcome {
            Outcome::Ack => {
                allowed = vec![v];
                last_ack = Some(i);
            }
            Outcome::Uncertain => allowed.push(v),
            Outcome::NotSent => {}
        }
        if r.floating && r.outcome != Outcome::NotSent {
            floating.push(v);
        }
    }
    if allowed.contains(&value) || floating.contains(&value) {
        return None;
    }
    let matching = ops
        .iter()
        .find(|r| value.is_some() && r.op != OpKind::Delete && r.sha256.as_deref() == value);
    let seen = match (value, matching) {
        (None, _) => "absent".to_owned(),
        (Some(_), Some(r)) => format!("the body of seq {} ({:?}, {:?})", r.seq, r.op, r.outcome),
        (Some(h), None) => format!("bytes no write made (sha256 {h})"),
    };
    let from = last_ack.unwrap_or(0);
    let tail: Vec<String> = ops[from..]
        .iter()
        .map(|r| {
            format!(
                "[seq {} {:?} {:?} gen {} t {}-{} ms: {}]",
                r.seq,
                r.op,
                r.outcome,
                r.gen,
                r.t_start_ms,
                r.t_end_ms,
                r.attempts.join(" ")
            )
        })
        .collect();
    Some(format!(
        "holds {seen}; history from the last acknowledged write on: {}",
        tail.join(" ")
    ))
}

/// ListObjectsV2 of the whole bucket: key → (ETag, size).
async fn list_objects(client: &S3Client, bucket: &str) -> Result<Listed, String> {
    let mut out = Listed::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = vec![("list-type", "2")];
        if let Some(t) = &token {
            q.push(("continuation-token", t));
        }
        let r = request(
            client,
            Method::GET,
            &format!("/{bucket}"),
            &q,
            Bytes::new(),
            true,
        )
        .await?
        .ok()?;
        let xml = String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()).into_owned();
        for c in blocks(&xml, "Contents") {
            let Some(key) = element(c, "Key").map(unescape) else {
                continue;
            };
            let etag = element(c, "ETag")
                .map(unescape)
                .unwrap_or_default()
                .trim_matches('"')
                .to_owned();
            let size = element(c, "Size").and_then(|s| s.parse().ok()).unwrap_or(0);
            out.insert(key, (etag, size));
        }
        token = (element(&xml, "IsTruncated") == Some("true"))
            .then(|| element(&xml, "NextContinuationToken").map(unescape))
            .flatten();
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// GETs every key, [`GETS`] at a time.
async fn get_all(
    client: &Arc<S3Client>,
    keys: Vec<(String, String)>,
) -> Vec<((String, String), Seen)> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(GETS) {
        let mut set = tokio::task::JoinSet::new();
        for (b, k) in chunk.iter().cloned() {
            let client = client.clone();
            set.spawn(async move {
                let seen = get_one(&client, &b, &k).await;
                ((b, k), seen)
            });
        }
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                out.push(r);
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn get_one(client: &S3Client, bucket: &str, key: &str) -> Seen {
    let r = match request(
        client,
        Method::GET,
        &format!("/{bucket}/{key}"),
        &[],
        Bytes::new(),
        true,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return Seen::Failed(e),
    };
    if r.status == StatusCode::NOT_FOUND {
        let body = String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()).into_owned();
        return match element(&body, "Code") {
            Some("NoSuchKey") => Seen::Absent,
            other => Seen::Failed(format!("HTTP 404 {}", other.unwrap_or("without a code"))),
        };
    }
    if !r.status.is_success() {
        return Seen::Failed(r.ok().err().unwrap_or_default());
    }
    let data = r.body.unwrap_or_default();
    Seen::Present {
        len: data.len() as u64,
        sha256: hex::encode(Sha256::digest(&data)),
        md5: hex::encode(Md5::digest(&data)),
        multipart_etag: if data.len() > PART {
            etag_of(&data, true)
        } else {
            format!("{}-1", hex::encode(Md5::digest(Md5::digest(&data))))
        },
    }
}

/// Whether cloudmux's fs location can keep `key` of `bucket` at its plain
/// path (the rule at the top of `cloudmux-data/src/fs.rs`).
fn fs_plain(root: &Path, bucket: &str, key: &str) -> bool {
    if key.is_empty() || key.starts_with('/') || key.ends_with('/') || key.contains('\0') {
        return false;
    }
    if root.as_os_str().len() + 1 + bucket.len() + 1 + key.len() > 4000 {
        return false;
    }
    key.split('/')
        .all(|p| !p.is_empty() && p != "." && p != ".." && p != ".cloudmux" && p.len() <= 255)
}

async fn orphans(
    report: &mut Report,
    buckets: &[SoakBucket],
    listed: &HashMap<&str, Listed>,
    natives: &Natives,
) -> Result<(), String> {
    let empty = Listed::new();
    let objects = |bucket: &str| listed.get(bucket).unwrap_or(&empty);

    let root = &natives.fs_root;
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for key in objects(FS_BUCKET).keys() {
        let plain = format!("{FS_BUCKET}/{key}");
        if fs_plain(root, FS_BUCKET, key) && root.join(&plain).is_file() {
            expected.insert(plain);
        } else {
            expected.insert(format!(
                "{FS_BUCKET}/.cloudmux/keys/{}",
                hex::encode(Sha256::digest(key.as_bytes()))
            ));
        }
    }
    let files = natives.fs_files()?;
    report
        .info
        .push(format!("fs location: {} files", files.len()));
    for f in files {
        if !expected.contains(&f) {
            report.orphans.push(format!("fs: {f}"));
        }
    }

    let moto = natives.moto_names().await?;
    report
        .info
        .push(format!("moto: {} objects and uploads", moto.len()));
    let expected: BTreeSet<String> = objects(S3_BUCKET)
        .keys()
        .map(|k| format!("{S3_BUCKET}/{k}"))
        .collect();
    for n in moto {
        if !expected.contains(&n) {
            report.orphans.push(format!("moto: {n}"));
        }
    }

    let third = &buckets[2];
    let names = natives.cloud_names().await?;
    report.info.push(format!(
        "{}: {} native objects",
        third.location,
        names.len()
    ));
    let expected: BTreeSet<String> = objects(third.name)
        .keys()
        .map(|k| format!("{}/{k}", third.name))
        .collect();
    for n in names {
        if !expected.contains(&n) {
            report.orphans.push(format!("{}: {n}", third.location));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, op: OpKind, outcome: Outcome, sha: &str) -> OpRecord {
        OpRecord {
            client: 0,
            seq,
            op,
            bucket: "b".into(),
            key: "k".into(),
            gen: seq,
            size: 1,
            sha256: (op != OpKind::Delete).then(|| sha.to_owned()),
            etag: None,
            upload_id: None,
            outcome,
            floating: false,
            t_start_ms: 0,
            t_end_ms: 0,
            attempts: Vec::new(),
            anomaly: None,
        }
    }

    #[test]
    fn the_last_ack_or_a_later_uncertain_write_is_allowed() {
        let a = rec(1, OpKind::Put, Outcome::Ack, "a");
        let b = rec(2, OpKind::Overwrite, Outcome::Uncertain, "b");
        let d = rec(3, OpKind::Delete, Outcome::Ack, "");
        let c = rec(4, OpKind::Put, Outcome::Uncertain, "c");
        let e = rec(5, OpKind::Put, Outcome::NotSent, "e");
        assert!(judge(&[&a], Some("a")).is_none());
        assert!(judge(&[&a], None).is_some());
        assert!(judge(&[&a, &b], Some("a")).is_none());
        assert!(judge(&[&a, &b], Some("b")).is_none());
        assert!(judge(&[&a, &b, &d], Some("b")).is_some());
        assert!(judge(&[&a, &b, &d], None).is_none());
        assert!(judge(&[&a, &b, &d, &c], Some("c")).is_none());
        assert!(judge(&[&a, &b, &d, &c], Some("a")).is_some());
        assert!(judge(&[&a, &e], Some("e")).is_some());
        assert!(judge(&[&c], None).is_none());
    }

    #[test]
    fn the_fs_rule_matches_the_layout() {
        let root = Path::new("/r");
        assert!(fs_plain(root, "b", "c01/k001"));
        assert!(fs_plain(root, "b", "c01/sp ace+é007"));
        assert!(!fs_plain(root, "b", "c01/dir005/"));
        assert!(!fs_plain(root, "b", "a//b"));
        assert!(!fs_plain(root, "b", "x/.cloudmux/y"));
    }
}
