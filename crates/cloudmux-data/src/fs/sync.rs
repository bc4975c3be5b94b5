//! Group commit for the filesystem location: one `syncfs` makes every write
//! finished before it durable, so concurrent requests share one flush instead
//! of each paying for its own `fsync`s.
//!
//! A caller that needs its writes durable takes a ticket (a sequence number
//! handed out after its writes are done) and waits until the durable mark
//! reaches it. Whoever finds no flush running becomes the leader: it reads the
//! highest ticket handed out so far, runs `syncfs` on the blocking pool and
//! raises the durable mark to that ticket. Callers that arrive during a flush
//! wait for it to end and then for the next one, which the first of them leads.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Batches durability requests for one filesystem.
#[derive(Debug)]
pub(crate) struct SyncGroup {
    /// An open handle on the location's root directory, for `syncfs`.
    root: Arc<std::fs::File>,
    /// The last ticket handed out.
    tickets: AtomicU64,
    /// Whether a leader is flushing now.
    leading: Mutex<bool>,
    /// The highest ticket known durable.
    durable: watch::Sender<u64>,
}

impl SyncGroup {
    /// Opens the group for the filesystem holding `root`.
    pub(crate) fn open(root: &Path) -> io::Result<Self> {
        Ok(Self {
            root: Arc::new(std::fs::File::open(root)?),
            tickets: AtomicU64::new(0),
            leading: Mutex::new(false),
            durable: watch::channel(0).0,
        })
    }

    /// Returns once every write this process finished before the call is on
    /// stable storage: file contents, new names, renames and removals.
    pub(crate) async fn sync(&self) -> io::Result<()> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let mut rx = self.durable.subscribe();
        loop {
            if *rx.borrow_and_update() >= ticket {
                return Ok(());
            }
            let lead = !std::mem::replace(&mut *self.leading.lock().unwrap(), true);
            if lead {
                let target = self.tickets.load(Ordering::SeqCst);
                let root = self.root.clone();
                let res = tokio::task::spawn_blocking(move || rustix::fs::syncfs(&*root)).await;
                *self.leading.lock().unwrap() = false;
                match res {
                    Ok(Ok(())) => {
                        self.durable.send_modify(|d| *d = (*d).max(target));
                        return Ok(());
                    }
                    Ok(Err(e)) => {
                        self.durable.send_modify(|_| {});
                        return Err(e.into());
                    }
                    Err(e) => {
                        self.durable.send_modify(|_| {});
                        return Err(io::Error::other(e));
                    }
                }
            } else if rx.changed().await.is_err() {
                return Err(io::Error::other("sync group closed"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_all_return_and_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let group = Arc::new(SyncGroup::open(dir.path()).unwrap());
        let mut tasks = Vec::new();
        for i in 0..64 {
            let group = group.clone();
            let path = dir.path().join(format!("f{i}"));
            tasks.push(tokio::spawn(async move {
                std::fs::write(&path, b"x").unwrap();
                group.sync().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(group.tickets.load(Ordering::SeqCst), 64);
        assert_eq!(*group.durable.borrow(), 64);
    }
}
