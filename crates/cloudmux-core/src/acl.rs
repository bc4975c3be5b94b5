//! Access control lists: the canned ACLs, grants, and the permission checks
//! AWS's ACL model defines.

use serde::{Deserialize, Serialize};

use crate::account::Principal;
use crate::{CoreError, Result};

/// An ACL permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    /// READ, WRITE, READ_ACP and WRITE_ACP.
    FullControl,
    /// Bucket: list objects. Object: read data and metadata.
    Read,
    /// Bucket: create, overwrite and delete any object.
    Write,
    /// Read the ACL.
    ReadAcp,
    /// Write the ACL.
    WriteAcp,
}

impl Permission {
    /// The S3 XML/header name.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::FullControl => "FULL_CONTROL",
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
        }
    }
    /// Parses the S3 XML name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "FULL_CONTROL" => Permission::FullControl,
            "READ" => Permission::Read,
            "WRITE" => Permission::Write,
            "READ_ACP" => Permission::ReadAcp,
            "WRITE_ACP" => Permission::WriteAcp,
            _ => return None,
        })
    }
    fn implies(self, wanted: Permission) -> bool {
        self == Permission::FullControl || self == wanted
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grantee {
    /// One account, by canonical id.
    Canonical(String),
    /// Everyone, anonymous included.
    AllUsers,
    /// Every authenticated account.
    AuthenticatedUsers,
    /// The log-delivery group.
    LogDelivery,
}

/// The group URIs S3 uses.
pub mod group_uri {
    /// AllUsers.
    pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
    /// AuthenticatedUsers.
    pub const AUTHENTICATED_USERS: &str =
        "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
    /// LogDelivery.
    pub const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";
}

impl Grantee {
    /// Parses a group URI.
    pub fn from_group_uri(uri: &str) -> Option<Self> {
        match uri {
            group_uri::ALL_USERS => Some(Grantee::AllUsers),
            group_uri::AUTHENTICATED_USERS => Some(Grantee::AuthenticatedUsers),
            group_uri::LOG_DELIVERY => Some(Grantee::LogDelivery),
            _ => None,
        }
    }
    /// The group URI, for group grantees.
    pub fn group_uri(&self) -> Option<&'static str> {
        match self {
            Grantee::AllUsers => Some(group_uri::ALL_USERS),
            Grantee::AuthenticatedUsers => Some(group_uri::AUTHENTICATED_USERS),
            Grantee::LogDelivery => Some(group_uri::LOG_DELIVERY),
            Grantee::Canonical(_) => None,
        }
    }
    fn matches(&self, who: &Principal) -> bool {
        match self {
            Grantee::AllUsers => true,
            Grantee::AuthenticatedUsers => who.account().is_some(),
            Grantee::Canonical(id) => who.canonical_id() == Some(id.as_str()),
            Grantee::LogDelivery => false,
        }
    }
}

/// One grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Who.
    pub grantee: Grantee,
    /// What.
    pub permission: Permission,
}

/// An ACL: an owner and grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    /// Canonical id of the owner.
    pub owner: String,
    /// Grants, the owner's own FULL_CONTROL included.
    pub grants: Vec<Grant>,
}

/// The canned ACLs (`x-amz-acl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedAcl {
    /// Owner FULL_CONTROL only.
    Private,
    /// Plus AllUsers READ.
    PublicRead,
    /// Plus AllUsers READ and WRITE.
    PublicReadWrite,
    /// Plus AuthenticatedUsers READ.
    AuthenticatedRead,
    /// Objects: plus bucket owner READ.
    BucketOwnerRead,
    /// Objects: plus bucket owner FULL_CONTROL.
    BucketOwnerFullControl,
    /// Buckets: plus LogDelivery WRITE and READ_ACP.
    LogDeliveryWrite,
    /// Like private (EC2 read access has no meaning here).
    AwsExecRead,
}

impl CannedAcl {
    /// Parses an `x-amz-acl` value.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "private" => CannedAcl::Private,
            "public-read" => CannedAcl::PublicRead,
            "public-read-write" => CannedAcl::PublicReadWrite,
            "authenticated-read" => CannedAcl::AuthenticatedRead,
            "bucket-owner-read" => CannedAcl::BucketOwnerRead,
            "bucket-owner-full-control" => CannedAcl::BucketOwnerFullControl,
            "log-delivery-write" => CannedAcl::LogDeliveryWrite,
            "aws-exec-read" => CannedAcl::AwsExecRead,
            _ => {
                return Err(CoreError::InvalidArgument(format!(
                    "invalid canned ACL {s}"
                )))
            }
        })
    }

    /// The ACL this canned ACL expands to. `bucket_owner` is used by the
    /// bucket-owner-* ACLs on objects.
    pub fn expand(self, owner: &str, bucket_owner: Option<&str>) -> Acl {
        let mut grants = vec![Grant {
            grantee: Grantee::Canonical(owner.to_owned()),
            permission: Permission::FullControl,
        }];
        let mut add = |grantee: Grantee, permission| {
            grants.push(Grant {
                grantee,
                permission,
            })
        };
        match self {
            CannedAcl::Private | CannedAcl::AwsExecRead => {}
            CannedAcl::PublicRead => add(Grantee::AllUsers, Permission::Read),
            CannedAcl::PublicReadWrite => {
                add(Grantee::AllUsers, Permission::Read);
                add(Grantee::AllUsers, Permission::Write);
            }
            CannedAcl::AuthenticatedRead => add(Grantee::AuthenticatedUsers, Permission::Read),
            CannedAcl::BucketOwnerRead | CannedAcl::BucketOwnerFullControl => {
                if let Some(b) = bucket_owner.filter(|b| *b != owner) {
                    let p = if self == CannedAcl::BucketOwnerRead {
                        Permission::Read
                    } else {
                        Permission::FullControl
                    };
                    add(Grantee::Canonical(b.to_owned()), p);
                }
            }
            CannedAcl::LogDeliveryWrite => {
                add(Grantee::LogDelivery, Permission::Write);
                add(Grantee::LogDelivery, Permission::ReadAcp);
            }
        }
        Acl {
            owner: owner.to_owned(),
            grants,
        }
    }
}

impl Acl {
    /// Whether `who` holds `wanted` through this ACL (ownership included).
    pub fn allows(&self, who: &Principal, wanted: Permission) -> bool {
        let owner = who.canonical_id() == Some(self.owner.as_str());
        if owner && matches!(wanted, Permission::ReadAcp | Permission::WriteAcp) {
            return true;
        }
        self.grants
            .iter()
            .any(|g| g.permission.implies(wanted) && g.grantee.matches(who))
    }

    /// `Ok` when allowed, else `AccessDenied`.
    pub fn check(&self, who: &Principal, wanted: Permission) -> Result<()> {
        if self.allows(who, wanted) {
            Ok(())
        } else {
            Err(CoreError::AccessDenied)
        }
    }
}

/// The ACL a write asks for: a canned ACL (`x-amz-acl`), explicit grants
/// (`x-amz-grant-*` headers), or a whole `AccessControlPolicy` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclRequest {
    /// A canned ACL.
    Canned(CannedAcl),
    /// Explicit grants; the owner keeps its implicit READ_ACP and WRITE_ACP.
    Grants(Vec<Grant>),
    /// An `AccessControlPolicy` document (its owner must be the resource's).
    Policy(Acl),
}

impl From<CannedAcl> for AclRequest {
    fn from(c: CannedAcl) -> Self {
        AclRequest::Canned(c)
    }
}

impl AclRequest {
    /// The ACL a resource owned by `owner` gets; `bucket_owner` is used by
    /// the bucket-owner-* canned ACLs on objects.
    pub fn resolve(&self, owner: &str, bucket_owner: Option<&str>) -> Result<Acl> {
        match self {
            AclRequest::Canned(c) => Ok(c.expand(owner, bucket_owner)),
            AclRequest::Grants(g) => Ok(Acl {
                owner: owner.to_owned(),
                grants: g.clone(),
            }),
            AclRequest::Policy(acl) => {
                if acl.owner != owner {
                    return Err(CoreError::AccessDenied);
                }
                Ok(acl.clone())
            }
        }
    }
}

impl Acl {
    /// Whether the ACL grants anything to AllUsers or AuthenticatedUsers
    /// (what Block Public Access calls a public ACL).
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(|g| g.grantee.is_public())
    }

    /// This ACL with the public grants removed (IgnorePublicAcls).
    pub fn without_public(&self) -> Acl {
        Acl {
            owner: self.owner.clone(),
            grants: self
                .grants
                .iter()
                .filter(|g| !g.grantee.is_public())
                .cloned()
                .collect(),
        }
    }
}

impl Grantee {
    /// AllUsers and AuthenticatedUsers are public grantees.
    pub fn is_public(&self) -> bool {
        matches!(self, Grantee::AllUsers | Grantee::AuthenticatedUsers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_resolve_and_public_detection() {
        let req = AclRequest::Grants(vec![Grant {
            grantee: Grantee::AuthenticatedUsers,
            permission: Permission::Read,
        }]);
        let acl = req.resolve("o", None).unwrap();
        assert!(acl.is_public());
        assert!(!acl.without_public().is_public());
        assert!(acl.without_public().grants.is_empty());
        let owner = Acl {
            owner: "x".into(),
            grants: vec![],
        };
        assert!(AclRequest::Policy(owner).resolve("o", None).is_err());
        assert!(!CannedAcl::Private.expand("o", None).is_public());
        assert!(CannedAcl::PublicRead.expand("o", None).is_public());
    }
}
