//! Object and bucket tagging: AWS's tag rules, and the tagging operations.
//!
//! Authorization is `Gateway::authorize` with the request's tagging action,
//! so the bucket policy decides first; otherwise object tags are read with
//! what reading the object takes (READ on the object, as GetObject) and
//! changed with what changing its ACL takes (WRITE_ACP on the object, which
//! its owner always holds), and the bucket owner may do both on every object
//! of the bucket, as AWS grants `s3:*ObjectTagging` to the bucket owner by
//! default. Bucket tags are the bucket owner's unless the policy allows
//! others.

use crate::acl::Permission;
use crate::authz::Fallback;
use crate::records::ObjectRecord;
use crate::RequestContext;
use crate::{names, CoreError, Gateway, Result};

/// Most tags an object may carry.
pub const MAX_OBJECT_TAGS: usize = 10;
/// Most tags a bucket may carry.
pub const MAX_BUCKET_TAGS: usize = 50;
/// Longest tag key, in Unicode characters.
pub const MAX_KEY_CHARS: usize = 128;
/// Longest tag value, in Unicode characters.
pub const MAX_VALUE_CHARS: usize = 256;

/// A list of tags: (key, value) pairs in the order given.
pub type Tags = Vec<(String, String)>;

/// Whether a character may appear in a tag key or value: letters, digits,
/// spaces and `+ - = . _ : / @` (AWS's `[\p{L}\p{Z}\p{N}_.:/=+\-@]`).
fn allowed_char(c: char) -> bool {
    c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "+-=._:/@".contains(c)
}

/// Checks a tag set against AWS's rules; `max` is 10 for objects and 50 for
/// buckets. The error is `InvalidTag` with AWS's message.
pub fn validate_tags(tags: &[(String, String)], max: usize) -> Result<()> {
    let invalid = |m: &str| Err(CoreError::InvalidTag(m.to_owned()));
    if tags.len() > max {
        return if max == MAX_OBJECT_TAGS {
            invalid("Object tags cannot be greater than 10")
        } else {
            invalid("Bucket tag count cannot be greater than 50")
        };
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.chars().count() > MAX_KEY_CHARS {
            return invalid("The TagKey you have provided is too long, max 128");
        }
        if v.chars().count() > MAX_VALUE_CHARS {
            return invalid("The TagValue you have provided is too long, max 256");
        }
        if k.is_empty() || !k.chars().all(allowed_char) {
            return invalid("The TagKey you have provided is invalid");
        }
        if !v.chars().all(allowed_char) {
            return invalid("The TagValue you have provided is invalid");
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return invalid("Your TagKey cannot be prefixed with aws:");
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return invalid("Cannot provide multiple Tags with the same key");
        }
    }
    Ok(())
}

impl Gateway {
    /// The addressed version of `bucket/key` (see [`Gateway::addressed`])
    /// after checking that `who` may read (`write == false`) or change
    /// (`write == true`) its tags.
    async fn tagged_object(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        write: bool,
    ) -> Result<(ObjectRecord, Vec<u8>, Vec<u8>)> {
        let (b, _) = self.bucket(bucket).await?;
        names::validate_key(key)?;
        let bucket_owner = who.canonical_id() == Some(b.owner.as_str());
        let (rec, raw, mkey) = self.addressed(who, &b, bucket, key, version_id).await?;
        let wanted = if write {
            Permission::WriteAcp
        } else {
            Permission::Read
        };
        let fallback = if bucket_owner {
            Fallback::Owner
        } else {
            Fallback::Acl(&rec.acl, wanted)
        };
        self.authorize(who, &b, bucket, Some(key), None, fallback)?;
        Ok((rec, raw, mkey))
    }

    /// GetObjectTagging: the tags of the current version or of the version
    /// `version_id` names (empty when it has none), and that version's id
    /// (`None` for the null version).
    pub async fn object_tags(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(Tags, Option<String>)> {
        let (rec, _, _) = self
            .tagged_object(who, bucket, key, version_id, false)
            .await?;
        Ok((rec.meta.tags, rec.version.id))
    }

    /// PutObjectTagging (replaces the whole set) and, with an empty set,
    /// DeleteObjectTagging, of the current version or of the version
    /// `version_id` names. The data and every other field are kept.
    /// Answers the version's id (`None` for the null version).
    pub async fn put_object_tags(
        &self,
        who: &RequestContext,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: Tags,
    ) -> Result<Option<String>> {
        validate_tags(&tags, MAX_OBJECT_TAGS)?;
        let _guard = self.locks.lock(bucket, key).await;
        self.settle_intent(bucket, key).await?;
        let (mut rec, raw, mkey) = self
            .tagged_object(who, bucket, key, version_id, true)
            .await?;
        rec.meta.tags = tags;
        self.rewrite_object(mkey, raw, &rec).await?;
        Ok(rec.version.id)
    }

    /// PutBucketTagging (replaces the whole set); bucket owner only.
    pub async fn put_bucket_tags(
        &self,
        who: &RequestContext,
        name: &str,
        tags: Tags,
    ) -> Result<()> {
        validate_tags(&tags, MAX_BUCKET_TAGS)?;
        self.update_bucket(who, name, |b| b.tags = Some(tags.clone()))
            .await
    }

    /// GetBucketTagging: `None` when no tag set is stored; bucket owner only.
    pub async fn bucket_tags(&self, who: &RequestContext, name: &str) -> Result<Option<Tags>> {
        Ok(self.owned_bucket(who, name).await?.tags)
    }

    /// DeleteBucketTagging; bucket owner only.
    pub async fn delete_bucket_tags(&self, who: &RequestContext, name: &str) -> Result<()> {
        self.update_bucket(who, name, |b| b.tags = None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn message(tags: &[(String, String)], max: usize) -> String {
        match validate_tags(tags, max) {
            Err(CoreError::InvalidTag(m)) => m,
            other => panic!("expected InvalidTag, got {other:?}"),
        }
    }

    #[test]
    fn accepts_aws_characters_and_limits() {
        let ok = t(&[
            ("a b+c-d=e.f_g:h/i@j", "é 1"),
            ("ключ", ""),
            (&"k".repeat(128), &"v".repeat(256)),
        ]);
        validate_tags(&ok, MAX_OBJECT_TAGS).unwrap();
        let ten: Tags = (0..10).map(|i| (format!("k{i}"), String::new())).collect();
        validate_tags(&ten, MAX_OBJECT_TAGS).unwrap();
        let fifty: Tags = (0..50).map(|i| (format!("k{i}"), String::new())).collect();
        validate_tags(&fifty, MAX_BUCKET_TAGS).unwrap();
    }

    #[test]
    fn refuses_what_aws_refuses() {
        let eleven: Tags = (0..11).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(message(&eleven, MAX_OBJECT_TAGS).contains("greater than 10"));
        let fifty_one: Tags = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(message(&fifty_one, MAX_BUCKET_TAGS).contains("greater than 50"));
        assert!(message(&t(&[(&"k".repeat(129), "")]), 10).contains("TagKey"));
        assert!(message(&t(&[("k", &"v".repeat(257))]), 10).contains("TagValue"));
        assert!(message(&t(&[("", "v")]), 10).contains("invalid"));
        assert!(message(&t(&[("a*b", "v")]), 10).contains("TagKey"));
        assert!(message(&t(&[("k", "v#")]), 10).contains("TagValue"));
        assert!(message(&t(&[("aws:x", "v")]), 10).contains("aws:"));
        assert_eq!(
            message(&t(&[("k", "1"), ("k", "2")]), 10),
            "Cannot provide multiple Tags with the same key"
        );
    }
}
