//! Crash recovery: finishing or dropping the overwrites that were in flight
//! when the process died.

use cloudmux_data::{DataError, NativeMeta, ObjectPath};
use cloudmux_meta::{codec, prefix_end, Txn};

use crate::records::{self, IntentRecord, ObjectRecord};
use crate::{Gateway, Result};

impl Gateway {
    /// Resolves every intent record left by a crash. Run once at startup,
    /// before serving. If the new data was already published over the old,
    /// the new record is committed (the old data is gone, so the object is
    /// the new one, whole); otherwise the staged data is discarded and the old
    /// object stays. An intent whose location cannot be asked (a cloud that
    /// is down) is left for the next start, with a warning, so that one
    /// unreachable cloud does not keep cloudmux from starting. Returns how
    /// many intents were resolved.
    pub async fn recover(&self) -> Result<usize> {
        let end = prefix_end(records::INTENTS_PREFIX).unwrap_or_default();
        let mut start = records::INTENTS_PREFIX.to_vec();
        let mut done = 0;
        loop {
            let batch = self.meta.scan(&start, &end, 100).await?;
            let Some((last, _)) = batch.last() else {
                return Ok(done);
            };
            start = last.clone();
            start.push(0);
            for (ikey, value) in batch {
                let name =
                    String::from_utf8_lossy(&ikey[records::INTENTS_PREFIX.len()..]).into_owned();
                let (bucket, key) = name.split_once('/').unwrap_or((name.as_str(), ""));
                let intent: IntentRecord = codec::decode(&value)?;
                let backend = self.locations.get(&intent.record.location)?.clone();
                let found = match backend
                    .locate(
                        ObjectPath {
                            bucket,
                            key,
                            meta: NativeMeta::none(),
                        },
                        intent.staged.stamp,
                    )
                    .await
                {
                    Ok(found) => found,
                    Err(DataError::Unavailable(e)) => {
                        tracing::warn!(
                            location = %intent.record.location,
                            bucket,
                            key,
                            error = %e,
                            "location unavailable: interrupted write left for the next start"
                        );
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let okey = records::object_key(bucket, key);
                let mut txn = Txn::new().delete(ikey.clone());
                match found {
                    Some(data) => {
                        let old = self.meta.get(&okey).await?;
                        let record = ObjectRecord {
                            data,
                            ..intent.record
                        };
                        txn = txn.put(okey, codec::encode(&record));
                        self.meta.commit(txn).await?;
                        if let Some(old) = old {
                            let old: ObjectRecord = codec::decode(&old)?;
                            if old.data.locator != record.data.locator
                                || old.location != record.location
                            {
                                self.delete_data(&old).await;
                            }
                        }
                        tracing::warn!(
                            bucket,
                            key,
                            "recovered an overwrite interrupted by a crash"
                        );
                    }
                    None => {
                        let _ = backend.discard(&intent.staged).await;
                        self.meta.commit(txn).await?;
                    }
                }
                done += 1;
            }
        }
    }
}
