//! S3 Object Lock (write once, read many): a bucket's Object Lock
//! configuration and default retention, the retention and legal hold of each
//! version, and the lock a write gives the version it creates.
//!
//! A bucket has Object Lock from its creation (CreateBucket with
//! `x-amz-bucket-object-lock-enabled`, which also enables versioning) or from
//! a PutObjectLockConfiguration while its versioning is Enabled (AWS allows
//! this on existing buckets since November 2023). It never loses it, and its
//! versioning can no longer be suspended (`versions.rs`), so no write ever
//! replaces a version. The lock of a version is in its
//! [`VersionInfo`](crate::records::VersionInfo); `Gateway::check_lock`
//! (`delete.rs`) refuses to remove a version it protects, and a DELETE
//! without a version id only adds a delete marker, which Object Lock allows.
//!
//! Authorization: the lock operations are the bucket owner's unless the
//! bucket policy decides otherwise (`s3:PutObjectRetention` and the other
//! lock actions); no ACL grants them. Shortening, removing or changing the
//! mode of an unexpired GOVERNANCE retention needs
//! `x-amz-bypass-governance-retention: true` from a caller allowed
//! `s3:BypassGovernanceRetention` (the bucket owner unless the policy denies
//! it, others only through the policy); a COMPLIANCE retention can only be
//! extended.

use time::{Duration, OffsetDateTime};

use crate::authz::Fallback;
use crate::digest::BodyExpectations;
use crate::records::{
    BucketRecord, DefaultRetention, LockMode, ObjectLockConfig, ObjectRecord, Retention,
    Versioning, WriteLock,
};
use crate::{names, now_ms, CoreError, Gateway, RequestContext, Result};

/// The longest default retention in days.
pub const MAX_DEFAULT_DAYS: u32 = 36_500;
/// The longest default retention in years.
pub const MAX_DEFAULT_YEARS: u32 = 100;

/// One day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// The `x-amz-object-lock-*` headers of a write (PutObject, CopyObject,
/// CreateMultipartUpload, POST Object), as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockHeaders {
    /// `x-amz-object-lock-mode`.
    pub mode: Option<LockMode>,
    /// `x-amz-object-lock-retain-until-date`, ms since the epoch.
    pub retain_until_ms: Option<i64>,
    /// `x-amz-object-lock-legal-hold` (`ON` is `true`).
    pub legal_hold: Option<bool>,
}

impl LockHeaders {
    /// Whether the write names no Object Lock setting.
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.retain_until_ms.is_none() && self.legal_hold.is_none()
    }

    /// Checks the headers against the bucket `b`: what the write asks for,
    /// `None` when it names nothing. A bucket without Object Lock is
    /// InvalidRequest; a mode without a date (or the reverse) and a date
    /// that has passed are InvalidArgument.
    pub(crate) fn check(&self, b: &BucketRecord) -> Result<Option<WriteLock>> {
        if self.is_empty() {
            return Ok(None);
        }
        if b.object_lock.is_none() {
            return Err(missing_configuration());
        }
        let retention = match (self.mode, self.retain_until_ms) {
            (None, None) => None,
            (Some(mode), Some(until_ms)) => Some(future(Retention { mode, until_ms })?),
            _ => {
                return Err(CoreError::InvalidArgument(
                    "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
                        .into(),
                ))
            }
        };
        Ok(Some(WriteLock {
            retention,
            legal_hold: self.legal_hold.unwrap_or(false),
        }))
    }
}

impl WriteLock {
    /// Whether the lock protects anything.
    pub(crate) fn locks(&self) -> bool {
        self.retention.is_some() || self.legal_hold
    }

    /// Gives the lock to a new version's record.
    pub(crate) fn apply(self, record: &mut ObjectRecord) {
        record.version.retention = self.retention;
        record.version.legal_hold = self.legal_hold;
    }
}

impl ObjectLockConfig {
    /// Checks a configuration as PutObjectLockConfiguration does: a default
    /// retention names exactly one of days and years (MalformedXML
    /// otherwise), a positive period of at most [`MAX_DEFAULT_DAYS`] days or
    /// [`MAX_DEFAULT_YEARS`] years (InvalidArgument otherwise).
    pub fn check(&self) -> Result<()> {
        let Some(d) = &self.default_retention else {
            return Ok(());
        };
        let (period, max) = match (d.days, d.years) {
            (Some(days), None) => (days, MAX_DEFAULT_DAYS),
            (None, Some(years)) => (years, MAX_DEFAULT_YEARS),
            _ => return Err(CoreError::MalformedXml),
        };
        if period == 0 {
            return Err(CoreError::InvalidArgument(
                "Default retention period must be a positive integer value".into(),
            ));
        }
        if period > max {
            return Err(CoreError::InvalidArgument(format!(
                "Default retention period is too large: at most {MAX_DEFAULT_DAYS} days or {MAX_DEFAULT_YEARS} years"
            )));
        }
        Ok(())
    }
}

/// The lock a new version of bucket `b` starts with: what its write asked
/// for (`asked`), with the bucket's default retention, counted from
/// `now_ms`, when the write named no retention.
pub(crate) fn initial_lock(b: &BucketRecord, asked: Option<&WriteLock>, now_ms: i64) -> WriteLock {
    let mut lock = asked.cloned().unwrap_or_default();
    if lock.retention.is_none() {
        lock.retention = b
            .object_lock
            .as_ref()
            .and_then(|c| c.default_retention.as_ref())
            .map(|d| Retention {
                mode: d.mode,
                until_ms: default_until(d, now_ms),
            });
    }
    lock
}

/// The lock a PutObject or POST Object gives its new version in bucket `b`:
/// what `headers` ask for, else the bucket's default retention. A version
/// that would be locked needs a body whose integrity the request declares
/// (`Content-MD5`, an additional checksum, or its algorithm alone), as S3
/// requires: [`CoreError::LockWithoutDigest`] otherwise.
pub(crate) fn lock_for_put(
    b: &BucketRecord,
    headers: &LockHeaders,
    expect: &BodyExpectations,
) -> Result<WriteLock> {
    let asked = headers.check(b)?;
    let lock = initial_lock(b, asked.as_ref(), now_ms());
    if lock.locks() && expect.content_md5.is_none() && expect.checksum.is_none() {
        return Err(CoreError::LockWithoutDigest);
    }
    Ok(lock)
}

/// The end of a default retention that starts at `now_ms`: whole days, or
/// calendar years (29 February becomes 28 February in a common year).
pub(crate) fn default_until(d: &DefaultRetention, now_ms: i64) -> i64 {
    if let Some(days) = d.days {
        return now_ms.saturating_add(i64::from(days) * DAY_MS);
    }
    let years = d.years.unwrap_or(0);
    let fallback = now_ms.saturating_add(i64::from(years) * 365 * DAY_MS);
    let Ok(now) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000) else {
        return fallback;
    };
    let year = now.year() + years as i32;
    now.replace_year(year)
        .or_else(|_| (now - Duration::days(1)).replace_year(year))
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or(fallback)
}

/// 400 InvalidRequest: a lock operation or header on a bucket without
/// Object Lock.
fn missing_configuration() -> CoreError {
    CoreError::InvalidRequest("Bucket is missing Object Lock Configuration".into())
}

/// A retention whose date is still to come, else InvalidArgument.
fn future(r: Retention) -> Result<Retention> {
    if r.until_ms <= now_ms() {
        return Err(CoreError::InvalidArgument(
            "The retain until date must be in the future!".into(),
        ));
    }
    Ok(r)
}

/// Whether replacing the retention `old` of a version by `new` needs a
/// governance bypass (`Ok(true)`), is allowed as it is (`Ok(false)`), or
/// is refused whatever the bypass (COMPLIANCE: AccessDenied). An expired
/// retention protects nothing. Extending the date in the same mode is
/// always allowed.
fn change_needs_bypass(old: Option<&Retention>, new: Option<&Retention>, now: i64) -> Result<bool> {
    let Some(old) = old.filter(|o| o.until_ms > now) else {
        return Ok(false);
    };
    let extends = new.is_some_and(|n| n.mode == old.mode && n.until_ms >= old.until_ms);
    match old.mode {
        _ if extends => Ok(false),
        LockMode::Compliance => Err(CoreError::ObjectLocked),
        LockMode::Governance => Ok(true),
    }
}

impl Gateway {
    /// Whether `who` may set GOVERNANCE retention aside on `bucket/key`:
    /// `bypass` (`x-amz-bypass-governance-retention: true`) was sent and
    /// `s3:BypassGovernanceRetention` is allowed (the bucket owner unless
    /// the bucket policy denies it; others only by the policy).
    pub(crate) fn may_bypass_governance(
        &self,
        who: &RequestContext,
        b: &BucketRecord,
        bucket: &str,
        key: &str,
        bypass: bool,
    ) -> bool {
        bypass
            && self
                .authorize(
                    who,
                    b,
                    bucket,
                    Some(key),
                    Some("s3:BypassGovernanceRetention"),
                    Fallback::Owner,
                )
                .is_ok()
    }

    /// The bucket of an object lock operation, after the caller's right to
    /// it (the request's action; the bucket owner unless the policy decides)
    /// and Object Lock on it (InvalidRequest otherwise) are checked.
    async fn lock_bucket(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
    ) -> Result<BucketRecord> {
        names::validate_key(key)?;
        let (b, _) = self.bucket(bucket).await?;
        self.authorize(who, &b, bucket, Some(key), None, Fallback::Owner)?;
        if b.object_lock.is_none() {
            return Err(missing_configuration());
        }
        Ok(b)
    }

    /// PutObjectLockConfiguration: enables Object Lock on a bucket whose
    /// versioning is Enabled (409 InvalidBucketState otherwise), or changes
    /// the default retention of a bucket that has it. A configuration
    /// without a default retention removes it.
    pub async fn put_object_lock_configuration(
        &self,
        who: &RequestContext,
        bucket: &str,
        config: ObjectLockConfig,
    ) -> Result<()> {
        config.check()?;
        self.update_bucket_checked(who, bucket, |b| {
            if b.object_lock.is_none() && b.versioning != Some(Versioning::Enabled) {
                return Err(CoreError::InvalidBucketState(
                    "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
                        .into(),
                ));
            }
            b.object_lock = Some(config.clone());
            Ok(())
        })
        .await
    }

    /// GetObjectLockConfiguration: 404 ObjectLockConfigurationNotFoundError
    /// for a bucket without Object Lock.
    pub async fn object_lock_configuration(
        &self,
        who: &RequestContext,
        bucket: &str,
    ) -> Result<ObjectLockConfig> {
        let b = self.owned_bucket(who, bucket).await?;
        b.object_lock
            .ok_or_else(|| CoreError::ObjectLockConfigurationNotFound(bucket.to_owned()))
    }

    /// PutObjectRetention of the current version of `bucket/key` or the one
    /// `version_id` names; `retention` `None` removes it. A new retention
    /// must end in the future; an unexpired COMPLIANCE retention may only be
    /// extended, an unexpired GOVERNANCE one shortened, removed or changed
    /// to COMPLIANCE only with an allowed bypass (see the module
    /// documentation).
    pub async fn put_object_retention(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        retention: Option<Retention>,
        bypass: bool,
    ) -> Result<()> {
        let b = self.lock_bucket(who, bucket, key).await?;
        let retention = retention.map(future).transpose()?;
        let _guard = self.locks.lock(bucket, key).await;
        self.settle_intent(bucket, key).await?;
        let (mut rec, raw, mkey) = self.addressed(who, &b, bucket, key, version_id).await?;
        let needs_bypass =
            change_needs_bypass(rec.version.retention.as_ref(), retention.as_ref(), now_ms())?;
        if needs_bypass && !self.may_bypass_governance(who, &b, bucket, key, bypass) {
            return Err(CoreError::ObjectLocked);
        }
        rec.version.retention = retention;
        self.rewrite_object(mkey, raw, &rec).await
    }

    /// GetObjectRetention: 404 NoSuchObjectLockConfiguration for a version
    /// without a retention (an expired one is still answered).
    pub async fn object_retention(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Retention> {
        let b = self.lock_bucket(who, bucket, key).await?;
        let (rec, _, _) = self.addressed(who, &b, bucket, key, version_id).await?;
        rec.version
            .retention
            .ok_or(CoreError::NoSuchObjectLockConfiguration)
    }

    /// PutObjectLegalHold of the current version of `bucket/key` or the one
    /// `version_id` names.
    pub async fn put_object_legal_hold(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        on: bool,
    ) -> Result<()> {
        let b = self.lock_bucket(who, bucket, key).await?;
        let _guard = self.locks.lock(bucket, key).await;
        self.settle_intent(bucket, key).await?;
        let (mut rec, raw, mkey) = self.addressed(who, &b, bucket, key, version_id).await?;
        if rec.version.legal_hold == on {
            return Ok(());
        }
        rec.version.legal_hold = on;
        self.rewrite_object(mkey, raw, &rec).await
    }

    /// GetObjectLegalHold: whether the version is under a legal hold (OFF
    /// when none was ever set).
    pub async fn object_legal_hold(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<bool> {
        let b = self.lock_bucket(who, bucket, key).await?;
        let (rec, _, _) = self.addressed(who, &b, bucket, key, version_id).await?;
        Ok(rec.version.legal_hold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retention(mode: LockMode, until_ms: i64) -> Retention {
        Retention { mode, until_ms }
    }

    #[test]
    fn retention_changes() {
        use LockMode::{Compliance as C, Governance as G};
        let now = 1_000;
        let later = Some(retention(C, 5_000));
        // Nothing, or an expired retention, protects nothing.
        assert!(!change_needs_bypass(None, None, now).unwrap());
        let expired = retention(C, 900);
        assert!(!change_needs_bypass(Some(&expired), None, now).unwrap());
        // COMPLIANCE: extend only.
        let c = retention(C, 2_000);
        assert!(!change_needs_bypass(Some(&c), later.as_ref(), now).unwrap());
        assert!(!change_needs_bypass(Some(&c), Some(&c), now).unwrap());
        for new in [None, Some(retention(C, 1_500)), Some(retention(G, 9_000))] {
            assert!(matches!(
                change_needs_bypass(Some(&c), new.as_ref(), now),
                Err(CoreError::ObjectLocked)
            ));
        }
        // GOVERNANCE: extend freely, anything else with a bypass.
        let g = retention(G, 2_000);
        assert!(!change_needs_bypass(Some(&g), Some(&retention(G, 3_000)), now).unwrap());
        for new in [None, Some(retention(G, 1_500)), Some(retention(C, 9_000))] {
            assert!(change_needs_bypass(Some(&g), new.as_ref(), now).unwrap());
        }
    }

    #[test]
    fn default_retention_periods() {
        let days = DefaultRetention {
            mode: LockMode::Governance,
            days: Some(2),
            years: None,
        };
        assert_eq!(default_until(&days, 10), 10 + 2 * DAY_MS);
        // 2024-02-29T12:00:00Z plus one year is 2025-02-28T12:00:00Z.
        let leap = 1_709_208_000_000;
        let year = DefaultRetention {
            mode: LockMode::Compliance,
            days: None,
            years: Some(1),
        };
        assert_eq!(default_until(&year, leap), 1_740_744_000_000);
        // 2023-03-01T00:00:00Z plus one year is 2024-03-01T00:00:00Z.
        assert_eq!(default_until(&year, 1_677_628_800_000), 1_709_251_200_000);
    }

    #[test]
    fn configurations_are_checked() {
        let with = |days, years| ObjectLockConfig {
            default_retention: Some(DefaultRetention {
                mode: LockMode::Governance,
                days,
                years,
            }),
        };
        assert!(ObjectLockConfig::default().check().is_ok());
        assert!(with(Some(1), None).check().is_ok());
        assert!(with(None, Some(MAX_DEFAULT_YEARS)).check().is_ok());
        assert!(matches!(
            with(Some(1), Some(1)).check(),
            Err(CoreError::MalformedXml)
        ));
        assert!(matches!(
            with(None, None).check(),
            Err(CoreError::MalformedXml)
        ));
        for bad in [
            with(Some(0), None),
            with(None, Some(0)),
            with(Some(MAX_DEFAULT_DAYS + 1), None),
        ] {
            assert!(matches!(bad.check(), Err(CoreError::InvalidArgument(_))));
        }
    }

    #[test]
    fn write_headers_are_checked_against_the_bucket() {
        let mut b = BucketRecord {
            owner: "o".into(),
            created_ms: 0,
            location: "local".into(),
            acl: crate::acl::CannedAcl::Private.expand("o", None),
            explicit_location: false,
            cors: None,
            public_access_block: None,
            tags: None,
            policy: None,
            ownership: None,
            versioning: Some(Versioning::Enabled),
            object_lock: None,
        };
        let future_ms = now_ms() + DAY_MS;
        let full = LockHeaders {
            mode: Some(LockMode::Governance),
            retain_until_ms: Some(future_ms),
            legal_hold: Some(true),
        };
        assert_eq!(LockHeaders::default().check(&b).unwrap(), None);
        assert!(matches!(full.check(&b), Err(CoreError::InvalidRequest(_))));
        b.object_lock = Some(ObjectLockConfig::default());
        let lock = full.check(&b).unwrap().unwrap();
        assert_eq!(lock.retention.as_ref().map(|r| r.until_ms), Some(future_ms));
        assert!(lock.legal_hold && lock.locks());
        let half = LockHeaders {
            mode: Some(LockMode::Compliance),
            ..LockHeaders::default()
        };
        assert!(matches!(half.check(&b), Err(CoreError::InvalidArgument(_))));
        let past = LockHeaders {
            retain_until_ms: Some(1),
            ..full.clone()
        };
        assert!(matches!(past.check(&b), Err(CoreError::InvalidArgument(_))));
        // No retention named: the bucket's default applies.
        b.object_lock = Some(ObjectLockConfig {
            default_retention: Some(DefaultRetention {
                mode: LockMode::Compliance,
                days: Some(1),
                years: None,
            }),
        });
        let hold = LockHeaders {
            legal_hold: Some(true),
            ..LockHeaders::default()
        };
        let asked = hold.check(&b).unwrap();
        let lock = initial_lock(&b, asked.as_ref(), 7);
        assert_eq!(
            lock.retention,
            Some(retention(LockMode::Compliance, 7 + DAY_MS))
        );
        assert!(lock.legal_hold);
        assert_eq!(
            initial_lock(&b, Some(&WriteLock::default()), 7).retention,
            lock.retention
        );
    }
}
