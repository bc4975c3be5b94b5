//! Striped per-key locks: writers to one key (and readers that found its data
//! replaced under them) serialize here; different keys rarely share a stripe.

use std::hash::{DefaultHasher, Hash, Hasher};

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 1024;

pub(crate) struct KeyLocks {
    stripes: Vec<Mutex<()>>,
}

impl KeyLocks {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    pub(crate) async fn lock(&self, bucket: &str, key: &str) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        (bucket, key).hash(&mut h);
        self.stripes[(h.finish() as usize) % STRIPES].lock().await
    }
}
