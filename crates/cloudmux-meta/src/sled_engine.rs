//! The embedded engine: one sled tree. Commits are serialized by one async
//! mutex (conditions checked, then one atomic `apply_batch`), and durability
//! comes from a group commit: one leader runs sled's blocking `flush` on the
//! blocking pool for every commit applied before it started, and the others
//! wait for its result.
//!
//! sled's own transactions and `flush_async` are deliberately not used: under
//! concurrent use they deadlock in sled 0.34 (spacejam/sled#1308, #1301).

use std::path::Path;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use tokio::sync::{watch, Mutex};

use crate::{Condition, Entry, MetaError, MetaStore, Mutation, Result, Txn};

/// The sled engine.
pub struct SledStore {
    db: sled::Db,
    /// Serializes commits; holds the number of the last applied commit.
    commits: Mutex<u64>,
    flush: GroupFlush,
}

/// Group commit state.
struct GroupFlush {
    /// Whether a leader is flushing now.
    leading: StdMutex<bool>,
    /// The highest commit number known durable.
    durable: watch::Sender<u64>,
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
            .flush_every_ms(None)
            .open()
            .map_err(engine)?;
        Ok(Self {
            db,
            commits: Mutex::new(0),
            flush: GroupFlush {
                leading: StdMutex::new(false),
                durable: watch::channel(0).0,
            },
        })
    }

    /// Waits until commit number `seq` is durable, flushing as the leader
    /// when nobody else is.
    async fn durable(&self, seq: u64) -> Result<()> {
        let mut rx = self.flush.durable.subscribe();
        loop {
            if *rx.borrow_and_update() >= seq {
                return Ok(());
            }
            let lead = {
                let mut leading = self.flush.leading.lock().unwrap();
                !std::mem::replace(&mut *leading, true)
            };
            if lead {
                let target = *self.commits.lock().await;
                let db = self.db.clone();
                let res = tokio::task::spawn_blocking(move || db.flush()).await;
                *self.flush.leading.lock().unwrap() = false;
                match res {
                    Ok(Ok(_)) => {
                        self.flush.durable.send_modify(|d| *d = (*d).max(target));
                    }
                    Ok(Err(e)) => {
                        self.flush.durable.send_modify(|_| {});
                        return Err(engine(e));
                    }
                    Err(e) => {
                        self.flush.durable.send_modify(|_| {});
                        return Err(engine(e));
                    }
                }
            } else if rx.changed().await.is_err() {
                return Err(engine("flush channel closed"));
            }
        }
    }

    fn check(&self, c: &Condition) -> Result<bool> {
        Ok(match c {
            Condition::Absent(k) => !self.db.contains_key(k).map_err(engine)?,
            Condition::Present(k) => self.db.contains_key(k).map_err(engine)?,
            Condition::Equals(k, v) => {
                self.db.get(k).map_err(engine)?.as_deref() == Some(v.as_slice())
            }
        })
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
        let seq = {
            let mut last = self.commits.lock().await;
            for c in &txn.conditions {
                if !self.check(c)? {
                    return Err(MetaError::Conflict);
                }
            }
            let mut batch = sled::Batch::default();
            for m in txn.mutations {
                match m {
                    Mutation::Put(k, v) => batch.insert(k, v),
                    Mutation::Delete(k) => batch.remove(k),
                }
            }
            self.db.apply_batch(batch).map_err(engine)?;
            *last += 1;
            *last
        };
        self.durable(seq).await
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let key = crate::lease_key(name);
        let now = crate::now_ms();
        let seq = {
            let mut last = self.commits.lock().await;
            let current = self.db.get(&key).map_err(engine)?;
            if !crate::lease_available(current.as_deref(), holder, now)? {
                return Ok(false);
            }
            let new = crate::encode_lease(holder, now + ttl.as_millis() as u64);
            self.db.insert(&key, new).map_err(engine)?;
            *last += 1;
            *last
        };
        self.durable(seq).await?;
        Ok(true)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let key = crate::lease_key(name);
        let seq = {
            let mut last = self.commits.lock().await;
            match self.db.get(&key).map_err(engine)? {
                Some(v) if crate::decode_lease(&v)?.holder == holder => {
                    self.db.remove(&key).map_err(engine)?;
                    *last += 1;
                    *last
                }
                _ => return Ok(()),
            }
        };
        self.durable(seq).await
    }
}
