//! ListObjects (v1), ListObjectsV2 and ListObjectVersions.

use std::collections::BTreeSet;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use cloudmux_e2e::*;

async fn put_many(client: &Client, bucket: &str, keys: &[String]) {
    // Sequential on purpose: this file tests listings, not write concurrency
    // (objects.rs has the concurrent-write tests).
    for k in keys {
        ok(client
            .put_object()
            .bucket(bucket)
            .key(k)
            .body(ByteStream::from(k.clone().into_bytes()))
            .send()
            .await);
    }
}

async fn setup(keys: &[&str]) -> TestServer {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_bucket(&alice, "lst").await;
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    put_many(&alice, "lst", &keys).await;
    s
}

const BASIC: [&str; 9] = [
    "a.txt",
    "b/1.txt",
    "b/2.txt",
    "b/c/3.txt",
    "c.txt",
    "d/4.txt",
    "d/5.txt",
    "e",
    "e/6.txt",
];

// ---------------------------------------------------------------- v1

#[tokio::test]
async fn v1_prefix_delimiter_and_owner() {
    let s = setup(&BASIC).await;
    let alice_id = owner_id(&s, ALICE).await;
    let r = s.raw("GET", "/lst?delimiter=%2F").send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let x = r.xml();
    assert_eq!(x.name, "ListBucketResult");
    assert_eq!(x.text_of("Name").as_deref(), Some("lst"));
    assert_eq!(x.text_of("Delimiter").as_deref(), Some("/"));
    assert_eq!(x.text_of("IsTruncated").as_deref(), Some("false"));
    assert_eq!(x.text_of("MaxKeys").as_deref(), Some("1000"));
    assert_eq!(x.texts("Contents", "Key"), vec!["a.txt", "c.txt", "e"]);
    assert_eq!(x.texts("CommonPrefixes", "Prefix"), vec!["b/", "d/", "e/"]);
    for c in x.all("Contents") {
        // v1 always includes the owner.
        assert_eq!(
            c.text_at("Owner/ID"),
            Some(alice_id.clone()),
            "v1 Contents/Owner/ID"
        );
        assert_eq!(c.text_at("Owner/DisplayName").as_deref(), Some("alice"));
        let key = c.text_of("Key").expect("key");
        assert_eq!(c.text_of("ETag"), Some(etag_of(key.as_bytes())));
        assert_eq!(c.text_of("Size"), Some(key.len().to_string()));
        assert_eq!(c.text_of("StorageClass").as_deref(), Some("STANDARD"));
        let lm = c.text_of("LastModified").expect("LastModified");
        assert!(lm.contains('T') && lm.ends_with('Z'), "{lm}");
    }

    let r = s.raw("GET", "/lst?prefix=b%2F&delimiter=%2F").send().await;
    let x = r.xml();
    assert_eq!(x.text_of("Prefix").as_deref(), Some("b/"));
    assert_eq!(x.texts("Contents", "Key"), vec!["b/1.txt", "b/2.txt"]);
    assert_eq!(x.texts("CommonPrefixes", "Prefix"), vec!["b/c/"]);

    let r = s.raw("GET", "/lst?prefix=d").send().await;
    assert_eq!(r.xml().texts("Contents", "Key"), vec!["d/4.txt", "d/5.txt"]);

    let r = s.raw("GET", "/lst?prefix=zzz").send().await;
    let x = r.xml();
    assert!(x.all("Contents").is_empty());
    assert_eq!(x.text_of("IsTruncated").as_deref(), Some("false"));
}

#[tokio::test]
async fn v1_max_keys_marker_and_next_marker() {
    let s = setup(&BASIC).await;
    // Without delimiter: truncated, no NextMarker; the client continues from the last key.
    let r = s.raw("GET", "/lst?max-keys=2").send().await;
    let x = r.xml();
    assert_eq!(x.texts("Contents", "Key"), vec!["a.txt", "b/1.txt"]);
    assert_eq!(x.text_of("IsTruncated").as_deref(), Some("true"));
    assert_eq!(x.text_of("MaxKeys").as_deref(), Some("2"));
    assert!(
        x.child("NextMarker").is_none(),
        "v1 NextMarker only with a delimiter: {}",
        r.text()
    );

    let r = s
        .raw("GET", "/lst?max-keys=2&marker=b%2F1.txt")
        .send()
        .await;
    let x = r.xml();
    assert_eq!(x.text_of("Marker").as_deref(), Some("b/1.txt"));
    assert_eq!(x.texts("Contents", "Key"), vec!["b/2.txt", "b/c/3.txt"]);

    // With delimiter: NextMarker is the last key or common prefix returned.
    let r = s.raw("GET", "/lst?max-keys=2&delimiter=%2F").send().await;
    let x = r.xml();
    assert_eq!(x.texts("Contents", "Key"), vec!["a.txt"]);
    assert_eq!(x.texts("CommonPrefixes", "Prefix"), vec!["b/"]);
    assert_eq!(x.text_of("IsTruncated").as_deref(), Some("true"));
    assert_eq!(x.text_of("NextMarker").as_deref(), Some("b/"));

    let r = s
        .raw("GET", "/lst?max-keys=2&delimiter=%2F&marker=b%2F")
        .send()
        .await;
    let x = r.xml();
    assert_eq!(x.texts("Contents", "Key"), vec!["c.txt"]);
    assert_eq!(x.texts("CommonPrefixes", "Prefix"), vec!["d/"]);
    assert_eq!(x.text_of("NextMarker").as_deref(), Some("d/"));

    let r = s
        .raw("GET", "/lst?max-keys=2&delimiter=%2F&marker=d%2F")
        .send()
        .await;
    let x = r.xml();
    assert_eq!(x.texts("Contents", "Key"), vec!["e"]);
    assert_eq!(x.texts("CommonPrefixes", "Prefix"), vec!["e/"]);
    assert_eq!(x.text_of("IsTruncated").as_deref(), Some("false"));
    assert!(
        x.child("NextMarker").is_none(),
        "no NextMarker on the last page"
    );
}

#[tokio::test]
async fn max_keys_zero() {
    let s = setup(&BASIC).await;
    for path in ["/lst?max-keys=0", "/lst?list-type=2&max-keys=0"] {
        let r = s.raw("GET", path).send().await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let x = r.xml();
        assert!(x.all("Contents").is_empty(), "{path}");
        assert!(x.all("CommonPrefixes").is_empty(), "{path}");
        assert_eq!(x.text_of("MaxKeys").as_deref(), Some("0"), "{path}");
        assert_eq!(x.text_of("IsTruncated").as_deref(), Some("false"), "{path}");
        if path.contains("list-type=2") {
            assert_eq!(x.text_of("KeyCount").as_deref(), Some("0"));
        }
    }
}

#[tokio::test]
async fn invalid_max_keys() {
    let s = setup(&BASIC).await;
    for path in [
        "/lst?max-keys=-1",
        "/lst?max-keys=abc",
        "/lst?list-type=2&max-keys=-5",
    ] {
        let r = s.raw("GET", path).send().await;
        r.assert_error(400, "InvalidArgument");
    }
    // More than 1000 is capped at 1000, not an error.
    let r = s.raw("GET", "/lst?max-keys=5000").send().await;
    assert_eq!(r.status, 200);
    assert_eq!(r.xml().all("Contents").len(), BASIC.len());
}

// ---------------------------------------------------------------- v2

#[tokio::test]
async fn v2_fields_and_fetch_owner() {
    let s = setup(&BASIC).await;
    let alice_id = owner_id(&s, ALICE).await;
    let r = s.raw("GET", "/lst?list-type=2&delimiter=%2F").send().await;
    let x = r.xml();
    assert_eq!(x.name, "ListBucketResult");
    assert_eq!(
        x.text_of("KeyCount").as_deref(),
        Some("6"),
        "KeyCount counts keys and prefixes"
    );
    assert_eq!(x.texts("Contents", "Key"), vec!["a.txt", "c.txt", "e"]);
    assert_eq!(x.texts("CommonPrefixes", "Prefix"), vec!["b/", "d/", "e/"]);
    for c in x.all("Contents") {
        assert!(
            c.child("Owner").is_none(),
            "v2 has no Owner without fetch-owner"
        );
    }

    let r = s
        .raw("GET", "/lst?list-type=2&fetch-owner=true")
        .send()
        .await;
    let x = r.xml();
    assert_eq!(x.text_of("KeyCount").as_deref(), Some("9"));
    for c in x.all("Contents") {
        assert_eq!(c.text_at("Owner/ID"), Some(alice_id.clone()));
        assert_eq!(c.text_at("Owner/DisplayName").as_deref(), Some("alice"));
    }

    // SDK view.
    let out = ok(s
        .client(ALICE)
        .list_objects_v2()
        .bucket("lst")
        .fetch_owner(true)
        .prefix("b/")
        .send()
        .await);
    assert_eq!(out.key_count(), Some(3));
    for o in out.contents() {
        let owner = o.owner().expect("owner with fetch-owner");
        assert_eq!(owner.id(), Some(alice_id.as_str()));
        assert_eq!(owner.display_name(), Some("alice"));
    }
    let out = ok(s.client(ALICE).list_objects_v2().bucket("lst").send().await);
    assert!(out.contents().iter().all(|o| o.owner().is_none()));
}

#[tokio::test]
async fn v2_continuation_and_start_after() {
    let s = setup(&BASIC).await;
    let r = s.raw("GET", "/lst?list-type=2&max-keys=3").send().await;
    let x = r.xml();
    assert_eq!(
        x.texts("Contents", "Key"),
        vec!["a.txt", "b/1.txt", "b/2.txt"]
    );
    assert_eq!(x.text_of("IsTruncated").as_deref(), Some("true"));
    assert_eq!(x.text_of("KeyCount").as_deref(), Some("3"));
    let token = x
        .text_of("NextContinuationToken")
        .expect("NextContinuationToken");
    assert!(!token.is_empty());

    let r = s
        .raw(
            "GET",
            &format!(
                "/lst?list-type=2&max-keys=3&continuation-token={}",
                encode_query(&token)
            ),
        )
        .send()
        .await;
    let x = r.xml();
    assert_eq!(
        x.text_of("ContinuationToken"),
        Some(token.clone()),
        "token echoed"
    );
    assert_eq!(
        x.texts("Contents", "Key"),
        vec!["b/c/3.txt", "c.txt", "d/4.txt"]
    );

    let r = s
        .raw("GET", "/lst?list-type=2&start-after=d%2F4.txt")
        .send()
        .await;
    let x = r.xml();
    assert_eq!(x.text_of("StartAfter").as_deref(), Some("d/4.txt"));
    assert_eq!(x.texts("Contents", "Key"), vec!["d/5.txt", "e", "e/6.txt"]);
    assert_eq!(x.text_of("IsTruncated").as_deref(), Some("false"));
    assert!(x.child("NextContinuationToken").is_none());

    // start-after between keys, not itself a key.
    let r = s
        .raw("GET", "/lst?list-type=2&start-after=b%2F1.txtz")
        .send()
        .await;
    assert_eq!(
        r.xml().texts("Contents", "Key")[0],
        "b/2.txt",
        "start-after need not be an existing key"
    );

    // Invalid token.
    let r = s
        .raw(
            "GET",
            "/lst?list-type=2&continuation-token=definitely-not-a-token%21",
        )
        .send()
        .await;
    r.assert_error(400, "InvalidArgument");
}

#[tokio::test]
async fn encoding_type_url() {
    let keys = [
        "with space/a b.txt",
        "plus+sign",
        "ünïcødé/ключ",
        "plain",
        "tab\tkey",
        "pct%41",
    ];
    let s = setup(&keys).await;
    for (api, path) in [
        ("v1", "/lst?encoding-type=url"),
        ("v2", "/lst?list-type=2&encoding-type=url"),
    ] {
        let r = s.raw("GET", path).send().await;
        assert_eq!(r.status, 200, "{}", r.text());
        let x = r.xml();
        assert_eq!(x.text_of("EncodingType").as_deref(), Some("url"), "{api}");
        let raw_keys = x.texts("Contents", "Key");
        for k in &raw_keys {
            assert!(
                k.is_ascii() && !k.contains(' ') && !k.contains('\t'),
                "{api}: encoded key {k:?} must be ASCII without spaces"
            );
        }
        let mut decoded: Vec<String> = raw_keys.iter().map(|k| url_decode_plus(k)).collect();
        decoded.sort();
        let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        expected.sort();
        assert_eq!(
            decoded, expected,
            "{api}: keys decode (unquote_plus) to the originals"
        );
    }

    // Prefixes and delimiters are encoded too.
    let r = s
        .raw(
            "GET",
            "/lst?list-type=2&encoding-type=url&delimiter=%2F&prefix=with%20space%2F",
        )
        .send()
        .await;
    let x = r.xml();
    assert_eq!(
        x.text_of("Prefix").map(|p| url_decode_plus(&p)).as_deref(),
        Some("with space/")
    );
    assert!(!x.text_of("Prefix").unwrap_or_default().contains(' '));
    let r = s
        .raw("GET", "/lst?encoding-type=url&delimiter=%2F")
        .send()
        .await;
    let x = r.xml();
    let mut prefixes: Vec<String> = x
        .texts("CommonPrefixes", "Prefix")
        .iter()
        .map(|p| {
            assert!(p.is_ascii() && !p.contains(' '), "encoded prefix {p:?}");
            url_decode_plus(p)
        })
        .collect();
    prefixes.sort();
    assert_eq!(prefixes, vec!["with space/", "ünïcødé/"]);

    // Invalid encoding type.
    let r = s.raw("GET", "/lst?encoding-type=base64").send().await;
    r.assert_error(400, "InvalidArgument");
}

#[tokio::test]
async fn list_errors() {
    let s = setup(&["x"]).await;
    let r = s.raw("GET", "/nosuchbucket").send().await;
    r.assert_error(404, "NoSuchBucket");
    let r = s.raw("GET", "/nosuchbucket?list-type=2").send().await;
    r.assert_error(404, "NoSuchBucket");
    let r = s.raw("GET", "/lst").signed_by(BOB).send().await;
    r.assert_error(403, "AccessDenied");
    let r = s.raw("GET", "/lst?list-type=2").anonymous().send().await;
    r.assert_error(403, "AccessDenied");
}

// ---------------------------------------------------------------- versions

#[tokio::test]
async fn list_object_versions_unversioned() {
    let s = setup(&BASIC).await;
    let out = ok(s
        .client(ALICE)
        .list_object_versions()
        .bucket("lst")
        .send()
        .await);
    let keys: Vec<&str> = out.versions().iter().filter_map(|v| v.key()).collect();
    assert_eq!(keys, BASIC.to_vec());
    for v in out.versions() {
        assert_eq!(v.version_id(), Some("null"), "{:?}", v.key());
        assert_eq!(v.is_latest(), Some(true), "{:?}", v.key());
        let key = v.key().expect("key");
        assert_eq!(v.e_tag(), Some(etag_of(key.as_bytes()).as_str()));
        assert_eq!(v.size(), Some(key.len() as i64));
    }
    assert!(out.delete_markers().is_empty());

    let r = s
        .raw("GET", "/lst?versions&prefix=b%2F&delimiter=%2F")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let x = r.xml();
    assert_eq!(x.name, "ListVersionsResult");
    assert_eq!(x.texts("Version", "Key"), vec!["b/1.txt", "b/2.txt"]);
    assert_eq!(x.texts("Version", "VersionId"), vec!["null", "null"]);
    assert_eq!(x.texts("Version", "IsLatest"), vec!["true", "true"]);
    assert_eq!(x.texts("CommonPrefixes", "Prefix"), vec!["b/c/"]);
}

#[tokio::test]
async fn get_bucket_versioning_unversioned() {
    // A never-versioned bucket answers an empty VersioningConfiguration (no Status).
    let s = setup(&["x"]).await;
    let v = ok(s
        .client(ALICE)
        .get_bucket_versioning()
        .bucket("lst")
        .send()
        .await);
    assert!(v.status().is_none(), "{:?}", v.status());
}

// ---------------------------------------------------------------- pagination vs model

fn model_keys() -> Vec<String> {
    let mut keys = BTreeSet::new();
    for a in 0..5 {
        for b in 0..6 {
            for c in 0..9 {
                keys.insert(format!("dir{a}/sub{b}/file{c}"));
            }
        }
        keys.insert(format!("dir{a}"));
        keys.insert(format!("dir{a}-x"));
        keys.insert(format!("dir{a}.x"));
        keys.insert(format!("dir{a}/"));
        keys.insert(format!("dir{a}/sub0/"));
    }
    for i in 0..12 {
        keys.insert(format!("top{i:02}"));
    }
    keys.insert("dir10/z".into());
    keys.insert("~last".into());
    keys.into_iter().collect()
}

/// Entries (key or common prefix) a listing must return, in order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    Key(String),
    Prefix(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Key(k) | Entry::Prefix(k) => k,
        }
    }
}

fn model(keys: &[String], prefix: &str, delimiter: Option<&str>, after: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for k in keys {
        let Some(rest) = k.strip_prefix(prefix) else {
            continue;
        };
        let entry = match delimiter.and_then(|d| rest.find(d).map(|i| (i, d))) {
            Some((i, d)) => Entry::Prefix(format!("{prefix}{}", &rest[..i + d.len()])),
            None => Entry::Key(k.clone()),
        };
        if entry.name() <= after {
            continue;
        }
        if out.last() != Some(&entry) {
            out.push(entry);
        }
    }
    out
}

async fn page_v1(
    c: &Client,
    prefix: &str,
    delimiter: Option<&str>,
    max: i32,
    marker: Option<String>,
) -> (Vec<Entry>, bool, Option<String>) {
    let out = ok(c
        .list_objects()
        .bucket("model")
        .prefix(prefix)
        .set_delimiter(delimiter.map(str::to_owned))
        .max_keys(max)
        .set_marker(marker)
        .send()
        .await);
    let mut entries: Vec<Entry> = out
        .contents()
        .iter()
        .map(|o| Entry::Key(o.key().expect("key").to_owned()))
        .chain(
            out.common_prefixes()
                .iter()
                .map(|p| Entry::Prefix(p.prefix().expect("prefix").to_owned())),
        )
        .collect();
    entries.sort_by(|a, b| a.name().cmp(b.name()));
    (
        entries,
        out.is_truncated().unwrap_or(false),
        out.next_marker().map(str::to_owned),
    )
}

async fn page_v2(
    c: &Client,
    prefix: &str,
    delimiter: Option<&str>,
    max: i32,
    token: Option<String>,
) -> (Vec<Entry>, bool, Option<String>, i32) {
    let out = ok(c
        .list_objects_v2()
        .bucket("model")
        .prefix(prefix)
        .set_delimiter(delimiter.map(str::to_owned))
        .max_keys(max)
        .set_continuation_token(token)
        .send()
        .await);
    let mut entries: Vec<Entry> = out
        .contents()
        .iter()
        .map(|o| Entry::Key(o.key().expect("key").to_owned()))
        .chain(
            out.common_prefixes()
                .iter()
                .map(|p| Entry::Prefix(p.prefix().expect("prefix").to_owned())),
        )
        .collect();
    entries.sort_by(|a, b| a.name().cmp(b.name()));
    (
        entries,
        out.is_truncated().unwrap_or(false),
        out.next_continuation_token().map(str::to_owned),
        out.key_count().unwrap_or(-1),
    )
}

#[tokio::test]
async fn pagination_matches_model() {
    let keys = model_keys();
    assert!(keys.len() > 250);
    let s = TestServer::start();
    let c = s.client(ALICE);
    create_bucket(&c, "model").await;
    put_many(&c, "model", &keys).await;

    let combos: [(&str, Option<&str>); 6] = [
        ("", None),
        ("", Some("/")),
        ("dir1/", Some("/")),
        ("dir1/", None),
        ("dir", Some("/")),
        ("dir2/sub", Some("/")),
    ];
    for (prefix, delimiter) in combos {
        let expected = model(&keys, prefix, delimiter, "");
        for page in [1usize, 2, 7, 1000] {
            let ctx = format!("prefix={prefix:?} delimiter={delimiter:?} max-keys={page}");
            // v1
            let mut got: Vec<Entry> = Vec::new();
            let mut marker: Option<String> = None;
            let mut pages = 0;
            loop {
                pages += 1;
                assert!(pages <= expected.len() + 2, "v1 {ctx}: too many pages");
                let (entries, truncated, next) =
                    page_v1(&c, prefix, delimiter, page as i32, marker.clone()).await;
                let after = marker.clone().unwrap_or_default();
                let want: Vec<Entry> = model(&keys, prefix, delimiter, &after)
                    .into_iter()
                    .take(page)
                    .collect();
                assert_eq!(entries, want, "v1 {ctx} page {pages} after {after:?}");
                let more = model(&keys, prefix, delimiter, &after).len() > page;
                assert_eq!(truncated, more, "v1 {ctx} page {pages}: IsTruncated");
                got.extend(entries.iter().cloned());
                if !truncated {
                    assert!(
                        next.is_none() || delimiter.is_some(),
                        "v1 {ctx}: NextMarker without delimiter"
                    );
                    break;
                }
                let last = entries
                    .last()
                    .expect("a truncated page is not empty")
                    .name()
                    .to_owned();
                if delimiter.is_some() {
                    assert_eq!(next.as_deref(), Some(last.as_str()), "v1 {ctx}: NextMarker");
                } else {
                    assert!(next.is_none(), "v1 {ctx}: NextMarker only with a delimiter");
                }
                marker = Some(last);
            }
            assert_eq!(got, expected, "v1 {ctx}: all pages");

            // v2
            let mut got: Vec<Entry> = Vec::new();
            let mut token: Option<String> = None;
            let mut pages = 0;
            loop {
                pages += 1;
                assert!(pages <= expected.len() + 2, "v2 {ctx}: too many pages");
                let (entries, truncated, next, key_count) =
                    page_v2(&c, prefix, delimiter, page as i32, token.clone()).await;
                let start = got.len();
                let want: Vec<Entry> = expected.iter().skip(start).take(page).cloned().collect();
                assert_eq!(entries, want, "v2 {ctx} page {pages}");
                assert_eq!(key_count as usize, entries.len(), "v2 {ctx}: KeyCount");
                assert_eq!(
                    truncated,
                    expected.len() > start + page,
                    "v2 {ctx}: IsTruncated"
                );
                got.extend(entries);
                if !truncated {
                    assert!(
                        next.is_none(),
                        "v2 {ctx}: no NextContinuationToken at the end"
                    );
                    break;
                }
                token = Some(next.expect("NextContinuationToken when truncated"));
            }
            assert_eq!(got, expected, "v2 {ctx}: all pages");
        }
    }

    // start-after with pagination.
    let after = "dir2/sub3/file4";
    let expected = model(&keys, "", None, after);
    let mut got = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ok(c
            .list_objects_v2()
            .bucket("model")
            .start_after(after)
            .max_keys(7)
            .set_continuation_token(token.clone())
            .send()
            .await);
        got.extend(
            out.contents()
                .iter()
                .map(|o| Entry::Key(o.key().expect("key").to_owned())),
        );
        if out.is_truncated() != Some(true) {
            break;
        }
        token = out.next_continuation_token().map(str::to_owned);
        assert!(token.is_some());
    }
    assert_eq!(got, expected, "start-after + continuation");
}
