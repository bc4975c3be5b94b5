//! Pure (no I/O) naming rules of the filesystem layout: which keys may be plain
//! paths, where the hashed side area and the temp area are, and how locators
//! and staged ids are checked before they are turned into paths.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Name of the reserved directory: at the root it holds the temp area, inside a
/// bucket directory it holds the hashed key area. No key component may use it.
pub(crate) const RESERVED: &str = ".cloudmux";
/// Directory under `<root>/.cloudmux/` holding staged data and deletes in flight.
pub(crate) const TMP: &str = "tmp";
/// Directory under `<root>/<bucket>/.cloudmux/` holding hashed keys.
pub(crate) const KEYS: &str = "keys";
/// Directory under `<root>/<bucket>/.cloudmux/` holding noncurrent versions.
pub(crate) const VERSIONS: &str = "versions";
/// Directory of the versions area holding the versions of keys that cannot
/// be paths there. No key maps there plainly: a key whose first component is
/// this name has its versions hashed too.
pub(crate) const VERSIONS_HASHED: &str = ".hashed";
/// Longest path component a key may map to (the common `NAME_MAX`).
pub(crate) const MAX_COMPONENT: usize = 255;
/// Longest absolute path a key may map to (kept below the common `PATH_MAX`).
pub(crate) const MAX_PATH: usize = 4000;

/// The relative components (bucket first) of the plain location of `key`, or
/// `None` when the key can never be a plain path whatever the tree holds.
pub(crate) fn plain_components<'a>(
    root: &Path,
    bucket: &'a str,
    key: &'a str,
) -> Option<Vec<&'a str>> {
    if key.is_empty() || key.starts_with('/') || key.ends_with('/') || key.contains('\0') {
        return None;
    }
    let total = root.as_os_str().len() + 1 + bucket.len() + 1 + key.len();
    if total > MAX_PATH {
        return None;
    }
    let mut components = Vec::with_capacity(key.split('/').count() + 1);
    components.push(bucket);
    for part in key.split('/') {
        if part.is_empty()
            || part == "."
            || part == ".."
            || part == RESERVED
            || part.len() > MAX_COMPONENT
        {
            return None;
        }
        components.push(part);
    }
    Some(components)
}

/// The hashed name of `key`: lowercase hex SHA-256 of its bytes.
pub(crate) fn hashed_name(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The relative components of the hashed location of `key` in `bucket`.
pub(crate) fn hashed_components(bucket: &str, key: &str) -> Vec<String> {
    vec![
        bucket.to_owned(),
        RESERVED.to_owned(),
        KEYS.to_owned(),
        hashed_name(key),
    ]
}

/// The relative components of the plain location of noncurrent version
/// `version` of `key` in `bucket`: `<bucket>/.cloudmux/versions/<key>/<version>`.
/// `None` when the key can never have its versions there whatever the tree
/// holds: it is no plain path at its native name either, its first
/// component is [`VERSIONS_HASHED`], or the path would be too long. The
/// version must have passed [`crate::check_version`].
pub(crate) fn version_plain_components(
    root: &Path,
    bucket: &str,
    key: &str,
    version: &str,
) -> Option<Vec<String>> {
    let plain = plain_components(root, bucket, key)?;
    if plain[1] == VERSIONS_HASHED {
        return None;
    }
    let total = root.as_os_str().len()
        + [bucket, RESERVED, VERSIONS, key, version]
            .iter()
            .map(|c| 1 + c.len())
            .sum::<usize>();
    if total > MAX_PATH {
        return None;
    }
    let mut components = vec![bucket.to_owned(), RESERVED.to_owned(), VERSIONS.to_owned()];
    components.extend(plain[1..].iter().map(|c| (*c).to_owned()));
    components.push(version.to_owned());
    Some(components)
}

/// The relative components of the hashed location of noncurrent version
/// `version` of `key` in `bucket`:
/// `<bucket>/.cloudmux/versions/.hashed/<sha256 of key>/<version>`.
pub(crate) fn version_hashed_components(bucket: &str, key: &str, version: &str) -> Vec<String> {
    vec![
        bucket.to_owned(),
        RESERVED.to_owned(),
        VERSIONS.to_owned(),
        VERSIONS_HASHED.to_owned(),
        hashed_name(key),
        version.to_owned(),
    ]
}

/// Checks that `bucket` is a single harmless path component that cannot collide
/// with the root's reserved directory.
pub(crate) fn check_bucket(bucket: &str) -> io::Result<()> {
    let ok = !bucket.is_empty()
        && bucket.len() <= MAX_COMPONENT
        && !bucket.starts_with('.')
        && !bucket.contains(['/', '\0']);
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("bad bucket directory name {bucket:?}")))
    }
}

/// Splits a locator into its components, refusing anything that could leave
/// the root: it must be `<bucket>/<one or more plain components>`.
pub(crate) fn locator_components(locator: &str) -> io::Result<Vec<String>> {
    let parts: Vec<&str> = locator.split('/').collect();
    let bad = parts.len() < 2
        || check_bucket(parts[0]).is_err()
        || parts.iter().any(|p| {
            p.is_empty() || *p == "." || *p == ".." || p.contains('\0') || p.len() > MAX_COMPONENT
        });
    if bad {
        return Err(invalid(format!("bad locator {locator:?}")));
    }
    Ok(parts.into_iter().map(str::to_owned).collect())
}

/// Prefix of the locator of staged data that an object record names until
/// the data is moved to its native name (see `Backend::staged_ref`):
/// `.staged/<id>/<bucket>/<key>`. No bucket directory starts with a dot, so
/// no published locator has it. The bucket and key let a reader find the
/// data at its native name once it has moved (the inode stays the same).
pub(crate) const STAGED_LOCATOR: &str = ".staged/";

/// The locator of staged data `id` of `bucket/key`.
pub(crate) fn staged_locator(id: &str, bucket: &str, key: &str) -> String {
    format!("{STAGED_LOCATOR}{id}/{bucket}/{key}")
}

/// The staged id, bucket and key a locator names, if it names staged data.
pub(crate) fn staged_locator_parts(locator: &str) -> Option<(&str, &str, &str)> {
    let rest = locator.strip_prefix(STAGED_LOCATOR)?;
    let (id, rest) = rest.split_once('/')?;
    let (bucket, key) = rest.split_once('/')?;
    Some((id, bucket, key))
}

/// Path of the temp area.
pub(crate) fn tmp_dir(root: &Path) -> PathBuf {
    root.join(RESERVED).join(TMP)
}

/// Number of subdirectories the temp area is split into, so that concurrent
/// stagings do not all queue on one directory's lock.
pub(crate) const TMP_SHARDS: u8 = 16;

/// Name of temp shard `n` (`00` to `0f`).
pub(crate) fn tmp_shard_name(n: u8) -> String {
    format!("{n:02x}")
}

/// A new staged id: `<shard>.<uuid>`, the file living at `tmp/<shard>/<uuid>`.
pub(crate) fn new_staged_id() -> String {
    let uuid = uuid::Uuid::new_v4();
    let shard = uuid.as_bytes()[0] % TMP_SHARDS;
    format!("{}.{}", tmp_shard_name(shard), uuid.hyphenated())
}

/// Path of the staged file named by `id`, refusing ids cloudmux never makes.
/// Ids without a shard (a bare uuid, as made before the temp area was split)
/// name a file directly in the temp area.
pub(crate) fn staged_path(root: &Path, id: &str) -> io::Result<PathBuf> {
    let (shard, uuid) = match id.split_once('.') {
        Some((shard, uuid)) => (Some(shard), uuid),
        None => (None, id),
    };
    let uuid_ok =
        matches!(uuid::Uuid::try_parse(uuid), Ok(p) if p.hyphenated().to_string() == uuid);
    let shard_ok = shard.is_none_or(|s| (0..TMP_SHARDS).any(|n| tmp_shard_name(n) == s));
    if !uuid_ok || !shard_ok {
        return Err(invalid(format!("bad staged id {id:?}")));
    }
    Ok(match shard {
        Some(shard) => tmp_dir(root).join(shard).join(uuid),
        None => tmp_dir(root).join(uuid),
    })
}

/// Joins relative components onto the root.
pub(crate) fn join<S: AsRef<str>>(root: &Path, components: &[S]) -> PathBuf {
    let mut path = root.to_path_buf();
    for component in components {
        path.push(component.as_ref());
    }
    path
}

/// An `InvalidInput` error.
pub(crate) fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_components_follow_the_rule() {
        let root = Path::new("/srv/data");
        assert_eq!(
            plain_components(root, "b", "photos/2024/a.jpg"),
            Some(vec!["b", "photos", "2024", "a.jpg"])
        );
        assert_eq!(plain_components(root, "b", "a\\b"), Some(vec!["b", "a\\b"]));
        assert_eq!(
            plain_components(root, "b", ".a/..b/..."),
            Some(vec!["b", ".a", "..b", "..."])
        );
        let refused = [
            "",
            "/",
            "/a",
            "a/",
            "a//b",
            ".",
            "..",
            "./a",
            "a/.",
            "a/../b",
            "a\0b",
            ".cloudmux",
            "x/.cloudmux/y",
        ];
        for key in refused {
            assert_eq!(plain_components(root, "b", key), None, "{key:?}");
        }
        let max = "c".repeat(MAX_COMPONENT);
        assert!(plain_components(root, "b", &max).is_some());
        assert!(plain_components(root, "b", &format!("{max}c")).is_none());
        let room = MAX_PATH - "/srv/data/b/".len();
        let fits = vec!["d".repeat(199); room / 200].join("/");
        let fits = format!("{fits}/{}", "e".repeat(room - fits.len() - 1));
        assert_eq!(fits.len(), room);
        assert!(plain_components(root, "b", &fits).is_some());
        assert!(plain_components(root, "b", &format!("{fits}e")).is_none());
    }

    #[test]
    fn hashed_names_are_hex_sha256() {
        assert_eq!(
            hashed_name(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hashed_components("b", "").join("/"),
            "b/.cloudmux/keys/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn versions_have_a_plain_and_a_hashed_place() {
        let root = Path::new("/srv/data");
        let v = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            version_plain_components(root, "b", "photos/a.jpg", v)
                .unwrap()
                .join("/"),
            format!("b/.cloudmux/versions/photos/a.jpg/{v}")
        );
        for key in [
            "",
            "a/",
            "a//b",
            "../x",
            ".cloudmux/x",
            ".hashed",
            ".hashed/x",
        ] {
            assert_eq!(version_plain_components(root, "b", key, v), None, "{key:?}");
        }
        assert!(version_plain_components(root, "b", "x/.hashed", v).is_some());
        let room = MAX_PATH - "/srv/data/b/.cloudmux/versions/".len() - 1 - v.len();
        let fits = vec!["d".repeat(199); room / 200].join("/");
        let fits = format!("{fits}/{}", "e".repeat(room - fits.len() - 1));
        assert_eq!(fits.len(), room);
        assert!(version_plain_components(root, "b", &fits, v).is_some());
        assert!(version_plain_components(root, "b", &format!("{fits}e"), v).is_none());
        let hashed = version_hashed_components("b", "", v).join("/");
        assert_eq!(
            hashed,
            format!(
                "b/.cloudmux/versions/.hashed/\
                 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/{v}"
            )
        );
        for locator in [
            hashed,
            format!("b/.cloudmux/versions/photos/a.jpg/{v}"),
            "b/.cloudmux/versions/k/null.0123456789abcdef".to_owned(),
        ] {
            assert!(locator_components(&locator).is_ok(), "{locator}");
        }
    }

    #[test]
    fn buckets_locators_and_staged_ids_are_checked() {
        for bucket in ["", ".", "..", ".cloudmux", ".b", "a/b", "a\0"] {
            assert!(check_bucket(bucket).is_err(), "{bucket:?}");
        }
        check_bucket("my-bucket.1").unwrap();
        for locator in [
            "",
            "b",
            "/b/k",
            "b/",
            "b//k",
            "b/../k",
            "b/./k",
            ".cloudmux/tmp/x",
            "b/k\0",
        ] {
            assert!(locator_components(locator).is_err(), "{locator:?}");
        }
        assert_eq!(locator_components("b/.cloudmux/keys/ab").unwrap().len(), 4);
        let root = Path::new("/r");
        let id = uuid::Uuid::new_v4().to_string();
        assert_eq!(staged_path(root, &id).unwrap(), tmp_dir(root).join(&id));
        let sharded = new_staged_id();
        let (shard, uuid) = sharded.split_once('.').unwrap();
        assert_eq!(
            staged_path(root, &sharded).unwrap(),
            tmp_dir(root).join(shard).join(uuid)
        );
        for bad in [
            id.to_uppercase(),
            id.replace('-', ""),
            format!("../{id}"),
            format!("{id}.del"),
            format!("10.{id}"),
            format!("../{id}"),
            format!("0f/{id}"),
            format!("0f.{id}.del"),
        ] {
            assert!(staged_path(root, &bad).is_err(), "{bad:?}");
        }
    }
}
