//! Failpoints: named places in the write paths where tests inject an error,
//! a panic or a process exit, or hold a request to force an interleaving.
//!
//! Compiled only with the `failpoints` cargo feature (release builds leave it
//! out); without it [`fault!`](crate::fault) expands to nothing. Every point
//! is listed in [`REGISTRY`] with the step it follows, and the fault matrix
//! test (`tests/faults.rs`) fails when a registered point is never reached,
//! so a new step cannot go untested.
//!
//! A point is armed with an action from the [`fail`] crate's syntax, through
//! [`configure`] (the admin route `PUT /_/failpoints/NAME` in the front end)
//! or the `FAILPOINTS` environment variable read by [`setup_from_env`]. The
//! value of `return(VALUE)` says what happens when it fires:
//! - `return(error)` (or a bare `return`): the step fails with an internal
//!   error, as if the next I/O had failed;
//! - `return(panic)`: the task panics;
//! - `return(exit)`: the process exits at once with status 86, as a crash;
//! - `return(wait:MS)`: the request waits there MS milliseconds, then goes
//!   on (end-to-end tests use it to force an interleaving).
//!
//! Each firing is logged as `failpoint fired: NAME ACTION`. In-process tests
//! can also [`gate`] a point: the next task to reach it waits there until the
//! test opens the gate, which forces one interleaving deterministically.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::Notify;

use crate::{CoreError, Result};

/// Every failpoint, with the step it follows. Names are
/// `<operation>.<step>`.
pub const REGISTRY: &[(&str, &str)] = &[
    (
        "put.staged",
        "PutObject: the body is staged, before the commit protocol",
    ),
    (
        "copy.staged",
        "CopyObject: the copy is staged, before the commit protocol",
    ),
    (
        "commit.checked",
        "every object write: the checks passed under the key's lock",
    ),
    (
        "commit.persisted",
        "an overwrite (or a new key on fs): its staged bytes are durable, before the intent (or the record)",
    ),
    (
        "commit.staged",
        "a new key on fs: its record naming the staged copy is committed, before the move",
    ),
    (
        "move.published",
        "a new key on fs: the staged copy is at the native name, before the record switch",
    ),
    (
        "commit.intent",
        "every object write: the intent is committed, before publishing",
    ),
    (
        "commit.kept",
        "a write in a versioned bucket: the current version's bytes are kept aside, before publishing",
    ),
    (
        "commit.published",
        "every object write: the bytes are at the native name, before the record",
    ),
    (
        "commit.committed",
        "every object write: the record is committed, before replaced bytes are removed",
    ),
    (
        "complete.assembled",
        "CompleteMultipartUpload: the parts are assembled, before the commit protocol",
    ),
    (
        "complete.committed",
        "CompleteMultipartUpload: the object is committed, before its parts are dropped",
    ),
    (
        "abort.committed",
        "AbortMultipartUpload: the upload record is gone, before its parts are dropped",
    ),
    (
        "part.persisted",
        "UploadPart: the part is durable, before its record",
    ),
    (
        "part.committed",
        "UploadPart: the part record is committed, before a replaced part is dropped",
    ),
    (
        "bucket.marked",
        "DeleteBucket: its marker is committed, before the emptiness check",
    ),
    (
        "delete.checked",
        "DeleteObject and DeleteObjects: the checks passed, before the commit",
    ),
    (
        "delete.kept",
        "DeleteObject in a versioned bucket: the current version's bytes are kept aside, before the delete marker's commit",
    ),
    (
        "delete.committed",
        "DeleteObject and DeleteObjects: the record is gone, before the bytes are removed",
    ),
    (
        "meta.flush",
        "every durable metadata commit: sled's group flush, before it runs (cloudmux-meta)",
    ),
    (
        "fs.sync",
        "every durable write on fs: the group syncfs, before it runs (cloudmux-data)",
    ),
    (
        "garbage.removed",
        "removing replaced or deleted bytes: they are gone, before their garbage record",
    ),
];

/// Whether `name` is a registered failpoint.
pub fn is_registered(name: &str) -> bool {
    REGISTRY.iter().any(|(n, _)| *n == name)
}

/// Arms `name` with a [`fail`] action (`return(error)`, `return(panic)`,
/// `return(exit)`, `off`, counts like `1*return(exit)`, ...).
pub fn configure(name: &str, action: &str) -> std::result::Result<(), String> {
    if !is_registered(name) {
        return Err(format!("unknown failpoint {name}"));
    }
    fail::cfg(name, action)
}

/// Disarms every failpoint and opens every gate.
pub fn clear() {
    for (name, _) in REGISTRY {
        fail::remove(name);
    }
    let gates = std::mem::take(&mut *lock_gates());
    for gate in gates.into_values() {
        gate.open();
    }
}

/// Arms failpoints from the `FAILPOINTS` environment variable
/// (`name=action;name=action`), as the [`fail`] crate reads it.
pub fn setup_from_env() -> std::result::Result<(), String> {
    let Ok(spec) = std::env::var("FAILPOINTS") else {
        return Ok(());
    };
    for item in spec.split(';').filter(|s| !s.trim().is_empty()) {
        let (name, action) = item
            .split_once('=')
            .ok_or_else(|| format!("FAILPOINTS item {item:?} is not name=action"))?;
        configure(name.trim(), action.trim())?;
    }
    Ok(())
}

/// A gate at a failpoint: the first task to reach the point waits until the
/// gate is opened; later ones pass.
#[derive(Debug, Default)]
pub struct Gate {
    reached: Notify,
    opened: Notify,
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    reached: bool,
    open: bool,
}

impl Gate {
    /// Waits until a task has reached the gated point.
    pub async fn reached(&self) {
        loop {
            let notified = self.reached.notified();
            if self.state.lock().unwrap_or_else(|e| e.into_inner()).reached {
                return;
            }
            notified.await;
        }
    }

    /// Lets the waiting task (and every later one) through.
    pub fn open(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).open = true;
        self.opened.notify_waiters();
    }

    /// Holds the first task to arrive until the gate opens; later arrivals
    /// pass at once.
    async fn pass(&self) {
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.reached || state.open {
                return;
            }
            state.reached = true;
        }
        self.reached.notify_waiters();
        loop {
            let opened = self.opened.notified();
            if self.state.lock().unwrap_or_else(|e| e.into_inner()).open {
                return;
            }
            opened.await;
        }
    }
}

fn lock_gates() -> std::sync::MutexGuard<'static, HashMap<&'static str, Arc<Gate>>> {
    static GATES: LazyLock<Mutex<HashMap<&'static str, Arc<Gate>>>> =
        LazyLock::new(Default::default);
    GATES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Closes a gate at `name` (a registered point): the next task to reach it
/// waits there until [`Gate::open`]; tasks after it pass. Replaces an earlier gate at `name`.
pub fn gate(name: &'static str) -> Arc<Gate> {
    assert!(is_registered(name), "unknown failpoint {name}");
    let gate = Arc::new(Gate::default());
    if let Some(old) = lock_gates().insert(name, gate.clone()) {
        old.open();
    }
    gate
}

/// Removes the gate at `name`, opening it.
pub fn ungate(name: &str) {
    if let Some(gate) = lock_gates().remove(name) {
        gate.open();
    }
}

/// Runs failpoint `name`: waits at its gate if one is closed, then applies
/// its armed action. Called through [`fault!`](crate::fault).
pub async fn hit(name: &'static str) -> Result<()> {
    debug_assert!(is_registered(name), "unregistered failpoint {name}");
    let gate = lock_gates().get(name).cloned();
    if let Some(gate) = gate {
        gate.pass().await;
    }
    let fired = fail::eval(name, |value| value.unwrap_or_else(|| "error".into()));
    let Some(action) = fired else {
        return Ok(());
    };
    tracing::warn!("failpoint fired: {name} {action}");
    match action.as_str() {
        "panic" => panic!("failpoint {name}: injected panic"),
        "exit" => {
            eprintln!("failpoint fired: {name} exit");
            std::process::exit(86)
        }
        wait if wait.starts_with("wait:") => {
            // A request held here keeps its place (and any lock it holds)
            // without blocking a runtime thread.
            let ms = wait["wait:".len()..].parse().unwrap_or(1000);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            Ok(())
        }
        _ => Err(CoreError::Internal(format!(
            "failpoint {name}: injected error"
        ))),
    }
}
