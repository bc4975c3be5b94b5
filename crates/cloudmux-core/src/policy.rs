//! Bucket policies: the IAM policy language as S3 accepts it on a bucket,
//! validated as PutBucketPolicy does and evaluated per request.
//!
//! A policy is kept as the JSON text the client sent and parsed again when a
//! request is authorized (documents are at most 20 KB). Evaluation follows
//! AWS: an explicit `Deny` that matches wins, then a matching `Allow`, and
//! only without either does the ACL decide (`BucketRecord::authorize`).
//!
//! Conditions see the values of [`RequestEnv`], which the front end sets for
//! the request being handled ([`with_env`]); a condition on a key the request
//! does not carry is false, except for the negated operators and the
//! `...IfExists` variants, as AWS documents. Unknown operators and keys are
//! refused at PutBucketPolicy, so no condition can widen access by being
//! misunderstood.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::account::{Accounts, Principal};

/// Largest policy document PutBucketPolicy accepts (AWS: 20 KB).
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// Why a policy document was refused; the message is AWS's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

fn bad<T>(msg: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(msg.into()))
}

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants the actions.
    Allow,
    /// Refuses the actions, whatever else grants them.
    Deny,
}

/// What kind of resource an action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bucket,
    Object,
    Service,
}

/// The S3 actions a bucket policy may name, with the resource kind each
/// applies to.
const ACTIONS: &[(&str, Kind)] = &[
    ("AbortMultipartUpload", Kind::Object),
    ("BypassGovernanceRetention", Kind::Object),
    ("DeleteObject", Kind::Object),
    ("DeleteObjectTagging", Kind::Object),
    ("DeleteObjectVersion", Kind::Object),
    ("DeleteObjectVersionTagging", Kind::Object),
    ("GetObject", Kind::Object),
    ("GetObjectAcl", Kind::Object),
    ("GetObjectAttributes", Kind::Object),
    ("GetObjectLegalHold", Kind::Object),
    ("GetObjectRetention", Kind::Object),
    ("GetObjectTagging", Kind::Object),
    ("GetObjectTorrent", Kind::Object),
    ("GetObjectVersion", Kind::Object),
    ("GetObjectVersionAcl", Kind::Object),
    ("GetObjectVersionAttributes", Kind::Object),
    ("GetObjectVersionForReplication", Kind::Object),
    ("GetObjectVersionTagging", Kind::Object),
    ("GetObjectVersionTorrent", Kind::Object),
    ("InitiateReplication", Kind::Object),
    ("ListMultipartUploadParts", Kind::Object),
    ("ObjectOwnerOverrideToBucketOwner", Kind::Object),
    ("PutObject", Kind::Object),
    ("PutObjectAcl", Kind::Object),
    ("PutObjectLegalHold", Kind::Object),
    ("PutObjectRetention", Kind::Object),
    ("PutObjectTagging", Kind::Object),
    ("PutObjectVersionAcl", Kind::Object),
    ("PutObjectVersionTagging", Kind::Object),
    ("ReplicateDelete", Kind::Object),
    ("ReplicateObject", Kind::Object),
    ("ReplicateTags", Kind::Object),
    ("RestoreObject", Kind::Object),
    ("CreateBucket", Kind::Bucket),
    ("DeleteBucket", Kind::Bucket),
    ("DeleteBucketOwnershipControls", Kind::Bucket),
    ("DeleteBucketPolicy", Kind::Bucket),
    ("DeleteBucketWebsite", Kind::Bucket),
    ("GetAccelerateConfiguration", Kind::Bucket),
    ("GetAnalyticsConfiguration", Kind::Bucket),
    ("GetBucketAcl", Kind::Bucket),
    ("GetBucketCORS", Kind::Bucket),
    ("GetBucketLocation", Kind::Bucket),
    ("GetBucketLogging", Kind::Bucket),
    ("GetBucketNotification", Kind::Bucket),
    ("GetBucketObjectLockConfiguration", Kind::Bucket),
    ("GetBucketOwnershipControls", Kind::Bucket),
    ("GetBucketPolicy", Kind::Bucket),
    ("GetBucketPolicyStatus", Kind::Bucket),
    ("GetBucketPublicAccessBlock", Kind::Bucket),
    ("GetBucketRequestPayment", Kind::Bucket),
    ("GetBucketTagging", Kind::Bucket),
    ("GetBucketVersioning", Kind::Bucket),
    ("GetBucketWebsite", Kind::Bucket),
    ("GetEncryptionConfiguration", Kind::Bucket),
    ("GetIntelligentTieringConfiguration", Kind::Bucket),
    ("GetInventoryConfiguration", Kind::Bucket),
    ("GetLifecycleConfiguration", Kind::Bucket),
    ("GetMetricsConfiguration", Kind::Bucket),
    ("GetReplicationConfiguration", Kind::Bucket),
    ("ListBucket", Kind::Bucket),
    ("ListBucketMultipartUploads", Kind::Bucket),
    ("ListBucketVersions", Kind::Bucket),
    ("PutAccelerateConfiguration", Kind::Bucket),
    ("PutAnalyticsConfiguration", Kind::Bucket),
    ("PutBucketAcl", Kind::Bucket),
    ("PutBucketCORS", Kind::Bucket),
    ("PutBucketLogging", Kind::Bucket),
    ("PutBucketNotification", Kind::Bucket),
    ("PutBucketObjectLockConfiguration", Kind::Bucket),
    ("PutBucketOwnershipControls", Kind::Bucket),
    ("PutBucketPolicy", Kind::Bucket),
    ("PutBucketPublicAccessBlock", Kind::Bucket),
    ("PutBucketRequestPayment", Kind::Bucket),
    ("PutBucketTagging", Kind::Bucket),
    ("PutBucketVersioning", Kind::Bucket),
    ("PutBucketWebsite", Kind::Bucket),
    ("PutEncryptionConfiguration", Kind::Bucket),
    ("PutIntelligentTieringConfiguration", Kind::Bucket),
    ("PutInventoryConfiguration", Kind::Bucket),
    ("PutLifecycleConfiguration", Kind::Bucket),
    ("PutMetricsConfiguration", Kind::Bucket),
    ("PutReplicationConfiguration", Kind::Bucket),
    ("GetAccountPublicAccessBlock", Kind::Service),
    ("ListAllMyBuckets", Kind::Service),
    ("PutAccountPublicAccessBlock", Kind::Service),
];

/// Condition keys a policy may test. Keys are compared case-insensitively.
/// The narrowing keys that name VPCs, organizations, calling services and
/// access points have no value in cloudmux (it has none of these), so a
/// plain operator on them never matches a request; they are accepted so
/// that the policies AWS documents as non-public can be stored.
const KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceowner",
    "aws:sourceaccount",
    "aws:principalaccount",
    "aws:principalorgid",
    "aws:principalarn",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
    "aws:securetransport",
    "aws:username",
    "aws:userid",
    "aws:principaltype",
    "aws:referer",
    "aws:useragent",
    "s3:prefix",
    "s3:delimiter",
    "s3:max-keys",
    "s3:x-amz-acl",
    "s3:x-amz-copy-source",
    "s3:x-amz-metadata-directive",
    "s3:x-amz-content-sha256",
    "s3:x-amz-storage-class",
    "s3:x-amz-grant-read",
    "s3:x-amz-grant-write",
    "s3:x-amz-grant-read-acp",
    "s3:x-amz-grant-write-acp",
    "s3:x-amz-grant-full-control",
    "s3:x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:authtype",
    "s3:signatureversion",
];

/// Keys whose fixed values make an `Allow` to everyone non-public (AWS's
/// Block Public Access definition).
const NARROWING_KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceowner",
    "aws:sourceaccount",
    "aws:userid",
    "aws:principalaccount",
    "aws:principalorgid",
    "aws:principalarn",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
];

/// The request values conditions are evaluated against; set by the front end
/// for each request and carried by its
/// [`RequestContext`](crate::RequestContext).
#[derive(Debug, Clone, Default)]
pub struct RequestEnv {
    /// The S3 action the operation is (`s3:GetObject`), `None` for requests
    /// no bucket policy governs.
    pub action: Option<&'static str>,
    /// The client's address.
    pub source_ip: Option<IpAddr>,
    /// Whether the request came over TLS.
    pub secure_transport: bool,
    /// Further condition keys with their values (`s3:prefix`, `aws:Referer`,
    /// ...), keys in lower case.
    pub values: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone)]
enum Who {
    Anyone,
    Account(String),
    /// A service principal, or an account no longer configured: matches no
    /// request.
    Service,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        use Op::*;
        Some(match s {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "Bool" => Bool,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "ArnEquals" => ArnEquals,
            "ArnLike" => ArnLike,
            "ArnNotEquals" => ArnNotEquals,
            "ArnNotLike" => ArnNotLike,
            "Null" => Null,
            _ => return None,
        })
    }

    fn negated(self) -> bool {
        matches!(
            self,
            Op::StringNotEquals
                | Op::StringNotEqualsIgnoreCase
                | Op::StringNotLike
                | Op::NumericNotEquals
                | Op::NotIpAddress
                | Op::ArnNotEquals
                | Op::ArnNotLike
        )
    }
}

#[derive(Debug, Clone)]
struct Condition {
    op: Op,
    if_exists: bool,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone)]
struct Statement {
    effect: Effect,
    principals: Vec<Who>,
    not_principal: bool,
    actions: Vec<String>,
    not_action: bool,
    resources: Vec<String>,
    not_resource: bool,
    conditions: Vec<Condition>,
}

/// A parsed, validated bucket policy.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// What is being accessed: an action on the bucket or one of its objects.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The S3 action, `s3:` included.
    pub action: &'a str,
    /// The bucket.
    pub bucket: &'a str,
    /// The object key, for object actions.
    pub key: Option<&'a str>,
}

/// Matches `value` against a pattern with `*` (any run) and `?` (one char).
pub fn glob(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    let one = |x: &Value| match x {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => bad(format!("Invalid {what} in policy")),
    };
    match v {
        Value::Array(a) if a.is_empty() => bad(format!("Invalid {what} in policy")),
        Value::Array(a) => a.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn parse_principal(v: &Value, accounts: &Accounts, strict: bool) -> Result<Vec<Who>, PolicyError> {
    let invalid = || PolicyError("Invalid principal in policy".into());
    match v {
        Value::String(s) if s == "*" => Ok(vec![Who::Anyone]),
        Value::Object(m) if !m.is_empty() => {
            let mut out = Vec::new();
            for (k, vals) in m {
                for s in strings(vals, "principal").map_err(|_| invalid())? {
                    out.push(match k.as_str() {
                        "AWS" if s == "*" => Who::Anyone,
                        "AWS" | "CanonicalUser" => match resolve_account(&s, accounts) {
                            Some(id) => Who::Account(id),
                            None if strict => return Err(invalid()),
                            None => Who::Service,
                        },
                        "Service" if !s.is_empty() => Who::Service,
                        _ => return Err(invalid()),
                    });
                }
            }
            Ok(out)
        }
        _ => Err(invalid()),
    }
}

/// The canonical id an `AWS` principal names: a canonical id, an account
/// name, or `arn:aws:iam::<id or name>:root` / `:user/<name>`.
fn resolve_account(s: &str, accounts: &Accounts) -> Option<String> {
    let id = match s.strip_prefix("arn:aws:iam::") {
        Some(rest) => {
            let (acct, what) = rest.split_once(':')?;
            if what != "root" && !what.starts_with("user/") {
                return None;
            }
            acct
        }
        None => s,
    };
    accounts
        .by_canonical_id(id)
        .or_else(|| accounts.by_name(id))
        .map(|a| a.canonical_id.clone())
}

fn action_matches(pattern: &str, action: &str) -> bool {
    glob(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

fn parse_actions(v: &Value) -> Result<Vec<String>, PolicyError> {
    let list = strings(v, "action").map_err(|_| PolicyError("Policy has invalid action".into()))?;
    for a in &list {
        let known = a == "*"
            || ACTIONS
                .iter()
                .any(|(name, _)| action_matches(a, &format!("s3:{name}")));
        if !known {
            return bad("Policy has invalid action");
        }
    }
    Ok(list)
}

fn parse_resources(v: &Value, bucket: &str) -> Result<Vec<String>, PolicyError> {
    let list =
        strings(v, "resource").map_err(|_| PolicyError("Policy has invalid resource".into()))?;
    let mut out = Vec::new();
    for r in list {
        let path = r.strip_prefix("arn:aws:s3:::");
        let inside = path.is_some_and(|p| {
            let first = p.split('/').next().unwrap_or_default();
            glob(first, bucket) || glob(p, bucket)
        });
        if !inside {
            return bad("Policy has invalid resource");
        }
        out.push(path.unwrap_or_default().to_owned());
    }
    Ok(out)
}

fn parse_conditions(v: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(ops) = v else {
        return bad("Invalid Condition in policy");
    };
    let mut out = Vec::new();
    for (name, keys) in ops {
        let (base, if_exists) = match name.strip_suffix("IfExists") {
            Some(b) => (b, true),
            None => (name.as_str(), false),
        };
        let op = match Op::parse(base) {
            Some(op) if !(if_exists && op == Op::Null) => op,
            _ => return bad(format!("Invalid Condition type : {name}")),
        };
        let Value::Object(keys) = keys else {
            return bad("Invalid Condition in policy");
        };
        for (key, vals) in keys {
            let key = key.to_ascii_lowercase();
            if !KEYS.contains(&key.as_str()) {
                return bad(format!("Policy has an invalid condition key: {key}"));
            }
            let values = strings(vals, "Condition")?;
            let ok = values.iter().all(|x| match op {
                Op::IpAddress | Op::NotIpAddress => parse_cidr(x).is_some(),
                Op::Bool | Op::Null => x == "true" || x == "false",
                Op::NumericEquals
                | Op::NumericNotEquals
                | Op::NumericLessThan
                | Op::NumericLessThanEquals
                | Op::NumericGreaterThan
                | Op::NumericGreaterThanEquals => x.parse::<f64>().is_ok(),
                _ => true,
            });
            if !ok {
                return bad(format!("Invalid Condition value for {name} on {key}"));
            }
            out.push(Condition {
                op,
                if_exists,
                key,
                values,
            });
        }
    }
    Ok(out)
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip.parse::<IpAddr>().ok()?, Some(len.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some((ip, len))
}

fn in_cidr(ip: IpAddr, net: (IpAddr, u8)) -> bool {
    let (a, b, bits) = match (ip, net.0) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32u32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        (IpAddr::V6(a), IpAddr::V4(b)) => match a.to_ipv4_mapped() {
            Some(a) => (u32::from(a) as u128, u32::from(b) as u128, 32),
            None => return false,
        },
        _ => return false,
    };
    let shift = bits - u32::from(net.1);
    shift >= bits || (a >> shift) == (b >> shift)
}

fn parse_statement(
    m: &Map<String, Value>,
    bucket: &str,
    accounts: &Accounts,
    strict: bool,
) -> Result<Statement, PolicyError> {
    for k in m.keys() {
        if !matches!(
            k.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return bad(format!("Unknown field {k}"));
        }
    }
    if m.get("Sid").is_some_and(|s| !s.is_string()) {
        return bad("Invalid Sid in policy");
    }
    let effect = match m.get("Effect") {
        Some(Value::String(s)) if s == "Allow" => Effect::Allow,
        Some(Value::String(s)) if s == "Deny" => Effect::Deny,
        Some(other) => return bad(format!("Invalid effect: {}", other.as_str().unwrap_or(""))),
        None => return bad("Missing required field Effect"),
    };
    let one_of = |a: &str, b: &str| -> Result<(&Value, bool), PolicyError> {
        match (m.get(a), m.get(b)) {
            (Some(v), None) => Ok((v, false)),
            (None, Some(v)) => Ok((v, true)),
            (None, None) => bad(format!("Missing required field {a}")),
            (Some(_), Some(_)) => bad(format!("{a} and {b} cannot both be present")),
        }
    };
    let (p, not_principal) = one_of("Principal", "NotPrincipal")?;
    let (a, not_action) = one_of("Action", "NotAction")?;
    let (r, not_resource) = one_of("Resource", "NotResource")?;
    let actions = parse_actions(a)?;
    let resources = parse_resources(r, bucket)?;
    if !not_action && !not_resource {
        let mut kinds = Vec::new();
        for r in &resources {
            if r.contains('/') || r.contains('*') {
                kinds.push(Kind::Object);
            }
            if !r.contains('/') {
                kinds.push(Kind::Bucket);
            }
        }
        let applies = actions.iter().any(|a| {
            ACTIONS
                .iter()
                .any(|(name, k)| kinds.contains(k) && action_matches(a, &format!("s3:{name}")))
        });
        if !applies {
            return bad("Action does not apply to any resource(s) in statement");
        }
    }
    Ok(Statement {
        effect,
        principals: parse_principal(p, accounts, strict)?,
        not_principal,
        actions,
        not_action,
        resources,
        not_resource,
        conditions: match m.get("Condition") {
            Some(c) => parse_conditions(c)?,
            None => Vec::new(),
        },
    })
}

impl Policy {
    /// Parses and validates a policy document for `bucket` as
    /// PutBucketPolicy does.
    pub fn parse(text: &str, bucket: &str, accounts: &Accounts) -> Result<Policy, PolicyError> {
        Self::parse_as(text, bucket, accounts, true)
    }

    /// Parses a stored policy: principals naming accounts that are no
    /// longer configured match nobody instead of failing.
    pub fn load(text: &str, bucket: &str, accounts: &Accounts) -> Result<Policy, PolicyError> {
        Self::parse_as(text, bucket, accounts, false)
    }

    fn parse_as(
        text: &str,
        bucket: &str,
        accounts: &Accounts,
        strict: bool,
    ) -> Result<Policy, PolicyError> {
        let doc: Value = serde_json::from_str(text)
            .map_err(|_| PolicyError("This policy contains invalid Json".into()))?;
        let Value::Object(doc) = doc else {
            return bad("This policy contains invalid Json");
        };
        for k in doc.keys() {
            if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
                return bad(format!("Unknown field {k}"));
            }
        }
        match doc.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(_) => return bad("Invalid policy version"),
        }
        if doc.get("Id").is_some_and(|v| !v.is_string()) {
            return bad("Invalid Id in policy");
        }
        let statements: Vec<Statement> = match doc.get("Statement") {
            Some(Value::Object(s)) => vec![parse_statement(s, bucket, accounts, strict)?],
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .map(|s| match s {
                    Value::Object(s) => parse_statement(s, bucket, accounts, strict),
                    _ => bad("Invalid Statement in policy"),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return bad("Invalid Statement in policy"),
            None => return bad("Missing required field Statement"),
        };
        let mut sids: Vec<&str> = Self::sids(&doc);
        sids.sort_unstable();
        if sids.windows(2).any(|w| w[0] == w[1]) {
            return bad("Statement IDs (SID) in a single policy must be unique");
        }
        Ok(Policy { statements })
    }

    fn sids(doc: &Map<String, Value>) -> Vec<&str> {
        match doc.get("Statement") {
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(|s| s.get("Sid").and_then(Value::as_str))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the policy is public as Block Public Access defines it: an
    /// `Allow` to everyone (or with `NotPrincipal`) that no condition pins to
    /// fixed values of a narrowing key.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && (s.not_principal || s.principals.iter().any(|p| matches!(p, Who::Anyone)))
                && !s.conditions.iter().any(narrows)
        })
    }

    /// The policy's decision on `access` by `who` in `env`: `Some(Deny)` when
    /// a Deny matches, else `Some(Allow)` when an Allow matches (unless
    /// `allow` refuses that statement), else `None`.
    pub fn evaluate(&self, who: &Principal, access: &Access, env: &RequestEnv) -> Option<Effect> {
        let mut allowed = false;
        for s in &self.statements {
            if s.matches(who, access, env) {
                match s.effect {
                    Effect::Deny => return Some(Effect::Deny),
                    Effect::Allow => allowed = true,
                }
            }
        }
        allowed.then_some(Effect::Allow)
    }
}

/// Whether a condition pins a narrowing key to fixed values.
fn narrows(c: &Condition) -> bool {
    let fixed = match c.op {
        Op::StringEquals | Op::StringEqualsIgnoreCase => true,
        Op::StringLike | Op::ArnEquals | Op::ArnLike => {
            c.values.iter().all(|v| !v.contains(['*', '?']))
        }
        Op::IpAddress => c.values.iter().all(|v| {
            parse_cidr(v).is_some_and(|(ip, len)| if ip.is_ipv4() { len >= 8 } else { len >= 32 })
        }),
        _ => false,
    };
    fixed
        && !c.if_exists
        && NARROWING_KEYS.contains(&c.key.as_str())
        && c.values.iter().all(|v| !v.contains("${"))
}

impl Statement {
    fn matches(&self, who: &Principal, access: &Access, env: &RequestEnv) -> bool {
        let principal = self.principals.iter().any(|p| match p {
            Who::Anyone => true,
            Who::Account(id) => who.canonical_id() == Some(id.as_str()),
            Who::Service => false,
        });
        let action = self
            .actions
            .iter()
            .any(|a| action_matches(a, access.action));
        let path = match access.key {
            Some(k) => format!("{}/{k}", access.bucket),
            None => access.bucket.to_owned(),
        };
        let resource = self.resources.iter().any(|r| glob(r, &path));
        principal != self.not_principal
            && action != self.not_action
            && resource != self.not_resource
            && self.conditions.iter().all(|c| c.holds(who, env))
    }
}

fn lookup(key: &str, who: &Principal, env: &RequestEnv) -> Option<String> {
    match key {
        "aws:sourceip" => env.source_ip.map(|ip| ip.to_string()),
        "aws:securetransport" => Some(env.secure_transport.to_string()),
        "aws:username" => who.account().map(|a| a.name.clone()),
        "aws:userid" => who.canonical_id().map(str::to_owned),
        "aws:principaltype" => Some(
            if who.account().is_some() {
                "Account"
            } else {
                "Anonymous"
            }
            .to_owned(),
        ),
        _ => env
            .values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone()),
    }
}

impl Condition {
    fn holds(&self, who: &Principal, env: &RequestEnv) -> bool {
        let value = lookup(&self.key, who, env);
        if self.op == Op::Null {
            let want_absent = self.values.iter().any(|v| v == "true");
            return value.is_none() == want_absent;
        }
        let Some(value) = value else {
            return self.if_exists || self.op.negated();
        };
        let num = |x: &str| x.parse::<f64>().ok();
        let any = |f: &dyn Fn(&str) -> bool| self.values.iter().any(|v| f(v));
        match self.op {
            Op::StringEquals => any(&|v| v == value),
            Op::StringNotEquals => !any(&|v| v == value),
            Op::StringEqualsIgnoreCase => any(&|v| v.eq_ignore_ascii_case(&value)),
            Op::StringNotEqualsIgnoreCase => !any(&|v| v.eq_ignore_ascii_case(&value)),
            Op::StringLike => any(&|v| glob(v, &value)),
            Op::StringNotLike => !any(&|v| glob(v, &value)),
            Op::ArnEquals | Op::ArnLike => any(&|v| glob(v, &value)),
            Op::ArnNotEquals | Op::ArnNotLike => !any(&|v| glob(v, &value)),
            Op::Bool => any(&|v| v.eq_ignore_ascii_case(&value)),
            Op::IpAddress | Op::NotIpAddress => {
                let hit = value
                    .parse::<IpAddr>()
                    .ok()
                    .is_some_and(|ip| any(&|v| parse_cidr(v).is_some_and(|n| in_cidr(ip, n))));
                hit != (self.op == Op::NotIpAddress)
            }
            op => {
                let Some(x) = num(&value) else {
                    return op.negated();
                };
                let cmp = |v: &str| {
                    num(v).is_some_and(|v| match op {
                        Op::NumericEquals | Op::NumericNotEquals => x == v,
                        Op::NumericLessThan => x < v,
                        Op::NumericLessThanEquals => x <= v,
                        Op::NumericGreaterThan => x > v,
                        _ => x >= v,
                    })
                };
                any(&cmp) != op.negated()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Account;

    fn accounts() -> Accounts {
        Accounts::new(vec![Account::new("bob", "BK", "BS")])
    }

    fn parse(doc: &str) -> Result<Policy, PolicyError> {
        Policy::parse(doc, "b", &accounts())
    }

    #[test]
    fn glob_matches_like_iam() {
        assert!(glob("b/shared/*", "b/shared/x/y"));
        assert!(!glob("b/shared/*", "b/other"));
        assert!(glob("b/a?c", "b/abc"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
    }

    #[test]
    fn validation_follows_aws() {
        let ok = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#;
        assert!(parse(ok).is_ok());
        let wildcard = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:ListBucket","Resource":["arn:aws:s3:::*","arn:aws:s3:::*/*"]}}"#;
        assert!(
            parse(wildcard).is_ok(),
            "wildcards that match the bucket are inside it"
        );
        assert!(parse("{").is_err());
        assert!(parse("[]").is_err());
        let cases = [
            (r#"{"Statement":[]}"#, "Invalid Statement in policy"),
            (
                r#"{"Statement":{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
                "Invalid effect: Maybe",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:Fly","Resource":"arn:aws:s3:::b/*"}}"#,
                "Policy has invalid action",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}}"#,
                "Policy has invalid resource",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bx/*"}}"#,
                "Policy has invalid resource",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::a*/*"}}"#,
                "Policy has invalid resource",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"nobody"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
                "Invalid principal in policy",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b"}}"#,
                "Action does not apply to any resource(s) in statement",
            ),
        ];
        for (doc, msg) in cases {
            assert_eq!(parse(doc).unwrap_err().0, msg, "{doc}");
        }
        let unknown_op = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"DateEquals":{"aws:CurrentTime":"x"}}}}"#;
        assert!(parse(unknown_op).is_err());
        let twice = r#"{"Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},{"Sid":"a","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*"}]}"#;
        assert!(parse(twice).unwrap_err().0.contains("unique"));
        let extra = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Foo":1}}"#;
        assert!(parse(extra).is_err());
    }

    #[test]
    fn evaluation_and_public_status() {
        let accts = accounts();
        let bob = Principal::Account(accts.by_name("bob").unwrap().clone());
        let p = parse(
            r#"{"Statement":[
              {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},
              {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::bob:root"},"Action":"s3:*","Resource":"arn:aws:s3:::b/secret/*"},
              {"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",
               "Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.1/32"},"StringLike":{"s3:prefix":"pub/*"}}}
            ]}"#,
        )
        .unwrap();
        assert!(p.is_public());
        let env = RequestEnv {
            source_ip: "127.0.0.1".parse().ok(),
            values: vec![("s3:prefix", "pub/x".into())],
            ..RequestEnv::default()
        };
        let get = |key| Access {
            action: "s3:GetObject",
            bucket: "b",
            key: Some(key),
        };
        assert_eq!(
            p.evaluate(&Principal::Anonymous, &get("a"), &env),
            Some(Effect::Allow)
        );
        assert_eq!(p.evaluate(&bob, &get("secret/a"), &env), Some(Effect::Deny));
        let list = Access {
            action: "s3:ListBucket",
            bucket: "b",
            key: None,
        };
        assert_eq!(
            p.evaluate(&Principal::Anonymous, &list, &env),
            Some(Effect::Allow)
        );
        let far = RequestEnv {
            source_ip: "10.1.2.3".parse().ok(),
            ..env.clone()
        };
        assert_eq!(p.evaluate(&Principal::Anonymous, &list, &far), None);
        let narrow = parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}"#,
        )
        .unwrap();
        assert!(!narrow.is_public());
    }

    #[test]
    fn public_follows_the_meaning_of_public() {
        let stmt = |extra: &str| {
            format!(
                r#"{{"Statement":{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"{extra}}}}}"#
            )
        };
        let cond = |c: &str| stmt(&format!(r#","Condition":{c}"#));
        for (doc, public) in [
            (stmt(""), true),
            (cond(r#"{"StringEquals":{"aws:SourceVpc":"vpc-91237329"}}"#), false),
            (cond(r#"{"StringLike":{"aws:SourceVpc":"vpc-*"}}"#), true),
            (cond(r#"{"StringEquals":{"aws:SourceVpce":"vpce-1a2b3c4d"}}"#), false),
            (cond(r#"{"StringEquals":{"aws:PrincipalOrgID":"o-abc"}}"#), false),
            (cond(r#"{"StringEquals":{"aws:SourceAccount":"111122223333"}}"#), false),
            (cond(r#"{"StringEquals":{"aws:SourceOwner":"111122223333"}}"#), false),
            (cond(r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:cloudfront::1:distribution/E1"}}"#), false),
            (cond(r#"{"ArnLike":{"aws:SourceArn":"arn:aws:cloudfront::*"}}"#), true),
            (cond(r#"{"StringEquals":{"s3:DataAccessPointAccount":"111122223333"}}"#), false),
            (cond(r#"{"StringLike":{"aws:userid":"AROLEID:*"}}"#), true),
            (cond(r#"{"StringEquals":{"aws:SourceAccount":"${aws:username}"}}"#), true),
            (cond(r#"{"StringEqualsIfExists":{"aws:SourceVpc":"vpc-1"}}"#), true),
            (cond(r#"{"StringNotEquals":{"aws:SourceVpc":"vpc-1"}}"#), true),
            (cond(r#"{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#), false),
            (cond(r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#), true),
            (cond(r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/16"}}"#), true),
            (cond(r#"{"StringLike":{"s3:prefix":"pub/"}}"#), true),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#.to_owned(),
                false,
            ),
            (
                r#"{"Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"bob"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#.to_owned(),
                true,
            ),
            (
                r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#.to_owned(),
                false,
            ),
        ] {
            assert_eq!(parse(&doc).unwrap().is_public(), public, "{doc}");
        }
    }

    #[test]
    fn numeric_if_exists_and_null_conditions() {
        let p = parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",
               "Condition":{"NumericLessThanEquals":{"s3:max-keys":"10"},"StringEqualsIfExists":{"s3:delimiter":"/"},"Null":{"s3:x-amz-acl":"true"}}}}"#,
        )
        .unwrap();
        let list = Access {
            action: "s3:ListBucket",
            bucket: "b",
            key: None,
        };
        let env = |values: Vec<(&'static str, &str)>| RequestEnv {
            values: values.into_iter().map(|(k, v)| (k, v.to_owned())).collect(),
            ..RequestEnv::default()
        };
        let anon = Principal::Anonymous;
        let allowed = |e: RequestEnv| p.evaluate(&anon, &list, &e) == Some(Effect::Allow);
        assert!(allowed(env(vec![("s3:max-keys", "5")])));
        assert!(allowed(env(vec![
            ("s3:max-keys", "5"),
            ("s3:delimiter", "/")
        ])));
        assert!(!allowed(env(vec![("s3:max-keys", "50")])));
        assert!(
            !allowed(env(vec![])),
            "a missing key fails a plain operator"
        );
        assert!(!allowed(env(vec![
            ("s3:max-keys", "5"),
            ("s3:delimiter", "-")
        ])));
        assert!(!allowed(env(vec![
            ("s3:max-keys", "5"),
            ("s3:x-amz-acl", "private")
        ])));
        let negated = parse(
            r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",
               "Condition":{"StringNotEquals":{"s3:prefix":"ok/"}}}}"#,
        )
        .unwrap();
        assert_eq!(
            negated.evaluate(&anon, &list, &env(vec![])),
            Some(Effect::Deny)
        );
        assert_eq!(
            negated.evaluate(&anon, &list, &env(vec![("s3:prefix", "ok/")])),
            None
        );
    }
}
