//! Bucket operations: ListBuckets, CreateBucket (names, locations, conflicts),
//! HeadBucket, GetBucketLocation, DeleteBucket.

use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use cloudmux_e2e::*;

#[tokio::test]
async fn list_buckets_shows_owner_and_only_own_buckets() {
    let s = TestServer::start();
    let (alice, bob, carol) = (s.client(ALICE), s.client(BOB), s.client(CAROL));
    create_bucket(&alice, "alice-b2").await;
    create_bucket(&alice, "alice-b1").await;
    create_bucket(&bob, "bob-b1").await;
    create_bucket(&carol, "carol-b1").await;

    let mut ids = Vec::new();
    for (client, account, expected) in [
        (&alice, ALICE, vec!["alice-b1", "alice-b2"]),
        (&bob, BOB, vec!["bob-b1"]),
        (&carol, CAROL, vec!["carol-b1"]),
    ] {
        let out = ok(client.list_buckets().send().await);
        let names: Vec<&str> = out.buckets().iter().filter_map(|b| b.name()).collect();
        assert_eq!(
            names, expected,
            "{} sees exactly its own buckets, sorted",
            account.name
        );
        for b in out.buckets() {
            assert!(
                b.creation_date().is_some(),
                "bucket {:?} has a CreationDate",
                b.name()
            );
        }
        let owner = out.owner().expect("ListBuckets has an Owner");
        assert_eq!(
            owner.display_name(),
            Some(account.name),
            "Owner/DisplayName"
        );
        let id = owner.id().expect("Owner/ID").to_owned();
        assert!(!id.is_empty(), "Owner/ID is not empty");
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each account has its own canonical id");

    // The id is stable across calls.
    assert_eq!(owner_id(&s, ALICE).await, owner_id(&s, ALICE).await);
}

#[tokio::test]
async fn list_buckets_raw_xml() {
    let s = TestServer::start();
    create_bucket(&s.client(ALICE), "raw-list").await;
    let r = s.raw("GET", "/").send().await;
    r.assert_success();
    assert!(r.header("x-amz-request-id").is_some());
    let x = r.xml();
    assert_eq!(x.name, "ListAllMyBucketsResult");
    assert_eq!(x.text_at("Owner/DisplayName").as_deref(), Some("alice"));
    assert!(x.text_at("Owner/ID").is_some_and(|s| !s.is_empty()));
    let buckets = x.path("Buckets").expect("Buckets element");
    assert_eq!(buckets.texts("Bucket", "Name"), vec!["raw-list"]);
    assert!(buckets.all("Bucket")[0].text_of("CreationDate").is_some());
    assert_eq!(
        buckets.all("Bucket")[0].text_of("BucketRegion").as_deref(),
        Some(REGION),
        "BucketRegion is the server's region"
    );
}

#[tokio::test]
async fn list_buckets_pages_and_prefix() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    for name in ["page-a", "page-b", "page-c", "page-d", "page-e", "other-x"] {
        create_bucket(&alice, name).await;
    }
    let names = |out: &aws_sdk_s3::operation::list_buckets::ListBucketsOutput| -> Vec<String> {
        out.buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_owned))
            .collect()
    };
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = ok(alice
            .list_buckets()
            .prefix("page-")
            .max_buckets(2)
            .set_continuation_token(token.clone())
            .send()
            .await);
        assert_eq!(out.prefix(), Some("page-"));
        assert!(names(&out).len() <= 2);
        seen.extend(names(&out));
        pages += 1;
        match out.continuation_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["page-a", "page-b", "page-c", "page-d", "page-e"]);
    assert_eq!(pages, 3);

    let all = ok(alice.list_buckets().send().await);
    assert_eq!(names(&all).len(), 6);
    assert!(all.continuation_token().is_none() && all.prefix().is_none());
    let elsewhere = ok(alice.list_buckets().bucket_region("eu-west-3").send().await);
    assert!(names(&elsewhere).is_empty(), "no bucket in another region");
    let here = ok(alice.list_buckets().bucket_region(REGION).send().await);
    assert_eq!(names(&here).len(), 6);
    assert!(
        here.buckets()
            .iter()
            .all(|b| b.bucket_region() == Some(REGION)),
        "{:?}",
        here.buckets()
    );

    assert_sdk_err(
        alice.list_buckets().max_buckets(0).send().await,
        400,
        "InvalidArgument",
    );
    assert_sdk_err(
        alice.list_buckets().max_buckets(10_001).send().await,
        400,
        "InvalidArgument",
    );
    assert_sdk_err(
        alice.list_buckets().continuation_token("%%%").send().await,
        400,
        "InvalidArgument",
    );
}

#[tokio::test]
async fn list_buckets_empty_for_new_account() {
    let s = TestServer::start();
    create_bucket(&s.client(ALICE), "only-alice").await;
    let out = ok(s.client(BOB).list_buckets().send().await);
    assert!(
        out.buckets().is_empty(),
        "bob sees no buckets: {:?}",
        out.buckets()
    );
}

#[tokio::test]
async fn create_bucket_rejects_invalid_names() {
    let s = TestServer::start();
    let long = "a".repeat(64);
    let invalid = [
        "ab",             // too short
        long.as_str(),    // too long
        "MyBucket",       // uppercase
        "my_bucket",      // underscore
        "192.168.5.4",    // IP address form
        "-leading-dash",  // leading dash
        "trailing-dash-", // trailing dash
        ".leading-dot",   // leading dot
        "trailing-dot.",  // trailing dot
        "double..dot",    // adjacent dots
        "xn--punycode",   // reserved prefix
        "name-s3alias",   // reserved suffix
    ];
    for name in invalid {
        let r = s.raw("PUT", &format!("/{name}")).send().await;
        assert_eq!(
            (r.status, r.code().as_deref()),
            (400, Some("InvalidBucketName")),
            "CreateBucket {name:?}: body {:?}",
            r.text()
        );
    }
    let out = ok(s.client(ALICE).list_buckets().send().await);
    assert!(
        out.buckets().is_empty(),
        "no bucket was created by invalid names: {:?}",
        out.buckets()
    );
    // Nothing for these names either.
    for name in ["ab", "my_bucket", "xn--punycode"] {
        let r = s.raw("HEAD", &format!("/{name}")).send().await;
        assert_ne!(r.status, 200, "HEAD {name:?} after rejected create");
    }
}

#[tokio::test]
async fn create_bucket_accepts_edge_valid_names() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    let long = "b".repeat(63);
    let valid = [
        "abc",
        long.as_str(),
        "my.bucket-1",
        "1bucket9",
        "a-b.c-d",
        "xn-single-dash",
    ];
    for name in valid {
        ok(alice.create_bucket().bucket(name).send().await);
        ok(alice.head_bucket().bucket(name).send().await);
    }
    let out = ok(alice.list_buckets().send().await);
    let mut names: Vec<&str> = out.buckets().iter().filter_map(|b| b.name()).collect();
    names.sort();
    let mut expected = valid.to_vec();
    expected.sort();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn create_bucket_in_named_location() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    ok(alice
        .create_bucket()
        .bucket("in-second")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from("second"))
                .build(),
        )
        .send()
        .await);
    let loc = ok(alice.get_bucket_location().bucket("in-second").send().await);
    assert_eq!(
        loc.location_constraint().map(|l| l.as_str()),
        Some("second"),
        "GetBucketLocation returns the configured location name"
    );

    // Raw XML too.
    let r = s.raw("GET", "/in-second?location").send().await;
    r.assert_success();
    let x = r.xml();
    assert_eq!(x.name, "LocationConstraint");
    assert_eq!(x.text, "second");

    // Objects of that bucket are stored in that location's directory.
    let body = random_bytes(70_000);
    put_object(&alice, "in-second", "obj", &body).await;
    assert_eq!(get_object(&alice, "in-second", "obj").await, body);
    let files2 = walk(&s.data_dir().join("objects2"))
        .into_iter()
        .filter(|p| p.is_file())
        .count();
    assert!(
        files2 > 0,
        "data of a bucket in `second` lands under objects2/"
    );
}

#[tokio::test]
async fn default_location_bucket() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_bucket(&alice, "in-default").await;
    let loc = ok(alice
        .get_bucket_location()
        .bucket("in-default")
        .send()
        .await);
    // us-east-1 buckets report an empty LocationConstraint on AWS; the default
    // location's own name is also acceptable.
    let v = loc
        .location_constraint()
        .map(|l| l.as_str().to_owned())
        .unwrap_or_default();
    assert!(
        ["", "local", "us-east-1"].contains(&v.as_str()),
        "default bucket location {v:?}"
    );
}

#[tokio::test]
async fn create_bucket_unknown_location() {
    let s = TestServer::start();
    let body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                <LocationConstraint>nowhere</LocationConstraint></CreateBucketConfiguration>";
    let r = s.raw("PUT", "/bad-location").body(body).send().await;
    r.assert_error(400, "InvalidLocationConstraint");
    let r = s.raw("HEAD", "/bad-location").send().await;
    assert_eq!(r.status, 404, "bucket not created");

    // Via the SDK as well.
    let res = s
        .client(ALICE)
        .create_bucket()
        .bucket("bad-location2")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from("atlantis"))
                .build(),
        )
        .send()
        .await;
    assert_sdk_err(res, 400, "InvalidLocationConstraint");
}

#[tokio::test]
async fn create_bucket_malformed_configuration() {
    let s = TestServer::start();
    let r = s
        .raw("PUT", "/malformed-cfg")
        .body("<CreateBucketConfiguration><LocationConstraint>")
        .send()
        .await;
    r.assert_error(400, "MalformedXML");
    let r = s.raw("HEAD", "/malformed-cfg").send().await;
    assert_eq!(r.status, 404, "bucket not created");
}

#[tokio::test]
async fn create_bucket_conflicts() {
    let s = TestServer::start();
    let (alice, bob) = (s.client(ALICE), s.client(BOB));
    create_bucket(&alice, "taken").await;
    put_object(&alice, "taken", "keep", b"keep me").await;

    assert_sdk_err(
        alice.create_bucket().bucket("taken").send().await,
        409,
        "BucketAlreadyOwnedByYou",
    );
    assert_sdk_err(
        bob.create_bucket().bucket("taken").send().await,
        409,
        "BucketAlreadyExists",
    );
    // Nothing changed: still alice's, still holding its object.
    let out = ok(bob.list_buckets().send().await);
    assert!(out.buckets().is_empty(), "bob owns nothing");
    assert_eq!(get_object(&alice, "taken", "keep").await, b"keep me");
}

#[tokio::test]
async fn head_bucket_statuses() {
    let s = TestServer::start();
    let (alice, bob) = (s.client(ALICE), s.client(BOB));
    create_bucket(&alice, "headed").await;

    ok(alice.head_bucket().bucket("headed").send().await);
    assert_sdk_status(
        alice.head_bucket().bucket("missing-bucket").send().await,
        404,
    );
    assert_sdk_status(bob.head_bucket().bucket("headed").send().await, 403);

    let r = s.raw("HEAD", "/headed").send().await;
    assert_eq!(r.status, 200);
    assert!(r.header("x-amz-request-id").is_some());
    let r = s.raw("HEAD", "/missing-bucket").send().await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty(), "HEAD 404 has no body");
    assert!(r.header("x-amz-request-id").is_some());
    let r = s.raw("HEAD", "/headed").signed_by(BOB).send().await;
    assert_eq!(r.status, 403);
    assert!(r.body.is_empty(), "HEAD 403 has no body");
}

#[tokio::test]
async fn get_bucket_location_errors() {
    let s = TestServer::start();
    create_bucket(&s.client(ALICE), "loc-owned").await;
    assert_sdk_err(
        s.client(ALICE)
            .get_bucket_location()
            .bucket("no-such-bucket")
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
    assert_sdk_err(
        s.client(BOB)
            .get_bucket_location()
            .bucket("loc-owned")
            .send()
            .await,
        403,
        "AccessDenied",
    );
}

#[tokio::test]
async fn delete_bucket_statuses() {
    let s = TestServer::start();
    let (alice, bob) = (s.client(ALICE), s.client(BOB));
    create_bucket(&alice, "to-delete").await;
    create_bucket(&alice, "not-empty").await;
    put_object(&alice, "not-empty", "k", b"v").await;

    // 204 on success (raw, to see the status).
    let r = s.raw("DELETE", "/to-delete").send().await;
    assert_eq!(r.status, 204, "DeleteBucket status; body {:?}", r.text());
    assert!(r.header("x-amz-request-id").is_some());
    assert_sdk_status(alice.head_bucket().bucket("to-delete").send().await, 404);

    // Not empty.
    assert_sdk_err(
        alice.delete_bucket().bucket("not-empty").send().await,
        409,
        "BucketNotEmpty",
    );
    assert_eq!(get_object(&alice, "not-empty", "k").await, b"v");

    // Missing.
    assert_sdk_err(
        alice.delete_bucket().bucket("to-delete").send().await,
        404,
        "NoSuchBucket",
    );

    // Another account.
    assert_sdk_err(
        bob.delete_bucket().bucket("not-empty").send().await,
        403,
        "AccessDenied",
    );
    ok(alice.head_bucket().bucket("not-empty").send().await);

    // After emptying, the delete works and the name can be reused.
    ok(alice
        .delete_object()
        .bucket("not-empty")
        .key("k")
        .send()
        .await);
    ok(alice.delete_bucket().bucket("not-empty").send().await);
    let out = ok(alice.list_buckets().send().await);
    assert!(out.buckets().is_empty(), "{:?}", out.buckets());
    create_bucket(&bob, "not-empty").await;
    let out = ok(bob.list_buckets().send().await);
    assert_eq!(out.buckets().len(), 1);
}

#[tokio::test]
async fn bucket_survives_restart() {
    let mut s = TestServer::start();
    create_bucket(&s.client(ALICE), "durable").await;
    put_object(&s.client(ALICE), "durable", "k", b"persisted").await;
    s.restart();
    let alice = s.client(ALICE);
    let out = ok(alice.list_buckets().send().await);
    let names: Vec<&str> = out.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, vec!["durable"]);
    assert_eq!(get_object(&alice, "durable", "k").await, b"persisted");
}
