//! The embedded engine: one sled tree. Commits are serialized by one async
//! mutex (conditions checked, then one atomic `apply_batch`), and durability
//! comes from a group commit: after applying its change, a commit joins the
//! open batch and waits for the flush that covers it. A driver task that
//! belongs to no caller closes the batch (later commits join a fresh one), runs
//! sled's blocking `flush` on the blocking pool and gives its result to every
//! commit of the batch, then repeats while commits keep joining.
//!
//! sled's own transactions and `flush_async` are deliberately not used: under
//! concurrent use they deadlock in sled 0.34 (spacejam/sled#1308, #1301).

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::{watch, Mutex};

use crate::{Condition, Entry, MetaError, MetaStore, Mutation, Result, Txn};

/// The sled engine.
///
/// # Durability and failures
///
/// A commit (or lease change) returns `Ok` only after a sled flush that
/// started after the change was applied has succeeded. Concurrent commits
/// share flushes, and the flushes run on a task of their own, so dropping a
/// caller's future at any point (a client disconnected) never holds up other
/// callers.
///
/// sled makes a change visible before it is flushed and cannot roll it back.
/// So when a flush fails (or panics), the store is poisoned: every commit
/// that flush covered, and every later `get`, `scan`, `commit` and lease call,
/// fails with [`MetaError::Poisoned`], so nothing built on a change that may be
/// lost is ever acknowledged, and the readiness probe fails. Restarting the
/// process reopens the store from what is on disk.
pub struct SledStore {
    db: sled::Db,
    /// Serializes commits.
    commits: Mutex<()>,
    group: GroupCommit,
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore")
            .field("poisoned", &self.group.inner.poison.get())
            .finish_non_exhaustive()
    }
}

fn engine(e: impl std::fmt::Display) -> MetaError {
    MetaError::Engine(e.to_string())
}

impl SledStore {
    /// Opens (or creates) the database directory at `path`.
    ///
    /// Each group flush is sled's `flush` followed by `syncfs` of the file
    /// system holding `path`: sled 0.34 makes its log stable with
    /// `sync_file_range`, which writes the bytes but not the file's metadata
    /// (size, newly allocated blocks), so on its own a commit could be lost
    /// to a power failure after it was acknowledged. The power-loss test
    /// (`tests/crash.rs`) showed exactly that.
    pub fn open(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path).map_err(engine)?;
        let dir = std::fs::File::open(path).map_err(engine)?;
        Self::open_with_flush(path, move |db| {
            #[cfg(feature = "failpoints")]
            if let Some(action) = fail::eval("meta.flush", |v| v.unwrap_or_default()) {
                tracing::warn!("failpoint fired: meta.flush {action}");
                return Err(sled::Error::Io(std::io::Error::other(
                    "failpoint meta.flush: injected error",
                )));
            }
            db.flush()?;
            rustix::fs::syncfs(&dir).map_err(|e| sled::Error::Io(std::io::Error::from(e)))
        })
    }

    /// Opens the store with `flush` as the group commit's flush, which must
    /// make every change applied to `db` before the call durable or fail.
    fn open_with_flush(
        path: &Path,
        flush: impl Fn(&sled::Db) -> sled::Result<()> + Send + Sync + 'static,
    ) -> Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None)
            .open()
            .map_err(engine)?;
        let flushed = db.clone();
        Ok(Self {
            db,
            commits: Mutex::new(()),
            group: GroupCommit::new(move || flush(&flushed).map_err(|e| e.to_string())),
        })
    }

    /// Fails once a flush has failed.
    fn healthy(&self) -> Result<()> {
        match self.group.inner.poison.get() {
            Some(why) => Err(MetaError::Poisoned(why.clone())),
            None => Ok(()),
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
        self.healthy()?;
        Ok(self.db.get(key).map_err(engine)?.map(|v| v.to_vec()))
    }

    async fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>> {
        self.healthy()?;
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

    async fn snapshot(&self) -> Result<Vec<Entry>> {
        let _serial = self.commits.lock().await;
        self.healthy()?;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            db.iter()
                .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine))
                .collect::<Result<Vec<Entry>>>()
        })
        .await
        .map_err(engine)?
    }

    async fn commit(&self, txn: Txn) -> Result<()> {
        let ticket = {
            let _serial = self.commits.lock().await;
            self.apply(txn)?;
            self.group.join()
        };
        ticket.wait().await
    }

    /// Applies without joining a group flush: the next durable commit's
    /// flush covers it, since sled's log is written in order.
    async fn commit_relaxed(&self, txn: Txn) -> Result<()> {
        let _serial = self.commits.lock().await;
        self.apply(txn)
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let key = crate::lease_key(name);
        let now = crate::now_ms();
        let ticket = {
            let _serial = self.commits.lock().await;
            self.healthy()?;
            let current = self.db.get(&key).map_err(engine)?;
            if !crate::lease_available(current.as_deref(), holder, now)? {
                return Ok(false);
            }
            let new = crate::encode_lease(holder, now + ttl.as_millis() as u64);
            self.db.insert(&key, new).map_err(engine)?;
            self.group.join()
        };
        ticket.wait().await?;
        Ok(true)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let key = crate::lease_key(name);
        let ticket = {
            let _serial = self.commits.lock().await;
            self.healthy()?;
            match self.db.get(&key).map_err(engine)? {
                Some(v) if crate::decode_lease(&v)?.holder == holder => {
                    self.db.remove(&key).map_err(engine)?;
                    self.group.join()
                }
                _ => return Ok(()),
            }
        };
        ticket.wait().await
    }
}

/// What a flush does; the error is the reason the store is poisoned.
type FlushFn = dyn Fn() -> std::result::Result<(), String> + Send + Sync;

/// A batch's outcome: `None` while its flush has not ended.
type Outcome = Option<std::result::Result<(), String>>;

/// Group commit: batches of changes, each made durable by one flush.
///
/// A change joins the open batch after it is applied; the driver task closes
/// the batch before it starts the flush, so a flush covers every change of its
/// batch. Each batch gets exactly the outcome of its own flush. After a failed
/// flush the group is poisoned: later batches fail without flushing.
struct GroupCommit {
    inner: Arc<GroupInner>,
}

struct GroupInner {
    flush: Box<FlushFn>,
    /// Why the store is unusable, set by the first failed flush.
    poison: OnceLock<String>,
    state: StdMutex<GroupState>,
}

struct GroupState {
    /// The batch changes join now; its outcome is sent by the next flush.
    open: watch::Sender<Outcome>,
    /// Whether a change joined `open` since it was opened.
    joined: bool,
    /// Whether a driver task is running.
    driving: bool,
}

/// A change's place in a batch.
struct Ticket(watch::Receiver<Outcome>);

impl GroupCommit {
    fn new(flush: impl Fn() -> std::result::Result<(), String> + Send + Sync + 'static) -> Self {
        Self {
            inner: Arc::new(GroupInner {
                flush: Box::new(flush),
                poison: OnceLock::new(),
                state: StdMutex::new(GroupState {
                    open: watch::channel(None).0,
                    joined: false,
                    driving: false,
                }),
            }),
        }
    }

    /// Joins the open batch, starting the driver if none runs. Must be called
    /// within a Tokio runtime, after the change to cover is applied.
    fn join(&self) -> Ticket {
        let mut state = self.inner.state();
        state.joined = true;
        if !state.driving {
            state.driving = true;
            tokio::spawn(drive(self.inner.clone()));
        }
        Ticket(state.open.subscribe())
    }
}

impl Ticket {
    /// Waits for the outcome of the flush that covers this ticket's batch.
    async fn wait(mut self) -> Result<()> {
        match self.0.wait_for(Option::is_some).await {
            Ok(outcome) => match &*outcome {
                Some(Ok(())) => Ok(()),
                Some(Err(why)) => Err(MetaError::Poisoned(why.clone())),
                None => Err(engine("group commit: batch without outcome")),
            },
            // The change stays applied and a later flush may still write it:
            // the outcome is unknown, as after a timeout.
            Err(_) => Err(engine(
                "group commit stopped before flushing (runtime shut down)",
            )),
        }
    }
}

impl SledStore {
    /// Checks a transaction's conditions and applies it, with the commit
    /// lock held by the caller.
    fn apply(&self, txn: Txn) -> Result<()> {
        self.healthy()?;
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
        self.db.apply_batch(batch).map_err(engine)
    }
}

impl GroupInner {
    fn state(&self) -> MutexGuard<'_, GroupState> {
        // Every critical section leaves the state consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the first failure; returns the reason the store is poisoned.
    fn poison(&self, why: String) -> String {
        let why = self.poison.get_or_init(|| why).clone();
        tracing::error!(error = %why, "sled flush failed; the metadata store refuses every call until restarted");
        why
    }
}

/// Runs flushes while changes keep joining.
async fn drive(inner: Arc<GroupInner>) {
    let mut guard = DriverGuard {
        inner: inner.clone(),
        finished: false,
    };
    loop {
        let batch = {
            let mut state = inner.state();
            if !state.joined {
                state.driving = false;
                guard.finished = true;
                return;
            }
            state.joined = false;
            std::mem::replace(&mut state.open, watch::channel(None).0)
        };
        let outcome = match inner.poison.get() {
            Some(why) => Err(why.clone()),
            None => {
                let flusher = inner.clone();
                match tokio::task::spawn_blocking(move || (flusher.flush)()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(inner.poison(format!("sled flush failed: {e}"))),
                    Err(e) => Err(inner.poison(format!("sled flush failed: {e}"))),
                }
            }
        };
        batch.send_replace(Some(outcome));
    }
}

/// Hands the group back when the driver is dropped without finishing (its
/// runtime shut down): the changes of the open batch get an error rather than
/// waiting for a flush that nobody runs, and the next change starts a driver.
struct DriverGuard {
    inner: Arc<GroupInner>,
    finished: bool,
}

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if !self.finished {
            let mut state = self.inner.state();
            state.driving = false;
            state.joined = false;
            state.open = watch::channel(None).0;
        }
    }
}

#[cfg(test)]
mod tests;
