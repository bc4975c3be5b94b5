//! The second phase of a new key's commit: moving the staged copy that its
//! record names to the object's native name.
//!
//! On a location that can serve staged data as it is (`fs`, see
//! `Backend::staged_ref`), a new key's record is committed naming the staged
//! copy, together with a [`MoveRecord`]; the write is acknowledged then, after
//! one flush instead of an intent flush, a publish sync and a record flush.
//! The move runs right after, on a task that holds the key's lock: publish
//! (a rename, made durable), then the record is switched to the native name
//! and the move record removed in one relaxed commit, which no flush waits
//! for. The order keeps every record pointing at bytes that match it: the
//! switch can only become durable after the rename is.
//!
//! A move that fails, panics or is cut by a crash leaves its move record.
//! It is finished under the key's lock by the next change of the key
//! (`settle_intent`), by a read that finds the staged copy gone, by every
//! garbage collection sweep, and at startup by recovery, before anything is
//! served. A move whose key was deleted or replaced meanwhile is dropped: the
//! change that released the staged copy removes it as garbage.

use cloudmux_data::{Backend, DataError, ObjectPath};
use cloudmux_meta::{codec, MetaStore, Txn};

use crate::object::native_meta;
use crate::records::{self, MoveRecord, ObjectRecord};
use crate::{CoreError, Gateway, Result};

/// Finishes the move `mv` of `bucket/key` (see the module documentation).
/// The caller holds the key's lock. `relaxed`: the record switch need not
/// wait for a flush (the mover; recovery and settling use a flushed commit).
pub(crate) async fn finish_move(
    meta: &dyn MetaStore,
    backend: &dyn Backend,
    bucket: &str,
    key: &str,
    mv: MoveRecord,
    relaxed: bool,
) -> Result<()> {
    let mkey = records::move_key(bucket, key);
    let okey = records::object_key(bucket, key);
    let raw = meta.get(&okey).await?;
    let current = match &raw {
        Some(raw) => Some(codec::decode::<ObjectRecord>(raw)?),
        None => None,
    };
    let (Some(raw), Some(record)) = (
        raw,
        current.filter(|r| r.location == mv.location && r.data == mv.data),
    ) else {
        // The key was deleted or replaced since: the change that released
        // the staged copy removes it as garbage.
        meta.commit_relaxed(Txn::new().delete(mkey)).await?;
        return Ok(());
    };
    let native = native_meta(&record);
    let target = ObjectPath {
        bucket,
        key,
        meta: &native,
    };
    let data = match backend.publish(mv.staged.clone(), target).await {
        Ok(data) => data,
        // Already at the native name: placed before the answer, or moved
        // before a crash that lost the record's switch. The rename is made
        // durable before the switch can be.
        Err(DataError::NotFound(detail)) => match backend.locate(target, &mv.staged).await? {
            Some(data) => {
                backend.persist(&mv.staged).await?;
                data
            }
            None => {
                return Err(CoreError::DataChanged {
                    location: mv.location,
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    detail,
                })
            }
        },
        Err(e) => return Err(e.into()),
    };
    let switched: Result<()> = async {
        crate::fault!("move.published");
        Ok(())
    }
    .await;
    switched?;
    let moved = ObjectRecord { data, ..record };
    let txn = Txn::new()
        .require_equals(okey.clone(), raw)
        .put(okey, codec::encode(&moved))
        .delete(mkey);
    if relaxed {
        meta.commit_relaxed(txn).await?;
    } else {
        meta.commit(txn).await?;
    }
    Ok(())
}

impl Gateway {
    /// Finishes the pending move of `bucket/key`, if there is one. The caller
    /// holds the key's lock.
    pub(crate) async fn settle_move(&self, bucket: &str, key: &str) -> Result<()> {
        let Some(raw) = self.meta.get(&records::move_key(bucket, key)).await? else {
            return Ok(());
        };
        let mv: MoveRecord = codec::decode(&raw)?;
        let backend = self.locations.get(&mv.location)?.clone();
        finish_move(&*self.meta, &*backend, bucket, key, mv, false).await
    }

    /// Every pending move: `(bucket, key, record)`.
    pub(crate) async fn pending_moves(&self) -> Result<Vec<(String, String, MoveRecord)>> {
        let mut out = Vec::new();
        for (mkey, raw) in self.scan_all(records::MOVES_PREFIX).await? {
            let name = String::from_utf8_lossy(&mkey[records::MOVES_PREFIX.len()..]);
            let (bucket, key) = name.split_once('/').unwrap_or((&name, ""));
            out.push((bucket.to_owned(), key.to_owned(), codec::decode(&raw)?));
        }
        Ok(out)
    }

    /// Finishes the pending moves whose key is not locked (all of them at
    /// startup). Returns how many were finished; a move that fails is logged
    /// and left for the next call.
    pub(crate) async fn finish_pending_moves(&self) -> Result<u64> {
        let mut finished = 0;
        for (bucket, key, mv) in self.pending_moves().await? {
            let Some(_guard) = self.locks.try_lock(&bucket, &key) else {
                continue;
            };
            let backend = self.locations.get(&mv.location)?.clone();
            match finish_move(&*self.meta, &*backend, &bucket, &key, mv, false).await {
                Ok(()) => finished += 1,
                Err(e) => tracing::warn!(%bucket, %key, error = %e,
                    "a new key's move to its native name is left for later"),
            }
        }
        Ok(finished)
    }
}
