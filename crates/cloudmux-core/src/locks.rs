//! Striped per-key locks: writers to one key (and readers that found its data
//! replaced under them) serialize here; different keys rarely share a stripe.

use std::hash::{DefaultHasher, Hash, Hasher};

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard};

const STRIPES: usize = 1024;

pub(crate) struct KeyLocks {
    stripes: Vec<Arc<Mutex<()>>>,
}

/// A held key lock that can move into a spawned task, so that a write keeps
/// its key locked until it has finished even when the request that started
/// it is gone.
pub(crate) type KeyGuard = OwnedMutexGuard<()>;

impl KeyLocks {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Arc::new(Mutex::new(()))).collect(),
        }
    }

    fn stripe(&self, bucket: &str, key: &str) -> &Arc<Mutex<()>> {
        let mut h = DefaultHasher::new();
        (bucket, key).hash(&mut h);
        &self.stripes[(h.finish() as usize) % STRIPES]
    }

    pub(crate) async fn lock(&self, bucket: &str, key: &str) -> MutexGuard<'_, ()> {
        self.stripe(bucket, key).lock().await
    }

    /// The key's lock if it is free now, else `None`.
    pub(crate) fn try_lock(&self, bucket: &str, key: &str) -> Option<MutexGuard<'_, ()>> {
        self.stripe(bucket, key).try_lock().ok()
    }

    /// Like [`KeyLocks::lock`], with a guard that owns its stripe.
    pub(crate) async fn lock_owned(&self, bucket: &str, key: &str) -> KeyGuard {
        self.stripe(bucket, key).clone().lock_owned().await
    }
}
