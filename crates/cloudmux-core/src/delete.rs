//! DeleteObject and DeleteObjects, versioning included.
//!
//! Without a version id, a delete removes the key's current version in an
//! unversioned bucket, and adds a delete marker in a versioned one (the
//! current version is kept as noncurrent, its bytes copied aside first as a
//! write does; with versioning suspended the marker is the `null` version
//! and replaces it). With a version id it removes that version for good;
//! removing the current version makes the newest noncurrent one current
//! again, its bytes going back to the native name through the commit
//! protocol (`commit.rs`), so a crash leaves either version current, whole.

use cloudmux_data::{ObjectPath, Piece};
use cloudmux_meta::{codec, MetaError, Txn};

use crate::acl::Permission;
use crate::authz::Fallback;
use crate::commit::PublishJob;
use crate::object::{etag_matches, native_meta};
use crate::records::{self, BucketRecord, IntentRecord, ObjectRecord, VersionInfo};
use crate::versions::{retire, shown_id, Dropped, Kept, Place};
use crate::{names, now_ms, CoreError, Gateway, RequestContext, Result};

/// One DeleteObject (or one entry of DeleteObjects).
#[derive(Debug, Clone, Default)]
pub struct DeleteInput {
    /// The key.
    pub key: String,
    /// `versionId`: the version to remove for good.
    pub version_id: Option<String>,
    /// `If-Match` (an ETag, quoted or not, or `*`): delete only if the
    /// current version matches.
    pub if_match: Option<String>,
    /// `x-amz-bypass-governance-retention: true`.
    pub bypass_governance: bool,
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOutput {
    /// The version removed or added is a delete marker
    /// (`x-amz-delete-marker: true`).
    pub delete_marker: bool,
    /// The version id removed (a version named) or added (a delete
    /// marker); `None` in an unversioned bucket.
    pub version_id: Option<String>,
}

/// One key's outcome in DeleteObjects.
#[derive(Debug)]
pub struct DeleteOutcome {
    /// The key.
    pub key: String,
    /// The version id the request named.
    pub requested_version: Option<String>,
    /// What was done, or why not.
    pub result: Result<DeleteOutput>,
}

impl Gateway {
    /// DeleteObject. Deleting a missing key, or a version that does not
    /// exist, succeeds.
    pub async fn delete_object(
        &self,
        who: &RequestContext,
        bucket: &str,
        input: DeleteInput,
    ) -> Result<DeleteOutput> {
        let (b, _) = self.bucket(bucket).await?;
        names::validate_key(&input.key)?;
        let key = input.key.as_str();
        let _guard = self.locks.lock_owned(bucket, key).await;
        self.settle_intent(bucket, key).await?;
        let current = self.current(bucket, key).await?;
        let fallback = match &current {
            Some(_) if who.canonical_id() == Some(b.owner.as_str()) => Fallback::Owner,
            _ => Fallback::Acl(&b.acl, Permission::Write),
        };
        // A version id makes the delete s3:DeleteObjectVersion, also for
        // each key of DeleteObjects, which arrives as s3:DeleteObject.
        let action = input.version_id.as_ref().map(|_| "s3:DeleteObjectVersion");
        self.authorize(who, &b, bucket, Some(key), action, fallback)?;
        let live = current.as_ref().filter(|(r, _)| !r.version.delete_marker);
        if let Some(m) = &input.if_match {
            match live {
                None => return Err(CoreError::NoSuchKey(key.to_owned())),
                Some((rec, _)) if !etag_matches(m, &rec.etag) => {
                    return Err(CoreError::PreconditionFailed(Some("If-Match")))
                }
                Some(_) => {}
            }
        }
        match input.version_id.as_deref() {
            Some(v) => {
                self.delete_version(who, &b, bucket, key, v, &input, _guard)
                    .await
            }
            None if b.versioning.is_none() => {
                let Some((rec, raw)) = current else {
                    return Ok(DeleteOutput::default());
                };
                self.remove_current(bucket, key, &rec, raw).await?;
                Ok(DeleteOutput::default())
            }
            None => self.add_delete_marker(who, &b, bucket, key, current).await,
        }
    }

    /// Removes the current version of an unversioned bucket's key.
    async fn remove_current(
        &self,
        bucket: &str,
        key: &str,
        rec: &ObjectRecord,
        raw: Vec<u8>,
    ) -> Result<()> {
        crate::fault!("delete.checked");
        let okey = records::object_key(bucket, key);
        let txn = Txn::new().require_equals(okey.clone(), raw).delete(okey);
        let (txn, gkey, garbage) = crate::garbage::release(txn, bucket, key, rec);
        match self.meta.commit(txn).await {
            Ok(()) => self.metrics.object_removed(bucket, rec.size),
            // Someone else changed the record: its bytes are theirs now.
            Err(MetaError::Conflict) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        crate::fault!("delete.committed");
        self.remove_garbage(gkey, &garbage).await;
        Ok(())
    }

    /// Makes a delete marker the current version of a versioned bucket's
    /// key. The key's lock is held.
    async fn add_delete_marker(
        &self,
        who: &RequestContext,
        b: &BucketRecord,
        bucket: &str,
        key: &str,
        current: Option<(ObjectRecord, Vec<u8>)>,
    ) -> Result<DeleteOutput> {
        let cur = current.as_ref().map(|(r, _)| r);
        let plan = self.plan_versions(b, bucket, key, cur).await?;
        let floor = cur
            .map(|r| r.version.seq)
            .into_iter()
            .chain(plan.drop.iter().map(|(_, r, _)| r.version.seq))
            .max()
            .unwrap_or(0);
        let seq = self.clock.next(floor);
        let version = VersionInfo {
            id: plan.new_id.then(|| crate::versions::new_version_id(seq)),
            seq,
            delete_marker: true,
            ..VersionInfo::default()
        };
        let owner = who.canonical_id().unwrap_or(&b.owner).to_owned();
        let marker = ObjectRecord {
            size: 0,
            etag: String::new(),
            last_modified_ms: now_ms(),
            acl: crate::acl::CannedAcl::Private.expand(&owner, None),
            owner,
            meta: Default::default(),
            location: cur.map_or_else(|| b.location.clone(), |c| c.location.clone()),
            data: cloudmux_data::DataRef {
                locator: String::new(),
                size: 0,
                stamp: 0,
            },
            parts: Vec::new(),
            checksum: None,
            upload_id: None,
            version,
        };
        let out = DeleteOutput {
            delete_marker: true,
            version_id: Some(shown_id(&marker.version).to_owned()),
        };
        crate::fault!("delete.checked");
        let okey = records::object_key(bucket, key);
        let ikey = records::intent_key(bucket, key);
        // Keeping a version with bytes copies them aside first: an intent
        // names the copy, so that a crash before the commit removes it.
        let mut kept = None;
        if let (Some(name), Some(cur)) = (plan.keep.as_deref().filter(|n| !n.is_empty()), cur) {
            let intent = IntentRecord {
                record: marker.clone(),
                staged: None,
                keep: plan.keep.clone(),
                drop_version: plan.drop.as_ref().map(|(k, _, _)| k.clone()),
            };
            self.meta
                .commit(Txn::new().put(ikey.clone(), codec::encode(&intent)))
                .await?;
            let backend = self.locations.get(&cur.location)?;
            let copy = backend
                .keep_version(
                    &cur.data,
                    ObjectPath {
                        bucket,
                        key,
                        meta: &native_meta(cur),
                    },
                    name,
                )
                .await;
            let copy = match copy {
                Ok(copy) => Ok(copy),
                Err(e) => Err(self.data_err(&cur.location, e)),
            };
            let copy = match copy {
                Ok(copy) => {
                    async {
                        crate::fault!("delete.kept");
                        Ok(copy)
                    }
                    .await
                }
                Err(e) => Err(e),
            };
            match copy {
                Ok(copy) => kept = Some(copy),
                Err(e) => {
                    // A cloud may still finish a copy whose call failed in
                    // transit: the undo looks for it once that can no longer
                    // happen (the key stays locked).
                    if matches!(e, CoreError::Unavailable { .. }) {
                        tokio::time::sleep(backend.publish_grace()).await;
                    }
                    self.undo_intent(bucket, key, intent).await;
                    return Err(e);
                }
            }
        }
        let mut txn = Txn::new()
            .require_present(records::bucket_key(bucket))
            .delete(ikey.clone())
            .put(okey.clone(), codec::encode(&marker));
        txn = match &current {
            Some((_, raw)) => txn.require_equals(okey.clone(), raw.clone()),
            None => txn.require_absent(okey.clone()),
        };
        let replaced = cur.map(|cur| {
            let kept = match (&plan.keep, &kept) {
                (None, _) => Kept::No,
                (Some(_), Some(copy)) => Kept::Copy(copy.clone()),
                (Some(_), None) => Kept::AsIs,
            };
            (cur, kept)
        });
        let dropped = plan.drop.as_ref().map(|(vkey, record, raw)| Dropped {
            key: vkey,
            record,
            require: Some(raw),
        });
        let (txn, garbage) = retire(txn, bucket, key, replaced, &marker, dropped);
        match self.meta.commit(txn).await {
            Ok(()) => {
                if let Some(cur) = cur.filter(|c| !c.version.delete_marker) {
                    self.metrics.object_removed(bucket, cur.size);
                }
            }
            Err(e) => {
                if let Some(raw) = self.meta.get(&ikey).await.ok().flatten() {
                    if let Ok(intent) = codec::decode::<IntentRecord>(&raw) {
                        self.undo_intent(bucket, key, intent).await;
                    }
                }
                return Err(match e {
                    MetaError::Conflict => CoreError::OperationAborted(bucket.to_owned()),
                    e => e.into(),
                });
            }
        }
        crate::fault!("delete.committed");
        crate::garbage::remove_all(&*self.meta, &self.locations, garbage).await;
        Ok(out)
    }

    /// Undoes a delete marker's intent (removing the copy it kept), logging
    /// a failure: the intent then stays for recovery.
    async fn undo_intent(&self, bucket: &str, key: &str, intent: IntentRecord) {
        if let Err(e) =
            crate::recover::resolve_intent(&*self.meta, &self.locations, bucket, key, intent).await
        {
            tracing::warn!(bucket, key, error = %e, "an interrupted delete is left for recovery");
        }
    }

    /// Removes one version for good. The key's lock is held (`guard`).
    #[allow(clippy::too_many_arguments)]
    async fn delete_version(
        &self,
        who: &RequestContext,
        b: &BucketRecord,
        bucket: &str,
        key: &str,
        version_id: &str,
        input: &DeleteInput,
        guard: crate::locks::KeyGuard,
    ) -> Result<DeleteOutput> {
        let Some(found) = self.find_version(bucket, key, version_id).await? else {
            return Ok(DeleteOutput {
                delete_marker: false,
                version_id: Some(version_id.to_owned()),
            });
        };
        self.check_lock(who, b, bucket, key, &found.record, input.bypass_governance)?;
        let out = DeleteOutput {
            delete_marker: found.record.version.delete_marker,
            version_id: Some(version_id.to_owned()),
        };
        crate::fault!("delete.checked");
        let rec = &found.record;
        match &found.place {
            Place::Noncurrent(vkey) => {
                let txn = Txn::new()
                    .require_equals(vkey.clone(), found.raw.clone())
                    .delete(vkey.clone());
                let (txn, garbage) = if rec.version.delete_marker {
                    (txn, Vec::new())
                } else {
                    let (t, gkey, g) = crate::garbage::release(txn, bucket, key, rec);
                    (t, vec![(gkey, g)])
                };
                match self.meta.commit(txn).await {
                    Ok(()) | Err(MetaError::Conflict) => {}
                    Err(e) => return Err(e.into()),
                }
                crate::fault!("delete.committed");
                crate::garbage::remove_all(&*self.meta, &self.locations, garbage).await;
                Ok(out)
            }
            Place::Current => {
                let next = self.newest_noncurrent(bucket, key).await?;
                match next {
                    Some((vkey, prev, prev_raw)) if !prev.version.delete_marker => {
                        self.promote(
                            bucket,
                            key,
                            (rec.clone(), found.raw),
                            (vkey, prev, prev_raw),
                            guard,
                        )
                        .await?;
                        Ok(out)
                    }
                    next => {
                        let okey = records::object_key(bucket, key);
                        let mut txn = Txn::new().require_equals(okey.clone(), found.raw.clone());
                        txn = match &next {
                            Some((vkey, prev, raw)) => txn
                                .require_equals(vkey.clone(), raw.clone())
                                .delete(vkey.clone())
                                .put(okey, codec::encode(prev)),
                            None => txn.delete(okey),
                        };
                        let mut garbage = Vec::new();
                        if !rec.version.delete_marker {
                            let (t, gkey, g) = crate::garbage::release(txn, bucket, key, rec);
                            txn = t;
                            garbage.push((gkey, g));
                        }
                        match self.meta.commit(txn).await {
                            Ok(()) => {
                                if !rec.version.delete_marker {
                                    self.metrics.object_removed(bucket, rec.size);
                                }
                            }
                            Err(MetaError::Conflict) => {}
                            Err(e) => return Err(e.into()),
                        }
                        crate::fault!("delete.committed");
                        crate::garbage::remove_all(&*self.meta, &self.locations, garbage).await;
                        Ok(out)
                    }
                }
            }
        }
    }

    /// Makes the noncurrent version `prev` current again after the current
    /// one `cur` is deleted: its bytes are copied to the native name through
    /// the commit protocol (server-side where the location can), and its
    /// kept copy and noncurrent record go in the commit.
    async fn promote(
        &self,
        bucket: &str,
        key: &str,
        cur: (ObjectRecord, Vec<u8>),
        prev: (Vec<u8>, ObjectRecord, Vec<u8>),
        guard: crate::locks::KeyGuard,
    ) -> Result<()> {
        let (vkey, record, raw) = prev;
        let backend = self.locations.get(&record.location)?.clone();
        let staged = backend
            .assemble(vec![Piece::Published(record.data.clone(), None)])
            .await
            .map_err(|e| self.data_err(&record.location, e))?;
        let job = PublishJob {
            meta: self.meta.clone(),
            metrics: self.metrics.clone(),
            locations: self.locations.clone(),
            backend,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            staged,
            record: record.clone(),
            existing: Some(cur),
            keep: None,
            drop: Some((vkey, record, raw)),
            upload: None,
            _guard: guard,
        };
        self.run_job(job).await.map(|_| ())
    }

    /// Object Lock: refuses to remove a version under a legal hold or an
    /// unexpired retention ([`CoreError::ObjectLocked`], 403 AccessDenied);
    /// GOVERNANCE yields to `bypass` from a caller allowed
    /// `s3:BypassGovernanceRetention`
    /// (`Gateway::may_bypass_governance`).
    pub(crate) fn check_lock(
        &self,
        who: &RequestContext,
        b: &BucketRecord,
        bucket: &str,
        key: &str,
        rec: &ObjectRecord,
        bypass: bool,
    ) -> Result<()> {
        if rec.version.legal_hold {
            return Err(CoreError::ObjectLocked);
        }
        let Some(r) = &rec.version.retention else {
            return Ok(());
        };
        if r.until_ms <= now_ms() {
            return Ok(());
        }
        match r.mode {
            records::LockMode::Governance
                if self.may_bypass_governance(who, b, bucket, key, bypass) =>
            {
                Ok(())
            }
            _ => Err(CoreError::ObjectLocked),
        }
    }

    /// DeleteObjects: each entry independently, as DeleteObject.
    pub async fn delete_objects(
        &self,
        who: &RequestContext,
        bucket: &str,
        entries: Vec<DeleteInput>,
    ) -> Result<Vec<DeleteOutcome>> {
        self.bucket(bucket).await?;
        let mut out = Vec::with_capacity(entries.len());
        for input in entries {
            let key = input.key.clone();
            let requested_version = input.version_id.clone();
            let result = match self.delete_object(who, bucket, input).await {
                Err(CoreError::NoSuchBucket(b)) => return Err(CoreError::NoSuchBucket(b)),
                r => r,
            };
            out.push(DeleteOutcome {
                key,
                requested_version,
                result,
            });
        }
        Ok(out)
    }
}
