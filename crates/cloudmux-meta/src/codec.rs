//! Format-versioned record encoding.
//!
//! Every value cloudmux stores starts with one byte naming its format version,
//! followed by the postcard encoding of the record. A record type that changes
//! shape bumps [`Record::VERSION`] and overrides [`Record::upgrade`] to read the
//! older versions, so stored data is upgraded on read and never rewritten in bulk.

use serde::{de::DeserializeOwned, Serialize};

use crate::{MetaError, Result};

/// A record type stored in the metadata store.
pub trait Record: Serialize + DeserializeOwned {
    /// The current format version, written as the first byte.
    const VERSION: u8;

    /// Decodes an older format version. The default knows none.
    fn upgrade(version: u8, _body: &[u8]) -> Result<Self> {
        Err(MetaError::Corrupt(format!(
            "{}: unknown format version {version}",
            std::any::type_name::<Self>()
        )))
    }
}

/// Encodes a record with its version byte.
pub fn encode<T: Record>(record: &T) -> Vec<u8> {
    let mut out = vec![T::VERSION];
    // Serializing plain data structs into a Vec cannot fail.
    let body = postcard::to_stdvec(record).expect("postcard encoding of a record");
    out.extend_from_slice(&body);
    out
}

/// Decodes a record, upgrading older versions.
pub fn decode<T: Record>(bytes: &[u8]) -> Result<T> {
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| MetaError::Corrupt("empty record".into()))?;
    if version == T::VERSION {
        postcard::from_bytes(body).map_err(|e| MetaError::Corrupt(e.to_string()))
    } else {
        T::upgrade(version, body)
    }
}
