//! Bucket configurations beyond the ACL: CORS rules and Block Public Access,
//! with AWS's CORS rule matching and the public-ACL rules.

use crate::RequestContext;
use std::borrow::Cow;

use cloudmux_meta::{codec, MetaError, Txn};

use crate::acl::Acl;
use crate::authz::Fallback;
use crate::records::{self, BucketRecord, CorsRule, PublicAccessBlock};
use crate::{CoreError, Gateway, Result};

/// Methods a CORS rule may allow.
pub const CORS_METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

impl BucketRecord {
    /// The ACL that authorizes requests on the bucket or one of its
    /// objects (`acl` is the bucket's or the object's): only the bucket
    /// owner's full control while ACLs are disabled (Object Ownership
    /// `BucketOwnerEnforced`), else `acl` without its public grants when the
    /// bucket's IgnorePublicAcls is set, else `acl`.
    pub fn effective_acl<'a>(&self, acl: &'a Acl) -> Cow<'a, Acl> {
        if self.acls_disabled() {
            return Cow::Owned(self.owner_full_control());
        }
        match self.public_access_block {
            Some(p) if p.ignore_public_acls => Cow::Owned(acl.without_public()),
            _ => Cow::Borrowed(acl),
        }
    }

    /// `AccessDenied` when BlockPublicAcls is set and `acl` is public.
    pub fn refuse_public(&self, acl: &Acl) -> Result<()> {
        match self.public_access_block {
            Some(p) if p.block_public_acls && acl.is_public() => Err(CoreError::AccessDenied),
            _ => Ok(()),
        }
    }
}

/// Matches `value` against a pattern with at most one `*` wildcard.
fn wildcard(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v) = if ignore_case {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_owned(), value.to_owned())
    };
    match p.split_once('*') {
        None => p == v,
        Some((pre, post)) => {
            v.len() >= pre.len() + post.len() && v.starts_with(pre) && v.ends_with(post)
        }
    }
}

impl CorsRule {
    /// Whether the rule allows `origin` with `method`, and (for preflights)
    /// every header of `headers`.
    pub fn matches(&self, origin: &str, method: &str, headers: &[String]) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| wildcard(o, origin, false))
            && self.allowed_methods.iter().any(|m| m == method)
            && headers.iter().all(|h| {
                self.allowed_headers
                    .iter()
                    .any(|a| wildcard(a, h.trim(), true))
            })
    }

    /// Whether the rule allows every origin.
    pub fn any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }
}

/// The first rule that allows the request, as AWS evaluates them (in order).
pub fn find_cors_rule<'a>(
    rules: &'a [CorsRule],
    origin: &str,
    method: &str,
    headers: &[String],
) -> Option<&'a CorsRule> {
    rules.iter().find(|r| r.matches(origin, method, headers))
}

/// Checks CORS rules as PutBucketCors does; the error names the problem.
pub fn validate_cors(rules: &[CorsRule]) -> Result<()> {
    if rules.is_empty() || rules.len() > 100 {
        return Err(CoreError::MalformedXml);
    }
    for r in rules {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err(CoreError::MalformedXml);
        }
        for m in &r.allowed_methods {
            if !CORS_METHODS.contains(&m.as_str()) {
                return Err(CoreError::InvalidRequest(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                )));
            }
        }
        for o in r.allowed_origins.iter().chain(&r.allowed_headers) {
            if o.matches('*').count() > 1 {
                return Err(CoreError::InvalidRequest(format!(
                    "AllowedOrigin/AllowedHeader \"{o}\" can not have more than one wildcard."
                )));
            }
        }
    }
    Ok(())
}

impl Gateway {
    /// Reads, changes and writes back a bucket record; the owner, or whom
    /// the bucket policy allows (and not whom it denies).
    pub(crate) async fn update_bucket(
        &self,
        who: &RequestContext,
        name: &str,
        change: impl Fn(&mut BucketRecord),
    ) -> Result<()> {
        self.update_bucket_as(who, name, true, |b| {
            change(b);
            Ok(())
        })
        .await
    }

    /// Like [`Gateway::update_bucket`], with a change that may refuse.
    pub(crate) async fn update_bucket_checked(
        &self,
        who: &RequestContext,
        name: &str,
        change: impl Fn(&mut BucketRecord) -> Result<()>,
    ) -> Result<()> {
        self.update_bucket_as(who, name, true, change).await
    }

    /// Reads, changes and writes back a bucket record; the owner only,
    /// whatever the bucket policy says.
    pub(crate) async fn update_bucket_owned(
        &self,
        who: &RequestContext,
        name: &str,
        change: impl Fn(&mut BucketRecord) -> Result<()>,
    ) -> Result<()> {
        self.update_bucket_as(who, name, false, change).await
    }

    async fn update_bucket_as(
        &self,
        who: &RequestContext,
        name: &str,
        governed: bool,
        change: impl Fn(&mut BucketRecord) -> Result<()>,
    ) -> Result<()> {
        loop {
            let (mut b, raw) = self.bucket(name).await?;
            if governed {
                self.authorize(who, &b, name, None, None, Fallback::Owner)?;
            } else if who.canonical_id() != Some(b.owner.as_str()) {
                return Err(CoreError::AccessDenied);
            }
            change(&mut b)?;
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

    /// The bucket record, for the bucket owner or whom the bucket policy
    /// allows.
    pub(crate) async fn owned_bucket(
        &self,
        who: &RequestContext,
        name: &str,
    ) -> Result<BucketRecord> {
        let (b, _) = self.bucket(name).await?;
        self.authorize(who, &b, name, None, None, Fallback::Owner)?;
        Ok(b)
    }

    /// `x-amz-expected-bucket-owner`: `AccessDenied` when the bucket exists
    /// and belongs to another account than `expected` (a canonical id). A
    /// missing bucket is left to the operation to report.
    pub async fn check_expected_owner(&self, name: &str, expected: &str) -> Result<()> {
        match self.bucket(name).await {
            Ok((b, _)) if b.owner != expected.trim() => Err(CoreError::AccessDenied),
            _ => Ok(()),
        }
    }

    /// PutBucketCors.
    pub async fn put_bucket_cors(
        &self,
        who: &RequestContext,
        name: &str,
        rules: Vec<CorsRule>,
    ) -> Result<()> {
        validate_cors(&rules)?;
        self.update_bucket(who, name, |b| b.cors = Some(rules.clone()))
            .await
    }

    /// GetBucketCors: `None` when no CORS configuration is set.
    pub async fn bucket_cors(
        &self,
        who: &RequestContext,
        name: &str,
    ) -> Result<Option<Vec<CorsRule>>> {
        Ok(self.owned_bucket(who, name).await?.cors)
    }

    /// DeleteBucketCors.
    pub async fn delete_bucket_cors(&self, who: &RequestContext, name: &str) -> Result<()> {
        self.update_bucket(who, name, |b| b.cors = None).await
    }

    /// The CORS rules that apply to requests on a bucket, without any access
    /// check (CORS is evaluated for anonymous preflights too). Empty when the
    /// bucket is missing or has no rules.
    pub async fn cors_rules(&self, name: &str) -> Vec<CorsRule> {
        match self.bucket(name).await {
            Ok((b, _)) => b.cors.unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// PutPublicAccessBlock.
    pub async fn put_public_access_block(
        &self,
        who: &RequestContext,
        name: &str,
        pab: PublicAccessBlock,
    ) -> Result<()> {
        self.update_bucket(who, name, |b| b.public_access_block = Some(pab))
            .await
    }

    /// GetPublicAccessBlock: `None` when not set.
    pub async fn public_access_block(
        &self,
        who: &RequestContext,
        name: &str,
    ) -> Result<Option<PublicAccessBlock>> {
        Ok(self.owned_bucket(who, name).await?.public_access_block)
    }

    /// DeletePublicAccessBlock.
    pub async fn delete_public_access_block(&self, who: &RequestContext, name: &str) -> Result<()> {
        self.update_bucket(who, name, |b| b.public_access_block = None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        CorsRule {
            allowed_origins: v(origins),
            allowed_methods: v(methods),
            allowed_headers: v(headers),
            ..CorsRule::default()
        }
    }

    #[test]
    fn cors_matching_follows_aws() {
        let rules = vec![
            rule(&["http://*.example.com"], &["GET"], &[]),
            rule(&["*"], &["PUT"], &["x-amz-*", "Content-Type"]),
        ];
        assert!(find_cors_rule(&rules, "http://www.example.com", "GET", &[]).is_some());
        assert!(find_cors_rule(&rules, "http://example.org", "GET", &[]).is_none());
        let h = vec!["X-Amz-Meta-A".to_string(), "content-type".to_string()];
        assert!(find_cors_rule(&rules, "http://a", "PUT", &h).is_some());
        let bad = vec!["authorization".to_string()];
        assert!(find_cors_rule(&rules, "http://a", "PUT", &bad).is_none());
        assert!(validate_cors(&[]).is_err());
        assert!(validate_cors(&[rule(&["*"], &["PATCH"], &[])]).is_err());
        assert!(validate_cors(&rules).is_ok());
    }
}
