//! An in-memory engine: the reference model for property tests and a store for
//! unit tests. Not durable.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::{Condition, Entry, MetaError, MetaStore, Mutation, Result, Txn};

/// A `BTreeMap` behind a mutex, implementing [`MetaStore`] exactly as the
/// trait documents it.
#[derive(Default)]
pub struct MemStore {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn apply(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, txn: Txn) -> Result<()> {
        for c in &txn.conditions {
            let ok = match c {
                Condition::Absent(k) => !map.contains_key(k),
                Condition::Present(k) => map.contains_key(k),
                Condition::Equals(k, v) => map.get(k) == Some(v),
            };
            if !ok {
                return Err(MetaError::Conflict);
            }
        }
        for m in txn.mutations {
            match m {
                Mutation::Put(k, v) => {
                    map.insert(k, v);
                }
                Mutation::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl MetaStore for MemStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.map.lock().unwrap().get(key).cloned())
    }

    async fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let map = self.map.lock().unwrap();
        Ok(map
            .range(start.to_vec()..end.to_vec())
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn commit(&self, txn: Txn) -> Result<()> {
        Self::apply(&mut self.map.lock().unwrap(), txn)
    }

    async fn snapshot(&self) -> Result<Vec<Entry>> {
        let map = self.map.lock().unwrap();
        Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let key = crate::lease_key(name);
        let now = crate::now_ms();
        let mut map = self.map.lock().unwrap();
        if !crate::lease_available(map.get(&key).map(|v| v.as_slice()), holder, now)? {
            return Ok(false);
        }
        map.insert(
            key,
            crate::encode_lease(holder, now + ttl.as_millis() as u64),
        );
        Ok(true)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let key = crate::lease_key(name);
        let mut map = self.map.lock().unwrap();
        if let Some(v) = map.get(&key) {
            if crate::decode_lease(v)?.holder == holder {
                map.remove(&key);
            }
        }
        Ok(())
    }
}
