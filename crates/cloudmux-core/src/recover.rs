//! Crash recovery: finishing or dropping the overwrites that were in flight
//! when the process died.

use cloudmux_data::{Backend, DataError, NativeMeta, ObjectPath};
use cloudmux_meta::{codec, prefix_end, MetaStore, Txn};

use crate::records::{self, GarbageRecord, IntentRecord, ObjectRecord};
use crate::{CoreError, Gateway, Result};

/// How an intent was resolved.
pub(crate) enum Resolution {
    /// The new bytes were found at the native name and their record is
    /// committed; `old` is the record it replaced.
    RolledForward {
        /// The committed record.
        record: Box<ObjectRecord>,
        /// The garbage record of the replaced bytes, committed with it when
        /// they live under another name.
        garbage: Option<(Vec<u8>, GarbageRecord)>,
    },
    /// The new bytes were never published: the staged copy and the intent
    /// are gone and the old object stays.
    Dropped,
}

/// Finishes or undoes one interrupted write of `bucket/key`, from its
/// intent: an overwrite rolls forward when its bytes are at the native name
/// (the old bytes may be gone), else the old object stays; a new key whose
/// record was never committed has its published bytes removed. Used at startup and by a write whose publish
/// failed part-way. A location that cannot be asked is
/// [`CoreError::Unavailable`], and the intent stays.
pub(crate) async fn resolve_intent(
    meta: &dyn MetaStore,
    backend: &dyn Backend,
    bucket: &str,
    key: &str,
    intent: IntentRecord,
) -> Result<Resolution> {
    let ikey = records::intent_key(bucket, key);
    let found = match backend
        .locate(
            ObjectPath {
                bucket,
                key,
                meta: NativeMeta::none(),
            },
            &intent.staged,
        )
        .await
    {
        Ok(found) => found,
        Err(DataError::Unavailable(message)) => {
            return Err(CoreError::Unavailable {
                location: intent.record.location.clone(),
                message,
            })
        }
        Err(e) => return Err(e.into()),
    };
    let okey = records::object_key(bucket, key);
    let txn = Txn::new().delete(ikey);
    let old = match meta.get(&okey).await? {
        Some(raw) => Some(Box::new(codec::decode::<ObjectRecord>(&raw)?)),
        None => None,
    };
    match found {
        // A new key never committed: nothing was acknowledged, and no record
        // may name its bytes, so they go.
        Some(data) if old.is_none() => {
            backend.delete(&data).await?;
            let _ = backend.discard(&intent.staged).await;
            meta.commit(txn).await?;
            Ok(Resolution::Dropped)
        }
        Some(data) => {
            // A Complete rolled forward ends its upload, as its commit would.
            let txn = match &intent.record.upload_id {
                Some(id) => txn.delete(records::upload_key(bucket, key, id)),
                None => txn,
            };
            let record = ObjectRecord {
                data,
                ..intent.record
            };
            let txn = txn.put(okey, codec::encode(&record));
            let (txn, garbage) = match old.as_deref() {
                Some(old)
                    if old.location != record.location
                        || old.data.locator != record.data.locator =>
                {
                    let (txn, gkey, g) = crate::garbage::release(txn, bucket, key, old);
                    (txn, Some((gkey, g)))
                }
                _ => (txn, None),
            };
            meta.commit(txn).await?;
            // A crash between the cloud copy and the removal of the staged
            // copy left it behind; on `fs` the rename consumed it.
            let _ = backend.discard(&intent.staged).await;
            Ok(Resolution::RolledForward {
                record: Box::new(record),
                garbage,
            })
        }
        None => {
            let _ = backend.discard(&intent.staged).await;
            meta.commit(txn).await?;
            Ok(Resolution::Dropped)
        }
    }
}

impl Gateway {
    /// Settles an intent of `bucket/key` that its own write left unresolved
    /// (the write's task panicked, or the store failed it twice), after
    /// finishing a pending move of the key (see `moves.rs`). The caller
    /// holds the key's lock, so no write of the key is in flight: every
    /// write and delete of a key starts with this, so that a stale intent is
    /// never rolled forward over a later acknowledged change.
    pub(crate) async fn settle_intent(&self, bucket: &str, key: &str) -> Result<()> {
        self.settle_move(bucket, key).await?;
        let Some(raw) = self.meta.get(&records::intent_key(bucket, key)).await? else {
            return Ok(());
        };
        let intent: IntentRecord = codec::decode(&raw)?;
        let backend = self.locations.get(&intent.record.location)?.clone();
        tracing::warn!(bucket, key, "settling a write its request left unresolved");
        if let Resolution::RolledForward {
            garbage: Some((gkey, garbage)),
            ..
        } = resolve_intent(&*self.meta, &*backend, bucket, key, intent).await?
        {
            self.remove_garbage(gkey, &garbage).await;
        }
        Ok(())
    }

    /// Resolves an interrupted write on a cloud once `grace` has passed: the
    /// dead process's server-side copy may still land until then, so a look
    /// that finds nothing is not final before. The key stays locked on a
    /// task of its own meanwhile, so no write of the key can be overtaken by
    /// that copy; a read that finds the copy landed waits for the lock and
    /// then sees the rolled-forward record.
    async fn defer_intent(
        &self,
        bucket: &str,
        key: &str,
        intent: IntentRecord,
        backend: std::sync::Arc<dyn cloudmux_data::Backend>,
        grace: std::time::Duration,
    ) {
        let guard = self.locks.lock_owned(bucket, key).await;
        let meta = self.meta.clone();
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        tracing::info!(%bucket, %key, grace_ms = grace.as_millis() as u64,
            "an interrupted cloud write is resolved once a late copy can no longer land");
        tokio::spawn(async move {
            let _guard = guard;
            tokio::time::sleep(grace).await;
            match resolve_intent(&*meta, &*backend, &bucket, &key, intent).await {
                Ok(Resolution::RolledForward { garbage, .. }) => {
                    if let Some((gkey, garbage)) = garbage {
                        let _ = crate::garbage::remove(&*meta, &*backend, gkey, &garbage).await;
                    }
                    tracing::warn!(%bucket, %key, "recovered a cloud write interrupted by a crash");
                }
                Ok(Resolution::Dropped) => {}
                Err(e) => tracing::warn!(%bucket, %key, error = %e,
                    "an interrupted cloud write is left for the next start"),
            }
        });
    }

    /// Removes the markers of DeleteBucket calls that a crash interrupted:
    /// at startup no DeleteBucket is in progress.
    async fn clear_deleting_markers(&self) -> Result<()> {
        let end = prefix_end(records::DELETING_PREFIX).unwrap_or_default();
        loop {
            let batch = self.meta.scan(records::DELETING_PREFIX, &end, 100).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut txn = Txn::new();
            for (k, _) in batch {
                txn = txn.delete(k);
            }
            self.meta.commit(txn).await?;
        }
    }

    /// Resolves every intent record left by a crash. Run once at startup,
    /// before serving. If an overwrite's new data was already published over
    /// the old, the new record is committed (the old data is gone, so the
    /// object is the new one, whole); otherwise the staged data is discarded
    /// and the old object stays. A new key's published bytes are removed,
    /// since its record was never committed. An intent whose location cannot be asked (a cloud that
    /// is down) is left for the next start, with a warning, so that one
    /// unreachable cloud does not keep cloudmux from starting. Returns how
    /// many intents were resolved. Then finishes the removals of released
    /// bytes that the crash interrupted ([`Gateway::collect_garbage`]).
    pub async fn recover(&self) -> Result<usize> {
        self.clear_deleting_markers().await?;
        let moved = self.finish_pending_moves().await?;
        if moved > 0 {
            tracing::info!(moved, "finished new keys' moves to their native names");
        }
        let end = prefix_end(records::INTENTS_PREFIX).unwrap_or_default();
        let mut start = records::INTENTS_PREFIX.to_vec();
        let mut done = 0;
        loop {
            let batch = self.meta.scan(&start, &end, 100).await?;
            let Some((last, _)) = batch.last() else {
                break;
            };
            start = last.clone();
            start.push(0);
            for (ikey, value) in batch {
                let name =
                    String::from_utf8_lossy(&ikey[records::INTENTS_PREFIX.len()..]).into_owned();
                let (bucket, key) = name.split_once('/').unwrap_or((name.as_str(), ""));
                let intent: IntentRecord = codec::decode(&value)?;
                let backend = self.locations.get(&intent.record.location)?.clone();
                let grace = backend.publish_grace();
                if !grace.is_zero() {
                    self.defer_intent(bucket, key, intent, backend, grace).await;
                    done += 1;
                    continue;
                }
                match resolve_intent(&*self.meta, &*backend, bucket, key, intent).await {
                    Ok(Resolution::RolledForward { garbage, .. }) => {
                        if let Some((gkey, garbage)) = garbage {
                            self.remove_garbage(gkey, &garbage).await;
                        }
                        tracing::warn!(
                            bucket,
                            key,
                            "recovered an overwrite interrupted by a crash"
                        );
                    }
                    Ok(Resolution::Dropped) => {}
                    Err(CoreError::Unavailable { location, message }) => {
                        tracing::warn!(
                            %location,
                            bucket,
                            key,
                            error = %message,
                            "location unavailable: interrupted write left for the next start"
                        );
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                done += 1;
            }
        }
        // Bytes released by a change whose cleanup the crash interrupted.
        self.collect_garbage().await?;
        Ok(done)
    }
}
