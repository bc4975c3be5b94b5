//! Scenarios every cloud backend must pass, written against the `Backend`
//! trait. `staging` lists the names the backend holds in its staging area,
//! so cleanup can be checked.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use cloudmux_data::{
    Backend, ByteRange, DataError, DataRef, NativeMeta, ObjectPath, Piece, Staged, StagedEntry,
};

use crate::common::{body, collect, data, failing_body};

/// Lists the staging area.
pub type Lister<'a> =
    &'a (dyn Fn() -> Pin<Box<dyn Future<Output = Vec<String>> + Send + 'a>> + Sync);

/// Writes a native object of the given name and bytes behind the backend's
/// back.
pub type Planter<'a> =
    &'a (dyn Fn(String, Vec<u8>) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> + Sync);

/// Metadata as a client would send it.
pub fn meta() -> NativeMeta {
    NativeMeta {
        content_type: Some("text/plain; charset=utf-8".into()),
        cache_control: Some("max-age=60".into()),
        content_disposition: Some("attachment; filename=\"a.txt\"".into()),
        content_encoding: None,
        content_language: Some("en".into()),
        expires: None,
        user: vec![
            ("color".into(), "blue".into()),
            ("my-key".into(), "v 1".into()),
        ],
        content_md5: None,
    }
}

fn at<'a>(bucket: &'a str, key: &'a str, m: &'a NativeMeta) -> ObjectPath<'a> {
    ObjectPath {
        bucket,
        key,
        meta: m,
    }
}

/// Put, read whole and in ranges, replace, delete.
pub async fn round_trip(b: &dyn Backend, staging: Lister<'_>) {
    let m = meta();
    let bytes = data(3 * 1024 * 1024 + 17, 1);
    let staged = b.stage(body(&bytes, 100_000)).await.unwrap();
    assert_eq!(staged.size, bytes.len() as u64);
    b.persist(&staged).await.unwrap();
    assert_eq!(
        collect(b.read_staged(&staged, None).await.unwrap()).await,
        bytes
    );
    let key = "dir/hello world+ü.txt";
    let d = b.publish(staged, at("bkt", key, &m)).await.unwrap();
    assert_eq!(d.size, bytes.len() as u64);
    assert!(staging().await.is_empty(), "publish left staging data");
    assert_eq!(collect(b.read(&d, None).await.unwrap()).await, bytes);
    for (first, last) in [
        (0, 0),
        (10, 19),
        (1_000_000, 2_500_000),
        (bytes.len() as u64 - 5, bytes.len() as u64 - 1),
    ] {
        let got = collect(b.read(&d, Some(ByteRange { first, last })).await.unwrap()).await;
        assert_eq!(
            got,
            bytes[first as usize..=last as usize],
            "range {first}-{last}"
        );
    }

    let empty = b.stage(body(&[], 1)).await.unwrap();
    assert_eq!(empty.size, 0);
    let e = b
        .publish(empty, at("bkt", "empty", NativeMeta::none()))
        .await
        .unwrap();
    assert!(collect(b.read(&e, None).await.unwrap()).await.is_empty());

    let newer = b.stage(body(b"second version", 5)).await.unwrap();
    let d2 = b.publish(newer, at("bkt", key, &m)).await.unwrap();
    assert_ne!(d.stamp, d2.stamp, "a replaced object must get a new stamp");
    assert!(
        matches!(
            b.read(&d, None).await,
            Err(DataError::Stale(_) | DataError::NotFound(_))
        ),
        "the old reference must not read the new data"
    );
    b.delete(&d).await.unwrap();
    assert_eq!(
        collect(b.read(&d2, None).await.unwrap()).await,
        b"second version",
        "deleting the old reference removed newer data"
    );
    b.delete(&d2).await.unwrap();
    assert!(matches!(
        b.read(&d2, None).await,
        Err(DataError::NotFound(_))
    ));
    b.delete(&d2).await.unwrap();
    b.delete(&e).await.unwrap();
}

/// Two buckets writing the same key do not overwrite each other
/// (`bucket_match = false`).
pub async fn buckets_share_the_container(b: &dyn Backend) {
    let m = NativeMeta::default();
    let s1 = b.stage(body(b"one", 3)).await.unwrap();
    let s2 = b.stage(body(b"two", 3)).await.unwrap();
    let d1 = b.publish(s1, at("b1", "same", &m)).await.unwrap();
    let d2 = b.publish(s2, at("b2", "same", &m)).await.unwrap();
    assert_ne!(d1.locator, d2.locator);
    assert_eq!(collect(b.read(&d1, None).await.unwrap()).await, b"one");
    assert_eq!(collect(b.read(&d2, None).await.unwrap()).await, b"two");
    b.delete(&d1).await.unwrap();
    b.delete(&d2).await.unwrap();
}

/// A failed body leaves nothing behind.
pub async fn failed_body_leaves_nothing(b: &dyn Backend, staging: Lister<'_>) {
    let big = data(9 * 1024 * 1024, 3);
    let err = b.stage(failing_body(&big)).await.unwrap_err();
    assert!(matches!(err, DataError::Body(_)), "{err:?}");
    assert!(staging().await.is_empty(), "failed stage left data");
}

/// Multipart: 5 MiB + 5 MiB + 1 KiB parts uploaded in reverse order,
/// assembled in order, parts gone after Complete; a second upload aborted
/// leaves nothing.
pub async fn multipart(b: &dyn Backend, staging: Lister<'_>) {
    let sizes = [5 * 1024 * 1024, 5 * 1024 * 1024, 1024];
    let parts: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| data(*n, 10 + i as u8))
        .collect();
    let mut staged: Vec<Option<Staged>> = vec![None, None, None];
    for i in (0..3).rev() {
        staged[i] = Some(b.stage(body(&parts[i], 64 * 1024)).await.unwrap());
    }
    let staged: Vec<Staged> = staged.into_iter().map(Option::unwrap).collect();
    let whole = b
        .assemble(staged.iter().cloned().map(Piece::Staged).collect())
        .await
        .unwrap();
    let expect: Vec<u8> = parts.concat();
    assert_eq!(whole.size, expect.len() as u64);
    let m = meta();
    let d = b.publish(whole, at("bkt", "mpu", &m)).await.unwrap();
    for s in &staged {
        b.discard(s).await.unwrap();
    }
    assert!(staging().await.is_empty(), "parts left after Complete");
    assert_eq!(collect(b.read(&d, None).await.unwrap()).await, expect);
    let r = ByteRange {
        first: 5 * 1024 * 1024 - 10,
        last: 10 * 1024 * 1024 + 9,
    };
    assert_eq!(
        collect(b.read(&d, Some(r)).await.unwrap()).await,
        expect[r.first as usize..=r.last as usize]
    );

    let mut aborted = Vec::new();
    for i in (0..3).rev() {
        aborted.push(b.stage(body(&parts[i], 1 << 20)).await.unwrap());
    }
    assert_eq!(staging().await.len(), 3);
    for s in &aborted {
        b.discard(s).await.unwrap();
    }
    assert!(staging().await.is_empty(), "parts left after Abort");

    let copy = b
        .assemble(vec![
            Piece::Published(d.clone(), Some(ByteRange { first: 0, last: 9 })),
            Piece::Published(d.clone(), None),
        ])
        .await
        .unwrap();
    let mut want = expect[..10].to_vec();
    want.extend_from_slice(&expect);
    assert_eq!(
        collect(b.read_staged(&copy, None).await.unwrap()).await,
        want
    );
    b.discard(&copy).await.unwrap();
    assert!(staging().await.is_empty(), "assemble left temporaries");
    b.delete(&d).await.unwrap();
}

/// Many small parts (more than one compose round on GCS).
pub async fn many_parts(b: &dyn Backend, staging: Lister<'_>, count: usize) {
    let parts: Vec<Vec<u8>> = (0..count).map(|i| format!("<{i}>").into_bytes()).collect();
    let mut staged = Vec::new();
    for p in &parts {
        staged.push(b.stage(body(p, 16)).await.unwrap());
    }
    let whole = b
        .assemble(staged.iter().cloned().map(Piece::Staged).collect())
        .await
        .unwrap();
    let d = b
        .publish(whole, at("bkt", "many", NativeMeta::none()))
        .await
        .unwrap();
    for s in &staged {
        b.discard(s).await.unwrap();
    }
    assert!(
        staging().await.is_empty(),
        "temporaries left after Complete"
    );
    assert_eq!(
        collect(b.read(&d, None).await.unwrap()).await,
        parts.concat()
    );
    b.delete(&d).await.unwrap();
}

/// Asserts that `call` fails with `Unavailable` within `limit`.
pub async fn unavailable_within<T>(
    limit: Duration,
    call: impl Future<Output = cloudmux_data::Result<T>>,
) {
    let start = Instant::now();
    let r = tokio::time::timeout(limit * 3, call)
        .await
        .expect("backend call hung");
    let took = start.elapsed();
    match r {
        Err(DataError::Unavailable(_)) => {}
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(_) => panic!("expected Unavailable, got a success"),
    }
    assert!(took <= limit, "took {took:?}, limit {limit:?}");
}

/// Bodies of several upload chunks or blocks (8 MiB each), one ending on a
/// chunk boundary, in odd-sized stream chunks.
pub async fn large_objects(b: &dyn Backend, staging: Lister<'_>) {
    for len in [16 * 1024 * 1024, 17 * 1024 * 1024 + 5] {
        let bytes = data(len, 7);
        let staged = b.stage(body(&bytes, 300_007)).await.unwrap();
        assert_eq!(staged.size, len as u64);
        let d = b
            .publish(staged, at("bkt", "large", NativeMeta::none()))
            .await
            .unwrap();
        assert_eq!(collect(b.read(&d, None).await.unwrap()).await, bytes);
        let r = ByteRange {
            first: 8 * 1024 * 1024 - 3,
            last: 8 * 1024 * 1024 + 3,
        };
        assert_eq!(
            collect(b.read(&d, Some(r)).await.unwrap()).await,
            bytes[r.first as usize..=r.last as usize]
        );
        b.delete(&d).await.unwrap();
    }
    assert!(staging().await.is_empty());
}

/// A copy within the location: one whole published piece assembled (done
/// server-side by the clouds), published under a new key with new metadata.
pub async fn copy_within(b: &dyn Backend, staging: Lister<'_>) {
    let bytes = data(1024 * 1024 + 1, 9);
    let m = meta();
    let s = b.stage(body(&bytes, 65536)).await.unwrap();
    let src = b.publish(s, at("bkt", "src", &m)).await.unwrap();
    let copy = b
        .assemble(vec![Piece::Published(src.clone(), None)])
        .await
        .unwrap();
    assert_eq!(copy.size, bytes.len() as u64);
    let other = NativeMeta {
        content_type: Some("application/x-copy".into()),
        ..NativeMeta::default()
    };
    let dst = b.publish(copy, at("bkt", "dst", &other)).await.unwrap();
    assert_eq!(collect(b.read(&dst, None).await.unwrap()).await, bytes);
    assert!(staging().await.is_empty());

    let newer = b.stage(body(b"new", 3)).await.unwrap();
    let src2 = b.publish(newer, at("bkt", "src", &m)).await.unwrap();
    let stale = b.assemble(vec![Piece::Published(src.clone(), None)]).await;
    assert!(
        matches!(stale, Err(DataError::Stale(_) | DataError::NotFound(_))),
        "copying a replaced source must fail"
    );
    assert!(staging().await.is_empty());
    b.delete(&src2).await.unwrap();
    b.delete(&dst).await.unwrap();
}

/// Keys with `.`/`..` segments, spaces and non-ASCII are stored under
/// exactly their own names (no URL normalization).
pub async fn odd_keys(b: &dyn Backend, names: Lister<'_>) {
    let keys = ["dir/../odd/./k", "./x", "sp ace/ü/%41?#"];
    let mut refs = Vec::new();
    for k in keys {
        let s = b.stage(body(k.as_bytes(), 4)).await.unwrap();
        let d = b
            .publish(s, at("odd", k, NativeMeta::none()))
            .await
            .unwrap();
        assert_eq!(d.locator, format!("odd/{k}"));
        assert_eq!(collect(b.read(&d, None).await.unwrap()).await, k.as_bytes());
        refs.push(d);
    }
    let mut listed = names().await;
    listed.sort();
    let mut want: Vec<String> = keys.iter().map(|k| format!("odd/{k}")).collect();
    want.sort();
    assert_eq!(listed, want);
    for d in &refs {
        b.delete(d).await.unwrap();
    }
    assert!(names().await.is_empty());
}

/// Crash recovery of an overwrite: data published over an existing object
/// but not yet committed is found again by its staged handle, for a small
/// body and for one of more than 8 MiB (staged as several blocks, a resumable
/// upload or a native multipart upload), with its size and a stamp that reads
/// and deletes accept. A staged handle never published there (even one with
/// the same bytes), the replaced data and a missing object are not found.
pub async fn locate_published(b: &dyn Backend, staging: Lister<'_>) {
    let m = meta();
    let none = NativeMeta::none();
    b.create_bucket("loc").await.unwrap();
    let old = b.stage(body(b"the old bytes", 4)).await.unwrap();
    let old_ref = b.publish(old.clone(), at("loc", "k", &m)).await.unwrap();
    assert_eq!(
        b.locate(at("loc", "k", none), &old).await.unwrap(),
        Some(old_ref.clone())
    );
    let mut last = None;
    for (round, len) in [1000, 9 * 1024 * 1024 + 3].into_iter().enumerate() {
        let bytes = data(len, 40 + round as u8);
        let staged = b.stage(body(&bytes, 256 * 1024)).await.unwrap();
        b.persist(&staged).await.unwrap();
        let twin = b.stage(body(&bytes, 256 * 1024)).await.unwrap();
        assert_eq!(
            b.locate(at("loc", "k", none), &staged).await.unwrap(),
            None,
            "{len} bytes: found before publishing"
        );
        let published = b.publish(staged.clone(), at("loc", "k", &m)).await.unwrap();
        let found = b
            .locate(at("loc", "k", none), &staged)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{len} bytes: published data not found"));
        assert_eq!(found, published, "{len} bytes");
        assert_eq!(found.size, len as u64);
        assert_eq!(collect(b.read(&found, None).await.unwrap()).await, bytes);
        assert_eq!(
            b.locate(at("loc", "k", none), &twin).await.unwrap(),
            None,
            "{len} bytes: found for a staged handle never published"
        );
        if round == 0 {
            // Later rounds could reuse the old data's inode on `fs`.
            assert_eq!(
                b.locate(at("loc", "k", none), &old).await.unwrap(),
                None,
                "the replaced data was found"
            );
        }
        assert_eq!(
            b.locate(at("loc", "missing", none), &staged).await.unwrap(),
            None,
            "a missing object was found"
        );
        b.discard(&twin).await.unwrap();
        last = Some(found);
    }
    assert!(staging().await.is_empty(), "staged data left behind");
    let last = last.unwrap();
    b.delete(&last).await.unwrap();
    assert!(matches!(
        b.read(&last, None).await,
        Err(DataError::NotFound(_))
    ));
}

/// Asserts that a listed entry was written between `since` and now (with a
/// minute of slack for clocks and whole-second times).
pub fn written_recently(e: &StagedEntry, since: SystemTime) {
    let slack = Duration::from_secs(60);
    assert!(
        e.modified >= since - slack && e.modified <= SystemTime::now() + slack,
        "{}: modified {:?}, expected about {since:?}",
        e.id,
        e.modified
    );
}

/// Garbage collection's view of the staging area: a small body and one of
/// 9 MiB (several blocks, a resumable upload, or a native multipart upload)
/// are staged and the small one is published; `list_staged` then lists
/// exactly the other staged id (not the published object, nothing outside
/// the staging area) with a recent time, and `discard` of a handle carrying
/// only that id (size 0, stamp 0, as garbage collection makes it) removes
/// it completely, twice without error, leaving the published data intact.
pub async fn staged_listing_for_gc(b: &dyn Backend, staging: Lister<'_>) {
    let since = SystemTime::now();
    assert_eq!(
        b.list_staged().await.unwrap(),
        [],
        "the staging area is not empty to begin with"
    );
    let m = meta();
    b.create_bucket("gc").await.unwrap();
    let small = data(1000, 60);
    let big = data(9 * 1024 * 1024, 61);
    let s_small = b.stage(body(&small, 64 * 1024)).await.unwrap();
    let s_big = b.stage(body(&big, 256 * 1024)).await.unwrap();
    b.persist(&s_big).await.unwrap();
    let published = b.publish(s_small, at("gc", "published", &m)).await.unwrap();

    let listed = b.list_staged().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [s_big.id.as_str()], "list_staged");
    written_recently(&listed[0], since);
    assert_eq!(staging().await.len(), 1, "the raw staging area");

    let id_only = Staged {
        id: listed[0].id.clone(),
        size: 0,
        stamp: 0,
    };
    b.discard(&id_only).await.unwrap();
    assert_eq!(b.list_staged().await.unwrap(), [], "left after discard");
    assert!(staging().await.is_empty(), "discard left staged data");
    assert!(matches!(
        b.read_staged(&s_big, None).await,
        Err(DataError::NotFound(_))
    ));
    b.discard(&id_only).await.unwrap();
    assert!(staging().await.is_empty(), "a second discard left data");

    assert_eq!(
        collect(b.read(&published, None).await.unwrap()).await,
        small
    );
    b.delete(&published).await.unwrap();
    assert_eq!(b.list_staged().await.unwrap(), []);
}

/// With `bucket_match = true` (which `b` must have), a key under any staging
/// prefix, the current one or the legacy `.cloudmux/tmp/`, or under the
/// versions prefix `.cloudmux-versions/`, is refused at publish, naming the
/// prefix, and leaves nothing behind once its staged data is discarded;
/// keys merely near the prefixes are ordinary keys.
pub async fn reserved_keys_are_refused(b: &dyn Backend, staging: Lister<'_>) {
    let current = cloudmux_data::cloud::staging_name();
    let legacy = format!(".cloudmux/tmp/{}", uuid::Uuid::new_v4().hyphenated());
    for key in [
        ".cloudmux-staging/x",
        current.as_str(),
        ".cloudmux/tmp/x",
        legacy.as_str(),
    ] {
        let s = b.stage(body(b"y", 1)).await.unwrap();
        let r = b
            .publish(s.clone(), at("bkt", key, NativeMeta::none()))
            .await;
        match r {
            Err(DataError::Io(e)) => assert!(
                e.to_string().contains("reserved staging prefix"),
                "{key}: {e}"
            ),
            other => panic!("{key}: a key in the staging area was not refused: {other:?}"),
        }
        b.discard(&s).await.unwrap();
    }
    for key in [".cloudmux-versions/x/v", ".cloudmux-versions/"] {
        let s = b.stage(body(b"y", 1)).await.unwrap();
        let r = b
            .publish(s.clone(), at("bkt", key, NativeMeta::none()))
            .await;
        match r {
            Err(DataError::Io(e)) => assert!(
                e.to_string().contains("reserved versions prefix"),
                "{key}: {e}"
            ),
            other => panic!("{key}: a key in the versions area was not refused: {other:?}"),
        }
        b.discard(&s).await.unwrap();
    }
    assert!(staging().await.is_empty(), "a refused key left data");
    assert_eq!(b.list_staged().await.unwrap(), []);
    for key in [
        ".cloudmux-stagingx",
        ".cloudmux/keys/x",
        ".cloudmux-versionsx",
    ] {
        let s = b.stage(body(key.as_bytes(), 3)).await.unwrap();
        let d = b
            .publish(s, at("bkt", key, NativeMeta::none()))
            .await
            .unwrap();
        assert_eq!(d.locator, key);
        assert_eq!(
            collect(b.read(&d, None).await.unwrap()).await,
            key.as_bytes()
        );
        b.delete(&d).await.unwrap();
    }
}

/// Staged data under the legacy prefix (`.cloudmux/tmp/<hyphenated uuid>`,
/// as an older `s3` location staged it) is still listed for garbage
/// collection, read, persisted, assembled, published and discarded. No
/// call of the backend can write such a name (publish refuses it), so
/// `plant` writes it natively.
pub async fn legacy_staging_is_still_read(
    b: &dyn Backend,
    staging: Lister<'_>,
    plant: Planter<'_>,
) {
    assert_eq!(b.list_staged().await.unwrap(), []);
    let plant = |bytes: Vec<u8>| async move {
        let id = format!(".cloudmux/tmp/{}", uuid::Uuid::new_v4().hyphenated());
        let size = bytes.len() as u64;
        plant(id.clone(), bytes).await;
        Staged { id, size, stamp: 0 }
    };
    let (one, two, three) = (data(1000, 80), data(2000, 81), data(10, 82));
    let a = plant(one.clone()).await;
    let c = plant(two.clone()).await;
    let left = plant(three).await;

    let mut listed: Vec<String> = b
        .list_staged()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    listed.sort();
    let mut want = vec![a.id.clone(), c.id.clone(), left.id.clone()];
    want.sort();
    assert_eq!(listed, want, "legacy staged data is listed for GC");

    b.persist(&a).await.unwrap();
    assert_eq!(collect(b.read_staged(&a, None).await.unwrap()).await, one);
    let whole = b
        .assemble(vec![Piece::Staged(a.clone()), Piece::Staged(c.clone())])
        .await
        .unwrap();
    assert!(whole.id.starts_with(cloudmux_data::cloud::STAGING_PREFIX));
    let m = meta();
    let joined = b
        .publish(whole, at("bkt", "legacy-joined", &m))
        .await
        .unwrap();
    assert_eq!(
        collect(b.read(&joined, None).await.unwrap()).await,
        [one.as_slice(), two.as_slice()].concat()
    );
    let published = b.publish(a, at("bkt", "legacy", &m)).await.unwrap();
    assert_eq!(collect(b.read(&published, None).await.unwrap()).await, one);

    b.discard(&c).await.unwrap();
    let id_only = Staged {
        id: left.id.clone(),
        size: 0,
        stamp: 0,
    };
    b.discard(&id_only).await.unwrap();
    b.discard(&id_only).await.unwrap();
    assert_eq!(b.list_staged().await.unwrap(), []);
    assert!(staging().await.is_empty(), "legacy staged data left behind");
    b.delete(&joined).await.unwrap();
    b.delete(&published).await.unwrap();
}

/// A location whose cloud refuses its credentials (HTTP 401 or 403) fails
/// every call with [`DataError::Misconfigured`] naming it, never
/// `Unavailable` (which would be retried and answered 503), and without the
/// secret in the message; `probe` fails too, so its health shows it down.
/// `locate` answers `Unavailable`, so recovery keeps its intent for later.
pub async fn refused_credentials_are_a_configuration_error(
    b: &dyn Backend,
    location: &str,
    secret: &str,
) {
    let misconfigured = |what: &str, e: DataError| {
        let shown = e.to_string();
        assert!(
            matches!(&e, DataError::Misconfigured { location: l, .. } if l == location),
            "{what}: expected Misconfigured at {location}, got {e:?}"
        );
        assert!(shown.contains(&format!("location {location}")), "{shown}");
        assert!(shown.contains("403") || shown.contains("401"), "{shown}");
        assert!(!shown.contains(secret), "{what} shows the secret: {shown}");
    };
    let start = Instant::now();
    misconfigured("probe", b.probe().await.unwrap_err());
    misconfigured("stage", b.stage(body(b"small", 2)).await.unwrap_err());
    let big = data(9 * 1024 * 1024, 90);
    misconfigured(
        "large stage",
        b.stage(body(&big, 1 << 20)).await.unwrap_err(),
    );
    let gone = cloudmux_data::DataRef {
        locator: "bkt/k".into(),
        size: 1,
        stamp: 0,
    };
    misconfigured("read", b.read(&gone, None).await.err().unwrap());
    misconfigured("list_staged", b.list_staged().await.unwrap_err());
    let staged = Staged {
        id: cloudmux_data::cloud::staging_name(),
        size: 1,
        stamp: 0,
    };
    misconfigured("discard", b.discard(&staged).await.unwrap_err());
    match b.locate(at("bkt", "k", NativeMeta::none()), &staged).await {
        Err(DataError::Unavailable(m)) => assert!(m.contains(location), "{m}"),
        other => panic!("locate: expected Unavailable, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "refused calls took {:?}",
        start.elapsed()
    );
}

/// Where a location documents the copy `keep_version` makes of version
/// `version` (third argument) of key `key` (second) in bucket `bucket`
/// (first): the locator it must answer, as the location's own listing
/// shows it.
pub type VersionName<'a> = &'a (dyn Fn(&str, &str, &str) -> String + Sync);

/// Publishes `bytes` as `bucket/key` with `m`.
async fn put(b: &dyn Backend, bucket: &str, key: &str, bytes: &[u8], m: &NativeMeta) -> DataRef {
    let s = b.stage(body(bytes, 64 * 1024)).await.unwrap();
    b.publish(s, at(bucket, key, m)).await.unwrap()
}

/// Reads a reference whole.
async fn read_all(b: &dyn Backend, d: &DataRef) -> Vec<u8> {
    collect(b.read(d, None).await.unwrap()).await
}

/// Noncurrent versions: `keep_version` copies the current data aside under
/// the documented name (`name`), leaving the current data in place; the
/// copy survives an overwrite of the object and reads the old bytes whole
/// and by range; a second keep answers the same copy; `locate_version`
/// finds it and nothing for another version; deleting the copy leaves the
/// current object and deleting the current object leaves the copy; a
/// replaced or deleted reference cannot be kept; odd keys work; the
/// location's own listing of its versions area (`listing`) shows exactly
/// the copies, and garbage collection's listing none of them; bad version
/// names are refused.
pub async fn keep_versions(b: &dyn Backend, name: VersionName<'_>, listing: Lister<'_>) {
    let m = meta();
    let none = NativeMeta::none();
    let v1 = "0123456789abcdef0123456789abcdef";
    let v2 = "null.0123456789abcdef";
    let other = "fedcba9876543210fedcba9876543210";
    b.create_bucket("ver").await.unwrap();
    assert!(listing().await.is_empty(), "the versions area is not empty");
    let key = "docs/report v1.txt";
    let old = data(1024 * 1024 + 7, 100);
    let d1 = put(b, "ver", key, &old, &m).await;
    assert_eq!(
        b.locate_version(at("ver", key, none), v1).await.unwrap(),
        None
    );

    let k1 = b.keep_version(&d1, at("ver", key, &m), v1).await.unwrap();
    assert_eq!(k1.locator, name("ver", key, v1));
    assert_eq!(k1.size, d1.size);
    assert_eq!(
        read_all(b, &d1).await,
        old,
        "keeping moved the current data"
    );
    assert_eq!(read_all(b, &k1).await, old);
    let again = b.keep_version(&d1, at("ver", key, &m), v1).await.unwrap();
    assert_eq!(
        again, k1,
        "a second keep of the same data answers the same copy"
    );
    let unsynced = b
        .keep_version_unsynced(&d1, at("ver", key, &m), v1)
        .await
        .unwrap();
    assert_eq!(
        unsynced, k1,
        "keep_version_unsynced names the copy keep_version names"
    );
    assert_eq!(
        b.locate_version(at("ver", key, none), v1).await.unwrap(),
        Some(k1.clone())
    );
    assert_eq!(
        b.locate_version(at("ver", key, none), other).await.unwrap(),
        None
    );

    let new = data(2000, 101);
    let d2 = put(b, "ver", key, &new, &m).await;
    assert_eq!(read_all(b, &d2).await, new);
    assert_eq!(
        read_all(b, &k1).await,
        old,
        "the copy changed with the object"
    );
    for (first, last) in [
        (0, 0),
        (1000, 300_000),
        (old.len() as u64 - 3, old.len() as u64 - 1),
    ] {
        let got = collect(b.read(&k1, Some(ByteRange { first, last })).await.unwrap()).await;
        assert_eq!(
            got,
            old[first as usize..=last as usize],
            "range {first}-{last}"
        );
    }
    let stale = b.keep_version(&d1, at("ver", key, &m), other).await;
    assert!(
        matches!(stale, Err(DataError::Stale(_) | DataError::NotFound(_))),
        "a replaced reference was kept: {stale:?}"
    );
    let stale = b
        .keep_version_unsynced(&d1, at("ver", key, &m), other)
        .await;
    assert!(
        matches!(stale, Err(DataError::Stale(_) | DataError::NotFound(_))),
        "a replaced reference was kept without a sync: {stale:?}"
    );
    assert_eq!(
        b.locate_version(at("ver", key, none), other).await.unwrap(),
        None,
        "a refused keep left a copy"
    );

    let k2 = b.keep_version(&d2, at("ver", key, &m), v2).await.unwrap();
    assert_eq!(k2.locator, name("ver", key, v2));
    b.delete(&k2).await.unwrap();
    assert_eq!(
        read_all(b, &d2).await,
        new,
        "deleting the copy removed the object"
    );
    assert!(matches!(
        b.read(&k2, None).await,
        Err(DataError::NotFound(_))
    ));
    assert_eq!(
        b.locate_version(at("ver", key, none), v2).await.unwrap(),
        None
    );
    let k2 = b.keep_version(&d2, at("ver", key, &m), v2).await.unwrap();
    b.delete(&d2).await.unwrap();
    assert!(matches!(
        b.read(&d2, None).await,
        Err(DataError::NotFound(_))
    ));
    assert_eq!(
        read_all(b, &k2).await,
        new,
        "deleting the object removed its copy"
    );
    assert_eq!(read_all(b, &k1).await, old);
    let gone = b.keep_version(&d2, at("ver", key, &m), other).await;
    assert!(
        matches!(gone, Err(DataError::NotFound(_))),
        "a deleted reference was kept: {gone:?}"
    );

    let mut copies = vec![k1.clone(), k2.clone()];
    for (i, odd) in ["sp ace/ü/%41?#", "a/b/", "dir/../odd/./k"]
        .into_iter()
        .enumerate()
    {
        let first = format!("first {odd}").into_bytes();
        let d = put(b, "ver", odd, &first, &m).await;
        let k = b.keep_version(&d, at("ver", odd, &m), v1).await.unwrap();
        assert_eq!(k.locator, name("ver", odd, v1), "{odd}");
        let second = data(100 + i, 102);
        let d = put(b, "ver", odd, &second, &m).await;
        assert_eq!(read_all(b, &k).await, first, "{odd}");
        assert_eq!(read_all(b, &d).await, second, "{odd}");
        assert_eq!(
            b.locate_version(at("ver", odd, none), v1).await.unwrap(),
            Some(k.clone()),
            "{odd}"
        );
        b.delete(&d).await.unwrap();
        copies.push(k);
    }

    let mut listed = listing().await;
    listed.sort();
    let mut want: Vec<String> = copies.iter().map(|k| k.locator.clone()).collect();
    want.sort();
    assert_eq!(listed, want, "the versions area as the location lists it");
    assert_eq!(
        b.list_staged().await.unwrap(),
        [],
        "garbage collection sees kept versions"
    );

    for bad in ["", ".x", "a/b", "../x", "ü", &"v".repeat(65)] {
        for r in [
            b.keep_version(&k1, at("ver", key, &m), bad).await.map(Some),
            b.locate_version(at("ver", key, none), bad).await,
        ] {
            match r {
                Err(DataError::Io(e)) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}")
                }
                other => panic!("version {bad:?} was not refused: {other:?}"),
            }
        }
    }

    for k in &copies {
        b.delete(k).await.unwrap();
        assert!(matches!(b.read(k, None).await, Err(DataError::NotFound(_))));
    }
    assert!(
        listing().await.is_empty(),
        "deleted copies are still listed"
    );
}
