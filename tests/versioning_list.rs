//! ListObjectVersions (issue 14) against AWS S3's documented behaviour:
//! versions and delete markers in one ordered answer (keys ascending, each
//! key's versions newest first, `IsLatest` on the first only), `prefix`,
//! `delimiter`, `key-marker` (exclusive) and `version-id-marker`, `max-keys`
//! pages that end inside a key's versions, and `encoding-type=url`.
//!
//! The answers are read as raw XML (see `cloudmux_e2e::versions`): the SDK
//! splits `Version` and `DeleteMarker` into two lists and loses the order.

use aws_sdk_s3::Client;
use cloudmux_e2e::versions::*;
use cloudmux_e2e::*;

async fn server() -> (TestServer, Client) {
    let s = TestServer::start();
    let c = s.client(ALICE);
    create_bucket(&c, "bkt").await;
    (s, c)
}

/// Adds a delete marker to `key` and returns its id.
async fn delete_marker(c: &Client, key: &str) -> String {
    let out = ok(c.delete_object().bucket("bkt").key(key).send().await);
    assert_eq!(out.delete_marker(), Some(true), "DELETE {key}");
    out.version_id().expect("the marker's id").to_owned()
}

/// `(key, version id, is delete marker, is latest)`.
type Row = (String, String, bool, bool);

fn rows(l: &[Listed]) -> Vec<Row> {
    l.iter()
        .map(|e| {
            (
                e.key.clone(),
                e.version_id.clone(),
                e.delete_marker,
                e.is_latest,
            )
        })
        .collect()
}

fn row(key: &str, id: &str, marker: bool, latest: bool) -> Row {
    (key.to_owned(), id.to_owned(), marker, latest)
}

/// One page: its entries, common prefixes and next markers.
struct Page {
    entries: Vec<Listed>,
    prefixes: Vec<String>,
    truncated: bool,
    next: Option<(String, String)>,
}

/// Walks every page of a listing with `query` plus the markers, decoding
/// keys, prefixes and markers with `url_decode_plus` when `url` is set
/// (`encoding-type=url` must then be in `query`).
async fn walk_pages(s: &TestServer, query: &[(&str, &str)], url: bool) -> Vec<Page> {
    let decode = |v: String| if url { url_decode_plus(&v) } else { v };
    let mut pages = Vec::new();
    let mut markers: Option<(String, String)> = None;
    while pages.len() < 10_000 {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        if let Some((k, v)) = &markers {
            q.push(("key-marker", k));
            if !v.is_empty() {
                q.push(("version-id-marker", v));
            }
        }
        let doc = list_versions_raw(s, "bkt", &q).await;
        if url {
            assert_eq!(doc.text_of("EncodingType").as_deref(), Some("url"));
        }
        let mut entries = listed(&doc);
        for e in &mut entries {
            e.key = decode(e.key.clone());
        }
        let prefixes = doc
            .all("CommonPrefixes")
            .into_iter()
            .map(|p| decode(p.text_of("Prefix").expect("CommonPrefixes/Prefix")))
            .collect();
        let truncated = match doc.text_of("IsTruncated").as_deref() {
            Some("true") => true,
            Some("false") => false,
            other => panic!("IsTruncated {other:?}"),
        };
        let next = truncated.then(|| {
            (
                decode(doc.text_of("NextKeyMarker").expect("NextKeyMarker")),
                doc.text_of("NextVersionIdMarker").unwrap_or_default(),
            )
        });
        markers = next.clone();
        pages.push(Page {
            entries,
            prefixes,
            truncated,
            next,
        });
        if !truncated {
            return pages;
        }
    }
    panic!("the listing never ended");
}

#[tokio::test]
async fn versions_and_markers_in_order_with_prefix_delimiter_and_markers() {
    let (s, c) = server().await;
    enable_versioning(&c, "bkt").await;
    let a1 = put_version(&c, "bkt", "a", b"a1").await;
    let a2 = put_version(&c, "bkt", "a", b"a2!").await;
    let b1 = put_version(&c, "bkt", "b/1", b"b1").await;
    let m1 = delete_marker(&c, "b/1").await;
    let b2 = put_version(&c, "bkt", "b/2", b"b2").await;
    let cv = put_version(&c, "bkt", "c", b"c").await;
    let mc = delete_marker(&c, "c").await;
    let all = vec![
        row("a", &a2, false, true),
        row("a", &a1, false, false),
        row("b/1", &m1, true, true),
        row("b/1", &b1, false, false),
        row("b/2", &b2, false, true),
        row("c", &mc, true, true),
        row("c", &cv, false, false),
    ];

    let doc = list_versions_raw(&s, "bkt", &[]).await;
    assert_eq!(rows(&listed(&doc)), all);
    assert_eq!(doc.text_of("Name").as_deref(), Some("bkt"));
    assert_eq!(doc.text_of("MaxKeys").as_deref(), Some("1000"));
    assert_eq!(doc.text_of("IsTruncated").as_deref(), Some("false"));
    assert_eq!(
        doc.child("NextKeyMarker")
            .map(|e| e.text.as_str())
            .unwrap_or(""),
        ""
    );
    for v in doc.all("Version") {
        let key = v.text_of("Key").unwrap();
        let body: &[u8] = match (key.as_str(), v.text_of("VersionId").unwrap()) {
            ("a", id) if id == a1 => b"a1",
            ("a", _) => b"a2!",
            ("b/1", _) => b"b1",
            ("b/2", _) => b"b2",
            _ => b"c",
        };
        assert_eq!(v.text_of("ETag"), Some(etag_of(body)), "{key} ETag");
        assert_eq!(
            v.text_of("Size"),
            Some(body.len().to_string()),
            "{key} Size"
        );
        assert!(v.child("LastModified").is_some(), "{key} LastModified");
    }
    for m in doc.all("DeleteMarker") {
        assert!(
            m.child("LastModified").is_some(),
            "DeleteMarker LastModified"
        );
        assert!(
            m.child("ETag").is_none() && m.child("Size").is_none(),
            "{m:?}"
        );
    }
    // The SDK's view: five versions, two markers.
    let out = ok(c.list_object_versions().bucket("bkt").send().await);
    assert_eq!(out.versions().len(), 5);
    assert_eq!(out.delete_markers().len(), 2);
    let latest: Vec<_> = out
        .versions()
        .iter()
        .filter(|v| v.is_latest() == Some(true))
        .filter_map(|v| v.key())
        .collect();
    assert_eq!(latest, vec!["a", "b/2"]);

    // prefix
    let doc = list_versions_raw(&s, "bkt", &[("prefix", "b/")]).await;
    assert_eq!(rows(&listed(&doc)), all[2..5].to_vec());
    assert_eq!(doc.text_of("Prefix").as_deref(), Some("b/"));
    // delimiter: b/ is one common prefix
    let doc = list_versions_raw(&s, "bkt", &[("delimiter", "/")]).await;
    let expect: Vec<Row> = [&all[0..2], &all[5..7]].concat();
    assert_eq!(rows(&listed(&doc)), expect);
    assert_eq!(doc.texts("CommonPrefixes", "Prefix"), vec!["b/"]);
    assert_eq!(doc.text_of("Delimiter").as_deref(), Some("/"));
    let doc = list_versions_raw(&s, "bkt", &[("prefix", "b/"), ("delimiter", "/")]).await;
    assert_eq!(rows(&listed(&doc)), all[2..5].to_vec());
    assert!(doc.all("CommonPrefixes").is_empty());

    // key-marker alone starts after every version of that key.
    let doc = list_versions_raw(&s, "bkt", &[("key-marker", "b/1")]).await;
    assert_eq!(rows(&listed(&doc)), all[4..].to_vec());
    assert_eq!(doc.text_of("KeyMarker").as_deref(), Some("b/1"));
    let doc = list_versions_raw(&s, "bkt", &[("key-marker", "a0")]).await;
    assert_eq!(
        rows(&listed(&doc)),
        all[2..].to_vec(),
        "a key-marker that is no key"
    );
    // key-marker with version-id-marker starts after that version.
    for (i, id) in [(1, &a2), (2, &a1)] {
        let doc =
            list_versions_raw(&s, "bkt", &[("key-marker", "a"), ("version-id-marker", id)]).await;
        assert_eq!(rows(&listed(&doc)), all[i..].to_vec(), "after a@{id}");
        assert_eq!(doc.text_of("VersionIdMarker").as_deref(), Some(id.as_str()));
    }
    let doc = list_versions_raw(
        &s,
        "bkt",
        &[("key-marker", "b/1"), ("version-id-marker", &m1)],
    )
    .await;
    assert_eq!(
        rows(&listed(&doc)),
        all[3..].to_vec(),
        "after a delete marker"
    );
    // A version-id-marker needs a key-marker.
    let r = s
        .raw("GET", &format!("/bkt?versions&version-id-marker={a1}"))
        .send()
        .await;
    r.assert_error(400, "InvalidArgument");

    // Pages of one with a delimiter: every entry and the common prefix
    // exactly once, in order.
    for max in ["1", "2", "3"] {
        let pages = walk_pages(&s, &[("delimiter", "/"), ("max-keys", max)], false).await;
        let mut seen: Vec<String> = Vec::new();
        for p in &pages {
            let n = p.entries.len() + p.prefixes.len();
            if p.truncated {
                assert_eq!(n.to_string(), max, "a truncated page is full");
            }
            // The XML lists a page's versions before its common prefixes,
            // so their places in the key order come from the key (a stable
            // sort keeps each key's versions in document order).
            let mut page: Vec<(&str, String)> = p
                .entries
                .iter()
                .map(|e| (e.key.as_str(), format!("{}@{}", e.key, e.version_id)))
                .chain(
                    p.prefixes
                        .iter()
                        .map(|cp| (cp.as_str(), format!("prefix {cp}"))),
                )
                .collect();
            page.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            seen.extend(page.into_iter().map(|(_, s)| s));
        }
        let expect = vec![
            format!("a@{a2}"),
            format!("a@{a1}"),
            "prefix b/".to_owned(),
            format!("c@{mc}"),
            format!("c@{cv}"),
        ];
        assert_eq!(seen, expect, "delimiter pages of {max}");
    }
}

#[tokio::test]
async fn pages_that_end_inside_a_keys_versions_lose_and_repeat_nothing() {
    let (s, c) = server().await;
    const KEYS: usize = 5;
    let key = |i: usize| format!("key-{i}");
    // key-0 starts with a null version written before versioning was on.
    let mut written: Vec<Vec<(String, bool)>> = vec![Vec::new(); KEYS];
    put_object(&c, "bkt", &key(0), b"null version").await;
    written[0].push(("null".to_owned(), false));
    enable_versioning(&c, "bkt").await;
    // Four versions per key, written round by round across the keys; the
    // last of key-2 is a delete marker.
    for round in 0..4 {
        for (i, w) in written.iter_mut().enumerate() {
            if i == 0 && round == 0 {
                continue;
            }
            if i == 2 && round == 3 {
                w.push((delete_marker(&c, &key(i)).await, true));
            } else {
                let body = format!("{} round {round}", key(i));
                w.push((
                    put_version(&c, "bkt", &key(i), body.as_bytes()).await,
                    false,
                ));
            }
        }
    }
    let mut expect: Vec<Row> = Vec::new();
    for (i, w) in written.iter().enumerate() {
        for (n, (id, marker)) in w.iter().rev().enumerate() {
            expect.push(row(&key(i), id, *marker, n == 0));
        }
    }
    assert_eq!(expect.len(), KEYS * 4);
    assert_eq!(rows(&list_all_versions(&s, "bkt", None).await), expect);

    for max in [1usize, 2, 3, 4, 5, 7, 19, 20, 21, 1000] {
        let m = max.to_string();
        let pages = walk_pages(&s, &[("max-keys", &m)], false).await;
        let got: Vec<Row> = pages.iter().flat_map(|p| rows(&p.entries)).collect();
        assert_eq!(
            got, expect,
            "pages of {max}: exact order, no repeat, no gap"
        );
        assert_eq!(
            pages.len(),
            expect.len().div_ceil(max).max(1),
            "pages of {max}"
        );
        for (n, p) in pages.iter().enumerate() {
            if p.truncated {
                assert_eq!(p.entries.len(), max, "page {n} of {max} is full");
                let (k, _) = p.next.as_ref().expect("markers");
                assert!(!k.is_empty(), "page {n} of {max}: NextKeyMarker");
            }
        }
    }
    // With max-keys 4 the first page ends on key-0's null version, so the
    // next request carries version-id-marker=null.
    let pages = walk_pages(&s, &[("max-keys", "4")], false).await;
    assert_eq!(
        pages[0].next,
        Some((key(0), "null".to_owned())),
        "a page ending on the null version"
    );
}

#[tokio::test]
async fn encoding_type_url_round_trips_odd_keys() {
    let (s, c) = server().await;
    enable_versioning(&c, "bkt").await;
    let keys = [
        "with space",
        "plus+sign",
        "uni/gr\u{fc}\u{df}e \u{20ac}",
        "uni/\u{65e5}\u{672c}",
        "amp&lt<gt>",
        "100%",
    ];
    let mut expect: Vec<Row> = Vec::new();
    let mut sorted = keys.to_vec();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for k in sorted {
        let v1 = put_version(&c, "bkt", k, b"1").await;
        let v2 = put_version(&c, "bkt", k, b"2").await;
        expect.push(row(k, &v2, false, true));
        expect.push(row(k, &v1, false, false));
    }
    let doc = list_versions_raw(&s, "bkt", &[("encoding-type", "url")]).await;
    assert_eq!(doc.text_of("EncodingType").as_deref(), Some("url"));
    let got: Vec<Row> = rows(&listed(&doc))
        .into_iter()
        .map(|(k, v, m, l)| (url_decode_plus(&k), v, m, l))
        .collect();
    assert_eq!(got, expect);

    // Paged one by one, the encoded NextKeyMarker decodes to a key that
    // resumes exactly after itself.
    for max in ["1", "3"] {
        let pages = walk_pages(&s, &[("encoding-type", "url"), ("max-keys", max)], true).await;
        let got: Vec<Row> = pages.iter().flat_map(|p| rows(&p.entries)).collect();
        assert_eq!(got, expect, "url-encoded pages of {max}");
    }
    // Common prefixes and the Prefix are encoded too.
    let pages = walk_pages(&s, &[("encoding-type", "url"), ("delimiter", "/")], true).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].prefixes, vec!["uni/"]);
    let doc = list_versions_raw(
        &s,
        "bkt",
        &[("encoding-type", "url"), ("prefix", "uni/gr\u{fc}")],
    )
    .await;
    assert_eq!(
        url_decode_plus(&doc.text_of("Prefix").unwrap_or_default()),
        "uni/gr\u{fc}"
    );
    assert_eq!(listed(&doc).len(), 2);
}
