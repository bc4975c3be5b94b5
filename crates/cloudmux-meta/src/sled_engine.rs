//! The embedded engine: one sled tree, transactions for atomic commits and
//! sled's own log flush for durability.

use std::path::Path;
use std::time::Duration;

use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::{Condition, Entry, MetaError, MetaStore, Mutation, Result, Txn};

/// The sled engine.
///
/// Commits run as sled transactions and then wait for `flush_async`. sled's
/// flush makes everything logged so far stable with one fsync, so concurrent
/// commits share fsyncs (group commit) rather than paying one each.
pub struct SledStore {
    db: sled::Db,
}

fn engine(e: impl std::fmt::Display) -> MetaError {
    MetaError::Engine(e.to_string())
}

impl SledStore {
    /// Opens (or creates) the database directory at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(engine)?;
        Ok(Self { db })
    }

    async fn flush(&self) -> Result<()> {
        self.db.flush_async().await.map_err(engine)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl MetaStore for SledStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key).map_err(engine)?.map(|v| v.to_vec()))
    }

    async fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in self.db.range(start..end).take(limit) {
            let (k, v) = item.map_err(engine)?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    async fn commit(&self, txn: Txn) -> Result<()> {
        let res = self.db.transaction(|tx| {
            for c in &txn.conditions {
                let ok = match c {
                    Condition::Absent(k) => tx.get(k)?.is_none(),
                    Condition::Present(k) => tx.get(k)?.is_some(),
                    Condition::Equals(k, v) => tx.get(k)?.as_deref() == Some(v.as_slice()),
                };
                if !ok {
                    return Err(ConflictableTransactionError::Abort(()));
                }
            }
            for m in &txn.mutations {
                match m {
                    Mutation::Put(k, v) => {
                        tx.insert(k.as_slice(), v.as_slice())?;
                    }
                    Mutation::Delete(k) => {
                        tx.remove(k.as_slice())?;
                    }
                }
            }
            Ok(())
        });
        match res {
            Ok(()) => self.flush().await,
            Err(TransactionError::Abort(())) => Err(MetaError::Conflict),
            Err(TransactionError::Storage(e)) => Err(engine(e)),
        }
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let key = crate::lease_key(name);
        let now = crate::now_ms();
        let current = self.db.get(&key).map_err(engine)?;
        if !crate::lease_available(current.as_deref(), holder, now)? {
            return Ok(false);
        }
        let new = crate::encode_lease(holder, now + ttl.as_millis() as u64);
        let swapped = self
            .db
            .compare_and_swap(&key, current, Some(new))
            .map_err(engine)?;
        if swapped.is_err() {
            return Ok(false);
        }
        self.flush().await?;
        Ok(true)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let key = crate::lease_key(name);
        if let Some(v) = self.db.get(&key).map_err(engine)? {
            if crate::decode_lease(&v)?.holder == holder {
                let _ = self
                    .db
                    .compare_and_swap(&key, Some(v), None as Option<&[u8]>)
                    .map_err(engine)?;
                self.flush().await?;
            }
        }
        Ok(())
    }
}
