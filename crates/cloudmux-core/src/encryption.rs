//! Server-side encryption as cloudmux can honour it: SSE-S3 (`AES256`) on
//! locations whose storage encrypts every object at rest
//! ([`Backend::encrypts_at_rest`](cloudmux_data::Backend::encrypts_at_rest):
//! Amazon S3, Azure Blob Storage and Google Cloud Storage), and nowhere
//! else. SSE-C and SSE-KMS are refused by the front end before they reach
//! the core, so no request for encryption is ever silently ignored.

use crate::{CoreError, Gateway, RequestContext, Result};

/// A server-side encryption a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSideEncryption {
    /// `AES256`: SSE-S3, keys managed by the storage.
    Aes256,
}

impl ServerSideEncryption {
    /// The value S3 names it by (`x-amz-server-side-encryption`,
    /// `SSEAlgorithm`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerSideEncryption::Aes256 => "AES256",
        }
    }
}

impl Gateway {
    /// Whether the data of `location` is encrypted at rest (SSE-S3 can be
    /// reported for it); `false` for a location that is not configured.
    pub fn location_encrypts(&self, location: &str) -> bool {
        self.locations
            .get(location)
            .is_ok_and(|b| b.encrypts_at_rest())
    }

    /// Refuses a write that asks for `sse` to a location that cannot honour
    /// it (`NotImplemented`, naming the header and the location).
    pub(crate) fn check_encryption(
        &self,
        location: &str,
        sse: Option<ServerSideEncryption>,
    ) -> Result<()> {
        match sse {
            Some(s) if !self.location_encrypts(location) => Err(CoreError::NotImplemented(format!(
                "x-amz-server-side-encryption: {} (location '{location}' does not encrypt data at rest)",
                s.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// GetBucketEncryption: the default encryption of the bucket's objects,
    /// `None` when its location does not encrypt at rest; owner only.
    pub async fn bucket_encryption(
        &self,
        who: &RequestContext,
        name: &str,
    ) -> Result<Option<ServerSideEncryption>> {
        let b = self.owned_bucket(who, name).await?;
        Ok(self
            .location_encrypts(&b.location)
            .then_some(ServerSideEncryption::Aes256))
    }

    /// PutBucketEncryption: accepted when the bucket's location already
    /// encrypts every object as asked (nothing is stored: the location's
    /// encryption is the configuration), else `NotImplemented`; owner only.
    pub async fn put_bucket_encryption(
        &self,
        who: &RequestContext,
        name: &str,
        sse: ServerSideEncryption,
    ) -> Result<()> {
        let b = self.owned_bucket(who, name).await?;
        if self.location_encrypts(&b.location) {
            Ok(())
        } else {
            Err(CoreError::NotImplemented(format!(
                "ServerSideEncryptionConfiguration with SSEAlgorithm {} (location '{}' does not encrypt data at rest)",
                sse.as_str(),
                b.location
            )))
        }
    }

    /// DeleteBucketEncryption: succeeds for the owner; a location that
    /// encrypts at rest keeps doing so, as S3 keeps SSE-S3 as the default.
    pub async fn delete_bucket_encryption(&self, who: &RequestContext, name: &str) -> Result<()> {
        self.owned_bucket(who, name).await.map(|_| ())
    }
}
