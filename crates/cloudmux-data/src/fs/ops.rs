//! Blocking filesystem operations. Everything here runs on the blocking pool
//! (`spawn_blocking`), never on an async worker thread.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{ByteRange, DataError, Piece, Result};

use super::layout;

/// How many times a placement is retried when a concurrent delete removes an
/// empty directory it was about to use.
const PLACE_RETRIES: usize = 16;
/// Write buffer of `assemble`.
const ASSEMBLE_BUF: usize = 1 << 20;

/// What happened when making sure a directory exists.
enum DirState {
    /// It already was a real directory.
    Existed,
    /// This call created it.
    Created,
    /// Something that is not a real directory (a file, a symlink) is there, or
    /// the name is one the filesystem refuses.
    Conflict,
    /// Its parent disappeared (a concurrent cleanup removed it).
    Vanished,
}

/// The outcome of one attempt at renaming a staged file into place.
enum Placement {
    Placed,
    Conflict,
    Retry,
}

/// Whether an error means "this name cannot be used here" (so the key goes to
/// the hashed area) rather than a real I/O failure.
fn is_name_error(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(
            libc::ENOTDIR
                | libc::EISDIR
                | libc::ENAMETOOLONG
                | libc::EINVAL
                | libc::EILSEQ
                | libc::ELOOP
                | libc::EEXIST
                | libc::ENOTEMPTY
        )
    )
}

/// Makes sure `dir` is a real directory (never a symlink), creating it if
/// missing.
fn ensure_dir(dir: &Path) -> io::Result<DirState> {
    for _ in 0..2 {
        match fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_dir() => return Ok(DirState::Existed),
            Ok(_) => return Ok(DirState::Conflict),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(dir) {
                Ok(()) => return Ok(DirState::Created),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DirState::Vanished),
                Err(e) if is_name_error(&e) => return Ok(DirState::Conflict),
                Err(e) => return Err(e),
            },
            Err(e) if is_name_error(&e) => return Ok(DirState::Conflict),
            Err(e) => return Err(e),
        }
    }
    Ok(DirState::Conflict)
}

/// Fsyncs a directory so that entries added to it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Makes sure the directory at `root/components` exists with no symlinks on
/// the way, creating and fsyncing what is missing. Used for the root's own
/// directories and bucket directories.
pub(crate) fn ensure_dirs<S: AsRef<str>>(root: &Path, components: &[S]) -> io::Result<()> {
    let mut dir = root.to_path_buf();
    for component in components {
        let parent = dir.clone();
        dir.push(component.as_ref());
        match ensure_dir(&dir)? {
            DirState::Existed => {}
            DirState::Created => sync_dir(&parent)?,
            DirState::Conflict | DirState::Vanished => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} is not a directory", dir.display()),
                ))
            }
        }
    }
    Ok(())
}

/// Removes directories this attempt created, deepest first, best-effort.
fn undo_created(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        if fs::remove_dir(dir).is_err() {
            break;
        }
    }
}

/// One attempt at renaming `staged` to `root/components`.
fn try_place<S: AsRef<str>>(root: &Path, staged: &Path, components: &[S]) -> io::Result<Placement> {
    let (last, parents) = components.split_last().expect("at least bucket and name");
    let mut dir = root.to_path_buf();
    let mut created = Vec::new();
    for component in parents {
        dir.push(component.as_ref());
        match ensure_dir(&dir)? {
            DirState::Existed => {}
            DirState::Created => created.push(dir.clone()),
            DirState::Conflict => {
                undo_created(&created);
                return Ok(Placement::Conflict);
            }
            DirState::Vanished => {
                undo_created(&created);
                return Ok(Placement::Retry);
            }
        }
    }
    let target = dir.join(last.as_ref());
    match fs::symlink_metadata(&target) {
        Ok(meta) if meta.file_type().is_file() => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Ok(_) => {
            undo_created(&created);
            return Ok(Placement::Conflict);
        }
        Err(e) if is_name_error(&e) => {
            undo_created(&created);
            return Ok(Placement::Conflict);
        }
        Err(e) => return Err(e),
    }
    match fs::rename(staged, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(staged).is_err() {
                return Err(e);
            }
            undo_created(&created);
            return Ok(Placement::Retry);
        }
        Err(e) if is_name_error(&e) => {
            undo_created(&created);
            return Ok(Placement::Conflict);
        }
        Err(e) => return Err(e),
    }
    Ok(Placement::Placed)
}

/// Renames the staged file at `staged` into the object location of `key` and
/// returns the locator used. Tries the plain path first, then the hashed area.
pub(crate) fn publish(root: &Path, staged: &Path, bucket: &str, key: &str) -> Result<String> {
    if let Some(components) = layout::plain_components(root, bucket, key) {
        for _ in 0..PLACE_RETRIES {
            match try_place(root, staged, &components).map_err(staged_gone)? {
                Placement::Placed => return Ok(components.join("/")),
                Placement::Conflict => break,
                Placement::Retry => continue,
            }
        }
    }
    let components = layout::hashed_components(bucket, key);
    for _ in 0..PLACE_RETRIES {
        match try_place(root, staged, &components).map_err(staged_gone)? {
            Placement::Placed => return Ok(components.join("/")),
            Placement::Conflict => {
                return Err(DataError::Io(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "hashed location {} is blocked by something that is not a plain file or directory",
                        components.join("/")
                    ),
                )))
            }
            Placement::Retry => continue,
        }
    }
    Err(DataError::Io(io::Error::other(
        "directories kept disappearing while publishing",
    )))
}

/// Maps a `NotFound` during placement (the staged file is gone) to
/// [`DataError::NotFound`].
fn staged_gone(error: io::Error) -> DataError {
    if error.kind() == io::ErrorKind::NotFound {
        DataError::NotFound(format!("staged data vanished: {error}"))
    } else {
        DataError::Io(error)
    }
}

/// Checks that every directory on the way to `root/components` (excluding the
/// last component) is a real directory. Returns `Ok(false)` when one is
/// missing, an error when one is something else.
fn parents_are_dirs(root: &Path, components: &[String], what: &str) -> Result<bool> {
    let mut dir = root.to_path_buf();
    for component in &components[..components.len() - 1] {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(_) => {
                return Err(DataError::Stale(format!(
                    "{what}: {} is no longer a directory",
                    dir.display()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Opens a file for reading without following a symlink at its name and
/// without blocking on special files, and checks that it is a regular file.
fn open_nofollow(path: &Path, what: &str) -> Result<(File, Metadata)> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DataError::NotFound(what.to_owned()))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(DataError::NotFound(what.to_owned()))
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(DataError::Stale(format!("{what}: replaced by a symlink")))
        }
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(DataError::Stale(format!("{what}: not a regular file")));
    }
    Ok((file, meta))
}

/// Resolves an optional range against a size into `(offset, length)`.
fn resolve(range: Option<ByteRange>, size: u64) -> Result<(u64, u64)> {
    match range {
        None => Ok((0, size)),
        Some(r) if r.first <= r.last && r.last < size => Ok((r.first, r.last - r.first + 1)),
        Some(r) => Err(DataError::Io(layout::invalid(format!(
            "range {}-{} outside data of {size} bytes",
            r.first, r.last
        )))),
    }
}

/// Bits of a published file's stamp that hold its inode number.
const INO_BITS: u32 = 40;

/// The stamp of a published file: its inode number, and in the top 24 bits a
/// tag of its modification time (mtime), so that data edited in place behind
/// cloudmux's back, same size and same inode, is told apart too. Renames and
/// links keep the mtime, so cloudmux's own moves keep the stamp; only a tool
/// that writes the file and then sets its mtime back goes unnoticed. A stamp
/// without a tag (an inode number too large for 40 bits, or a record written
/// before tags) is checked by its inode alone.
pub(crate) fn published_stamp(meta: &Metadata) -> u64 {
    let ino = meta.ino();
    if ino >> INO_BITS != 0 {
        return ino;
    }
    let t = (meta.mtime() as u64)
        .wrapping_mul(1_000_000_007)
        .wrapping_add(meta.mtime_nsec() as u64);
    let tag = ((t ^ (t >> 24) ^ (t >> 48)) & 0xFF_FFFF) | 1;
    (tag << INO_BITS) | ino
}

/// Whether inode number `ino` is the one a stamp names (tagged or not).
pub(crate) fn ino_matches(stamp: u64, ino: u64) -> bool {
    ino == stamp || (stamp >> INO_BITS != 0 && ino == stamp & ((1 << INO_BITS) - 1))
}

/// Whether `meta` is the file version `stamp` names (see [`published_stamp`]).
pub(crate) fn stamp_matches(stamp: u64, meta: &Metadata) -> bool {
    if stamp >> INO_BITS == 0 {
        return meta.ino() == stamp;
    }
    published_stamp(meta) == stamp
}

/// Where staged data `id` of `bucket/key` is now: still in the staging
/// area, or already moved to one of the key's native paths (a rename keeps
/// the inode `stamp` names). `None` when it is in neither.
fn find_moving(
    root: &Path,
    id: &str,
    bucket: &str,
    key: &str,
    stamp: u64,
) -> Result<Option<PathBuf>> {
    let mut candidates = vec![layout::staged_path(root, id)?];
    layout::check_bucket(bucket)?;
    if let Some(c) = layout::plain_components(root, bucket, key) {
        candidates.push(layout::join(root, &c));
    }
    candidates.push(layout::join(root, &layout::hashed_components(bucket, key)));
    for path in candidates {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_file() && ino_matches(stamp, meta.ino()) => {
                return Ok(Some(path))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// Opens staged data that a record names while it moves to its native name
/// (see [`find_moving`]); a move between the lookup and the open is retried.
fn open_moving(
    root: &Path,
    id: &str,
    bucket: &str,
    key: &str,
    stamp: u64,
    locator: &str,
) -> Result<(File, Metadata)> {
    for _ in 0..3 {
        let Some(path) = find_moving(root, id, bucket, key, stamp)? else {
            break;
        };
        match open_nofollow(&path, locator) {
            Err(DataError::NotFound(_)) => continue,
            opened => return opened,
        }
    }
    Err(DataError::NotFound(locator.to_owned()))
}

/// Opens published data, checks it is the version `stamp` names and positions
/// it at the start of `range`. Returns the file and the number of bytes to read.
pub(crate) fn open_published(
    root: &Path,
    locator: &str,
    size: u64,
    stamp: u64,
    range: Option<ByteRange>,
) -> Result<(File, u64)> {
    let (mut file, meta) = match layout::staged_locator_parts(locator) {
        Some((id, bucket, key)) => open_moving(root, id, bucket, key, stamp, locator)?,
        None => {
            let components = layout::locator_components(locator)?;
            if !parents_are_dirs(root, &components, locator)? {
                return Err(DataError::NotFound(locator.to_owned()));
            }
            open_nofollow(&layout::join(root, &components), locator)?
        }
    };
    if !stamp_matches(stamp, &meta) {
        return Err(DataError::Stale(format!(
            "{locator}: the file was replaced or changed (inode {}, stamp {stamp:#x})",
            meta.ino()
        )));
    }
    if meta.len() != size {
        return Err(DataError::Stale(format!(
            "{locator}: size {} is not {size}",
            meta.len()
        )));
    }
    let (offset, length) = resolve(range, size)?;
    file.seek(SeekFrom::Start(offset))?;
    Ok((file, length))
}

/// The path where published data `locator` lies now (a staged locator is
/// resolved as reads resolve it: in the staging area or already at its
/// native name) and its metadata, checked to be the file version `stamp`
/// and `size` name: `NotFound` when it is gone, `Stale` when something else
/// lies there.
fn resolve_published(
    root: &Path,
    locator: &str,
    size: u64,
    stamp: u64,
) -> Result<(PathBuf, Metadata)> {
    let path = match layout::staged_locator_parts(locator) {
        Some((id, bucket, key)) => find_moving(root, id, bucket, key, stamp)?
            .ok_or_else(|| DataError::NotFound(locator.to_owned()))?,
        None => {
            let components = layout::locator_components(locator)?;
            if !parents_are_dirs(root, &components, locator)? {
                return Err(DataError::NotFound(locator.to_owned()));
            }
            layout::join(root, &components)
        }
    };
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DataError::NotFound(locator.to_owned()))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(DataError::NotFound(locator.to_owned()))
        }
        Err(e) => return Err(e.into()),
    };
    if !is_version(&meta, size, stamp) {
        return Err(DataError::Stale(format!(
            "{locator}: the file was replaced or changed (inode {}, stamp {stamp:#x})",
            meta.ino()
        )));
    }
    Ok((path, meta))
}

/// Whether `meta` is a regular file of the version `size` and `stamp` name.
fn is_version(meta: &Metadata, size: u64, stamp: u64) -> bool {
    meta.file_type().is_file() && stamp_matches(stamp, meta) && meta.len() == size
}

/// The outcome of one attempt at linking data as a noncurrent version.
enum Linking {
    /// The name links the data now.
    Linked,
    /// Something that is not a regular file is on the way or at the name.
    Conflict,
    /// A directory disappeared or a name appeared meanwhile: try again.
    Retry,
}

/// One attempt at making `root/components` a hard link of the file at
/// `source`, whose inode is `ino`. A regular file of another inode at the
/// name is removed first: the name belongs to one version, and whatever
/// else lies there is left over from an interrupted or confused write.
fn try_link(root: &Path, source: &Path, ino: u64, components: &[String]) -> Result<Linking> {
    let (last, parents) = components.split_last().expect("at least bucket and name");
    let mut dir = root.to_path_buf();
    let mut created = Vec::new();
    for component in parents {
        dir.push(component);
        match ensure_dir(&dir)? {
            DirState::Existed => {}
            DirState::Created => created.push(dir.clone()),
            DirState::Conflict => {
                undo_created(&created);
                return Ok(Linking::Conflict);
            }
            DirState::Vanished => {
                undo_created(&created);
                return Ok(Linking::Retry);
            }
        }
    }
    let target = dir.join(last);
    match fs::symlink_metadata(&target) {
        Ok(meta) if meta.file_type().is_file() && meta.ino() == ino => return Ok(Linking::Linked),
        Ok(meta) if meta.file_type().is_file() => remove_file_if_exists(&target)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Ok(_) => {
            undo_created(&created);
            return Ok(Linking::Conflict);
        }
        Err(e) if is_name_error(&e) => {
            undo_created(&created);
            return Ok(Linking::Conflict);
        }
        Err(e) => return Err(e.into()),
    }
    match fs::hard_link(source, &target) {
        Ok(()) => Ok(Linking::Linked),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Linking::Retry),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(source).is_err() {
                return Err(DataError::NotFound(format!(
                    "{}: the data vanished while it was kept",
                    source.display()
                )));
            }
            undo_created(&created);
            Ok(Linking::Retry)
        }
        Err(e) if is_name_error(&e) => {
            undo_created(&created);
            Ok(Linking::Conflict)
        }
        Err(e) => Err(e.into()),
    }
}

/// The metadata of the file at `root/components` when it is the version
/// `size` and `stamp` name; `None` when nothing, or something else, is
/// there (a non-directory on the way included).
fn existing_version(
    root: &Path,
    components: &[String],
    size: u64,
    stamp: u64,
) -> Result<Option<Metadata>> {
    Ok(regular_file_at(root, components)?.filter(|meta| is_version(meta, size, stamp)))
}

/// The metadata of the regular file at `root/components`, reached through
/// real directories only; `None` when there is none.
fn regular_file_at(root: &Path, components: &[String]) -> Result<Option<Metadata>> {
    match parents_are_dirs(root, components, "version") {
        Ok(true) => {}
        Ok(false) | Err(DataError::Stale(_)) => return Ok(None),
        Err(e) => return Err(e),
    }
    match fs::symlink_metadata(layout::join(root, components)) {
        Ok(meta) if meta.file_type().is_file() => Ok(Some(meta)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The places noncurrent version `version` of `bucket/key` may be, the plain
/// one (when the key has one) first.
fn version_places(root: &Path, bucket: &str, key: &str, version: &str) -> Vec<Vec<String>> {
    let mut places = Vec::with_capacity(2);
    if let Some(plain) = layout::version_plain_components(root, bucket, key, version) {
        places.push(plain);
    }
    places.push(layout::version_hashed_components(bucket, key, version));
    places
}

/// Hard-links the published data `locator` names (checked against `size`
/// and `stamp`, as reads check it) as noncurrent version `version` of
/// `bucket/key`, at its plain place, or its hashed place when the plain one
/// is blocked. A link of the same data already at either place is kept.
/// Returns the locator of the link. Does not sync. Then asks the kernel to
/// drop the data's cached pages (they are clean: the data was synced when
/// it was written), so that noncurrent versions, rarely read, do not fill
/// the page cache, as replaced data, which is freed, does not; advisory, so
/// a failure only leaves them cached.
pub(crate) fn keep_version(
    root: &Path,
    locator: &str,
    size: u64,
    stamp: u64,
    bucket: &str,
    key: &str,
    version: &str,
) -> Result<String> {
    let kept = link_version(root, locator, size, stamp, bucket, key, version)?;
    if let Ok(components) = layout::locator_components(&kept) {
        if let Ok(file) = File::open(layout::join(root, &components)) {
            let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
        }
    }
    Ok(kept)
}

/// [`keep_version`] without the advice to drop cached pages.
fn link_version(
    root: &Path,
    locator: &str,
    size: u64,
    stamp: u64,
    bucket: &str,
    key: &str,
    version: &str,
) -> Result<String> {
    let (source, meta) = resolve_published(root, locator, size, stamp)?;
    let places = version_places(root, bucket, key, version);
    for place in &places {
        if existing_version(root, place, size, stamp)?.is_some() {
            return Ok(place.join("/"));
        }
    }
    for place in &places {
        let mut outcome = Linking::Retry;
        for _ in 0..PLACE_RETRIES {
            outcome = try_link(root, &source, meta.ino(), place)?;
            if !matches!(outcome, Linking::Retry) {
                break;
            }
        }
        match outcome {
            Linking::Linked => {}
            Linking::Conflict => continue,
            Linking::Retry => {
                return Err(DataError::Io(io::Error::other(
                    "directories kept disappearing while keeping a version",
                )))
            }
        }
        // The data may have been replaced between the check and the link:
        // the link is then checked like the data itself.
        let linked = fs::symlink_metadata(layout::join(root, place))?;
        if !is_version(&linked, size, stamp) {
            remove_file_if_exists(&layout::join(root, place))?;
            return Err(DataError::Stale(format!(
                "{locator}: replaced while it was kept as version {version}"
            )));
        }
        return Ok(place.join("/"));
    }
    Err(DataError::Io(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "hashed version location {} is blocked by something that is not a plain file or directory",
            places[places.len() - 1].join("/")
        ),
    )))
}

/// The locator and metadata of noncurrent version `version` of
/// `bucket/key`, at its plain or its hashed place; `None` when neither
/// holds a regular file.
pub(crate) fn locate_version(
    root: &Path,
    bucket: &str,
    key: &str,
    version: &str,
) -> Result<Option<(String, Metadata)>> {
    for place in version_places(root, bucket, key, version) {
        if let Some(meta) = regular_file_at(root, &place)? {
            return Ok(Some((place.join("/"), meta)));
        }
    }
    Ok(None)
}

/// Opens staged data and positions it at the start of `range`. Returns the
/// file and the number of bytes to read.
pub(crate) fn open_staged(
    root: &Path,
    id: &str,
    size: u64,
    range: Option<ByteRange>,
) -> Result<(File, u64)> {
    let path = layout::staged_path(root, id)?;
    let what = format!("staged {id}");
    let (mut file, meta) = open_nofollow(&path, &what)?;
    if meta.len() != size {
        return Err(DataError::Stale(format!(
            "{what}: size {} is not {size}",
            meta.len()
        )));
    }
    let (offset, length) = resolve(range, size)?;
    file.seek(SeekFrom::Start(offset))?;
    Ok((file, length))
}

/// Removes published data if it is still the version `stamp` names, then the
/// directories left empty up to the bucket directory.
pub(crate) fn delete(root: &Path, locator: &str, stamp: u64) -> Result<()> {
    let (target, components) = match layout::staged_locator_parts(locator) {
        Some((id, bucket, key)) => match find_moving(root, id, bucket, key, stamp)? {
            Some(path) => (path, Vec::new()),
            None => return Ok(()),
        },
        None => {
            let components = layout::locator_components(locator)?;
            match parents_are_dirs(root, &components, locator) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(DataError::Stale(why)) => {
                    tracing::warn!(%why, "delete skipped: the path no longer leads to cloudmux data");
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
            (layout::join(root, &components), components)
        }
    };
    match fs::symlink_metadata(&target) {
        Ok(meta) if meta.file_type().is_file() && ino_matches(stamp, meta.ino()) => {}
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    // The file is moved aside before it is removed, so that a publish racing
    // between the inode check and the removal is detected and undone.
    let grave = layout::tmp_dir(root).join(format!("{}.del", uuid::Uuid::new_v4()));
    match fs::rename(&target, &grave) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            remove_file_if_exists(&target)?;
            remove_empty_parents(root, &components);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    if !ino_matches(stamp, fs::symlink_metadata(&grave)?.ino()) {
        match fs::hard_link(&grave, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                tracing::error!(
                    locator,
                    grave = %grave.display(),
                    error = %e,
                    "could not put back data published during a delete; it was kept aside"
                );
                return Err(e.into());
            }
        }
        remove_file_if_exists(&grave)?;
        return Ok(());
    }
    remove_file_if_exists(&grave)?;
    remove_empty_parents(root, &components);
    Ok(())
}

/// Removes a file, treating "already gone" as success.
pub(crate) fn remove_file_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes the now-empty directories holding `root/components`, deepest first,
/// stopping at the first that is not empty and never touching the bucket
/// directory.
fn remove_empty_parents(root: &Path, components: &[String]) {
    for depth in (2..components.len()).rev() {
        if fs::remove_dir(layout::join(root, &components[..depth])).is_err() {
            break;
        }
    }
}

/// Removes every empty directory in the tree under `dir` and then `dir` itself
/// if it became empty, never following symlinks. Returns whether `dir` is gone.
fn prune(dir: &Path) -> io::Result<bool> {
    let mut keep = false;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            keep |= !prune(&entry.path())?;
        } else {
            keep = true;
        }
    }
    if keep {
        return Ok(false);
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a bucket directory whose tree holds no files any more.
pub(crate) fn remove_bucket_dir(root: &Path, bucket: &str) -> Result<()> {
    layout::check_bucket(bucket)?;
    let dir = root.join(bucket);
    match fs::symlink_metadata(&dir) {
        Ok(meta) if meta.file_type().is_dir() => {}
        Ok(_) => {
            return Err(DataError::Io(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is not a directory", dir.display()),
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if prune(&dir)? {
        sync_dir(root)?;
        Ok(())
    } else {
        Err(DataError::Io(io::Error::new(
            io::ErrorKind::DirectoryNotEmpty,
            format!("bucket directory {} still holds files", dir.display()),
        )))
    }
}

/// Copies the pieces in order into the already created temp file at `out`
/// and returns the number of bytes written. Stops early if
/// `cancelled` is set. On error the caller removes `out`.
pub(crate) fn assemble(
    root: &Path,
    pieces: &[Piece],
    out: File,
    cancelled: &AtomicBool,
) -> Result<u64> {
    let mut writer = io::BufWriter::with_capacity(ASSEMBLE_BUF, out);
    let mut total = 0u64;
    for piece in pieces {
        if cancelled.load(Ordering::SeqCst) {
            return Err(DataError::Io(io::Error::new(
                io::ErrorKind::Interrupted,
                "assemble abandoned",
            )));
        }
        let (file, length, what) = match piece {
            Piece::Staged(staged) => {
                let (file, length) = open_staged(root, &staged.id, staged.size, None)?;
                (file, length, format!("staged {}", staged.id))
            }
            Piece::Published(data, range) => {
                let (file, length) =
                    open_published(root, &data.locator, data.size, data.stamp, *range)?;
                (file, length, data.locator.clone())
            }
        };
        let copied = io::copy(&mut io::Read::take(file, length), &mut writer)?;
        if copied != length {
            return Err(DataError::Stale(format!(
                "{what}: ended after {copied} of {length} bytes"
            )));
        }
        total += copied;
    }
    writer
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
    if cancelled.load(Ordering::SeqCst) {
        return Err(DataError::Io(io::Error::new(
            io::ErrorKind::Interrupted,
            "assemble abandoned",
        )));
    }
    Ok(total)
}

/// Creates a new temp file for staged data, refusing to reuse a name. A
/// missing temp shard directory is made again (its parent, the temp area, is
/// not: a missing temp area means the location is gone).
pub(crate) fn create_temp(path: &Path) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(shard) = path.parent() {
                match fs::create_dir(shard) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
            open()
        }
        other => other,
    }
}
