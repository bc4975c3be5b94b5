//! Crash recovery: finishing or dropping the overwrites that were in flight
//! when the process died.

use cloudmux_data::{NativeMeta, ObjectPath};
use cloudmux_meta::{codec, prefix_end, Txn};

use crate::records::{self, IntentRecord, ObjectRecord};
use crate::{Gateway, Result};

impl Gateway {
    /// Resolves every intent record left by a crash. Run once at startup,
    /// before serving. If the new data was already published over the old,
    /// the new record is committed (the old data is gone, so the object is
    /// the new one, whole); otherwise the staged data is discarded and the old
    /// object stays. Returns how many intents were resolved.
    pub async fn recover(&self) -> Result<usize> {
        let end = prefix_end(records::INTENTS_PREFIX).unwrap_or_default();
        let mut done = 0;
        loop {
            let batch = self.meta.scan(records::INTENTS_PREFIX, &end, 100).await?;
            if batch.is_empty() {
                return Ok(done);
            }
            for (ikey, value) in batch {
                let name =
                    String::from_utf8_lossy(&ikey[records::INTENTS_PREFIX.len()..]).into_owned();
                let (bucket, key) = name.split_once('/').unwrap_or((name.as_str(), ""));
                let intent: IntentRecord = codec::decode(&value)?;
                let backend = self.locations.get(&intent.record.location)?.clone();
                let found = backend
                    .locate(
                        ObjectPath {
                            bucket,
                            key,
                            meta: NativeMeta::none(),
                        },
                        intent.staged.stamp,
                    )
                    .await?;
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
