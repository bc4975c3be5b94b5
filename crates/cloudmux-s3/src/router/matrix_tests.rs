//! The router against itself and against `docs/s3-compatibility.md`: every
//! variant is in [`Endpoint::all`], the classifier returns nothing else, and
//! the matrix lists exactly the operations the router answers, each request
//! line classified as its row says. `scripts/check-compat-matrix.py` checks
//! the rows' tests.

use std::collections::BTreeSet;

use http::Method;

use super::*;

/// The compatibility matrix, compiled in so that editing it reruns these tests.
const MATRIX: &str = include_str!("../../../../docs/s3-compatibility.md");

/// This file's router, read for the names of the variants and the query
/// parameters the classifier looks at.
const ROUTER_SOURCE: &str = include_str!("../router.rs");

/// The "Amazon S3" actions of the API reference: the operations of
/// `aws-sdk-s3` 1.157 and the four deprecated ones the reference still lists
/// (GetBucketLifecycle, PutBucketLifecycle, GetBucketNotification,
/// PutBucketNotification).
const AWS_OPERATIONS: &[&str] = &[
    "AbortMultipartUpload",
    "CompleteMultipartUpload",
    "CopyObject",
    "CreateBucket",
    "CreateBucketMetadataConfiguration",
    "CreateBucketMetadataTableConfiguration",
    "CreateMultipartUpload",
    "CreateSession",
    "DeleteBucket",
    "DeleteBucketAnalyticsConfiguration",
    "DeleteBucketCors",
    "DeleteBucketEncryption",
    "DeleteBucketIntelligentTieringConfiguration",
    "DeleteBucketInventoryConfiguration",
    "DeleteBucketLifecycle",
    "DeleteBucketMetadataConfiguration",
    "DeleteBucketMetadataTableConfiguration",
    "DeleteBucketMetricsConfiguration",
    "DeleteBucketOwnershipControls",
    "DeleteBucketPolicy",
    "DeleteBucketReplication",
    "DeleteBucketTagging",
    "DeleteBucketWebsite",
    "DeleteObject",
    "DeleteObjectAnnotation",
    "DeleteObjectTagging",
    "DeleteObjects",
    "DeletePublicAccessBlock",
    "GetBucketAbac",
    "GetBucketAccelerateConfiguration",
    "GetBucketAcl",
    "GetBucketAnalyticsConfiguration",
    "GetBucketCors",
    "GetBucketEncryption",
    "GetBucketIntelligentTieringConfiguration",
    "GetBucketInventoryConfiguration",
    "GetBucketLifecycle",
    "GetBucketLifecycleConfiguration",
    "GetBucketLocation",
    "GetBucketLogging",
    "GetBucketMetadataConfiguration",
    "GetBucketMetadataTableConfiguration",
    "GetBucketMetricsConfiguration",
    "GetBucketNotification",
    "GetBucketNotificationConfiguration",
    "GetBucketOwnershipControls",
    "GetBucketPolicy",
    "GetBucketPolicyStatus",
    "GetBucketReplication",
    "GetBucketRequestPayment",
    "GetBucketTagging",
    "GetBucketVersioning",
    "GetBucketWebsite",
    "GetObject",
    "GetObjectAcl",
    "GetObjectAnnotation",
    "GetObjectAttributes",
    "GetObjectLegalHold",
    "GetObjectLockConfiguration",
    "GetObjectRetention",
    "GetObjectTagging",
    "GetObjectTorrent",
    "GetPublicAccessBlock",
    "HeadBucket",
    "HeadObject",
    "ListBucketAnalyticsConfigurations",
    "ListBucketIntelligentTieringConfigurations",
    "ListBucketInventoryConfigurations",
    "ListBucketMetricsConfigurations",
    "ListBuckets",
    "ListDirectoryBuckets",
    "ListMultipartUploads",
    "ListObjectAnnotations",
    "ListObjectVersions",
    "ListObjects",
    "ListObjectsV2",
    "ListParts",
    "PutBucketAbac",
    "PutBucketAccelerateConfiguration",
    "PutBucketAcl",
    "PutBucketAnalyticsConfiguration",
    "PutBucketCors",
    "PutBucketEncryption",
    "PutBucketIntelligentTieringConfiguration",
    "PutBucketInventoryConfiguration",
    "PutBucketLifecycle",
    "PutBucketLifecycleConfiguration",
    "PutBucketLogging",
    "PutBucketMetricsConfiguration",
    "PutBucketNotification",
    "PutBucketNotificationConfiguration",
    "PutBucketOwnershipControls",
    "PutBucketPolicy",
    "PutBucketReplication",
    "PutBucketRequestPayment",
    "PutBucketTagging",
    "PutBucketVersioning",
    "PutBucketWebsite",
    "PutObject",
    "PutObjectAcl",
    "PutObjectAnnotation",
    "PutObjectLegalHold",
    "PutObjectLockConfiguration",
    "PutObjectRetention",
    "PutObjectTagging",
    "PutPublicAccessBlock",
    "RenameObject",
    "RestoreObject",
    "SelectObjectContent",
    "UpdateBucketMetadataAnnotationTableConfiguration",
    "UpdateBucketMetadataInventoryTableConfiguration",
    "UpdateBucketMetadataJournalTableConfiguration",
    "UpdateObjectEncryption",
    "UploadPart",
    "UploadPartCopy",
    "WriteGetObjectResponse",
];

/// Requests S3 documents outside its actions list, which the matrix lists too.
const OTHER_REQUESTS: &[&str] = &["OPTIONS object", "PostObject"];

/// One row of an operation table of the matrix.
#[derive(Debug)]
struct Row {
    op: String,
    request: String,
    status: String,
    notes: String,
}

/// The rows of every table of the matrix whose first header is `Operation`.
fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in MATRIX.lines() {
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.first() == Some(&"Operation") {
            in_table = true;
            continue;
        }
        if !in_table || cells.iter().all(|c| c.chars().all(|ch| ch == '-')) {
            continue;
        }
        assert_eq!(cells.len(), 7, "a row of the matrix has 7 cells: {line}");
        rows.push(Row {
            op: cells[0].trim_end_matches(" (directory buckets)").to_owned(),
            request: cells[1].trim_matches('`').to_owned(),
            status: cells[2].to_owned(),
            notes: cells[3].to_owned(),
        });
    }
    rows
}

/// Classifies a request line of the matrix: `METHOD /{Bucket}/{Key}?a&b=1`,
/// with ` + x-amz-copy-source` when that header selects the operation.
fn classify_line(line: &str) -> Endpoint {
    let (line, copy) = match line.strip_suffix(" + x-amz-copy-source") {
        Some(l) => (l, true),
        None => (line, false),
    };
    let (method, target) = line.split_once(' ').expect("METHOD PATH");
    let method: Method = method.parse().expect("a method");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let bucket = path.contains("{Bucket}").then_some("bucket");
    let key = path.contains("{Key}").then_some("key");
    let params: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let list_type = params
        .iter()
        .find(|(k, _)| *k == "list-type")
        .map(|(_, v)| *v);
    Endpoint::classify(
        &method,
        bucket,
        key,
        |k| params.iter().any(|(n, _)| *n == k),
        list_type,
        copy,
    )
}

/// The variant name of an endpoint, without its subresource.
fn variant(e: &Endpoint) -> String {
    let debug = format!("{e:?}");
    debug.split('(').next().unwrap_or_default().to_owned()
}

#[test]
fn all_lists_every_variant() {
    let body = ROUTER_SOURCE
        .split("pub enum Endpoint {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("the Endpoint enum in router.rs");
    let declared: BTreeSet<String> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
        .map(|l| {
            l.split(['(', ',', ' ', '{'])
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(declared.len() > 40, "parsed variants: {declared:?}");
    let listed: BTreeSet<String> = Endpoint::all().iter().map(variant).collect();
    let missing: Vec<_> = declared.difference(&listed).collect();
    assert!(missing.is_empty(), "Endpoint::all() lacks {missing:?}");
}

#[test]
fn the_classifier_returns_only_listed_endpoints() {
    let all = Endpoint::all();
    let mut keys: BTreeSet<&str> = BUCKET_CONFIG.iter().chain(UNSUPPORTED).copied().collect();
    for piece in ROUTER_SOURCE.split("has(\"").skip(1) {
        if let Some((key, _)) = piece.split_once('"') {
            keys.insert(key);
        }
    }
    let keys: Vec<&str> = keys.into_iter().collect();
    let mut sets: Vec<Vec<&str>> = vec![vec![]];
    for (i, a) in keys.iter().enumerate() {
        sets.push(vec![a]);
        for b in &keys[i + 1..] {
            sets.push(vec![a, b]);
        }
    }
    let methods = ["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH"];
    let places = [(None, None), (Some("b"), None), (Some("b"), Some("k"))];
    for m in methods {
        let method: Method = m.parse().unwrap();
        for (bucket, key) in places {
            for set in &sets {
                for list_type in [None, Some("2")] {
                    for copy in [false, true] {
                        let ep = Endpoint::classify(
                            &method,
                            bucket,
                            key,
                            |k| set.contains(&k),
                            list_type,
                            copy,
                        );
                        assert!(
                            all.contains(&ep),
                            "{m} {bucket:?}/{key:?}?{set:?} gives {ep:?}, missing from Endpoint::all()"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_matrix_has_one_row_per_operation() {
    let rows = rows();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for r in &rows {
        if !seen.insert(r.op.as_str()) {
            problems.push(format!("{}: two rows", r.op));
        }
        if !matches!(r.status.as_str(), "supported" | "partly" | "not") {
            problems.push(format!("{}: status {:?}", r.op, r.status));
        }
    }
    let expected: BTreeSet<&str> = AWS_OPERATIONS
        .iter()
        .chain(OTHER_REQUESTS)
        .copied()
        .collect();
    for op in expected.difference(&seen) {
        problems.push(format!("{op}: no row"));
    }
    for op in seen.difference(&expected) {
        problems.push(format!("{op}: a row for no S3 operation"));
    }
    assert!(
        problems.is_empty(),
        "docs/s3-compatibility.md:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_matrix_lists_exactly_what_the_router_answers() {
    let answered: BTreeSet<&str> = Endpoint::all()
        .into_iter()
        .flat_map(Endpoint::s3_operations)
        .copied()
        .collect();
    let rows = rows();
    let listed: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.status == "supported" || r.status == "partly")
        .map(|r| r.op.as_str())
        .collect();
    let mut problems = Vec::new();
    for op in answered.difference(&listed) {
        problems.push(format!(
            "{op}: the router answers it, the matrix does not say supported or partly"
        ));
    }
    for op in listed.difference(&answered) {
        problems.push(format!(
            "{op}: listed as supported or partly, the router does not answer it"
        ));
    }
    assert!(
        problems.is_empty(),
        "docs/s3-compatibility.md:\n{}",
        problems.join("\n")
    );
}

#[test]
fn request_lines_classify_as_their_rows_say() {
    let mut problems = Vec::new();
    for r in rows() {
        if r.request == "—" {
            if r.status != "not" {
                problems.push(format!("{}: no request line for a {} row", r.op, r.status));
            }
            continue;
        }
        let ep = classify_line(&r.request);
        let ok = match r.status.as_str() {
            "not" => match ep {
                Endpoint::NotImplemented(_) => r.notes.starts_with("501 NotImplemented"),
                Endpoint::MethodNotAllowed => r.notes.starts_with("405 MethodNotAllowed"),
                _ => false,
            },
            _ => ep.s3_operations().contains(&r.op.as_str()),
        };
        if !ok {
            problems.push(format!(
                "{}: `{}` is {ep:?}, the row says {} ({})",
                r.op, r.request, r.status, r.notes
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/s3-compatibility.md:\n{}",
        problems.join("\n")
    );
}
