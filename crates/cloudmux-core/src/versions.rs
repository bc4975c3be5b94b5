//! Bucket versioning: version ids, where versions live, and the bucket's
//! versioning state.
//!
//! The current version of a key is its object record (`o/<bucket>/<key>`),
//! which may be a delete marker; the noncurrent versions are
//! `v/<bucket>/<key>\0<!seq>` (see [`records::version_key`]), newest first.
//! A key has an object record exactly when it has a version at all, so
//! deleting the current version by id makes the newest noncurrent one
//! current.
//!
//! Data: the current version's bytes stay at the key's native name, so
//! native tools read the current data; a noncurrent version's bytes are the
//! copy `Backend::keep_version` made when it stopped being current (a hard
//! link on `fs`, a server-side copy on the clouds), named after the version
//! (`kept_name`).

use std::sync::atomic::{AtomicU64, Ordering};

use cloudmux_meta::{codec, prefix_end, Txn};

use crate::records::{self, BucketRecord, ObjectRecord, VersionInfo, Versioning};
use crate::{CoreError, Gateway, RequestContext, Result};

/// Hands out version sequence numbers: microseconds since the epoch, made
/// strictly increasing within the process, and above the key's newest
/// version (so a clock that went back never orders a new version below an
/// older one).
#[derive(Debug, Default)]
pub(crate) struct VersionClock {
    last: AtomicU64,
}

impl VersionClock {
    /// The next sequence number, above `floor`.
    pub(crate) fn next(&self, floor: u64) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1).max(floor + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

/// A new version id for sequence number `seq`: 32 lowercase hex digits, the
/// first 16 those of `!seq` (so ids sort newest first, and name their
/// record), the rest random (so ids are unique across stores).
pub(crate) fn new_version_id(seq: u64) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{:016x}{}", !seq, &random[..16])
}

/// The sequence number a version id names, if it is one of ours.
pub(crate) fn seq_of(version_id: &str) -> Option<u64> {
    if version_id.len() != 32 || !version_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(&version_id[..16], 16).ok().map(|v| !v)
}

/// Whether `v` can name a version: `null`, or an id cloudmux hands out.
pub fn is_version_id(v: &str) -> bool {
    v == "null" || seq_of(v).is_some()
}

/// The name a version's bytes are kept under once it is noncurrent: its id,
/// or `null.<seq>` for the `null` version.
pub(crate) fn kept_name(v: &VersionInfo) -> String {
    match &v.id {
        Some(id) => id.clone(),
        None => format!("null.{:016x}", v.seq),
    }
}

/// The id S3 shows for a version.
pub fn shown_id(v: &VersionInfo) -> &str {
    v.id.as_deref().unwrap_or("null")
}

/// Where a version's record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    /// The object record: the current version.
    Current,
    /// A noncurrent version record, by its key.
    Noncurrent(Vec<u8>),
}

impl Place {
    /// The record's key in the metadata store.
    pub(crate) fn meta_key(&self, bucket: &str, key: &str) -> Vec<u8> {
        match self {
            Place::Current => records::object_key(bucket, key),
            Place::Noncurrent(k) => k.clone(),
        }
    }
}

/// A version found by id.
pub(crate) struct Found {
    /// The record.
    pub record: ObjectRecord,
    /// Its encoded form, for conditional commits.
    pub raw: Vec<u8>,
    /// Where it is.
    pub place: Place,
}

/// The versioning state a bucket record shows S3 clients.
pub fn versioning_of(b: &BucketRecord) -> Option<Versioning> {
    b.versioning
}

/// What becomes of the version a change replaces as the key's current one.
pub(crate) enum Kept {
    /// It goes.
    No,
    /// It stays, noncurrent, naming the bytes it names (a delete marker
    /// has none).
    AsIs,
    /// It stays, noncurrent, naming the copy
    /// [`Backend::keep_version`](cloudmux_data::Backend::keep_version) made.
    Copy(cloudmux_data::DataRef),
}

/// A noncurrent version a change removes (suspended versioning replacing
/// the `null` version).
pub(crate) struct Dropped<'a> {
    /// Its `v/` key.
    pub key: &'a [u8],
    /// Its record.
    pub record: &'a ObjectRecord,
    /// The encoded record the commit requires at `key`; `None` commits
    /// without the condition (recovery, or a write whose old bytes are gone).
    pub require: Option<&'a [u8]>,
}

/// A released copy of bytes: its garbage record's key and the record.
pub(crate) type Released = (Vec<u8>, records::GarbageRecord);

/// Adds to `txn` what making `successor` the current version of
/// `bucket/key` does to its other versions: the `v/` record of the replaced
/// version when it stays, the removal of a dropped one, and the garbage
/// records of bytes no version names any more (the replaced version's,
/// unless `successor` names the same bytes, and the dropped one's). The one
/// place where writes, delete markers and recovery apply a version plan.
pub(crate) fn retire(
    mut txn: Txn,
    bucket: &str,
    key: &str,
    replaced: Option<(&ObjectRecord, Kept)>,
    successor: &ObjectRecord,
    dropped: Option<Dropped<'_>>,
) -> (Txn, Vec<Released>) {
    let mut garbage = Vec::new();
    if let Some((old, kept)) = replaced {
        let stays = match kept {
            Kept::No => None,
            Kept::AsIs => Some(old.data.clone()),
            Kept::Copy(copy) => Some(copy),
        };
        if let Some(data) = stays {
            let noncurrent = ObjectRecord {
                data,
                ..old.clone()
            };
            txn = txn.put(
                records::version_key(bucket, key, old.version.seq),
                codec::encode(&noncurrent),
            );
        }
        if !old.version.delete_marker
            && (old.location != successor.location || old.data.locator != successor.data.locator)
        {
            let (t, gkey, g) = crate::garbage::release(txn, bucket, key, old);
            txn = t;
            garbage.push((gkey, g));
        }
    }
    if let Some(d) = dropped {
        if let Some(raw) = d.require {
            txn = txn.require_equals(d.key, raw);
        }
        txn = txn.delete(d.key);
        if !d.record.version.delete_marker {
            let (t, gkey, g) = crate::garbage::release(txn, bucket, key, d.record);
            txn = t;
            garbage.push((gkey, g));
        }
    }
    (txn, garbage)
}

impl Gateway {
    /// The current version of `bucket/key` as stored, delete markers
    /// included.
    pub(crate) async fn current(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectRecord, Vec<u8>)>> {
        match self.meta.get(&records::object_key(bucket, key)).await? {
            Some(raw) => Ok(Some((codec::decode(&raw)?, raw))),
            None => Ok(None),
        }
    }

    /// The version `version_id` (`null` for the null version) of
    /// `bucket/key`, current or not.
    pub(crate) async fn find_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<Found>> {
        let wanted = (version_id != "null").then_some(version_id);
        if let Some((record, raw)) = self.current(bucket, key).await? {
            if record.version.id.as_deref() == wanted {
                return Ok(Some(Found {
                    record,
                    raw,
                    place: Place::Current,
                }));
            }
        }
        match wanted {
            Some(id) => {
                let Some(seq) = seq_of(id) else {
                    return Ok(None);
                };
                let vkey = records::version_key(bucket, key, seq);
                match self.meta.get(&vkey).await? {
                    Some(raw) => {
                        let record: ObjectRecord = codec::decode(&raw)?;
                        Ok((record.version.id.as_deref() == Some(id)).then_some(Found {
                            record,
                            raw,
                            place: Place::Noncurrent(vkey),
                        }))
                    }
                    None => Ok(None),
                }
            }
            None => Ok(self
                .noncurrent(bucket, key)
                .await?
                .into_iter()
                .find(|(_, r, _)| r.version.id.is_none())
                .map(|(vkey, record, raw)| Found {
                    record,
                    raw,
                    place: Place::Noncurrent(vkey),
                })),
        }
    }

    /// The noncurrent versions of `bucket/key`, newest first, with their keys
    /// and encoded forms.
    pub(crate) async fn noncurrent(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<(Vec<u8>, ObjectRecord, Vec<u8>)>> {
        let prefix = records::key_versions_prefix(bucket, key);
        let end = prefix_end(&prefix).unwrap_or_default();
        let mut start = prefix;
        let mut out = Vec::new();
        loop {
            let batch = self.meta.scan(&start, &end, 256).await?;
            let Some((last, _)) = batch.last() else {
                return Ok(out);
            };
            start = last.clone();
            start.push(0);
            for (k, raw) in batch {
                let record: ObjectRecord = codec::decode(&raw)?;
                out.push((k, record, raw));
            }
        }
    }

    /// The newest noncurrent version of `bucket/key`.
    pub(crate) async fn newest_noncurrent(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(Vec<u8>, ObjectRecord, Vec<u8>)>> {
        let prefix = records::key_versions_prefix(bucket, key);
        let end = prefix_end(&prefix).unwrap_or_default();
        let batch = self.meta.scan(&prefix, &end, 1).await?;
        match batch.into_iter().next() {
            Some((k, raw)) => {
                let record: ObjectRecord = codec::decode(&raw)?;
                Ok(Some((k, record, raw)))
            }
            None => Ok(None),
        }
    }

    /// PutBucketVersioning. `mfa_delete` is the `MfaDelete` element:
    /// `Some(true)` is refused, since cloudmux has no MFA devices. A bucket
    /// with Object Lock cannot be suspended.
    pub async fn put_bucket_versioning(
        &self,
        who: &RequestContext,
        bucket: &str,
        status: Option<Versioning>,
        mfa_delete: Option<bool>,
    ) -> Result<()> {
        let (mut b, raw) = self.bucket(bucket).await?;
        self.authorize(who, &b, bucket, None, None, crate::authz::Fallback::Owner)?;
        if mfa_delete == Some(true) {
            return Err(CoreError::InvalidRequest(
                "MFA delete is not supported: cloudmux has no MFA devices".into(),
            ));
        }
        let Some(status) = status else {
            // A configuration without a status changes nothing.
            return Ok(());
        };
        if status == Versioning::Suspended && b.object_lock.is_some() {
            return Err(CoreError::InvalidBucketState(
                "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.".into(),
            ));
        }
        b.versioning = Some(status);
        let bkey = records::bucket_key(bucket);
        self.meta
            .commit(
                Txn::new()
                    .require_equals(bkey.clone(), raw)
                    .put(bkey, codec::encode(&b)),
            )
            .await
            .map_err(|e| match e {
                cloudmux_meta::MetaError::Conflict => {
                    CoreError::OperationAborted(bucket.to_owned())
                }
                e => e.into(),
            })
    }

    /// GetBucketVersioning: `None` for a bucket never versioned.
    pub async fn bucket_versioning(
        &self,
        who: &RequestContext,
        bucket: &str,
    ) -> Result<Option<Versioning>> {
        let (b, _) = self.bucket(bucket).await?;
        self.authorize(who, &b, bucket, None, None, crate::authz::Fallback::Owner)?;
        Ok(b.versioning)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_newest_first_and_name_their_seq() {
        let clock = VersionClock::default();
        let a = clock.next(0);
        let b = clock.next(0);
        assert!(b > a);
        let (ia, ib) = (new_version_id(a), new_version_id(b));
        assert!(ib < ia, "newer ids sort first");
        assert_eq!(seq_of(&ia), Some(a));
        assert_eq!(seq_of(&ib), Some(b));
        assert_eq!(ia.len(), 32);
        assert!(ia.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(seq_of("null"), None);
        assert_eq!(seq_of("zz"), None);
    }

    #[test]
    fn the_clock_stays_above_a_floor() {
        let clock = VersionClock::default();
        let far = u64::MAX / 2;
        assert_eq!(clock.next(far), far + 1);
        assert!(clock.next(0) > far + 1);
    }

    #[test]
    fn kept_names() {
        let mut v = VersionInfo {
            seq: 255,
            ..VersionInfo::default()
        };
        assert_eq!(kept_name(&v), "null.00000000000000ff");
        v.id = Some("ab".repeat(16));
        assert_eq!(kept_name(&v), "ab".repeat(16));
        assert_eq!(shown_id(&VersionInfo::default()), "null");
    }
}
