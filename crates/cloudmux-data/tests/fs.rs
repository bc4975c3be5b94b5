//! Tests of the filesystem backend through its public API.

use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use cloudmux_data::fs::{FsBackend, FsConfig};
use cloudmux_data::{
    Backend, BodyError, BodyStream, ByteRange, DataError, DataRef, NativeMeta, ObjectPath, Piece,
    Staged,
};
use futures_util::StreamExt;
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

mod common;
#[path = "common/suite.rs"]
mod suite;

/// A backend rooted at `<outer>/root`, where `<outer>` is a fresh temp dir
/// that must never hold anything but `root` (and what a test plants).
struct Env {
    _dir: TempDir,
    outer: PathBuf,
    fs: FsBackend,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let outer = dir.path().canonicalize().unwrap();
    let fs = FsBackend::open(&FsConfig {
        path: outer.join("root"),
    })
    .unwrap();
    Env {
        _dir: dir,
        outer,
        fs,
    }
}

impl Env {
    fn root(&self) -> &Path {
        self.fs.root()
    }

    fn outer_names(&self) -> Vec<String> {
        names(&self.outer)
    }

    /// Files in the temp area and its shard directories (as `shard/name`).
    fn tmp_names(&self) -> Vec<String> {
        let tmp = self.root().join(".cloudmux/tmp");
        let mut out = Vec::new();
        for name in names(&tmp) {
            let path = tmp.join(&name);
            if path.is_dir() {
                out.extend(names(&path).into_iter().map(|n| format!("{name}/{n}")));
            } else {
                out.push(name);
            }
        }
        out
    }

    async fn stage(&self, data: &[u8]) -> Staged {
        self.fs.stage(body(data)).await.unwrap()
    }

    async fn put(&self, bucket: &str, key: &str, data: &[u8]) -> DataRef {
        let staged = self.stage(data).await;
        self.fs
            .publish(
                staged,
                ObjectPath {
                    bucket,
                    key,
                    meta: NativeMeta::none(),
                },
            )
            .await
            .unwrap()
    }

    async fn get(&self, data: &DataRef, range: Option<ByteRange>) -> Vec<u8> {
        collect(self.fs.read(data, range).await.unwrap())
            .await
            .unwrap()
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A body stream yielding `data` in chunks of 1000 bytes.
fn body(data: &[u8]) -> BodyStream {
    let chunks: Vec<Result<Bytes, BodyError>> = data
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

async fn collect(mut stream: BodyStream) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn hashed_locator(bucket: &str, key: &str) -> String {
    format!(
        "{bucket}/.cloudmux/keys/{}",
        hex::encode(Sha256::digest(key.as_bytes()))
    )
}

fn range(first: u64, last: u64) -> Option<ByteRange> {
    Some(ByteRange { first, last })
}

#[test]
fn config_parses_and_rejects_unknown_fields() {
    let config: FsConfig = toml::from_str("path = \"/srv/data\"").unwrap();
    assert_eq!(config.path, PathBuf::from("/srv/data"));
    assert!(toml::from_str::<FsConfig>("path = \"/x\"\nbogus = 1").is_err());
}

#[tokio::test]
async fn round_trip_is_a_plain_file() {
    let env = env();
    let data = pattern(3000, 1);
    let dref = env.put("b", "photos/2024/a.jpg", &data).await;
    assert_eq!(dref.locator, "b/photos/2024/a.jpg");
    assert_eq!(dref.size, 3000);
    let path = env.root().join("b/photos/2024/a.jpg");
    assert_eq!(std::fs::read(&path).unwrap(), data);
    // The stamp is the inode number, tagged with the mtime in its top bits.
    assert_eq!(
        std::fs::metadata(&path).unwrap().ino(),
        dref.stamp & ((1 << 40) - 1)
    );
    assert_eq!(env.get(&dref, None).await, data);
    assert!(env.tmp_names().is_empty());
    assert_eq!(env.outer_names(), ["root"]);
}

#[tokio::test]
async fn empty_object_round_trips() {
    let env = env();
    let dref = env.put("b", "empty", b"").await;
    assert_eq!(dref.size, 0);
    assert!(env.get(&dref, None).await.is_empty());
}

#[tokio::test]
async fn ranges_stream_exactly_the_range() {
    let env = env();
    let data = pattern(2_700_000, 7);
    let dref = env.put("b", "big", &data).await;
    for (first, last) in [
        (0, 0),
        (5, 300_000),
        (262_143, 524_288),
        (1_048_575, 2_097_152),
        (2_699_999, 2_699_999),
    ] {
        let got = env.get(&dref, range(first, last)).await;
        assert_eq!(got, &data[first as usize..=last as usize], "{first}-{last}");
    }
    let chunks: Vec<usize> = env
        .fs
        .read(&dref, None)
        .await
        .unwrap()
        .map(|c| c.unwrap().len())
        .collect()
        .await;
    assert!(chunks.len() >= 3, "{chunks:?}");
    assert!(chunks.iter().all(|&n| n <= 1024 * 1024), "{chunks:?}");
    assert_eq!(chunks.iter().sum::<usize>(), data.len());
    for bad in [range(10, 9), range(0, 2_700_000)] {
        assert!(matches!(
            env.fs.read(&dref, bad).await,
            Err(DataError::Io(_))
        ));
    }
}

#[tokio::test]
async fn overwrite_keeps_the_path_and_old_delete_is_a_no_op() {
    let env = env();
    let old = env.put("b", "k", b"one").await;
    let new = env.put("b", "k", b"two!").await;
    assert_eq!(old.locator, new.locator);
    assert_ne!(old.stamp, new.stamp);
    assert!(matches!(
        env.fs.read(&old, None).await,
        Err(DataError::Stale(_))
    ));
    env.fs.delete(&old).await.unwrap();
    assert_eq!(env.get(&new, None).await, b"two!");
    env.fs.delete(&new).await.unwrap();
    assert!(matches!(
        env.fs.read(&new, None).await,
        Err(DataError::NotFound(_))
    ));
    env.fs.delete(&new).await.unwrap();
}

#[tokio::test]
async fn delete_removes_empty_directories_up_to_the_bucket() {
    let env = env();
    let deep = env.put("b", "a/b/c/d", b"deep").await;
    let side = env.put("b", "a/x", b"side").await;
    env.fs.delete(&deep).await.unwrap();
    assert!(!env.root().join("b/a/b").exists());
    assert_eq!(names(&env.root().join("b/a")), ["x"]);
    env.fs.delete(&side).await.unwrap();
    assert!(!env.root().join("b/a").exists());
    assert!(env.root().join("b").is_dir());
    let hashed = env.put("b", "a//b", b"h").await;
    env.fs.delete(&hashed).await.unwrap();
    assert!(names(&env.root().join("b")).is_empty());
    assert!(env.tmp_names().is_empty());
}

#[tokio::test]
async fn unmappable_keys_go_to_the_hashed_area() {
    let env = env();
    env.put("b", "dir/child", b"child").await;
    env.put("b", "file", b"file").await;
    let long_component = "c".repeat(256);
    let long_path = vec!["p".repeat(250); 17].join("/");
    let keys = [
        "dir",
        "file/child",
        "trailing/",
        "a//b",
        "./a",
        "a/./b",
        "../x",
        "a/..",
        "/abs",
        "a\0b",
        ".cloudmux",
        "x/.cloudmux/y",
        ".cloudmux/tmp/x",
        "",
        long_component.as_str(),
        long_path.as_str(),
    ];
    let mut refs = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let data = pattern(100 + i, i as u8);
        let dref = env.put("b", key, &data).await;
        assert_eq!(dref.locator, hashed_locator("b", key), "key {key:?}");
        refs.push((dref, data));
    }
    for (dref, data) in &refs {
        assert_eq!(&env.get(dref, None).await, data);
    }
    let ok_component = "c".repeat(255);
    let dref = env.put("b", &ok_component, b"fits").await;
    assert_eq!(dref.locator, format!("b/{ok_component}"));
    assert_eq!(env.outer_names(), ["root"]);
    assert_eq!(names(env.root()), [".cloudmux", "b"]);
}

#[tokio::test]
async fn file_then_child_and_child_then_file_are_both_readable() {
    let env = env();
    let a = env.put("b", "a", b"a").await;
    let ab = env.put("b", "a/b", b"a/b").await;
    assert_eq!(a.locator, "b/a");
    assert_eq!(ab.locator, hashed_locator("b", "a/b"));
    assert_eq!(env.get(&a, None).await, b"a");
    assert_eq!(env.get(&ab, None).await, b"a/b");

    let xy = env.put("b", "x/y", b"x/y").await;
    let x = env.put("b", "x", b"x").await;
    assert_eq!(xy.locator, "b/x/y");
    assert_eq!(x.locator, hashed_locator("b", "x"));
    assert_eq!(env.get(&xy, None).await, b"x/y");
    assert_eq!(env.get(&x, None).await, b"x");

    env.fs.delete(&xy).await.unwrap();
    let x2 = env.put("b", "x", b"x again").await;
    assert_eq!(x2.locator, "b/x");
    env.fs.delete(&x).await.unwrap();
    assert_eq!(env.get(&x2, None).await, b"x again");
}

#[tokio::test]
async fn hostile_keys_stay_inside_the_root() {
    let env = env();
    let outside = env.outer.join("outside");
    let keys = [
        "../x".to_owned(),
        "a/../../x".to_owned(),
        "../../../../../../../../tmp/x".to_owned(),
        format!("{}/x", outside.display()),
        "a\0/../x".to_owned(),
        "..\0".to_owned(),
        "x".repeat(300),
        format!("a/{}/b", "y".repeat(300)),
        ".cloudmux/tmp/x".to_owned(),
        "d/.cloudmux/keys/x".to_owned(),
        "..".to_owned(),
        ".".to_owned(),
        "/".to_owned(),
    ];
    for key in &keys {
        let dref = env.put("b", key, key.as_bytes()).await;
        assert!(
            dref.locator.starts_with("b/.cloudmux/keys/"),
            "{key:?} -> {}",
            dref.locator
        );
        assert_eq!(env.get(&dref, None).await, key.as_bytes());
        assert_eq!(env.outer_names(), ["root"], "after {key:?}");
    }
    let passwd = std::fs::read("/etc/passwd").ok();
    let dref = env.put("b", "/etc/passwd", b"not a passwd file").await;
    assert_eq!(dref.locator, hashed_locator("b", "/etc/passwd"));
    assert_eq!(std::fs::read("/etc/passwd").ok(), passwd);
    assert_eq!(names(env.root()), [".cloudmux", "b"]);
    assert_eq!(names(&env.root().join("b")), [".cloudmux"]);
    assert!(env.tmp_names().is_empty());
}

#[tokio::test]
async fn bad_bucket_names_and_locators_are_refused() {
    let env = env();
    for bucket in ["", ".", "..", ".cloudmux", "a/b", "a\0"] {
        let staged = env.stage(b"x").await;
        let result = env
            .fs
            .publish(
                staged.clone(),
                ObjectPath {
                    bucket,
                    key: "k",
                    meta: NativeMeta::none(),
                },
            )
            .await;
        assert!(matches!(result, Err(DataError::Io(_))), "{bucket:?}");
        env.fs.discard(&staged).await.unwrap();
    }
    let good = env.put("b", "k", b"x").await;
    for locator in [
        "b/../../x",
        "/etc/passwd",
        "b",
        "../b/k",
        "b//k",
        ".cloudmux/tmp/x",
    ] {
        let dref = DataRef {
            locator: locator.to_owned(),
            ..good.clone()
        };
        assert!(env.fs.read(&dref, None).await.is_err(), "{locator:?}");
        assert!(env.fs.delete(&dref).await.is_err(), "{locator:?}");
    }
    let bad_staged = Staged {
        id: "../../b/k".to_owned(),
        size: 1,
        stamp: 0,
    };
    assert!(env.fs.read_staged(&bad_staged, None).await.is_err());
    assert!(env.fs.discard(&bad_staged).await.is_err());
    assert_eq!(env.get(&good, None).await, b"x");
    assert_eq!(env.outer_names(), ["root"]);
}

#[tokio::test]
async fn planted_symlinks_are_never_followed() {
    let env = env();
    let outside = env.outer.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"secret").unwrap();
    env.fs.create_bucket_dir("b").await.unwrap();
    symlink(&outside, env.root().join("b/evil")).unwrap();
    symlink(outside.join("secret"), env.root().join("b/link")).unwrap();

    let through_dir = env.put("b", "evil/x", b"through dir").await;
    assert_eq!(through_dir.locator, hashed_locator("b", "evil/x"));
    let deeper = env.put("b", "evil/new/x", b"deeper").await;
    assert_eq!(deeper.locator, hashed_locator("b", "evil/new/x"));
    let over_link = env.put("b", "link", b"over link").await;
    assert_eq!(over_link.locator, hashed_locator("b", "link"));
    let into_secret = env.put("b", "evil/secret", b"overwrite").await;
    assert_eq!(into_secret.locator, hashed_locator("b", "evil/secret"));
    assert_eq!(env.get(&through_dir, None).await, b"through dir");
    assert_eq!(env.get(&over_link, None).await, b"over link");
    assert_eq!(names(&outside), ["secret"]);
    assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret");

    // A published file replaced by a symlink reads as stale and is not deleted.
    let victim = env.put("b", "victim", b"victim").await;
    let victim_path = env.root().join("b/victim");
    std::fs::remove_file(&victim_path).unwrap();
    symlink(outside.join("secret"), &victim_path).unwrap();
    assert!(matches!(
        env.fs.read(&victim, None).await,
        Err(DataError::Stale(_))
    ));
    env.fs.delete(&victim).await.unwrap();
    assert!(std::fs::symlink_metadata(&victim_path).is_ok());
    assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret");

    // A directory on the way replaced by a symlink: reads fail, deletes skip.
    let inner = env.put("b", "dir/inner", b"inner").await;
    std::fs::rename(env.root().join("b/dir"), env.outer.join("moved")).unwrap();
    symlink(env.outer.join("moved"), env.root().join("b/dir")).unwrap();
    assert!(env.fs.read(&inner, None).await.is_err());
    env.fs.delete(&inner).await.unwrap();
    assert_eq!(
        std::fs::read(env.outer.join("moved/inner")).unwrap(),
        b"inner"
    );

    // A bucket directory that is a symlink makes publishing fail.
    symlink(&outside, env.root().join("c")).unwrap();
    let staged = env.stage(b"x").await;
    assert!(env
        .fs
        .publish(
            staged.clone(),
            ObjectPath {
                bucket: "c",
                key: "k",
                meta: NativeMeta::none()
            }
        )
        .await
        .is_err());
    env.fs.discard(&staged).await.unwrap();
    assert_eq!(names(&outside), ["secret"]);
    assert_eq!(env.outer_names(), ["moved", "outside", "root"]);
}

#[tokio::test]
async fn a_failing_stream_leaves_no_temp_file() {
    let env = env();
    let chunks: Vec<Result<Bytes, BodyError>> = vec![
        Ok(Bytes::from(vec![1u8; 100_000])),
        Ok(Bytes::from(vec![2u8; 2_000_000])),
        Err(BodyError::BadDigest),
    ];
    let result = env
        .fs
        .stage(Box::pin(futures_util::stream::iter(chunks)))
        .await;
    assert!(matches!(result, Err(DataError::Body(BodyError::BadDigest))));
    assert!(env.tmp_names().is_empty());
}

#[tokio::test]
async fn a_dropped_stage_leaves_no_temp_file() {
    let env = env();
    let stream = futures_util::stream::iter(vec![Ok(Bytes::from_static(b"start"))])
        .chain(futures_util::stream::pending());
    let staging = env.fs.stage(Box::pin(stream));
    assert!(tokio::time::timeout(Duration::from_millis(100), staging)
        .await
        .is_err());
    for _ in 0..200 {
        if env.tmp_names().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("temp file left behind: {:?}", env.tmp_names());
}

#[tokio::test]
async fn replaced_or_missing_files_are_detected() {
    let env = env();
    let dref = env.put("b", "k", b"original").await;
    let path = env.root().join("b/k");
    let by_hand = env.root().join("b/by-hand");
    std::fs::write(&by_hand, b"replacement").unwrap();
    std::fs::rename(&by_hand, &path).unwrap();
    assert!(matches!(
        env.fs.read(&dref, None).await,
        Err(DataError::Stale(_))
    ));
    env.fs.delete(&dref).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"replacement");

    let edited = env.put("b", "e", b"12345").await;
    std::fs::write(env.root().join("b/e"), b"123").unwrap();
    assert!(matches!(
        env.fs.read(&edited, None).await,
        Err(DataError::Stale(_))
    ));

    let gone = env.put("b", "gone", b"x").await;
    std::fs::remove_file(env.root().join("b/gone")).unwrap();
    assert!(matches!(
        env.fs.read(&gone, None).await,
        Err(DataError::NotFound(_))
    ));
}

#[tokio::test]
async fn staged_data_reads_and_discards() {
    let env = env();
    let data = pattern(5000, 3);
    let staged = env.stage(&data).await;
    assert_eq!(staged.size, 5000);
    let all = collect(env.fs.read_staged(&staged, None).await.unwrap())
        .await
        .unwrap();
    assert_eq!(all, data);
    let part = collect(env.fs.read_staged(&staged, range(10, 19)).await.unwrap())
        .await
        .unwrap();
    assert_eq!(part, &data[10..20]);
    env.fs.discard(&staged).await.unwrap();
    env.fs.discard(&staged).await.unwrap();
    assert!(matches!(
        env.fs.read_staged(&staged, None).await,
        Err(DataError::NotFound(_))
    ));
    assert!(matches!(
        env.fs
            .publish(
                staged,
                ObjectPath {
                    bucket: "b",
                    key: "k",
                    meta: NativeMeta::none()
                }
            )
            .await,
        Err(DataError::NotFound(_))
    ));
    assert!(env.tmp_names().is_empty());
}

#[tokio::test]
async fn assemble_ten_thousand_pieces() {
    let env = env();
    let mut parts = Vec::new();
    for i in 0..10 {
        let data = pattern(i * 37, i as u8);
        parts.push((env.stage(&data).await, data));
    }
    let published_data = pattern(1000, 99);
    let published = env.put("b", "src", &published_data).await;
    let mut pieces = Vec::new();
    let mut expected = Vec::new();
    for i in 0..10_000usize {
        if i % 7 == 0 {
            let first = (i % 900) as u64;
            let r = ByteRange {
                first,
                last: first + 50,
            };
            pieces.push(Piece::Published(published.clone(), Some(r)));
            expected.extend_from_slice(&published_data[first as usize..=first as usize + 50]);
        } else {
            let (staged, data) = &parts[i % parts.len()];
            pieces.push(Piece::Staged(staged.clone()));
            expected.extend_from_slice(data);
        }
    }
    pieces.push(Piece::Published(published.clone(), None));
    expected.extend_from_slice(&published_data);
    let assembled = env.fs.assemble(pieces).await.unwrap();
    assert_eq!(assembled.size, expected.len() as u64);
    let got = collect(env.fs.read_staged(&assembled, None).await.unwrap())
        .await
        .unwrap();
    assert_eq!(got, expected);

    let before = env.tmp_names();
    let missing = Staged {
        id: uuid::Uuid::new_v4().to_string(),
        size: 3,
        stamp: 0,
    };
    let result = env
        .fs
        .assemble(vec![
            Piece::Staged(parts[1].0.clone()),
            Piece::Staged(missing),
        ])
        .await;
    assert!(matches!(result, Err(DataError::NotFound(_))));
    assert_eq!(env.tmp_names(), before);

    let dref = env
        .fs
        .publish(
            assembled,
            ObjectPath {
                bucket: "b",
                key: "mpu",
                meta: NativeMeta::none(),
            },
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(env.root().join("b/mpu")).unwrap(), expected);
    assert_eq!(env.get(&dref, range(5, 9)).await, &expected[5..10]);
}

#[tokio::test]
async fn bucket_directories_are_created_and_removed() {
    let env = env();
    env.fs.create_bucket_dir("b").await.unwrap();
    env.fs.create_bucket_dir("b").await.unwrap();
    assert!(env.root().join("b").is_dir());
    let plain = env.put("b", "x/y/z", b"1").await;
    let hashed = env.put("b", "x/", b"2").await;
    assert!(matches!(
        env.fs.remove_bucket_dir("b").await,
        Err(DataError::Io(e)) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty
    ));
    env.fs.delete(&plain).await.unwrap();
    env.fs.delete(&hashed).await.unwrap();
    std::fs::create_dir_all(env.root().join("b/left/over")).unwrap();
    std::fs::create_dir_all(env.root().join("b/.cloudmux/keys")).unwrap();
    env.fs.remove_bucket_dir("b").await.unwrap();
    assert!(!env.root().join("b").exists());
    env.fs.remove_bucket_dir("b").await.unwrap();
    assert!(env.fs.create_bucket_dir("..").await.is_err());

    Backend::create_bucket(&env.fs, "c").await.unwrap();
    assert!(env.root().join("c").is_dir());
    Backend::remove_bucket(&env.fs, "c").await.unwrap();
    assert!(!env.root().join("c").exists());
}

#[tokio::test]
async fn locate_finds_published_data_by_its_staged_handle() {
    let env = env();
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(async { env.tmp_names() })
        };
    suite::locate_published(&env.fs, &list).await;
}

#[tokio::test]
async fn list_staged_shows_garbage_collection_the_staging_area() {
    let env = env();
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            Box::pin(async { env.tmp_names() })
        };
    suite::staged_listing_for_gc(&env.fs, &list).await;
}

#[tokio::test]
async fn open_removes_unfinished_deletes_and_keeps_staged_data() {
    let env = env();
    let staged = env.stage(b"keep me").await;
    std::fs::write(env.root().join(".cloudmux/tmp/leftover.del"), b"x").unwrap();
    let reopened = FsBackend::open(&FsConfig {
        path: env.outer.join("root"),
    })
    .unwrap();
    assert_eq!(env.tmp_names(), [staged.id.replacen('.', "/", 1)]);
    let got = collect(reopened.read_staged(&staged, None).await.unwrap())
        .await
        .unwrap();
    assert_eq!(got, b"keep me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conflicting_publishes_all_read_back() {
    let env = std::sync::Arc::new(env());
    let mut tasks = Vec::new();
    for i in 0..40 {
        for key in [format!("k{i}"), format!("k{i}/x"), format!("k{i}/x/y")] {
            let env = env.clone();
            tasks.push(tokio::spawn(async move {
                let dref = env.put("b", &key, key.as_bytes()).await;
                (key, dref)
            }));
        }
    }
    for task in tasks {
        let (key, dref) = task.await.unwrap();
        assert_eq!(env.get(&dref, None).await, key.as_bytes());
    }
    assert!(env.tmp_names().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_racing_publish_never_loses_the_new_data() {
    let env = std::sync::Arc::new(env());
    for i in 0..40 {
        let old = env.put("b", "r/k", b"old").await;
        let sibling = env.put("b", &format!("d{i}/a"), b"a").await;
        let staged = env.stage(b"new").await;
        let staged_sibling = env.stage(b"b").await;
        let sibling_key = format!("d{i}/b");
        let (deleted, published, deleted_sibling, published_sibling) = tokio::join!(
            env.fs.delete(&old),
            env.fs.publish(
                staged,
                ObjectPath {
                    bucket: "b",
                    key: "r/k",
                    meta: NativeMeta::none()
                }
            ),
            env.fs.delete(&sibling),
            env.fs.publish(
                staged_sibling,
                ObjectPath {
                    bucket: "b",
                    key: &sibling_key,
                    meta: NativeMeta::none(),
                }
            ),
        );
        deleted.unwrap();
        deleted_sibling.unwrap();
        assert_eq!(env.get(&published.unwrap(), None).await, b"new");
        assert_eq!(env.get(&published_sibling.unwrap(), None).await, b"b");
    }
    assert!(env.tmp_names().is_empty());
}

/// Pieces of nasty keys.
fn nasty_key() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("/".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("a".to_owned()),
        Just("\0".to_owned()),
        Just("\\".to_owned()),
        Just(".cloudmux".to_owned()),
        Just("a".repeat(200)),
        Just("/".repeat(5)),
        Just(".".repeat(300)),
        Just("a".repeat(300)),
    ];
    proptest::collection::vec(token, 1..10).prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn nasty_keys_round_trip_inside_the_root(
        keys in proptest::collection::vec(nasty_key(), 1..8)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let env = env();
            let mut latest: std::collections::HashMap<String, (DataRef, Vec<u8>)> =
                Default::default();
            for (i, key) in keys.iter().enumerate() {
                let data = pattern(i * 10 + 1, i as u8);
                let dref = env.put("b", key, &data).await;
                if dref.locator != hashed_locator("b", key) {
                    assert_eq!(dref.locator, format!("b/{key}"));
                    assert_eq!(std::fs::read(env.root().join(&dref.locator)).unwrap(), data);
                }
                if let Some((old, _)) = latest.insert(key.clone(), (dref, data)) {
                    env.fs.delete(&old).await.unwrap();
                }
            }
            for (dref, data) in latest.values() {
                assert_eq!(&env.get(dref, None).await, data);
            }
            assert_eq!(env.outer_names(), ["root"]);
            for (dref, _) in latest.values() {
                env.fs.delete(dref).await.unwrap();
            }
            env.fs.remove_bucket_dir("b").await.unwrap();
            assert_eq!(names(env.root()), [".cloudmux"]);
            assert!(env.tmp_names().is_empty());
        });
    }
}

/// The version locator the filesystem layout documents for the keys the
/// tests use: the plain place unless the key is no plain path (or starts
/// with `.hashed`), then the hashed one.
fn version_locator(bucket: &str, key: &str, version: &str) -> String {
    let plain = key
        .split('/')
        .all(|c| !c.is_empty() && c != "." && c != ".." && c != ".cloudmux")
        && !key.starts_with(".hashed/")
        && key != ".hashed";
    if plain {
        format!("{bucket}/.cloudmux/versions/{key}/{version}")
    } else {
        hashed_version(bucket, key, version)
    }
}

/// The hashed place of a version.
fn hashed_version(bucket: &str, key: &str, version: &str) -> String {
    format!(
        "{bucket}/.cloudmux/versions/.hashed/{}/{version}",
        hex::encode(Sha256::digest(key.as_bytes()))
    )
}

/// Every file under `dir`, as paths relative to `base` (none when `dir` is
/// missing).
fn files_under(base: &Path, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(files_under(base, &path));
        } else {
            let rel = path.strip_prefix(base).unwrap();
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    out
}

const V1: &str = "0123456789abcdef0123456789abcdef";
const V2: &str = "fedcba9876543210fedcba9876543210";

fn at<'a>(bucket: &'a str, key: &'a str) -> ObjectPath<'a> {
    ObjectPath {
        bucket,
        key,
        meta: NativeMeta::none(),
    }
}

#[tokio::test]
async fn noncurrent_versions_scenario() {
    let env = env();
    let root = env.root().to_path_buf();
    let list =
        || -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send + '_>> {
            let root = root.clone();
            Box::pin(async move { files_under(&root, &root.join("ver/.cloudmux/versions")) })
        };
    suite::keep_versions(&env.fs, &version_locator, &list).await;
    assert!(env.tmp_names().is_empty());
    assert_eq!(env.outer_names(), ["root"]);
}

#[tokio::test]
async fn a_kept_version_is_a_hard_link_and_deletes_remove_one_name() {
    let env = env();
    let data = pattern(700_000, 3);
    let d = env.put("b", "dir/k", &data).await;
    let native = env.root().join("b/dir/k");
    let k = env.fs.keep_version(&d, at("b", "dir/k"), V1).await.unwrap();
    assert_eq!(k.locator, format!("b/.cloudmux/versions/dir/k/{V1}"));
    assert_eq!(k.stamp, d.stamp);
    let copy = env.root().join(&k.locator);
    let (n, c) = (
        std::fs::metadata(&native).unwrap(),
        std::fs::metadata(&copy).unwrap(),
    );
    assert_eq!(n.ino(), c.ino(), "the copy is not a hard link");
    assert_eq!((n.nlink(), c.nlink()), (2, 2));

    // Replacing the object renames a new file over the native name: the
    // copy keeps the old inode, now with one link.
    let d2 = env.put("b", "dir/k", b"newer").await;
    assert_ne!(std::fs::metadata(&native).unwrap().ino(), c.ino());
    assert_eq!(std::fs::metadata(&copy).unwrap().nlink(), 1);
    assert_eq!(env.get(&k, None).await, data);

    // Both names of one inode: deleting either removes that name only.
    let k2 = env
        .fs
        .keep_version(&d2, at("b", "dir/k"), V2)
        .await
        .unwrap();
    env.fs.delete(&d2).await.unwrap();
    assert!(!native.exists());
    assert_eq!(env.get(&k2, None).await, b"newer");
    assert_eq!(
        std::fs::metadata(env.root().join(&k2.locator))
            .unwrap()
            .nlink(),
        1
    );
    let d3 = env.put("b", "dir/k", b"third").await;
    let k3 = env
        .fs
        .keep_version(&d3, at("b", "dir/k"), "null.0123456789abcdef")
        .await
        .unwrap();
    env.fs.delete(&k3).await.unwrap();
    assert!(!env.root().join(&k3.locator).exists());
    assert_eq!(env.get(&d3, None).await, b"third");
    assert_eq!(std::fs::metadata(&native).unwrap().nlink(), 1);
    // Deleting the last version removes its directories up to the bucket.
    env.fs.delete(&k).await.unwrap();
    env.fs.delete(&k2).await.unwrap();
    env.fs.delete(&d3).await.unwrap();
    assert_eq!(names(&env.root().join("b")), Vec::<String>::new());
}

#[tokio::test]
async fn conflicting_version_directories_fall_back_to_the_hashed_area() {
    let env = env();
    // Version V1 of `a` is the file versions/a/V1, so the versions of the
    // key `a/V1` cannot live under the directory versions/a/V1/.
    let a = env.put("b", "a", b"a").await;
    let ka = env.fs.keep_version(&a, at("b", "a"), V1).await.unwrap();
    assert_eq!(ka.locator, format!("b/.cloudmux/versions/a/{V1}"));
    let child_key = format!("a/{V1}");
    let child = env.put("b", &child_key, b"child").await;
    let kc = env
        .fs
        .keep_version(&child, at("b", &child_key), V2)
        .await
        .unwrap();
    assert_eq!(kc.locator, hashed_version("b", &child_key, V2));
    // And conversely: the directory versions/c/V1/ blocks version V1 of `c`.
    let c_child_key = format!("c/{V1}");
    let c_child = env.put("b", &c_child_key, b"c child").await;
    let kcc = env
        .fs
        .keep_version(&c_child, at("b", &c_child_key), V2)
        .await
        .unwrap();
    assert_eq!(kcc.locator, format!("b/.cloudmux/versions/c/{V1}/{V2}"));
    let c = env.put("b", "c", b"c").await;
    let kc2 = env.fs.keep_version(&c, at("b", "c"), V1).await.unwrap();
    assert_eq!(kc2.locator, hashed_version("b", "c", V1));
    // A key starting with `.hashed` never reaches the hashed area's names.
    let dotted = env.put("b", ".hashed/x", b"dotted").await;
    let kd = env
        .fs
        .keep_version(&dotted, at("b", ".hashed/x"), V1)
        .await
        .unwrap();
    assert_eq!(kd.locator, version_locator("b", ".hashed/x", V1));
    assert!(kd.locator.contains("/.hashed/"));

    for (k, want, key) in [
        (&ka, &b"a"[..], "a"),
        (&kc, b"child", child_key.as_str()),
        (&kcc, b"c child", c_child_key.as_str()),
        (&kc2, b"c", "c"),
        (&kd, b"dotted", ".hashed/x"),
    ] {
        assert_eq!(env.get(k, None).await, want, "{key}");
        let version = k.locator.rsplit('/').next().unwrap();
        let found = env.fs.locate_version(at("b", key), version).await.unwrap();
        assert_eq!(found.as_ref(), Some(k), "{key}");
        // Idempotent where it landed, even though the plain place is free
        // now for some of them.
        let data = match key {
            "a" => &a,
            "c" => &c,
            ".hashed/x" => &dotted,
            k if k == child_key => &child,
            _ => &c_child,
        };
        let again = env
            .fs
            .keep_version(data, at("b", key), version)
            .await
            .unwrap();
        assert_eq!(&again, k, "{key}");
    }
    assert_eq!(env.outer_names(), ["root"]);
}

#[tokio::test]
async fn staged_data_named_by_its_staged_locator_can_be_kept() {
    let env = env();
    let staged = env.stage(b"staged bytes").await;
    env.fs.persist(&staged).await.unwrap();
    let named = env
        .fs
        .staged_ref(&staged, at("b", "k"))
        .await
        .unwrap()
        .unwrap();
    assert!(named.locator.starts_with(".staged/"), "{}", named.locator);
    let k = env.fs.keep_version(&named, at("b", "k"), V1).await.unwrap();
    assert_eq!(k.locator, format!("b/.cloudmux/versions/k/{V1}"));
    let tmp_ino = std::fs::metadata(
        env.root()
            .join(".cloudmux/tmp")
            .join(staged.id.replacen('.', "/", 1)),
    )
    .unwrap()
    .ino();
    assert_eq!(
        std::fs::metadata(env.root().join(&k.locator))
            .unwrap()
            .ino(),
        tmp_ino
    );
    assert_eq!(env.get(&k, None).await, b"staged bytes");

    // The data moves to its native name: the record's staged locator and the
    // copy both still read it, and keeping it again answers the same copy.
    let placed = env.fs.publish(staged, at("b", "k")).await.unwrap();
    assert_eq!(placed.locator, "b/k");
    assert_eq!(env.get(&named, None).await, b"staged bytes");
    assert_eq!(env.get(&k, None).await, b"staged bytes");
    assert_eq!(
        env.fs.keep_version(&named, at("b", "k"), V1).await.unwrap(),
        k
    );
    assert_eq!(
        env.fs
            .keep_version(&placed, at("b", "k"), V1)
            .await
            .unwrap(),
        k
    );
    assert!(env.tmp_names().is_empty());

    // A staged locator whose data is gone everywhere cannot be kept.
    env.fs.delete(&placed).await.unwrap();
    assert!(matches!(
        env.fs.keep_version(&named, at("b", "k"), V2).await,
        Err(DataError::NotFound(_))
    ));
    assert_eq!(env.get(&k, None).await, b"staged bytes");
}

#[tokio::test]
async fn other_bytes_at_a_version_name_are_replaced_and_symlinks_not_followed() {
    let env = env();
    let d = env.put("b", "k", b"current").await;
    let place = env.root().join(format!("b/.cloudmux/versions/k/{V1}"));
    std::fs::create_dir_all(place.parent().unwrap()).unwrap();
    std::fs::write(&place, b"leftover").unwrap();
    assert_eq!(
        env.fs
            .locate_version(at("b", "k"), V1)
            .await
            .unwrap()
            .map(|f| f.size),
        Some(8),
        "locate_version answers what lies at the name"
    );
    let k = env.fs.keep_version(&d, at("b", "k"), V1).await.unwrap();
    assert_eq!(k.locator, format!("b/.cloudmux/versions/k/{V1}"));
    assert_eq!(std::fs::read(&place).unwrap(), b"current");
    assert_eq!(
        std::fs::metadata(&place).unwrap().ino(),
        std::fs::metadata(env.root().join("b/k")).unwrap().ino()
    );

    // A symlink planted where a version directory belongs sends the version
    // to the hashed area; nothing is written through it.
    let outside = env.outer.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let e = env.put("b", "s/x", b"sym").await;
    std::fs::create_dir_all(env.root().join("b/.cloudmux/versions")).unwrap();
    symlink(&outside, env.root().join("b/.cloudmux/versions/s")).unwrap();
    let ks = env.fs.keep_version(&e, at("b", "s/x"), V1).await.unwrap();
    assert!(
        ks.locator.starts_with("b/.cloudmux/versions/.hashed/"),
        "{}",
        ks.locator
    );
    assert_eq!(names(&outside), Vec::<String>::new());
    assert_eq!(
        env.fs.locate_version(at("b", "s/x"), V1).await.unwrap(),
        Some(ks.clone())
    );
    assert_eq!(env.get(&ks, None).await, b"sym");
    // A symlink at the native name is not data to keep.
    std::fs::write(outside.join("secret"), b"secret").unwrap();
    std::fs::remove_file(env.root().join("b/s/x")).unwrap();
    symlink(outside.join("secret"), env.root().join("b/s/x")).unwrap();
    let linked = DataRef {
        locator: "b/s/x".into(),
        size: 6,
        stamp: std::fs::metadata(outside.join("secret")).unwrap().ino(),
    };
    assert!(matches!(
        env.fs.keep_version(&linked, at("b", "s/x"), V2).await,
        Err(DataError::Stale(_))
    ));
    assert_eq!(
        env.fs.locate_version(at("b", "s/x"), V2).await.unwrap(),
        None
    );
}

/// The kept version is durable only through the group commit: a failing
/// sync fails the call.
#[cfg(feature = "failpoints")]
#[tokio::test]
async fn keeping_a_version_waits_for_the_group_commit() {
    let env = env();
    let d = env.put("b", "k", b"bytes").await;
    fail::cfg("fs.sync", "return").unwrap();
    let r = env.fs.keep_version(&d, at("b", "k"), V1).await;
    fail::remove("fs.sync");
    assert!(matches!(r, Err(DataError::Io(_))), "{r:?}");
    let k = env.fs.keep_version(&d, at("b", "k"), V1).await.unwrap();
    assert_eq!(env.get(&k, None).await, b"bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeping_a_version_racing_an_overwrite_never_keeps_the_new_data() {
    let env = std::sync::Arc::new(env());
    let mut kept = 0;
    for i in 0..40 {
        let version = format!("{i:032x}");
        let old = env.put("b", "r/k", b"old").await;
        let staged = env.stage(b"new").await;
        let (copy, published) = tokio::join!(
            env.fs.keep_version(&old, at("b", "r/k"), &version),
            env.fs.publish(staged, at("b", "r/k")),
        );
        assert_eq!(env.get(&published.unwrap(), None).await, b"new");
        match copy {
            Ok(k) => {
                assert_eq!(env.get(&k, None).await, b"old");
                kept += 1;
            }
            Err(DataError::Stale(_)) => assert_eq!(
                env.fs
                    .locate_version(at("b", "r/k"), &version)
                    .await
                    .unwrap(),
                None,
                "a refused keep left a link"
            ),
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(kept > 0, "no keep won a race");
    assert!(env.tmp_names().is_empty());
}
