//! The one place that decides `AccessDenied` for requests on a bucket: the
//! bucket policy first (an explicit Deny, then an Allow), then the ACL or the
//! owner rule, and the bucket policy operations themselves (owner only).

use crate::acl::{Acl, Permission};
use crate::policy::{self, Access, Effect, Policy};
use crate::records::BucketRecord;
use crate::RequestContext;
use crate::{CoreError, Gateway, Principal, Result};

/// What decides when the bucket policy neither allows nor denies.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fallback<'a> {
    /// The ACL (bucket or object) with the permission the operation needs.
    Acl(&'a Acl, Permission),
    /// Only the bucket owner.
    Owner,
}

impl Gateway {
    /// Authorizes `who` on bucket `name` (record `b`), for the object `key`
    /// or the bucket itself. `action` overrides the request's own S3 action
    /// (a copy's source is read with `s3:GetObject`).
    ///
    /// Order: a matching Deny in the bucket policy refuses; a matching Allow
    /// grants, unless RestrictPublicBuckets is set, the policy is public and
    /// `who` is not the bucket owner; otherwise `fallback` decides. ACLs go
    /// through `BucketRecord::effective_acl` (IgnorePublicAcls).
    pub(crate) fn authorize(
        &self,
        who: &RequestContext,
        b: &BucketRecord,
        name: &str,
        key: Option<&str>,
        action: Option<&'static str>,
        fallback: Fallback<'_>,
    ) -> Result<()> {
        if let Principal::System(system) = who.principal() {
            // cloudmux's own background work acts on every bucket.
            tracing::debug!(system, bucket = name, "system principal authorized");
            return Ok(());
        }
        let owner = who.canonical_id() == Some(b.owner.as_str());
        let env = who.env();
        if action.or(env.action).is_none() && b.policy.is_some() {
            // A context that names no S3 action could skip a Deny statement:
            // where a policy exists, it is refused.
            tracing::error!(
                bucket = name,
                "authorization without an S3 action in the request context refused"
            );
            return Err(CoreError::AccessDenied);
        }
        if let (Some(action), Some(text)) = (action.or(env.action), b.policy.as_deref()) {
            match Policy::load(text, name, self.accounts()) {
                Ok(p) => {
                    let restricted = !owner
                        && b.public_access_block
                            .is_some_and(|p| p.restrict_public_buckets)
                        && p.is_public();
                    let access = Access {
                        action,
                        bucket: name,
                        key,
                    };
                    match p.evaluate(who, &access, env) {
                        Some(Effect::Deny) => return Err(CoreError::AccessDenied),
                        Some(Effect::Allow) if !restricted => return Ok(()),
                        _ => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(bucket = name, error = %e.0, "stored bucket policy does not parse");
                    if !owner {
                        return Err(CoreError::AccessDenied);
                    }
                }
            }
        }
        match fallback {
            Fallback::Acl(acl, perm) => b.effective_acl(acl).check(who, perm),
            Fallback::Owner if owner => Ok(()),
            Fallback::Owner => Err(CoreError::AccessDenied),
        }
    }

    /// The answer for a key of bucket `name` (record `b`) that does not
    /// exist: 404 NoSuchKey when `who` may list the bucket (`s3:ListBucket`
    /// by the bucket policy, or READ in the bucket ACL, anonymous callers of
    /// a public bucket included; the bucket owner unless a policy denies
    /// it), 403 AccessDenied otherwise, so that a
    /// caller who may not list never learns which keys exist.
    pub(crate) fn missing_key(
        &self,
        who: &RequestContext,
        b: &BucketRecord,
        name: &str,
        key: &str,
    ) -> CoreError {
        let fallback = if who.canonical_id() == Some(b.owner.as_str()) {
            Fallback::Owner
        } else {
            Fallback::Acl(&b.acl, Permission::Read)
        };
        match self.authorize(who, b, name, None, Some("s3:ListBucket"), fallback) {
            Ok(()) => CoreError::NoSuchKey(key.to_owned()),
            Err(e) => e,
        }
    }

    /// PutBucketPolicy: validates the document and stores it as sent. Owner
    /// only, whatever the policy says (so an owner can never lock itself
    /// out); refused with `AccessDenied` when BlockPublicPolicy is set and
    /// the policy is public.
    pub async fn put_bucket_policy(
        &self,
        who: &RequestContext,
        name: &str,
        text: &str,
    ) -> Result<()> {
        if text.len() > policy::MAX_POLICY_BYTES {
            return Err(CoreError::PolicyTooLarge);
        }
        let (b, _) = self.bucket(name).await?;
        if who.canonical_id() != Some(b.owner.as_str()) {
            return Err(CoreError::AccessDenied);
        }
        let p = Policy::parse(text, name, self.accounts())
            .map_err(|e| CoreError::MalformedPolicy(e.0))?;
        let public = p.is_public();
        let text = text.to_owned();
        self.update_bucket_owned(who, name, move |b| {
            if public && b.public_access_block.is_some_and(|p| p.block_public_policy) {
                return Err(CoreError::AccessDenied);
            }
            b.policy = Some(text.clone());
            Ok(())
        })
        .await
    }

    /// GetBucketPolicy: the document as stored; owner only.
    pub async fn bucket_policy(&self, who: &RequestContext, name: &str) -> Result<String> {
        let (b, _) = self.bucket(name).await?;
        if who.canonical_id() != Some(b.owner.as_str()) {
            return Err(CoreError::AccessDenied);
        }
        b.policy
            .ok_or_else(|| CoreError::NoSuchBucketPolicy(name.to_owned()))
    }

    /// GetBucketPolicyStatus: whether the bucket's policy is public; owner
    /// only.
    pub async fn bucket_policy_status(&self, who: &RequestContext, name: &str) -> Result<bool> {
        let text = self.bucket_policy(who, name).await?;
        let p = Policy::load(&text, name, self.accounts())
            .map_err(|e| CoreError::Internal(format!("stored policy: {}", e.0)))?;
        Ok(p.is_public())
    }

    /// DeleteBucketPolicy: succeeds when there is none; owner only.
    pub async fn delete_bucket_policy(&self, who: &RequestContext, name: &str) -> Result<()> {
        self.update_bucket_owned(who, name, |b| {
            b.policy = None;
            Ok(())
        })
        .await
    }
}
