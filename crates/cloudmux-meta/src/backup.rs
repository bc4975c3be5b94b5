//! The metadata backup format of `cloudmux meta export` and `import`: a
//! consistent snapshot of every entry of a store, engine-neutral, so a backup
//! taken from sled loads into any engine.
//!
//! Layout: the magic `CMXMETA` and a format version byte (1), then the
//! entries as postcard (`Vec<(key, value)>`, ascending keys), then the
//! SHA-256 of everything before it. A truncated or altered file is refused.

use sha2::{Digest, Sha256};

use crate::{Entry, MetaError, MetaStore, Result, Txn};

const MAGIC: &[u8] = b"CMXMETA";
const VERSION: u8 = 1;
/// Entries written per commit on import.
const IMPORT_BATCH: usize = 512;

/// Encodes a snapshot as a backup file.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        64 + entries
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>(),
    );
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend(postcard::to_stdvec(entries).expect("entries always encode"));
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// Decodes a backup file, checking its magic, version and checksum.
pub fn decode(bytes: &[u8]) -> Result<Vec<Entry>> {
    let bad = |why: &str| MetaError::Corrupt(format!("metadata backup: {why}"));
    if bytes.len() < MAGIC.len() + 1 + 32 || !bytes.starts_with(MAGIC) {
        return Err(bad("not a cloudmux metadata backup"));
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != digest {
        return Err(bad("checksum mismatch (truncated or altered file)"));
    }
    match body[MAGIC.len()] {
        VERSION => {}
        v => return Err(bad(&format!("unknown format version {v}"))),
    }
    postcard::from_bytes(&body[MAGIC.len() + 1..]).map_err(|e| bad(&e.to_string()))
}

/// Loads a backup into an empty store. Refuses a store that holds any entry,
/// so a restore never mixes with other state. Returns the number of entries.
pub async fn import(store: &dyn MetaStore, bytes: &[u8]) -> Result<usize> {
    let entries = decode(bytes)?;
    if !store.scan(&[], &[0xff; 16], 1).await?.is_empty() {
        return Err(MetaError::Engine(
            "metadata backup: the target store is not empty".into(),
        ));
    }
    for batch in entries.chunks(IMPORT_BATCH) {
        let mut txn = Txn::new();
        for (k, v) in batch {
            txn = txn.require_absent(k.clone()).put(k.clone(), v.clone());
        }
        store.commit(txn).await?;
    }
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemStore;

    #[tokio::test]
    async fn round_trip_and_refusals() {
        let src = MemStore::new();
        let mut txn = Txn::new();
        for i in 0..1200u32 {
            txn = txn.put(format!("k{i:05}").into_bytes(), i.to_be_bytes().to_vec());
        }
        src.commit(txn).await.unwrap();
        let file = encode(&src.snapshot().await.unwrap());
        let dst = MemStore::new();
        assert_eq!(import(&dst, &file).await.unwrap(), 1200);
        assert_eq!(dst.snapshot().await.unwrap(), src.snapshot().await.unwrap());
        // A second import into the now non-empty store is refused.
        assert!(import(&dst, &file).await.is_err());
        // A truncated or altered file is refused.
        assert!(decode(&file[..file.len() - 1]).is_err());
        let mut altered = file.clone();
        altered[20] ^= 1;
        assert!(decode(&altered).is_err());
        assert!(decode(b"something else entirely, long enough to pass the size check").is_err());
    }

    #[tokio::test]
    async fn sled_snapshot_sees_every_committed_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SledStore::open(dir.path()).unwrap();
        store
            .commit(
                Txn::new()
                    .put(b"a".to_vec(), b"1".to_vec())
                    .put(b"b".to_vec(), b"2".to_vec()),
            )
            .await
            .unwrap();
        let snap = store.snapshot().await.unwrap();
        assert_eq!(
            snap,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
    }
}
