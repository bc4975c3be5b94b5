//! S3 Object Ownership: who owns the objects written to a bucket, and
//! whether ACLs are enabled (AWS's "Controlling ownership of objects and
//! disabling ACLs for your bucket").
//!
//! - `BucketOwnerEnforced`: ACLs are disabled. Every ACL decision sees the
//!   bucket owner's FULL_CONTROL and nothing else
//!   (`BucketRecord::effective_acl`), so ACLs stored before grant nothing and
//!   the bucket owner has full control of every object; GetBucketAcl and
//!   GetObjectAcl answer that ACL. Writes that carry an ACL other than the
//!   bucket owner's full control, and every PutBucketAcl and PutObjectAcl,
//!   are refused with `AccessControlListNotSupported`; new objects are owned
//!   by the bucket owner.
//! - `BucketOwnerPreferred`: an object written with the
//!   `bucket-owner-full-control` canned ACL is owned by the bucket owner.
//! - `ObjectWriter`, and a bucket without a setting (every bucket created
//!   before cloudmux knew Object Ownership, and every bucket created without
//!   `x-amz-object-ownership`): the writer owns its objects, ACLs work.
//!
//! Unlike AWS, which gives new buckets `BucketOwnerEnforced` since April
//! 2023, a bucket created without the header has no setting, so existing
//! clients that rely on ACLs keep working; GetBucketOwnershipControls
//! answers "not found" for it.

use crate::acl::{Acl, AclRequest, CannedAcl, Grantee, Permission};
use crate::records::{BucketRecord, ObjectOwnership};
use crate::{CoreError, Gateway, RequestContext, Result};

impl BucketRecord {
    /// Whether ACLs are disabled (`BucketOwnerEnforced`).
    pub fn acls_disabled(&self) -> bool {
        self.ownership == Some(ObjectOwnership::BucketOwnerEnforced)
    }

    /// The bucket owner's FULL_CONTROL and nothing else: the one ACL of the
    /// bucket and of each of its objects while ACLs are disabled.
    pub fn owner_full_control(&self) -> Acl {
        CannedAcl::Private.expand(&self.owner, None)
    }

    /// The owner and the ACL of an object that `writer` (a canonical id)
    /// writes with the `requested` ACL (PutObject, CopyObject, POST Object,
    /// CreateMultipartUpload), by the bucket's Object Ownership; refused
    /// with `AccessControlListNotSupported` when ACLs are disabled and the
    /// request asks for more than the bucket owner's full control, and with
    /// `AccessDenied` when Block Public Access refuses the ACL.
    pub fn new_object_acl(
        &self,
        writer: &str,
        requested: Option<AclRequest>,
    ) -> Result<(String, Acl)> {
        let bucket_owner_full_control = matches!(
            requested,
            Some(AclRequest::Canned(CannedAcl::BucketOwnerFullControl))
        );
        match self.ownership {
            Some(ObjectOwnership::BucketOwnerEnforced) => {
                let allowed = match &requested {
                    None => true,
                    Some(AclRequest::Canned(c)) => *c == CannedAcl::BucketOwnerFullControl,
                    Some(AclRequest::Grants(g)) => {
                        !g.is_empty()
                            && g.iter().all(|g| {
                                g.permission == Permission::FullControl
                                    && g.grantee == Grantee::Canonical(self.owner.clone())
                            })
                    }
                    Some(AclRequest::Policy(_)) => false,
                };
                if !allowed {
                    return Err(CoreError::AccessControlListNotSupported);
                }
                Ok((self.owner.clone(), self.owner_full_control()))
            }
            Some(ObjectOwnership::BucketOwnerPreferred) if bucket_owner_full_control => {
                Ok((self.owner.clone(), self.owner_full_control()))
            }
            _ => {
                let acl = requested
                    .unwrap_or(AclRequest::Canned(CannedAcl::Private))
                    .resolve(writer, Some(&self.owner))?;
                self.refuse_public(&acl)?;
                Ok((writer.to_owned(), acl))
            }
        }
    }

    /// `AccessControlListNotSupported` when ACLs are disabled: the answer to
    /// every PutBucketAcl and PutObjectAcl then.
    pub(crate) fn refuse_acl_change(&self) -> Result<()> {
        if self.acls_disabled() {
            Err(CoreError::AccessControlListNotSupported)
        } else {
            Ok(())
        }
    }

    /// The ACL GetBucketAcl answers: the bucket owner's full control while
    /// ACLs are disabled, the stored ACL otherwise.
    pub(crate) fn shown_bucket_acl(&self) -> Acl {
        if self.acls_disabled() {
            self.owner_full_control()
        } else {
            self.acl.clone()
        }
    }

    /// The ACL GetObjectAcl answers for an object whose stored ACL is
    /// `stored`: the bucket owner's full control while ACLs are disabled.
    pub(crate) fn shown_object_acl(&self, stored: Acl) -> Acl {
        if self.acls_disabled() {
            self.owner_full_control()
        } else {
            stored
        }
    }
}

/// `InvalidBucketAclWithObjectOwnership` unless `acl` (a bucket's) gives
/// FULL_CONTROL to its owner and nothing to anyone else: ACLs can only be
/// disabled on a bucket whose ACL grants nothing outside its owner.
pub(crate) fn check_enforceable(ownership: Option<ObjectOwnership>, acl: &Acl) -> Result<()> {
    if ownership != Some(ObjectOwnership::BucketOwnerEnforced) {
        return Ok(());
    }
    let owner_only = acl
        .grants
        .iter()
        .all(|g| g.grantee == Grantee::Canonical(acl.owner.clone()));
    if owner_only {
        Ok(())
    } else {
        Err(CoreError::InvalidBucketAclWithObjectOwnership)
    }
}

impl Gateway {
    /// PutBucketOwnershipControls: the bucket owner, or whom the bucket
    /// policy allows. `BucketOwnerEnforced` is refused with
    /// `InvalidBucketAclWithObjectOwnership` while the bucket ACL grants
    /// anything to others than the owner.
    pub async fn put_bucket_ownership(
        &self,
        who: &RequestContext,
        name: &str,
        ownership: ObjectOwnership,
    ) -> Result<()> {
        self.update_bucket_checked(who, name, |b| {
            check_enforceable(Some(ownership), &b.acl)?;
            b.ownership = Some(ownership);
            Ok(())
        })
        .await
    }

    /// GetBucketOwnershipControls: `None` when the bucket has no setting.
    pub async fn bucket_ownership(
        &self,
        who: &RequestContext,
        name: &str,
    ) -> Result<Option<ObjectOwnership>> {
        Ok(self.owned_bucket(who, name).await?.ownership)
    }

    /// DeleteBucketOwnershipControls: the bucket goes back to having no
    /// setting (the writer owns its objects, ACLs work).
    pub async fn delete_bucket_ownership(&self, who: &RequestContext, name: &str) -> Result<()> {
        self.update_bucket(who, name, |b| b.ownership = None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Grant;

    fn bucket(ownership: Option<ObjectOwnership>) -> BucketRecord {
        BucketRecord {
            owner: "owner".into(),
            created_ms: 0,
            location: "local".into(),
            acl: CannedAcl::Private.expand("owner", None),
            explicit_location: false,
            cors: None,
            public_access_block: None,
            tags: None,
            policy: None,
            ownership,
            versioning: None,
            object_lock: None,
        }
    }

    fn canned(c: CannedAcl) -> Option<AclRequest> {
        Some(AclRequest::Canned(c))
    }

    #[test]
    fn enforced_buckets_accept_only_the_bucket_owners_full_control() {
        let b = bucket(Some(ObjectOwnership::BucketOwnerEnforced));
        for ok in [
            None,
            canned(CannedAcl::BucketOwnerFullControl),
            Some(AclRequest::Grants(vec![Grant {
                grantee: Grantee::Canonical("owner".into()),
                permission: Permission::FullControl,
            }])),
        ] {
            let (owner, acl) = b.new_object_acl("writer", ok).unwrap();
            assert_eq!(owner, "owner");
            assert_eq!(acl, b.owner_full_control());
        }
        for refused in [
            canned(CannedAcl::Private),
            canned(CannedAcl::PublicRead),
            Some(AclRequest::Grants(vec![Grant {
                grantee: Grantee::Canonical("writer".into()),
                permission: Permission::FullControl,
            }])),
            Some(AclRequest::Grants(vec![Grant {
                grantee: Grantee::Canonical("owner".into()),
                permission: Permission::Read,
            }])),
        ] {
            assert!(matches!(
                b.new_object_acl("writer", refused),
                Err(CoreError::AccessControlListNotSupported)
            ));
        }
        assert!(b.refuse_acl_change().is_err());
    }

    #[test]
    fn stored_grants_grant_nothing_while_acls_are_disabled() {
        let mut b = bucket(None);
        let public = CannedAcl::PublicRead.expand("writer", None);
        let anyone = crate::Principal::Anonymous;
        assert!(b.effective_acl(&public).allows(&anyone, Permission::Read));
        b.ownership = Some(ObjectOwnership::BucketOwnerEnforced);
        assert!(!b.effective_acl(&public).allows(&anyone, Permission::Read));
        assert_eq!(b.effective_acl(&public).owner, "owner");
        assert_eq!(b.shown_object_acl(public), b.owner_full_control());
    }

    #[test]
    fn preferred_and_writer_ownership() {
        let pref = bucket(Some(ObjectOwnership::BucketOwnerPreferred));
        let full = canned(CannedAcl::BucketOwnerFullControl);
        assert_eq!(pref.new_object_acl("w", full.clone()).unwrap().0, "owner");
        assert_eq!(pref.new_object_acl("w", None).unwrap().0, "w");
        for b in [bucket(None), bucket(Some(ObjectOwnership::ObjectWriter))] {
            let (owner, acl) = b.new_object_acl("w", full.clone()).unwrap();
            assert_eq!(owner, "w");
            assert_eq!(acl.grants.len(), 2);
            assert!(b.refuse_acl_change().is_ok());
        }
    }

    #[test]
    fn only_an_owner_only_bucket_acl_can_be_enforced() {
        let enforced = Some(ObjectOwnership::BucketOwnerEnforced);
        assert!(check_enforceable(enforced, &CannedAcl::Private.expand("o", None)).is_ok());
        assert!(check_enforceable(enforced, &CannedAcl::PublicRead.expand("o", None)).is_err());
        let preferred = Some(ObjectOwnership::BucketOwnerPreferred);
        assert!(check_enforceable(preferred, &CannedAcl::PublicRead.expand("o", None)).is_ok());
    }
}
