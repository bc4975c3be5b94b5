//! Crash recovery: finishing or dropping the overwrites that were in flight
//! when the process died.

use cloudmux_data::{DataError, NativeMeta, ObjectPath};
use cloudmux_meta::{codec, prefix_end, MetaStore, Txn};

use crate::records::{self, GarbageRecord, IntentRecord, ObjectRecord};
use crate::versions::{retire, Dropped, Kept};
use crate::{CoreError, Gateway, Locations, Result};

/// How an intent was resolved.
pub(crate) enum Resolution {
    /// The new bytes were found at the native name and their record is
    /// committed.
    RolledForward {
        /// The committed record.
        record: Box<ObjectRecord>,
        /// The garbage records of bytes the commit released (the replaced
        /// version's, when they live under another name, and a dropped
        /// noncurrent version's), committed with it.
        garbage: Vec<(Vec<u8>, GarbageRecord)>,
    },
    /// The new bytes were never published, or were removed: the staged copy,
    /// any copy kept of the current version, and the intent are gone, and
    /// the current version stays.
    Dropped,
}

fn unavailable(location: &str, e: DataError) -> CoreError {
    match e {
        DataError::Unavailable(message) => CoreError::Unavailable {
            location: location.to_owned(),
            message,
        },
        e => e.into(),
    }
}

/// Finishes or undoes one interrupted write of `bucket/key`, from its
/// intent: a write whose bytes are at the native name over a current
/// version with bytes rolls forward (those bytes may be gone; a version the
/// write keeps was copied aside before the publish, so its copy is there),
/// else the write is undone: bytes it published where no version had any
/// are removed (no record names them), the copy it kept of the current
/// version is removed, and the current version stays. A delete marker's
/// intent (no staged bytes) is always undone. Used at startup and by a
/// write whose publish or commit failed. A location that cannot be asked is
/// [`CoreError::Unavailable`], and the intent stays.
pub(crate) async fn resolve_intent(
    meta: &dyn MetaStore,
    locations: &Locations,
    bucket: &str,
    key: &str,
    intent: IntentRecord,
) -> Result<Resolution> {
    let ikey = records::intent_key(bucket, key);
    let okey = records::object_key(bucket, key);
    let path = ObjectPath {
        bucket,
        key,
        meta: NativeMeta::none(),
    };
    let backend = locations.get(&intent.record.location)?.clone();
    let old: Option<ObjectRecord> = match meta.get(&okey).await? {
        Some(raw) => Some(codec::decode(&raw)?),
        None => None,
    };
    if meta.get(&ikey).await?.is_none() {
        // The intent is gone: the write's own commit, which removes it,
        // took effect (its outcome was unknown to the writer), or the write
        // was settled already. Nothing is left to do, and doing it again
        // would not be idempotent (a kept version would be recorded twice).
        return Ok(match old {
            Some(cur)
                if cur.version.seq == intent.record.version.seq
                    && cur.version.id == intent.record.version.id
                    && cur.etag == intent.record.etag
                    && cur.upload_id == intent.record.upload_id =>
            {
                Resolution::RolledForward {
                    record: Box::new(cur),
                    garbage: Vec::new(),
                }
            }
            _ => Resolution::Dropped,
        });
    }
    let old_location = old
        .as_ref()
        .map_or_else(|| intent.record.location.clone(), |o| o.location.clone());
    let old_backend = locations.get(&old_location)?.clone();
    let found = match &intent.staged {
        Some(staged) => backend
            .locate(path, staged)
            .await
            .map_err(|e| unavailable(&intent.record.location, e))?,
        None => None,
    };
    let kept_name = intent.keep.as_deref().filter(|n| !n.is_empty());
    let old_with_bytes = old.filter(|o| !o.version.delete_marker);
    match (found, old_with_bytes) {
        (Some(data), Some(old)) => {
            let mut txn = Txn::new().delete(ikey);
            // A Complete rolled forward ends its upload, as its commit would.
            if let Some(id) = &intent.record.upload_id {
                txn = txn.delete(records::upload_key(bucket, key, id));
            }
            let record = ObjectRecord {
                data,
                ..intent.record
            };
            txn = txn.put(okey, codec::encode(&record));
            let mut kept = Kept::No;
            if let Some(name) = kept_name {
                match old_backend
                    .locate_version(path, name)
                    .await
                    .map_err(|e| unavailable(&old.location, e))?
                {
                    Some(copy) => kept = Kept::Copy(copy),
                    None => tracing::error!(
                        bucket,
                        key,
                        version = name,
                        "the copy kept of a replaced version is missing; the version is lost"
                    ),
                }
            }
            let dropped = match &intent.drop_version {
                Some(vkey) => match meta.get(vkey).await? {
                    Some(raw) => Some((vkey, codec::decode::<ObjectRecord>(&raw)?)),
                    None => None,
                },
                None => None,
            };
            let (txn, garbage) = retire(
                txn,
                bucket,
                key,
                Some((&old, kept)),
                &record,
                dropped.as_ref().map(|(vkey, record)| Dropped {
                    key: vkey,
                    record,
                    require: None,
                }),
            );
            meta.commit(txn).await?;
            // A crash between the cloud copy and the removal of the staged
            // copy left it behind; on `fs` the rename consumed it.
            if let Some(staged) = &intent.staged {
                let _ = backend.discard(staged).await;
            }
            Ok(Resolution::RolledForward {
                record: Box::new(record),
                garbage,
            })
        }
        (found, _) => {
            // Nothing acknowledged depends on the write: undo it.
            if let Some(data) = found {
                backend.delete(&data).await?;
            }
            if let Some(staged) = &intent.staged {
                let _ = backend.discard(staged).await;
            }
            if let Some(name) = kept_name {
                if let Some(kept) = old_backend
                    .locate_version(path, name)
                    .await
                    .map_err(|e| unavailable(&old_location, e))?
                {
                    old_backend.delete(&kept).await?;
                }
            }
            meta.commit(Txn::new().delete(ikey)).await?;
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
        tracing::warn!(bucket, key, "settling a write its request left unresolved");
        if let Resolution::RolledForward { garbage, .. } =
            resolve_intent(&*self.meta, &self.locations, bucket, key, intent).await?
        {
            crate::garbage::remove_all(&*self.meta, &self.locations, garbage).await;
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
        grace: std::time::Duration,
    ) {
        let guard = self.locks.lock_owned(bucket, key).await;
        let meta = self.meta.clone();
        let locations = self.locations.clone();
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        tracing::info!(%bucket, %key, grace_ms = grace.as_millis() as u64,
            "an interrupted cloud write is resolved once a late copy can no longer land");
        tokio::spawn(async move {
            let _guard = guard;
            tokio::time::sleep(grace).await;
            match resolve_intent(&*meta, &locations, &bucket, &key, intent).await {
                Ok(Resolution::RolledForward { garbage, .. }) => {
                    crate::garbage::remove_all(&*meta, &locations, garbage).await;
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
                    self.defer_intent(bucket, key, intent, grace).await;
                    done += 1;
                    continue;
                }
                match resolve_intent(&*self.meta, &self.locations, bucket, key, intent).await {
                    Ok(Resolution::RolledForward { garbage, .. }) => {
                        crate::garbage::remove_all(&*self.meta, &self.locations, garbage).await;
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
