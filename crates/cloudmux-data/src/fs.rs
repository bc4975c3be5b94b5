//! The local filesystem backend: objects are plain files under a root
//! directory, readable with ordinary file tools.
//!
//! # Layout
//!
//! ```text
//! <root>/.cloudmux/tmp/<uuid>            staged data (uploads in flight, multipart parts)
//! <root>/.cloudmux/tmp/<uuid>.del        a delete in flight (leftovers are removed at open)
//! <root>/<bucket>/<key>                  an object whose key maps to a path
//! <root>/<bucket>/.cloudmux/keys/<hash>  an object whose key cannot be a path
//! <root>/<bucket>/.cloudmux/versions/<key>/<version>
//!                                        a noncurrent version of a key that maps to a path
//! <root>/<bucket>/.cloudmux/versions/.hashed/<hash>/<version>
//!                                        a noncurrent version of any other key
//! ```
//!
//! Staged data lives under the root, so publishing is an atomic `rename` on one
//! filesystem (bucket directories must not be separate mount points).
//!
//! # Key-to-path rule
//!
//! Object `KEY` in bucket `BUCKET` is the file `<root>/BUCKET/KEY` (so
//! `photos/2024/a.jpg` in `b` is `<root>/b/photos/2024/a.jpg`), with parent
//! directories created as needed, unless one of the following holds. Then it is
//! the file `<root>/BUCKET/.cloudmux/keys/<hash>`, where `<hash>` is the
//! lowercase hex SHA-256 of the key's UTF-8 bytes:
//!
//! - the key is empty, starts with `/` or ends with `/`;
//! - the key has an empty component (`a//b`), a component `.` or `..`, or a
//!   component named `.cloudmux` (reserved for the side area);
//! - the key contains a NUL byte;
//! - a component is longer than 255 bytes, or `<root>/BUCKET/KEY` is longer
//!   than 4000 bytes;
//! - when publishing, something on the way is not a real directory (`a/b` when
//!   the file `a` exists; a symlink), or the name is taken by something other
//!   than a regular file (`a` when the directory `a/` exists; a symlink);
//! - the filesystem refuses a name (`EINVAL`, `EILSEQ`, `ENAMETOOLONG`...), or a
//!   concurrent publish created a conflicting file or directory first.
//!
//! The choice is made once, at publish time, and recorded in
//! [`DataRef::locator`](crate::DataRef) (the path relative to the root), so
//! reads never re-derive it. A key can move between its plain path and the
//! hashed area across overwrites; the old data is then removed by the caller's
//! [`delete`](crate::Backend::delete) of the old reference.
//!
//! # Nothing escapes the root
//!
//! Bucket names must be a single component not starting with `.`; locators and
//! staged ids are checked before use. No symlink inside the root is ever
//! followed: every directory on the way is checked with `lstat` (and created
//! if missing), files are opened with `O_NOFOLLOW`, and `rename` replaces a
//! name without following it. A planted symlink therefore sends a key to the
//! hashed area, and if the hashed area itself is blocked the publish fails. The
//! one remaining window is another process with write access to the tree
//! swapping a checked directory for a symlink between the check and the next
//! system call; cloudmux itself never creates symlinks.
//!
//! # Durability
//!
//! [`stage`](crate::Backend::stage) streams into a new temp file through a
//! bounded buffer and removes the file if the body stream fails or the call is
//! dropped; it does not sync. [`publish`](crate::Backend::publish) renames the
//! file into place and [`persist`](crate::Backend::persist) keeps it staged;
//! both return only after a group commit (`fs/sync.rs`): one `syncfs` of the
//! location's filesystem covers every request that finished writing before it
//! started, so concurrent PUTs share one flush. [`place`](crate::Backend::place)
//! is the rename alone, made durable by the next group commit; a record names
//! the data by its staged locator meanwhile, which reads resolve wherever the
//! inode is (`ops::find_moving`). The location should therefore
//! sit on a filesystem of its own: other heavy writers on the same filesystem
//! make each group commit wait for their data too.
//!
//! # Versions and deletes
//!
//! [`DataRef::stamp`](crate::DataRef) is the file's inode number, with a tag
//! of its modification time (mtime) in the top bits. Reads fail with
//! [`DataError::Stale`] when the inode, the mtime or the size differ: the
//! file was replaced, or edited in place, behind cloudmux's back. (A tool
//! that rewrites a file with the same size and then sets its mtime back is
//! not detected.) Overwriting a key renames over
//! the previous file: the path stays, the inode changes. A delete removes the
//! file only while its inode still equals the reference's stamp, so deleting
//! an old reference never removes newer data published to the same path. To
//! close the race between that check and the removal, the file is first moved
//! into the temp area and checked again; if a publish slipped in, the newer
//! file is linked back (unless something newer still is already there).
//! Directories left empty by a delete are removed up to the bucket directory.
//!
//! # Noncurrent versions
//!
//! [`keep_version`](crate::Backend::keep_version) keeps the current data of
//! `KEY` in `BUCKET` as its noncurrent version `VERSION` (a version id, or
//! `null.<hex>`) with a hard link: no byte is copied, and the file at the
//! native name stays where it is until the caller replaces or deletes it.
//! The link is `<root>/BUCKET/.cloudmux/versions/KEY/VERSION` when `KEY`
//! maps to a path by the rule above and the directories on the way can be
//! made, else `<root>/BUCKET/.cloudmux/versions/.hashed/<hash>/VERSION`
//! (`<hash>` as above). The hashed place also takes keys whose first
//! component is `.hashed`, and versions blocked by another key's versions:
//! the version `v1` of `a` is the file `versions/a/v1`, so the versions of
//! the key `a/v1` cannot be under the directory `versions/a/v1/` (and
//! conversely). The choice is recorded in the answered locator, and
//! [`locate_version`](crate::Backend::locate_version) looks in both places.
//! Directories are checked and made as for publishing (never through a
//! symlink), and the link is made durable by the same group commit as a
//! publish. The link shares the data's inode and mtime, so the copy's
//! [`DataRef`] has the data's stamp and size; a staged
//! locator (data not yet moved to its native name) is resolved as reads
//! resolve it. A file already at the version's name is kept when it is the
//! same inode (a retry) and replaced otherwise. Deletes work by path (the
//! file is moved aside and its inode checked), so deleting the current
//! data or a version removes that one name only; the bytes go when the last
//! link does.
//!
//! Case-insensitive or normalizing filesystems are not supported: two keys
//! differing only in case would share a file there.

mod layout;
mod ops;
mod sync;

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::StreamExt;

use crate::{
    Backend, BodyError, BodyStream, ByteRange, DataError, DataRef, ObjectPath, Piece, Result,
    Staged, StagedEntry,
};

/// Size of the pieces written while staging.
const WRITE_CHUNK: usize = 512 << 10;
/// Size of the chunks a read streams.
const READ_CHUNK: usize = 1 << 20;
/// While staging a large body, start writing it back to disk every this many
/// bytes.
const EARLY_FLUSH: usize = 32 << 20;
/// Bodies up to this size are staged, and objects up to this size read, in a
/// single trip to the blocking pool.
const INLINE: usize = 256 << 10;

/// `[locations.NAME]` with `type = "fs"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsConfig {
    /// Root directory of the location; created if missing. Staged data lives
    /// under it too, so it must be a single filesystem.
    pub path: PathBuf,
}

/// Data backend storing objects as plain files under a root directory (see the
/// [module documentation](self) for the layout and rules).
#[derive(Debug, Clone)]
pub struct FsBackend {
    root: Arc<Path>,
    /// Group commit: one `syncfs` for all requests waiting on durability.
    sync: Arc<sync::SyncGroup>,
}

impl FsBackend {
    /// Opens the location at `config.path`, creating the root and its
    /// `.cloudmux/tmp` directory if missing and removing deletes left
    /// unfinished by a crash. Blocks briefly; call it at startup.
    pub fn open(config: &FsConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.path)?;
        let root = config.path.canonicalize()?;
        ops::ensure_dirs(&root, &[layout::RESERVED, layout::TMP])?;
        for n in 0..layout::TMP_SHARDS {
            ops::ensure_dirs(
                &root,
                &[
                    layout::RESERVED.to_owned(),
                    layout::TMP.to_owned(),
                    layout::tmp_shard_name(n),
                ],
            )?;
        }
        for entry in std::fs::read_dir(layout::tmp_dir(&root))? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().ends_with(".del") {
                ops::remove_file_if_exists(&entry.path())?;
            }
        }
        let sync = Arc::new(sync::SyncGroup::open(&root)?);
        Ok(Self {
            root: root.into(),
            sync,
        })
    }

    /// The canonical root directory of the location.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the bucket's directory (no error if it exists) and makes the
    /// creation durable. Fails if something other than a directory has the name.
    pub async fn create_bucket_dir(&self, bucket: &str) -> Result<()> {
        layout::check_bucket(bucket)?;
        let root = self.root.clone();
        let bucket = bucket.to_owned();
        blocking(move || Ok(ops::ensure_dirs(&root, &[bucket])?)).await
    }

    /// Removes the bucket's directory (no error if missing) together with its
    /// `.cloudmux` side area and any empty directories left inside. Fails with
    /// [`io::ErrorKind::DirectoryNotEmpty`] if files remain in the tree, which
    /// is then left in place apart from its empty directories.
    pub async fn remove_bucket_dir(&self, bucket: &str) -> Result<()> {
        layout::check_bucket(bucket)?;
        let root = self.root.clone();
        let bucket = bucket.to_owned();
        blocking(move || ops::remove_bucket_dir(&root, &bucket)).await
    }

    /// Starts a new temp file name in the temp area.
    fn new_temp(&self) -> (String, PathBuf) {
        let id = layout::new_staged_id();
        let path = layout::staged_path(&self.root, &id).expect("a new staged id is valid");
        (id, path)
    }
}

impl FsBackend {
    /// Hard-links `data` as version `version` of `target` (see
    /// [Noncurrent versions](self#noncurrent-versions)), without a sync.
    async fn link_version(
        &self,
        data: &DataRef,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<DataRef> {
        crate::check_version(version)?;
        layout::check_bucket(target.bucket)?;
        let root = self.root.clone();
        let source = data.clone();
        let bucket = target.bucket.to_owned();
        let key = target.key.to_owned();
        let version = version.to_owned();
        let locator = blocking(move || {
            ops::keep_version(
                &root,
                &source.locator,
                source.size,
                source.stamp,
                &bucket,
                &key,
                &version,
            )
        })
        .await?;
        Ok(DataRef {
            locator,
            size: data.size,
            stamp: data.stamp,
        })
    }

    /// Stages a body already in memory: create, write and read the inode in
    /// one blocking call.
    async fn stage_small(&self, data: bytes::Bytes) -> Result<Staged> {
        let (id, path) = self.new_temp();
        blocking(move || {
            let written = (|| -> io::Result<u64> {
                let mut file = ops::create_temp(&path)?;
                std::io::Write::write_all(&mut file, &data)?;
                Ok(file.metadata()?.ino())
            })();
            match written {
                Ok(stamp) => Ok(Staged {
                    id,
                    size: data.len() as u64,
                    stamp,
                }),
                Err(e) => {
                    let _ = ops::remove_file_if_exists(&path);
                    Err(e.into())
                }
            }
        })
        .await
    }
}

/// The metadata of the staged file at `path`, checked to be the file of
/// `staged` (a regular file of its size): `NotFound` when it is gone (moved
/// or discarded), `Stale` when something else lies there.
fn stat_staged(path: &std::path::Path, staged: &Staged) -> Result<std::fs::Metadata> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DataError::NotFound(format!("staged {}", staged.id)))
        }
        Err(e) => return Err(e.into()),
    };
    if !meta.file_type().is_file() || meta.len() != staged.size {
        return Err(DataError::Stale(format!(
            "staged {} is not the {} bytes staged",
            staged.id, staged.size
        )));
    }
    Ok(meta)
}

#[async_trait::async_trait]
impl Backend for FsBackend {
    async fn stage(&self, mut body: BodyStream) -> Result<Staged> {
        let mut head = BytesMut::new();
        let mut ended = false;
        while head.len() < INLINE {
            match body.next().await {
                Some(chunk) => head.extend_from_slice(&chunk?),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            return self.stage_small(head.freeze()).await;
        }
        let (id, path) = self.new_temp();
        let guard = TempGuard::new(path.clone());
        let written = async {
            let (file, stamp) = blocking(move || {
                let file = ops::create_temp(&path)?;
                let stamp = file.metadata()?.ino();
                Ok((file, stamp))
            })
            .await?;
            let size = write_body(file, head, &mut body).await?;
            Ok::<_, DataError>((size, stamp))
        }
        .await;
        let (size, stamp) = match written {
            Ok(x) => x,
            Err(e) => {
                guard.remove().await;
                return Err(e);
            }
        };
        guard.keep();
        Ok(Staged { id, size, stamp })
    }

    async fn publish(&self, staged: Staged, target: ObjectPath<'_>) -> Result<DataRef> {
        let data = self.place(staged, target).await?;
        self.sync.sync().await?;
        Ok(data)
    }

    async fn place(&self, staged: Staged, target: ObjectPath<'_>) -> Result<DataRef> {
        layout::check_bucket(target.bucket)?;
        let root = self.root.clone();
        let bucket = target.bucket.to_owned();
        let key = target.key.to_owned();
        blocking(move || {
            let path = layout::staged_path(&root, &staged.id)?;
            let meta = stat_staged(&path, &staged)?;
            let locator = ops::publish(&root, &path, &bucket, &key)?;
            let placed = std::fs::symlink_metadata(layout::join(
                &root,
                &layout::locator_components(&locator)?,
            ));
            let stamp = match placed {
                Ok(placed) if placed.ino() != meta.ino() => {
                    return Err(DataError::Stale(format!(
                        "{locator} changed while it was published"
                    )))
                }
                Ok(placed) => ops::published_stamp(&placed),
                // A concurrent delete of the key's older data moves whatever
                // lies at the name aside to check its inode, and puts ours
                // back; the rename kept our inode and mtime.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => ops::published_stamp(&meta),
                Err(e) => return Err(e.into()),
            };
            Ok(DataRef {
                locator,
                size: staged.size,
                stamp,
            })
        })
        .await
    }

    async fn persist(&self, _staged: &Staged) -> Result<()> {
        Ok(self.sync.sync().await?)
    }

    /// A hard link of the data's inode at the version's place (see
    /// [Noncurrent versions](self#noncurrent-versions)), made durable by the
    /// group commit. The link shares the inode and its mtime, so the copy's
    /// [`DataRef`] keeps the data's stamp and size.
    async fn keep_version(
        &self,
        data: &DataRef,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<DataRef> {
        let kept = self.link_version(data, target, version).await?;
        // Also when the link was already there: an earlier call may have
        // made it and failed before its sync.
        self.sync.sync().await?;
        Ok(kept)
    }

    /// The hard link alone: the caller's next `persist` (a group sync of
    /// the whole file system) makes it durable.
    async fn keep_version_unsynced(
        &self,
        data: &DataRef,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<DataRef> {
        self.link_version(data, target, version).await
    }

    async fn locate_version(
        &self,
        target: ObjectPath<'_>,
        version: &str,
    ) -> Result<Option<DataRef>> {
        crate::check_version(version)?;
        layout::check_bucket(target.bucket)?;
        let root = self.root.clone();
        let bucket = target.bucket.to_owned();
        let key = target.key.to_owned();
        let version = version.to_owned();
        blocking(move || {
            Ok(
                ops::locate_version(&root, &bucket, &key, &version)?.map(|(locator, meta)| {
                    DataRef {
                        locator,
                        size: meta.len(),
                        stamp: ops::published_stamp(&meta),
                    }
                }),
            )
        })
        .await
    }

    async fn staged_ref(&self, staged: &Staged, target: ObjectPath<'_>) -> Result<Option<DataRef>> {
        layout::check_bucket(target.bucket)?;
        let path = layout::staged_path(&self.root, &staged.id)?;
        let locator = layout::staged_locator(&staged.id, target.bucket, target.key);
        let staged = staged.clone();
        blocking(move || {
            let meta = stat_staged(&path, &staged)?;
            Ok(Some(DataRef {
                locator,
                size: staged.size,
                stamp: ops::published_stamp(&meta),
            }))
        })
        .await
    }

    async fn discard(&self, staged: &Staged) -> Result<()> {
        let path = layout::staged_path(&self.root, &staged.id)?;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn read(&self, data: &DataRef, range: Option<ByteRange>) -> Result<BodyStream> {
        let root = self.root.clone();
        let data = data.clone();
        let opened = blocking(move || {
            let (mut file, length) =
                ops::open_published(&root, &data.locator, data.size, data.stamp, range)?;
            if length as usize > INLINE {
                return Ok(Err((file, length)));
            }
            let mut buf = vec![0; length as usize];
            std::io::Read::read_exact(&mut file, &mut buf)?;
            Ok(Ok(bytes::Bytes::from(buf)))
        })
        .await?;
        Ok(match opened {
            Ok(small) => Box::pin(futures_util::stream::iter(
                (!small.is_empty()).then_some(Ok(small)),
            )),
            Err((file, length)) => file_stream(file, length),
        })
    }

    async fn read_staged(&self, staged: &Staged, range: Option<ByteRange>) -> Result<BodyStream> {
        let root = self.root.clone();
        let staged = staged.clone();
        let (file, length) =
            blocking(move || ops::open_staged(&root, &staged.id, staged.size, range)).await?;
        Ok(file_stream(file, length))
    }

    async fn delete(&self, data: &DataRef) -> Result<()> {
        let root = self.root.clone();
        let locator = data.locator.clone();
        let stamp = data.stamp;
        blocking(move || ops::delete(&root, &locator, stamp)).await
    }

    async fn assemble(&self, pieces: Vec<Piece>) -> Result<Staged> {
        let (id, path) = self.new_temp();
        let guard = TempGuard::new(path.clone());
        let cancelled = guard.cancelled.clone();
        let root = self.root.clone();
        let result = blocking(move || {
            let out = ops::create_temp(&path)?;
            let assembled = ops::assemble(&root, &pieces, out, &cancelled)
                .and_then(|size| Ok((size, std::fs::symlink_metadata(&path)?.ino())));
            if assembled.is_err() {
                // The guard removes the file too, but only after this returns;
                // removing it here also covers a guard dropped before the file
                // was created.
                let _ = ops::remove_file_if_exists(&path);
            }
            assembled
        })
        .await;
        match result {
            Ok((size, stamp)) => {
                guard.keep();
                Ok(Staged { id, size, stamp })
            }
            Err(e) => {
                guard.remove().await;
                Err(e)
            }
        }
    }

    async fn locate(&self, target: ObjectPath<'_>, staged: &Staged) -> Result<Option<DataRef>> {
        layout::check_bucket(target.bucket)?;
        let stamp = staged.stamp;
        let root = self.root.clone();
        let bucket = target.bucket.to_owned();
        let key = target.key.to_owned();
        blocking(move || {
            let mut candidates = Vec::new();
            if let Some(c) = layout::plain_components(&root, &bucket, &key) {
                candidates.push(c.iter().map(|s| s.to_string()).collect::<Vec<String>>());
            }
            candidates.push(layout::hashed_components(&bucket, &key));
            for components in candidates {
                let path = components.iter().fold(root.to_path_buf(), |p, c| p.join(c));
                if let Ok(meta) = std::fs::symlink_metadata(&path) {
                    if meta.file_type().is_file() && meta.ino() == stamp {
                        return Ok(Some(DataRef {
                            locator: components.join("/"),
                            size: meta.len(),
                            stamp: ops::published_stamp(&meta),
                        }));
                    }
                }
            }
            Ok(None)
        })
        .await
    }

    async fn create_bucket(&self, bucket: &str) -> Result<()> {
        self.create_bucket_dir(bucket).await
    }

    async fn remove_bucket(&self, bucket: &str) -> Result<()> {
        self.remove_bucket_dir(bucket).await
    }

    /// Lists the files of the temp area and its shard directories (ids
    /// `<shard>.<uuid>`, or a bare name for files made before the temp area
    /// was split), with their modification times.
    async fn list_staged(&self) -> Result<Vec<StagedEntry>> {
        let root = self.root.clone();
        blocking(move || {
            let mut out = Vec::new();
            let tmp = layout::tmp_dir(&root);
            let mut dirs = vec![(tmp.clone(), None::<String>)];
            for n in 0..layout::TMP_SHARDS {
                dirs.push((
                    tmp.join(layout::tmp_shard_name(n)),
                    Some(layout::tmp_shard_name(n)),
                ));
            }
            for (dir, shard) in dirs {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                for entry in entries {
                    let entry = entry?;
                    let meta = entry.metadata()?;
                    if !meta.file_type().is_file() {
                        continue;
                    }
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let id = match &shard {
                        Some(s) => format!("{s}.{name}"),
                        None => name,
                    };
                    out.push(StagedEntry {
                        id,
                        modified: meta.modified()?,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    /// The location answers when its temp area is still a directory: the root
    /// is mounted and reachable.
    async fn probe(&self) -> Result<()> {
        let meta = tokio::fs::metadata(layout::tmp_dir(&self.root)).await?;
        if meta.is_dir() {
            Ok(())
        } else {
            Err(DataError::Unavailable(
                "the location's temp area is not a directory".into(),
            ))
        }
    }
}

/// Runs blocking filesystem work on the blocking pool.
async fn blocking<T, F>(work: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| DataError::Io(io::Error::other(e)))?
}

/// Streams `length` bytes from the current position of `file` in chunks of
/// [`READ_CHUNK`] bytes, failing with [`BodyError::Incomplete`] if the file
/// ends early. The next chunk is read on the blocking pool while the current
/// one is being sent, so disk and network overlap; buffers are allocated on
/// the caller's (async) threads, which also free them.
fn file_stream(file: std::fs::File, length: u64) -> BodyStream {
    struct State {
        file: Arc<std::fs::File>,
        /// Bytes not yet asked for.
        remaining: u64,
        /// The read in flight, if any.
        next: Option<tokio::task::JoinHandle<io::Result<BytesMut>>>,
    }
    impl State {
        fn start_read(&mut self) {
            if self.remaining == 0 {
                return;
            }
            let want = self.remaining.min(READ_CHUNK as u64) as usize;
            self.remaining -= want as u64;
            let file = self.file.clone();
            let mut buf = BytesMut::zeroed(want);
            self.next = Some(tokio::task::spawn_blocking(move || {
                std::io::Read::read_exact(&mut &*file, &mut buf)?;
                Ok(buf)
            }));
        }
    }
    let mut state = State {
        file: Arc::new(file),
        remaining: length,
        next: None,
    };
    state.start_read();
    Box::pin(futures_util::stream::try_unfold(
        state,
        |mut state| async move {
            let Some(pending) = state.next.take() else {
                return Ok(None);
            };
            let chunk = match pending.await {
                Ok(Ok(chunk)) => chunk,
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(BodyError::Incomplete)
                }
                Ok(Err(e)) => return Err(BodyError::Io(e.to_string())),
                Err(e) => return Err(BodyError::Io(e.to_string())),
            };
            state.start_read();
            Ok(Some((chunk.freeze(), state)))
        },
    ))
}

/// Writes a body to `file` in [`WRITE_CHUNK`] pieces on the blocking pool,
/// one write in flight while the next piece is received. Returns the number
/// of bytes written. Two buffers per call, allocated and freed here. Every
/// [`EARLY_FLUSH`] bytes an `fdatasync` starts in the background (one at a
/// time), so the disk writes a large body while the rest arrives instead of
/// all of it in the group commit after the last byte.
async fn write_body(file: std::fs::File, head: BytesMut, body: &mut BodyStream) -> Result<u64> {
    let file = Arc::new(file);
    let mut size = head.len() as u64;
    let mut buf = head;
    let mut spare: Option<BytesMut> = None;
    let mut inflight: Option<tokio::task::JoinHandle<io::Result<BytesMut>>> = None;
    let write = |file: &Arc<std::fs::File>, data: BytesMut| {
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            std::io::Write::write_all(&mut &*file, &data)?;
            Ok(data)
        })
    };
    async fn finish(
        handle: Option<tokio::task::JoinHandle<io::Result<BytesMut>>>,
    ) -> Result<Option<BytesMut>> {
        match handle {
            None => Ok(None),
            Some(h) => {
                let mut done = h.await.map_err(io::Error::other)??;
                done.clear();
                Ok(Some(done))
            }
        }
    }
    let mut flushing: Option<tokio::task::JoinHandle<io::Result<()>>> = None;
    let mut unflushed = 0usize;
    loop {
        let chunk = body.next().await;
        let ended = chunk.is_none();
        if let Some(chunk) = chunk {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = finish(inflight.take()).await;
                    if let Some(done) = flushing.take() {
                        let _ = done.await;
                    }
                    return Err(e.into());
                }
            };
            size += chunk.len() as u64;
            buf.extend_from_slice(&chunk);
        }
        if buf.len() >= WRITE_CHUNK || (ended && !buf.is_empty()) {
            if let Some(free) = finish(inflight.take()).await? {
                spare = Some(free);
            }
            let next = spare
                .take()
                .unwrap_or_else(|| BytesMut::with_capacity(WRITE_CHUNK));
            let full = std::mem::replace(&mut buf, next);
            unflushed += full.len();
            inflight = Some(write(&file, full));
            if unflushed >= EARLY_FLUSH && flushing.as_ref().is_none_or(|f| f.is_finished()) {
                if let Some(done) = flushing.take() {
                    done.await.map_err(io::Error::other)??;
                }
                let file = file.clone();
                flushing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
                unflushed = 0;
            }
        }
        if ended {
            finish(inflight.take()).await?;
            if let Some(done) = flushing.take() {
                done.await.map_err(io::Error::other)??;
            }
            return Ok(size);
        }
    }
}

/// Removes a temp file unless told to keep it: explicitly on error paths, and
/// in the background when the owning future is dropped midway.
struct TempGuard {
    path: Option<PathBuf>,
    cancelled: Arc<AtomicBool>,
}

impl TempGuard {
    /// Guards the temp file at `path` (which may not exist yet).
    fn new(path: PathBuf) -> Self {
        Self {
            path: Some(path),
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The file is handed over; do not remove it.
    fn keep(mut self) {
        self.path = None;
    }

    /// Removes the file now.
    async fn remove(mut self) {
        if let Some(path) = self.path.take() {
            if let Err(e) = tokio::fs::remove_file(&path).await {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove temp file");
                }
            }
        }
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            self.cancelled.store(true, Ordering::SeqCst);
            let remove = move || {
                if let Err(e) = ops::remove_file_if_exists(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove temp file");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => drop(handle.spawn_blocking(remove)),
                Err(_) => remove(),
            }
        }
    }
}
