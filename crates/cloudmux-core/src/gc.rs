//! Garbage collection: staged leftovers in every location's staging area
//! (bodies of writes that a crash, a cancelled request or a failed cleanup
//! left behind, cloud temp objects, unfinished native multipart uploads) and
//! part records whose multipart upload is gone.
//!
//! Garbage is decided by the records: a staged entry is garbage only if no
//! part record of a live upload, no intent record and no pending move (a new
//! key's record naming its staged copy, see `moves.rs`) names it; a part record
//! only if no upload record with its id exists, checked twice (before and
//! after the part scan), so an upload created meanwhile is never mistaken for
//! a gone one. Age is a second guard only: an unreferenced staged entry is
//! removed once it has not been written for `min_age` (a write between its
//! staging and its commit holds no record yet), and a week-long multipart
//! upload survives because its parts are referenced. The sweep never touches
//! published data: locations list their staging area only.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use cloudmux_data::Staged;
use cloudmux_meta::{codec, prefix_end, Txn};

use crate::records::{self, IntentRecord, PartRecord};
use crate::{Gateway, Result};

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Unreferenced staged entries removed.
    pub staged_removed: u64,
    /// Unreferenced staged entries kept because they are younger than the
    /// age guard.
    pub staged_young: u64,
    /// Released bytes (of deleted or replaced objects) whose removal was
    /// interrupted, now settled.
    pub garbage_removed: u64,
    /// Part records removed because their upload is gone.
    pub parts_removed: u64,
    /// Locations or entries that could not be listed or removed (logged).
    pub errors: u64,
}

impl Gateway {
    /// Every key with `prefix` (values included), page by page.
    pub(crate) async fn scan_all(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = prefix_end(prefix).unwrap_or_default();
        let mut start = prefix.to_vec();
        let mut out = Vec::new();
        loop {
            let batch = self.meta.scan(&start, &end, 1000).await?;
            let Some((last, _)) = batch.last() else {
                return Ok(out);
            };
            start = [last.as_slice(), b"\0"].concat();
            out.extend(batch);
        }
    }

    /// The ids of every live multipart upload.
    async fn live_uploads(&self) -> Result<HashSet<Vec<u8>>> {
        Ok(self
            .scan_all(b"u/")
            .await?
            .into_iter()
            .filter_map(|(k, _)| k.rsplit(|c| *c == 0).next().map(<[u8]>::to_vec))
            .collect())
    }

    /// One garbage collection pass (see the module documentation); its
    /// figures also go to the `cloudmux_gc_removed` metric.
    pub async fn gc_sweep(&self, min_age: Duration) -> Result<GcReport> {
        let mut report = GcReport {
            garbage_removed: self.collect_garbage().await?,
            ..GcReport::default()
        };
        let before = self.live_uploads().await?;
        let parts = self.scan_all(b"p/").await?;
        let after = self.live_uploads().await?;
        let mut referenced: HashSet<String> = HashSet::new();
        for (pkey, raw) in parts {
            let id = pkey[2..]
                .split(|c| *c == b'/')
                .next()
                .unwrap_or_default()
                .to_vec();
            let part: PartRecord = codec::decode(&raw)?;
            if before.contains(&id) || after.contains(&id) {
                referenced.insert(part.staged.id);
                continue;
            }
            match self
                .meta
                .commit(Txn::new().require_equals(pkey.clone(), raw).delete(pkey))
                .await
            {
                Ok(()) => report.parts_removed += 1,
                Err(cloudmux_meta::MetaError::Conflict) => {
                    referenced.insert(part.staged.id);
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.finish_pending_moves().await?;
        for (_, _, mv) in self.pending_moves().await? {
            referenced.insert(mv.staged.id);
        }
        for (_, raw) in self.scan_all(records::INTENTS_PREFIX).await? {
            let intent: IntentRecord = codec::decode(&raw)?;
            if let Some(staged) = intent.staged {
                referenced.insert(staged.id);
            }
        }
        let now = SystemTime::now();
        let mut names: Vec<&String> = self.locations.backends.keys().collect();
        names.sort();
        for name in names {
            let backend = &self.locations.backends[name];
            let entries = match backend.list_staged().await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(location = %name, error = %e, "gc: could not list the staging area");
                    report.errors += 1;
                    continue;
                }
            };
            for entry in entries {
                if referenced.contains(&entry.id) {
                    continue;
                }
                let age = now.duration_since(entry.modified).unwrap_or_default();
                if age < min_age {
                    report.staged_young += 1;
                    continue;
                }
                let staged = Staged {
                    id: entry.id.clone(),
                    size: 0,
                    stamp: 0,
                };
                match backend.discard(&staged).await {
                    Ok(()) => report.staged_removed += 1,
                    Err(e) => {
                        tracing::warn!(location = %name, id = %entry.id, error = %e, "gc: could not remove a staged leftover");
                        report.errors += 1;
                    }
                }
            }
        }
        self.metrics.gc_removed("staged", report.staged_removed);
        self.metrics.gc_removed("part", report.parts_removed);
        self.metrics.gc_removed("released", report.garbage_removed);
        if report.staged_removed + report.parts_removed + report.garbage_removed > 0 {
            tracing::info!(
                released = report.garbage_removed,
                staged = report.staged_removed,
                parts = report.parts_removed,
                "gc: removed garbage"
            );
        }
        Ok(report)
    }
}
