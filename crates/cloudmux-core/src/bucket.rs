//! Bucket operations.

use crate::RequestContext;
use cloudmux_meta::{codec, prefix_end, MetaError, Txn};

use crate::acl::{Acl, AclRequest, CannedAcl, Permission};
use crate::authz::Fallback;
use crate::records::{
    self, BucketRecord, ObjectLockConfig, ObjectOwnership, PartRecord, UploadRecord, Versioning,
};
use crate::{names, now_ms, CoreError, Gateway, Result};

/// A bucket as listed.
#[derive(Debug, Clone)]
pub struct BucketInfo {
    /// Name.
    pub name: String,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
    /// Owner's canonical id.
    pub owner: String,
    /// Location name.
    pub location: String,
}

/// CreateBucket's settings.
#[derive(Debug, Clone, Default)]
pub struct CreateBucketInput {
    /// `<LocationConstraint>`: a location name, or the region.
    pub constraint: Option<String>,
    /// The bucket ACL (canned, grants); private when absent.
    pub acl: Option<AclRequest>,
    /// `x-amz-object-ownership`.
    pub ownership: Option<ObjectOwnership>,
    /// `x-amz-bucket-object-lock-enabled: true`.
    pub object_lock: bool,
}

/// GetBucketLocation's answer.
#[derive(Debug, Clone)]
pub struct BucketLocation {
    /// The LocationConstraint to report; `None` for the default location when
    /// the bucket was created without one (S3's us-east-1 convention).
    pub constraint: Option<String>,
}

impl Gateway {
    pub(crate) async fn bucket(&self, name: &str) -> Result<(BucketRecord, Vec<u8>)> {
        let raw = self
            .meta
            .get(&records::bucket_key(name))
            .await?
            .ok_or_else(|| CoreError::NoSuchBucket(name.to_owned()))?;
        Ok((codec::decode(&raw)?, raw))
    }

    /// Reads a bucket and checks that `who` may do the request's action on
    /// it (or on its object `key`): the bucket policy, else `perm` in the
    /// bucket ACL.
    pub(crate) async fn bucket_for(
        &self,
        who: &RequestContext,
        name: &str,
        perm: Permission,
        key: Option<&str>,
    ) -> Result<(BucketRecord, Vec<u8>)> {
        let (b, raw) = self.bucket(name).await?;
        self.authorize(who, &b, name, key, None, Fallback::Acl(&b.acl, perm))?;
        Ok((b, raw))
    }

    fn require_account(who: &RequestContext) -> Result<&crate::Account> {
        who.account()
            .map(|a| a.as_ref())
            .ok_or(CoreError::AccessDenied)
    }

    /// ListBuckets: the caller's own buckets, by name.
    pub async fn list_buckets(&self, who: &RequestContext) -> Result<Vec<BucketInfo>> {
        let me = Self::require_account(who)?;
        let end = prefix_end(records::BUCKETS_PREFIX).unwrap_or_default();
        let mut out = Vec::new();
        let mut start = records::BUCKETS_PREFIX.to_vec();
        loop {
            let batch = self.meta.scan(&start, &end, 1000).await?;
            let full = batch.len() == 1000;
            for (k, v) in &batch {
                let b: BucketRecord = codec::decode(v)?;
                if b.owner == me.canonical_id {
                    out.push(BucketInfo {
                        name: String::from_utf8_lossy(&k[2..]).into_owned(),
                        created_ms: b.created_ms,
                        owner: b.owner,
                        location: b.location,
                    });
                }
            }
            match batch.last() {
                Some((k, _)) if full => start = [k.as_slice(), b"\0"].concat(),
                _ => break,
            }
        }
        Ok(out)
    }

    /// CreateBucket. `ownership` is `x-amz-object-ownership`; without it the
    /// bucket has no Object Ownership setting (ACLs work, the writer owns
    /// its objects). `BucketOwnerEnforced` with a bucket ACL that grants
    /// anything to others than the owner is
    /// `InvalidBucketAclWithObjectOwnership`.
    pub async fn create_bucket(
        &self,
        who: &RequestContext,
        name: &str,
        constraint: Option<&str>,
        acl: Option<AclRequest>,
        ownership: Option<ObjectOwnership>,
    ) -> Result<()> {
        self.create_bucket_with(
            who,
            name,
            CreateBucketInput {
                constraint: constraint.map(str::to_owned),
                acl,
                ownership,
                object_lock: false,
            },
        )
        .await
    }

    /// CreateBucket with every setting it can carry (see
    /// [`Gateway::create_bucket`]). With `object_lock` the bucket has
    /// Object Lock, without a default retention, and versioning Enabled.
    pub async fn create_bucket_with(
        &self,
        who: &RequestContext,
        name: &str,
        input: CreateBucketInput,
    ) -> Result<()> {
        let CreateBucketInput {
            constraint,
            acl,
            ownership,
            object_lock,
        } = input;
        let constraint = constraint.as_deref();
        let me = Self::require_account(who)?;
        names::validate_bucket_name(name)?;
        let (location, explicit) = match constraint.filter(|c| !c.is_empty()) {
            None => (self.locations.default_name().to_owned(), false),
            Some(c) if self.locations.contains(c) => (c.to_owned(), true),
            Some(c) if c == self.region() => (self.locations.default_name().to_owned(), false),
            Some(c) => return Err(CoreError::InvalidLocationConstraint(c.to_owned())),
        };
        let acl = acl
            .unwrap_or(AclRequest::Canned(CannedAcl::Private))
            .resolve(&me.canonical_id, None)?;
        crate::ownership::check_enforceable(ownership, &acl)?;
        let record = BucketRecord {
            owner: me.canonical_id.clone(),
            created_ms: now_ms(),
            location: location.clone(),
            acl,
            explicit_location: explicit,
            cors: None,
            public_access_block: None,
            tags: None,
            policy: None,
            ownership,
            versioning: object_lock.then_some(Versioning::Enabled),
            object_lock: object_lock.then(ObjectLockConfig::default),
        };
        let key = records::bucket_key(name);
        self.locations.get(&location)?.create_bucket(name).await?;
        match self
            .meta
            .commit(
                Txn::new()
                    .require_absent(key.clone())
                    .put(key, codec::encode(&record)),
            )
            .await
        {
            Ok(()) => {
                self.metrics.bucket_created(name);
                Ok(())
            }
            Err(MetaError::Conflict) => {
                let (existing, _) = self.bucket(name).await?;
                if existing.owner == me.canonical_id {
                    Err(CoreError::BucketAlreadyOwnedByYou(name.to_owned()))
                } else {
                    Err(CoreError::BucketAlreadyExists(name.to_owned()))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// HeadBucket: the bucket exists and the caller may list it.
    pub async fn head_bucket(&self, who: &RequestContext, name: &str) -> Result<BucketInfo> {
        let (b, _) = self.bucket_for(who, name, Permission::Read, None).await?;
        Ok(BucketInfo {
            name: name.to_owned(),
            created_ms: b.created_ms,
            owner: b.owner,
            location: b.location,
        })
    }

    /// GetBucketLocation (owner only).
    pub async fn bucket_location(
        &self,
        who: &RequestContext,
        name: &str,
    ) -> Result<BucketLocation> {
        let (b, _) = self.bucket(name).await?;
        self.authorize(who, &b, name, None, None, Fallback::Owner)?;
        Ok(BucketLocation {
            constraint: b.explicit_location.then_some(b.location),
        })
    }

    /// DeleteBucket: owner only, and only when no object remains. In-progress
    /// multipart uploads are aborted with it.
    pub async fn delete_bucket(&self, who: &RequestContext, name: &str) -> Result<()> {
        let (b, raw) = self.bucket(name).await?;
        self.authorize(who, &b, name, None, None, Fallback::Owner)?;
        let key = records::bucket_key(name);
        let marker = records::deleting_key(name);
        // First the bucket is marked as being deleted, in a commit of its
        // own: from then on no write can add a key (object commits of new
        // keys require the marker's absence), so the emptiness check below
        // sees every object that will ever be acknowledged in the bucket.
        match self
            .meta
            .commit(
                Txn::new()
                    .require_equals(key.clone(), raw.clone())
                    .require_absent(marker.clone())
                    .put(marker.clone(), now_ms().to_be_bytes().to_vec()),
            )
            .await
        {
            Ok(()) => {}
            Err(MetaError::Conflict) => {
                return Err(match self.meta.get(&key).await? {
                    None => CoreError::NoSuchBucket(name.to_owned()),
                    Some(_) => CoreError::OperationAborted(name.to_owned()),
                })
            }
            Err(e) => return Err(e.into()),
        }
        // The rest runs on its own task, so that a dropped request never
        // leaves the marker behind.
        let meta = self.meta.clone();
        let prefix = records::objects_prefix(name);
        let task = tokio::spawn(async move {
            let end = prefix_end(&prefix).unwrap_or_default();
            let injected: Result<()> = async {
                crate::fault!("bucket.marked");
                Ok(())
            }
            .await;
            let empty = match injected {
                Ok(()) => meta
                    .scan(&prefix, &end, 1)
                    .await
                    .map(|v| v.is_empty())
                    .map_err(CoreError::from),
                Err(e) => Err(e),
            };
            let txn = match empty {
                Ok(true) => Txn::new()
                    .require_equals(key.clone(), raw)
                    .delete(key)
                    .delete(marker.clone()),
                Ok(false) | Err(_) => Txn::new().delete(marker.clone()),
            };
            let committed = meta.commit(txn).await;
            if committed.is_err() {
                let _ = meta.commit(Txn::new().delete(marker)).await;
            }
            (empty, committed)
        });
        let (empty, committed) = task
            .await
            .map_err(|e| CoreError::Internal(format!("DeleteBucket task failed: {e}")))?;
        match (empty?, committed) {
            (false, _) => return Err(CoreError::BucketNotEmpty(name.to_owned())),
            (true, Ok(())) => {}
            (true, Err(MetaError::Conflict)) => {
                return Err(CoreError::OperationAborted(name.to_owned()))
            }
            (true, Err(e)) => return Err(e.into()),
        }
        self.metrics.bucket_removed(name);
        self.purge_uploads(name).await?;
        let backend = self.locations.get(&b.location)?;
        if let Err(e) = backend.remove_bucket(name).await {
            tracing::warn!(bucket = name, error = %e, "could not remove the bucket's data directory");
        }
        Ok(())
    }

    /// Removes every multipart upload of a (deleted) bucket with its parts.
    async fn purge_uploads(&self, bucket: &str) -> Result<()> {
        let prefix = records::uploads_prefix(bucket);
        let end = prefix_end(&prefix).unwrap_or_default();
        loop {
            let batch = self.meta.scan(&prefix, &end, 100).await?;
            if batch.is_empty() {
                return Ok(());
            }
            for (k, v) in batch {
                let upload: UploadRecord = codec::decode(&v)?;
                let id = k.rsplit(|c| *c == 0).next().unwrap_or_default();
                let id = String::from_utf8_lossy(id).into_owned();
                self.drop_parts(&upload.location, &id).await?;
                self.meta.commit(Txn::new().delete(k)).await?;
            }
        }
    }

    /// Deletes every part record of an upload and discards the staged bytes.
    pub(crate) async fn drop_parts(&self, location: &str, upload_id: &str) -> Result<()> {
        let backend = self.locations.get(location)?.clone();
        let prefix = records::parts_prefix(upload_id);
        let end = prefix_end(&prefix).unwrap_or_default();
        loop {
            let batch = self.meta.scan(&prefix, &end, 1000).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut txn = Txn::new();
            for (k, v) in batch {
                let part: PartRecord = codec::decode(&v)?;
                if let Err(e) = backend.discard(&part.staged).await {
                    tracing::warn!(upload_id, error = %e, "could not discard a staged part");
                }
                txn = txn.delete(k);
            }
            self.meta.commit(txn).await?;
        }
    }

    /// GetBucketAcl: the bucket owner's full control only while ACLs are
    /// disabled (Object Ownership `BucketOwnerEnforced`).
    pub async fn bucket_acl(&self, who: &RequestContext, name: &str) -> Result<Acl> {
        let (b, _) = self
            .bucket_for(who, name, Permission::ReadAcp, None)
            .await?;
        Ok(b.shown_bucket_acl())
    }

    /// PutBucketAcl: a canned ACL, grants or an AccessControlPolicy;
    /// `AccessControlListNotSupported` while ACLs are disabled.
    pub async fn put_bucket_acl(
        &self,
        who: &RequestContext,
        name: &str,
        acl: AclRequest,
    ) -> Result<()> {
        loop {
            let (mut b, raw) = self
                .bucket_for(who, name, Permission::WriteAcp, None)
                .await?;
            b.refuse_acl_change()?;
            b.acl = acl.resolve(&b.owner, None)?;
            b.refuse_public(&b.acl)?;
            let key = records::bucket_key(name);
            match self
                .meta
                .commit(
                    Txn::new()
                        .require_equals(key.clone(), raw)
                        .put(key, codec::encode(&b)),
                )
                .await
            {
                Err(MetaError::Conflict) => continue,
                other => return Ok(other?),
            }
        }
    }
}
