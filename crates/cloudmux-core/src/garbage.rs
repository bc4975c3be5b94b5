//! Released bytes: the data of a deleted object, or of an overwritten one
//! stored under another name than its replacement.
//!
//! The change that releases bytes commits a [`GarbageRecord`] in the same
//! transaction, then removes the bytes and the record. A crash, a cancelled
//! request or a failed removal in between leaves the record, and
//! [`Gateway::collect_garbage`] (at startup and in every GC sweep) finishes
//! the removal. Before it removes anything it takes the key's lock and checks
//! that neither the key's record nor an intent of the key names the same
//! bytes again (a later write may have published a new object at the same
//! native name): garbage is decided by the records.

use std::sync::Arc;

use cloudmux_data::{Backend, DataError};
use cloudmux_meta::{codec, prefix_end, MetaStore, Txn};

use crate::records::{self, GarbageRecord, IntentRecord, ObjectRecord};
use crate::{Gateway, Result};

/// Adds to `txn` the garbage record of `rec`'s bytes, released by the change
/// `txn` makes to `bucket/key`. Returns the transaction and the record's key.
pub(crate) fn release(
    txn: Txn,
    bucket: &str,
    key: &str,
    rec: &ObjectRecord,
) -> (Txn, Vec<u8>, GarbageRecord) {
    let gkey = records::new_garbage_key();
    let garbage = GarbageRecord {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        location: rec.location.clone(),
        data: rec.data.clone(),
    };
    (
        txn.put(gkey.clone(), codec::encode(&garbage)),
        gkey,
        garbage,
    )
}

/// Removes released bytes and then their garbage record. The caller holds
/// the key's lock, or knows that no record names the bytes. A failed removal
/// leaves the record for the next sweep.
pub(crate) async fn remove(
    meta: &dyn MetaStore,
    backend: &dyn Backend,
    gkey: Vec<u8>,
    garbage: &GarbageRecord,
) -> Result<()> {
    match backend.delete(&garbage.data).await {
        Ok(()) | Err(DataError::NotFound(_)) => {}
        Err(e) => {
            tracing::warn!(location = %garbage.location, bucket = %garbage.bucket,
                key = %garbage.key, error = %e,
                "could not remove released bytes; the next sweep will");
            return Err(e.into());
        }
    }
    crate::fault!("garbage.removed");
    // Losing this removal in a crash only makes the next sweep find the
    // bytes already gone, so it need not wait for a flush.
    meta.commit_relaxed(Txn::new().delete(gkey)).await?;
    Ok(())
}

/// Removes each of `garbage` as [`remove`] does, from the location it names;
/// a failure (logged) leaves that record for the next sweep.
pub(crate) async fn remove_all(
    meta: &dyn MetaStore,
    locations: &crate::Locations,
    garbage: Vec<(Vec<u8>, GarbageRecord)>,
) {
    for (gkey, g) in garbage {
        match locations.get(&g.location) {
            Ok(backend) => {
                let _ = remove(meta, &**backend, gkey, &g).await;
            }
            Err(e) => tracing::warn!(location = %g.location, error = %e,
                "released bytes in an unknown location are kept"),
        }
    }
}

impl Gateway {
    /// Removes released bytes as [`remove`] does, logging a failure.
    /// Returns whether they and their record are gone.
    pub(crate) async fn remove_garbage(&self, gkey: Vec<u8>, garbage: &GarbageRecord) -> bool {
        let backend: Arc<dyn Backend> = match self.locations.get(&garbage.location) {
            Ok(b) => b.clone(),
            Err(e) => {
                tracing::warn!(location = %garbage.location, error = %e,
                    "released bytes in an unknown location are kept");
                return false;
            }
        };
        remove(&*self.meta, &*backend, gkey, garbage).await.is_ok()
    }

    /// Finishes every removal of released bytes that was interrupted.
    /// Returns how many records it settled; a location that cannot be asked
    /// keeps its records for the next call.
    pub async fn collect_garbage(&self) -> Result<u64> {
        let end = prefix_end(records::GARBAGE_PREFIX).unwrap_or_default();
        let mut start = records::GARBAGE_PREFIX.to_vec();
        let mut settled = 0;
        loop {
            let batch = self.meta.scan(&start, &end, 100).await?;
            let Some((last, _)) = batch.last() else {
                return Ok(settled);
            };
            start = [last.as_slice(), b"\0"].concat();
            for (gkey, raw) in batch {
                let garbage: GarbageRecord = codec::decode(&raw)?;
                // A key held for long (a write, or a recovered write waiting
                // out a late cloud copy) is settled by a later sweep.
                let Some(_guard) = self.locks.try_lock(&garbage.bucket, &garbage.key) else {
                    continue;
                };
                if self.names_again(&garbage).await? {
                    // A later write stored its bytes under the same name: they
                    // are not garbage, only the record is.
                    self.meta
                        .commit(Txn::new().require_equals(gkey.clone(), raw).delete(gkey))
                        .await
                        .or_else(|e| match e {
                            cloudmux_meta::MetaError::Conflict => Ok(()),
                            e => Err(e),
                        })?;
                    settled += 1;
                    continue;
                }
                if self
                    .meta
                    .get(&records::intent_key(&garbage.bucket, &garbage.key))
                    .await?
                    .is_some_and(|raw| {
                        codec::decode::<IntentRecord>(&raw)
                            .map(|i| i.record.location == garbage.location)
                            .unwrap_or(true)
                    })
                {
                    // A write of the key is unresolved: recovery decides first.
                    continue;
                }
                if self.remove_garbage(gkey, &garbage).await {
                    settled += 1;
                }
            }
        }
    }

    /// Whether the key's current record names the released bytes.
    async fn names_again(&self, garbage: &GarbageRecord) -> Result<bool> {
        Ok(self
            .object(&garbage.bucket, &garbage.key)
            .await?
            .is_some_and(|(rec, _)| {
                rec.location == garbage.location && rec.data.locator == garbage.data.locator
            }))
    }
}
