//! The commit protocol every object write goes through: PutObject, POST
//! Object, CopyObject and CompleteMultipartUpload hand their staged bytes
//! and the record those bytes will get to [`Gateway::commit_write`].
//!
//! The protocol, for one key, with the key's lock held from the checks to
//! the end:
//! 1. **Check** everything that can refuse the write while nothing visible
//!    has changed: the caller's right to write the bucket, that the bucket
//!    is not being deleted, the conditional headers against the current
//!    record (a condition that held when the request started and fails now
//!    is 409 ConditionalRequestConflict), and (Complete) that the upload
//!    still exists. A refused write
//!    discards its staged bytes and changes nothing.
//! 2. **Announce** the write: an intent record (the new record and the
//!    staged id) is committed before the bytes reach the native name; for an
//!    overwrite the staged bytes are made durable first. After a crash,
//!    recovery rolls an overwrite forward (its old bytes may be gone) and
//!    removes a new key's published bytes (no record names them), so the
//!    location never holds data that no record explains.
//! 3. **Publish** the bytes at the object's native name.
//! 4. **Commit** the record (removing the intent, and the upload record for
//!    Complete) in one transaction. From step 3 on the write only rolls
//!    forward: the old bytes may be gone, so the new record is committed
//!    whatever happened to the bucket's ACL meanwhile; a new key whose
//!    bucket was deleted meanwhile removes its published bytes instead, since
//!    no record names them.
//!
//! A new key on a location that serves staged data as it is (`fs`) takes a
//! two-phase commit instead of steps 2 to 4: its durable staged copy is
//! named by the record, committed with a move record in one flush, and moved
//! to the native name after the answer (see `moves.rs`).
//!
//! Steps 2 to 4 run on a spawned task that owns the key's lock, so a request
//! dropped by its client (hyper drops the request future) never leaves a
//! write half done: the task finishes it, and the lock is released only then.

use std::sync::Arc;

use cloudmux_data::{Backend, DataError, ObjectPath, Staged};
use cloudmux_meta::{codec, MetaError, MetaStore, Txn};

use crate::acl::Permission;
use crate::locks::KeyGuard;
use crate::metrics::Metrics;
use crate::moves::finish_move;
use crate::object::{native_meta, PutObjectOutput, WriteConditions};
use crate::records::{self, BucketRecord, GarbageRecord, MoveRecord, ObjectRecord, Versioning};
use crate::recover::{resolve_intent, Resolution};
use crate::versions::{retire, Dropped, Kept};
use crate::{CoreError, Gateway, Locations, RequestContext, Result};

/// An object write whose bytes are staged, ready for the commit protocol.
pub(crate) struct PendingWrite<'a> {
    /// Who writes (checked again under the key's lock).
    pub who: &'a RequestContext,
    /// Bucket.
    pub bucket: &'a str,
    /// Key.
    pub key: &'a str,
    /// The location's backend holding `staged`.
    pub backend: Arc<dyn Backend>,
    /// The staged bytes.
    pub staged: Staged,
    /// The record the object will have; `data` is filled in on publish.
    pub record: ObjectRecord,
    /// Conditional write headers, already checked once when the request
    /// started (`Gateway::precheck_write`): failing now, under the key's
    /// lock, is a conflict with a write that finished meanwhile (409).
    pub conditions: &'a WriteConditions,
    /// CompleteMultipartUpload: the upload that must still exist and is
    /// removed in the commit. `record.upload_id` names it.
    pub upload: Option<String>,
}

/// The answer for a record that is already committed.
pub(crate) fn output_of(record: &ObjectRecord) -> PutObjectOutput {
    PutObjectOutput {
        etag: record.etag.clone(),
        checksum: record.checksum.clone(),
        last_modified_ms: record.last_modified_ms,
        size: record.size,
        version_id: record.version.id.clone(),
        source_version_id: None,
    }
}

impl Gateway {
    /// Runs the commit protocol (see the module documentation) for a write
    /// whose key lock the caller already holds.
    pub(crate) async fn commit_write(
        &self,
        guard: KeyGuard,
        w: PendingWrite<'_>,
    ) -> Result<PutObjectOutput> {
        let (existing, plan) = match self.check_write(&w).await {
            Ok(Checked::Proceed(checked)) => *checked,
            Ok(Checked::AlreadyCompleted(out)) => {
                let _ = w.backend.discard(&w.staged).await;
                return Ok(out);
            }
            Err(e) => {
                let _ = w.backend.discard(&w.staged).await;
                return Err(e);
            }
        };
        let mut record = w.record;
        let floor = existing
            .iter()
            .map(|(r, _)| r.version.seq)
            .chain(plan.drop.iter().map(|(_, r, _)| r.version.seq))
            .max()
            .unwrap_or(0);
        record.version.seq = self.clock.next(floor);
        record.version.id = plan
            .new_id
            .then(|| crate::versions::new_version_id(record.version.seq));
        let job = PublishJob {
            meta: self.meta.clone(),
            metrics: self.metrics.clone(),
            locations: self.locations.clone(),
            backend: w.backend,
            bucket: w.bucket.to_owned(),
            key: w.key.to_owned(),
            staged: w.staged,
            record,
            existing,
            keep: plan.keep,
            drop: plan.drop,
            upload: w.upload,
            _guard: guard,
        };
        self.run_job(job).await
    }

    /// Runs steps 2 to 4 of a write on a task of their own, which owns the
    /// key's lock (see the module documentation).
    pub(crate) async fn run_job(&self, job: PublishJob) -> Result<PutObjectOutput> {
        let (bucket, key) = (job.bucket.clone(), job.key.clone());
        match tokio::spawn(job.run()).await {
            Ok(result) => result,
            Err(e) => {
                // The task died (a panic) and released the key's lock on
                // the way: settle what it left before anyone reads a record
                // whose bytes it may have replaced.
                let _guard = self.locks.lock(&bucket, &key).await;
                if let Err(settle) = self.settle_intent(&bucket, &key).await {
                    tracing::warn!(%bucket, %key, error = %settle,
                        "a failed write is left for recovery");
                }
                Err(CoreError::Internal(format!(
                    "object commit task failed: {e}"
                )))
            }
        }
    }

    /// What a write does to the key's versions, from the bucket's
    /// versioning state and the current version: whether the current one is
    /// kept as a noncurrent version, whether a noncurrent `null` version is
    /// replaced, and whether the new version gets an id.
    pub(crate) async fn plan_versions(
        &self,
        bucket: &BucketRecord,
        name: &str,
        key: &str,
        current: Option<&ObjectRecord>,
    ) -> Result<VersionPlan> {
        let mut plan = VersionPlan::default();
        match bucket.versioning {
            None => {}
            Some(Versioning::Enabled) => {
                plan.new_id = true;
                plan.keep = current.map(keep_as);
            }
            Some(Versioning::Suspended) => {
                // The new version is the null version: a current null
                // version is replaced, a current one with an id is kept, and
                // a noncurrent null version goes.
                if let Some(cur) = current.filter(|c| c.version.id.is_some()) {
                    plan.keep = Some(keep_as(cur));
                    plan.drop = self
                        .noncurrent(name, key)
                        .await?
                        .into_iter()
                        .find(|(_, r, _)| r.version.id.is_none());
                }
            }
        }
        Ok(plan)
    }

    /// Step 1: everything that may refuse the write, before anything
    /// visible changes.
    async fn check_write(&self, w: &PendingWrite<'_>) -> Result<Checked> {
        let (b, _) = self
            .bucket_for(w.who, w.bucket, Permission::Write, Some(w.key))
            .await?;
        if self
            .meta
            .get(&records::deleting_key(w.bucket))
            .await?
            .is_some()
        {
            return Err(CoreError::OperationAborted(w.bucket.to_owned()));
        }
        self.settle_intent(w.bucket, w.key).await?;
        let existing = self.current(w.bucket, w.key).await?;
        let live = existing
            .as_ref()
            .map(|(r, _)| r)
            .filter(|r| !r.version.delete_marker);
        if let Some(id) = &w.upload {
            let ukey = records::upload_key(w.bucket, w.key, id);
            if self.meta.get(&ukey).await?.is_none() {
                return match live {
                    Some(cur)
                        if cur.upload_id.as_deref() == Some(id) && cur.etag == w.record.etag =>
                    {
                        Ok(Checked::AlreadyCompleted(output_of(cur)))
                    }
                    _ => Err(CoreError::NoSuchUpload(id.clone())),
                };
            }
        }
        w.conditions.recheck(w.key, live)?;
        let plan = self
            .plan_versions(&b, w.bucket, w.key, existing.as_ref().map(|(r, _)| r))
            .await?;
        Ok(Checked::Proceed(Box::new((existing, plan))))
    }
}

/// What a write does to its key's versions (see `Gateway::plan_versions`).
#[derive(Default)]
pub(crate) struct VersionPlan {
    /// Whether the new version gets an id (versioning enabled) or is the
    /// `null` version.
    pub new_id: bool,
    /// The current version is kept as a noncurrent version: the name its
    /// bytes are kept under, or `""` when it has none (a delete marker).
    /// `None`: the write replaces it.
    pub keep: Option<String>,
    /// A noncurrent version the write removes: its key, record and encoded
    /// form.
    pub drop: Option<(Vec<u8>, ObjectRecord, Vec<u8>)>,
}

/// How the current version is kept when it stops being current.
fn keep_as(cur: &ObjectRecord) -> String {
    if cur.version.delete_marker {
        String::new()
    } else {
        crate::versions::kept_name(&cur.version)
    }
}

/// Why a record commit failed.
enum CommitFailure {
    /// The commit was refused (a condition did not hold); nothing changed
    /// and the published bytes are removed.
    Refused(CoreError),
    /// Whether the commit took effect is unknown.
    Unknown(CoreError),
}

/// The current version of a key, if it has one, with its encoded form.
type Current = Option<(ObjectRecord, Vec<u8>)>;

/// What the checks decided.
enum Checked {
    /// Go on; the current record and its raw bytes, if the key has a
    /// version, and what the write does to the key's versions.
    Proceed(Box<(Current, VersionPlan)>),
    /// A retried CompleteMultipartUpload whose object is already current.
    AlreadyCompleted(PutObjectOutput),
}

/// Steps 2 to 4 of the protocol, owned by a spawned task.
pub(crate) struct PublishJob {
    pub meta: Arc<dyn MetaStore>,
    pub metrics: Arc<Metrics>,
    pub locations: Arc<Locations>,
    /// The location of the new bytes.
    pub backend: Arc<dyn Backend>,
    pub bucket: String,
    pub key: String,
    /// The new bytes, staged.
    pub staged: Staged,
    /// The record the new version gets (its version fields set).
    pub record: ObjectRecord,
    /// The current version (a delete marker too), with its encoded form.
    pub existing: Option<(ObjectRecord, Vec<u8>)>,
    /// See [`VersionPlan::keep`].
    pub keep: Option<String>,
    /// See [`VersionPlan::drop`].
    pub drop: Option<(Vec<u8>, ObjectRecord, Vec<u8>)>,
    /// CompleteMultipartUpload: the upload the commit removes.
    pub upload: Option<String>,
    /// The key's lock, released when the job ends.
    pub _guard: KeyGuard,
}

impl PublishJob {
    fn data_err(&self, e: DataError) -> CoreError {
        match CoreError::from(e) {
            CoreError::Unavailable { message, .. } => CoreError::Unavailable {
                location: self.record.location.clone(),
                message,
            },
            CoreError::StorageFull { .. } => CoreError::StorageFull {
                location: self.record.location.clone(),
            },
            CoreError::Data { source, .. } => CoreError::Data {
                location: self.record.location.clone(),
                source,
            },
            other => other,
        }
    }

    pub(crate) async fn run(mut self) -> Result<PutObjectOutput> {
        if self.existing.is_none() {
            let native = native_meta(&self.record);
            let target = ObjectPath {
                bucket: &self.bucket,
                key: &self.key,
                meta: &native,
            };
            match self.backend.staged_ref(&self.staged, target).await {
                Ok(Some(data)) => return self.commit_staged(data).await,
                Ok(None) => {}
                Err(e) => {
                    let _ = self.backend.discard(&self.staged).await;
                    return Err(self.data_err(e));
                }
            }
        }
        if let Err(e) = self.announce().await {
            let _ = self.backend.discard(&self.staged).await;
            return Err(e);
        }
        let intent = self.intent();
        // A version that stays (versioning) is copied aside before the new
        // bytes replace it at the native name; the persist of an
        // overwrite's staged bytes also makes that copy durable.
        let kept = match self.keep_current().await {
            Ok(kept) => kept,
            Err(err) => {
                // A cloud may still finish a copy whose call failed in
                // transit: the undo looks for it once that can no longer
                // happen (the key stays locked).
                if matches!(err, CoreError::Unavailable { .. }) {
                    tokio::time::sleep(self.backend.publish_grace()).await;
                }
                return self.resolve(intent, err).await;
            }
        };
        if let Err(err) = self.persist_overwrite().await {
            return self.resolve(intent, err).await;
        }
        let published = match self.publish().await {
            Ok(data) => data,
            Err(err) => {
                // The publish may have got part-way (an overwrite may have
                // replaced the old bytes): finish or undo the write as crash
                // recovery would, from the intent. A cloud may still finish a
                // copy whose call failed in transit, so its outcome is only
                // read once that can no longer happen (the key stays locked).
                if matches!(err, CoreError::Unavailable { .. }) {
                    tokio::time::sleep(self.backend.publish_grace()).await;
                }
                return self.resolve(intent, err).await;
            }
        };
        self.record.data = published;
        match self.commit_record(kept).await {
            Ok(garbage) => {
                let record = self.record.clone();
                self.metrics
                    .object_written(&self.bucket, self.replaced_size(), record.size);
                crate::fault!("commit.committed");
                crate::garbage::remove_all(&*self.meta, &self.locations, garbage).await;
                Ok(output_of(&record))
            }
            Err(CommitFailure::Refused(err)) => Err(err),
            // Whether the commit took effect is unknown (an I/O error): settle
            // the write from its intent now, as recovery would; if the store
            // cannot even do that, the intent stays for recovery.
            Err(CommitFailure::Unknown(err)) => self.resolve(intent, err).await,
        }
    }

    /// The two-phase commit of a new key on a location that serves staged
    /// data as it is (see `moves.rs`): the staged bytes are made durable,
    /// the record naming them is committed with its move record, and the
    /// write is acknowledged; the move to the native name runs next, on a
    /// task that takes over the key's lock.
    async fn commit_staged(mut self, data: cloudmux_data::DataRef) -> Result<PutObjectOutput> {
        let ready: Result<()> = async {
            crate::fault!("commit.checked");
            self.backend
                .persist(&self.staged)
                .await
                .map_err(|e| self.data_err(e))?;
            crate::fault!("commit.persisted");
            Ok(())
        }
        .await;
        if let Err(e) = ready {
            let _ = self.backend.discard(&self.staged).await;
            return Err(e);
        }
        self.record.data = data.clone();
        let mv = MoveRecord {
            location: self.record.location.clone(),
            staged: self.staged.clone(),
            data,
        };
        let okey = records::object_key(&self.bucket, &self.key);
        let mut txn = Txn::new()
            .require_present(records::bucket_key(&self.bucket))
            .require_absent(okey.clone())
            .require_absent(records::deleting_key(&self.bucket));
        if let Some(id) = &self.upload {
            let ukey = records::upload_key(&self.bucket, &self.key, id);
            txn = txn.require_present(ukey.clone()).delete(ukey);
        }
        let txn = txn.put(okey, codec::encode(&self.record)).put(
            records::move_key(&self.bucket, &self.key),
            codec::encode(&mv),
        );
        match self.meta.commit(txn).await {
            Ok(()) => {}
            Err(MetaError::Conflict) => {
                let _ = self.backend.discard(&self.staged).await;
                return Err(self.refusal().await);
            }
            // Whether the commit took effect is unknown: the staged copy
            // stays, for the record that may name it (garbage collection
            // removes it if none does).
            Err(e) => return Err(e.into()),
        }
        self.metrics
            .object_written(&self.bucket, None, self.record.size);
        let out = output_of(&self.record);
        let staged: Result<()> = async {
            crate::fault!("commit.staged");
            Ok(())
        }
        .await;
        // An injected failure here leaves the move to whoever next settles
        // the key.
        staged?;
        // The data goes to its native name before the answer (a rename, not
        // waited on for durability), so native tools see the object as soon
        // as the client does; the move task makes the rename durable and
        // switches the record. A failed rename is left to that task.
        let native = native_meta(&self.record);
        let target = ObjectPath {
            bucket: &self.bucket,
            key: &self.key,
            meta: &native,
        };
        if let Err(e) = self.backend.place(self.staged.clone(), target).await {
            tracing::warn!(bucket = %self.bucket, key = %self.key, error = %e,
                "a new key's data stays staged until its move");
        }
        let PublishJob {
            meta,
            backend,
            bucket,
            key,
            _guard,
            ..
        } = self;
        tokio::spawn(async move {
            let _guard = _guard;
            if let Err(e) = finish_move(&*meta, &*backend, &bucket, &key, mv, true).await {
                tracing::warn!(%bucket, %key, error = %e,
                    "a new key's move to its native name is left for later");
            }
        });
        Ok(out)
    }

    /// The size of the live version this write replaces as the key's
    /// current one (for the usage figures), if any.
    fn replaced_size(&self) -> Option<u64> {
        self.existing
            .as_ref()
            .filter(|(r, _)| !r.version.delete_marker)
            .map(|(r, _)| r.size)
    }

    /// The intent this write commits before anything visible changes.
    fn intent(&self) -> records::IntentRecord {
        records::IntentRecord {
            record: self.record.clone(),
            staged: Some(self.staged.clone()),
            keep: self.keep.clone(),
            drop_version: self.drop.as_ref().map(|(k, _, _)| k.clone()),
        }
    }

    /// Keeps the current version's bytes as a noncurrent version, when the
    /// plan says so and it has bytes: answers the copy.
    async fn keep_current(&self) -> Result<Option<cloudmux_data::DataRef>> {
        crate::fault!("commit.intent");
        let (Some(name), Some((cur, _))) = (self.keep.as_deref(), &self.existing) else {
            return Ok(None);
        };
        if name.is_empty() {
            return Ok(None);
        }
        let backend = self.locations.get(&cur.location)?;
        // The current version may lie in another location than the new
        // bytes (a per-object location): the persist that follows covers
        // only the new bytes' location, so the copy is then made durable
        // on its own.
        let native = native_meta(cur);
        let target = ObjectPath {
            bucket: &self.bucket,
            key: &self.key,
            meta: &native,
        };
        let kept = if cur.location == self.record.location {
            backend.keep_version_unsynced(&cur.data, target, name).await
        } else {
            backend.keep_version(&cur.data, target, name).await
        }
        .map_err(|e| self.data_err(e))?;
        crate::fault!("commit.kept");
        Ok(Some(kept))
    }

    /// Step 2: commits the intent.
    async fn announce(&self) -> Result<()> {
        crate::fault!("commit.checked");
        let intent = self.intent();
        let ikey = records::intent_key(&self.bucket, &self.key);
        self.meta
            .commit(Txn::new().put(ikey, codec::encode(&intent)))
            .await?;
        Ok(())
    }

    /// Makes an overwrite's staged bytes durable before they are published,
    /// since recovery rolls a published overwrite forward; with them the
    /// copy `keep_current` made, which must be durable before the native
    /// name stops naming the kept bytes. A new key's intent only lets
    /// recovery remove bytes published without a record, so it needs no
    /// persist.
    async fn persist_overwrite(&self) -> Result<()> {
        if self.existing.is_none() {
            return Ok(());
        }
        self.backend
            .persist(&self.staged)
            .await
            .map_err(|e| self.data_err(e))?;
        crate::fault!("commit.persisted");
        Ok(())
    }

    /// Step 3: the bytes at the native name.
    async fn publish(&self) -> Result<cloudmux_data::DataRef> {
        self.backend
            .publish(
                self.staged.clone(),
                ObjectPath {
                    bucket: &self.bucket,
                    key: &self.key,
                    meta: &native_meta(&self.record),
                },
            )
            .await
            .map_err(|e| self.data_err(e))
    }

    /// Step 4: commits the record, removing the intent (and the upload for
    /// Complete), with the garbage record of replaced bytes stored under
    /// another name. Returns that garbage record.
    async fn commit_record(
        &self,
        kept: Option<cloudmux_data::DataRef>,
    ) -> std::result::Result<Vec<(Vec<u8>, GarbageRecord)>, CommitFailure> {
        let unknown = CommitFailure::Unknown;
        let injected: Result<()> = async {
            crate::fault!("commit.published");
            Ok(())
        }
        .await;
        injected.map_err(unknown)?;
        let overwrite = self.existing.is_some();
        let ikey = records::intent_key(&self.bucket, &self.key);
        let okey = records::object_key(&self.bucket, &self.key);
        let value = codec::encode(&self.record);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut txn = Txn::new();
            // After a few conflicts an overwrite commits without conditions:
            // its old bytes are gone, so the new record is the only true one.
            if !(overwrite && attempt > 3) {
                txn = txn.require_present(records::bucket_key(&self.bucket));
                txn = match &self.existing {
                    Some((_, raw)) => txn.require_equals(okey.clone(), raw.clone()),
                    None => txn
                        .require_absent(okey.clone())
                        .require_absent(records::deleting_key(&self.bucket)),
                };
            }
            if let Some(id) = &self.upload {
                let ukey = records::upload_key(&self.bucket, &self.key, id);
                if !(overwrite && attempt > 3) {
                    txn = txn.require_present(ukey.clone());
                }
                txn = txn.delete(ukey);
            }
            txn = txn.delete(ikey.clone()).put(okey.clone(), value.clone());
            let replaced = self.existing.as_ref().map(|(old, _)| {
                let kept = match (&self.keep, &kept) {
                    (None, _) => Kept::No,
                    (Some(_), Some(copy)) => Kept::Copy(copy.clone()),
                    (Some(_), None) => Kept::AsIs,
                };
                (old, kept)
            });
            let dropped = self.drop.as_ref().map(|(vkey, record, raw)| Dropped {
                key: vkey,
                record,
                require: (!(overwrite && attempt > 3)).then_some(raw.as_slice()),
            });
            let (txn, garbage) = retire(
                txn,
                &self.bucket,
                &self.key,
                replaced,
                &self.record,
                dropped,
            );
            match self.meta.commit(txn).await {
                Ok(()) => return Ok(garbage),
                Err(MetaError::Conflict) if overwrite => {
                    tracing::warn!(bucket = %self.bucket, key = %self.key, attempt,
                        "an overwrite's commit conflicted; rolling forward");
                }
                Err(MetaError::Conflict) => {
                    // A new key: no record names the published bytes.
                    if let Err(e) = self.backend.delete(&self.record.data).await {
                        tracing::warn!(bucket = %self.bucket, key = %self.key, error = %e,
                            "could not remove the bytes of a refused write; recovery will");
                    } else {
                        let _ = self.meta.commit(Txn::new().delete(ikey.clone())).await;
                    }
                    return Err(CommitFailure::Refused(self.refusal().await));
                }
                Err(e) => {
                    tracing::warn!(bucket = %self.bucket, key = %self.key, error = %e,
                        "object commit failed after publishing");
                    return Err(unknown(e.into()));
                }
            }
        }
    }

    /// Settles a write whose publish or commit failed, from its intent: an
    /// overwrite whose bytes are at the native name is committed (its old
    /// bytes may be gone), anything else is undone. Answers `err` unless the
    /// write was committed.
    async fn resolve(
        &self,
        intent: records::IntentRecord,
        err: CoreError,
    ) -> Result<PutObjectOutput> {
        let resolved = resolve_intent(
            &*self.meta,
            &self.locations,
            &self.bucket,
            &self.key,
            intent,
        )
        .await;
        match resolved {
            Ok(Resolution::RolledForward {
                record, garbage, ..
            }) => {
                self.metrics
                    .object_written(&self.bucket, self.replaced_size(), record.size);
                crate::garbage::remove_all(&*self.meta, &self.locations, garbage).await;
                Ok(output_of(&record))
            }
            Ok(Resolution::Dropped) => Err(err),
            Err(e) => {
                tracing::warn!(bucket = %self.bucket, key = %self.key, error = %e,
                    "an interrupted write is left for recovery");
                Err(err)
            }
        }
    }

    /// Why the commit of a new key was refused.
    async fn refusal(&self) -> CoreError {
        let bucket_gone = matches!(
            self.meta.get(&records::bucket_key(&self.bucket)).await,
            Ok(None)
        );
        if bucket_gone {
            return CoreError::NoSuchBucket(self.bucket.clone());
        }
        if let Some(id) = &self.upload {
            let ukey = records::upload_key(&self.bucket, &self.key, id);
            if matches!(self.meta.get(&ukey).await, Ok(None)) {
                return CoreError::NoSuchUpload(id.clone());
            }
        }
        CoreError::OperationAborted(self.bucket.clone())
    }
}
