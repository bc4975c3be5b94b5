//! Bucket policies: PutBucketPolicy/GetBucketPolicy/DeleteBucketPolicy,
//! validation, evaluation against ACLs, conditions, Block Public Access and
//! GetBucketPolicyStatus, with the real SDK and anonymous raw requests.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ObjectCannedAcl, PublicAccessBlockConfiguration};
use cloudmux_e2e::*;

/// A one-statement policy document.
fn statement(effect: &str, principal: &str, action: &str, resource: &str, cond: &str) -> String {
    let cond = if cond.is_empty() {
        String::new()
    } else {
        format!(r#","Condition":{cond}"#)
    };
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"s1","Effect":"{effect}","Principal":{principal},"Action":"{action}","Resource":"{resource}"{cond}}}]}}"#
    )
}

fn public_read(bucket: &str) -> String {
    statement(
        "Allow",
        r#""*""#,
        "s3:GetObject",
        &format!("arn:aws:s3:::{bucket}/*"),
        "",
    )
}

async fn put_policy(s: &TestServer, bucket: &str, doc: &str) {
    ok(s.client(ALICE)
        .put_bucket_policy()
        .bucket(bucket)
        .policy(doc)
        .send()
        .await);
}

async fn setup(s: &TestServer, bucket: &str, keys: &[&str]) {
    create_bucket(&s.client(ALICE), bucket).await;
    for k in keys {
        put_object(&s.client(ALICE), bucket, k, k.as_bytes()).await;
    }
}

#[tokio::test]
async fn put_get_delete_round_trip_survives_restart() {
    let mut s = TestServer::start();
    setup(&s, "pol", &[]).await;
    let alice = s.client(ALICE);
    assert_sdk_err(
        alice.get_bucket_policy().bucket("pol").send().await,
        404,
        "NoSuchBucketPolicy",
    );
    assert_sdk_err(
        alice.get_bucket_policy_status().bucket("pol").send().await,
        404,
        "NoSuchBucketPolicy",
    );
    let doc = public_read("pol");
    put_policy(&s, "pol", &doc).await;
    let got = ok(alice.get_bucket_policy().bucket("pol").send().await);
    assert_eq!(got.policy(), Some(doc.as_str()));
    let raw = s.raw("GET", "/pol?policy").send().await;
    raw.assert_success();
    assert_eq!(
        raw.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(raw.text(), doc);

    s.restart();
    let alice = s.client(ALICE);
    let got = ok(alice.get_bucket_policy().bucket("pol").send().await);
    assert_eq!(got.policy(), Some(doc.as_str()));

    let del = s.raw("DELETE", "/pol?policy").send().await;
    assert_eq!(del.status, 204);
    let again = s.raw("DELETE", "/pol?policy").send().await;
    assert_eq!(again.status, 204, "deleting no policy is 204 too");
    assert_sdk_err(
        alice.get_bucket_policy().bucket("pol").send().await,
        404,
        "NoSuchBucketPolicy",
    );
    assert_sdk_err(
        alice.get_bucket_policy().bucket("missing").send().await,
        404,
        "NoSuchBucket",
    );
}

#[tokio::test]
async fn malformed_policies_are_refused() {
    let s = TestServer::start();
    setup(&s, "mal", &[]).await;
    let res = "arn:aws:s3:::mal/*";
    let cases = [
        ("not json".to_owned(), "invalid Json"),
        ("[1,2]".to_owned(), "invalid Json"),
        (statement("Maybe", r#""*""#, "s3:GetObject", res, ""), "Invalid effect"),
        (
            statement("Allow", r#""*""#, "s3:GetObject", "arn:aws:s3:::other/*", ""),
            "Policy has invalid resource",
        ),
        (
            statement("Allow", r#""*""#, "s3:FlyAway", res, ""),
            "Policy has invalid action",
        ),
        (
            statement("Allow", r#"{"AWS":"nobody-here"}"#, "s3:GetObject", res, ""),
            "Invalid principal in policy",
        ),
        (
            statement(
                "Allow",
                r#""*""#,
                "s3:GetObject",
                res,
                r#"{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}"#,
            ),
            "Invalid Condition type",
        ),
        (
            statement(
                "Allow",
                r#""*""#,
                "s3:GetObject",
                res,
                r#"{"StringEquals":{"aws:NoSuchKey":"x"}}"#,
            ),
            "invalid condition key",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[]}"#.to_owned(),
            "Invalid Statement",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::mal/*","Bogus":1}]}"#.to_owned(),
            "Unknown field Bogus",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::mal/*"}]}"#.to_owned(),
            "Missing required field Principal",
        ),
    ];
    for (doc, msg) in cases {
        let r = s.raw("PUT", "/mal?policy").body(doc.clone()).send().await;
        r.assert_error(400, "MalformedPolicy");
        let message = r.xml().text_of("Message").unwrap_or_default();
        assert!(
            message.contains(msg),
            "{doc}: message {message:?} lacks {msg:?}"
        );
    }
    let big = format!(
        r#"{{"Version":"2012-10-17","Id":"{}","Statement":{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::mal/*"}}}}"#,
        "x".repeat(21 * 1024)
    );
    s.raw("PUT", "/mal?policy")
        .body(big)
        .send()
        .await
        .assert_error(400, "PolicyTooLarge");
    assert_sdk_err(
        s.client(ALICE)
            .get_bucket_policy()
            .bucket("mal")
            .send()
            .await,
        404,
        "NoSuchBucketPolicy",
    );
}

#[tokio::test]
async fn only_the_owner_manages_the_policy() {
    let s = TestServer::start();
    setup(&s, "own", &[]).await;
    let everything = statement("Allow", r#""*""#, "s3:*", "arn:aws:s3:::own", "");
    put_policy(&s, "own", &everything).await;
    let bob = s.client(BOB);
    assert_sdk_err(
        bob.get_bucket_policy().bucket("own").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.put_bucket_policy()
            .bucket("own")
            .policy(public_read("own"))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.delete_bucket_policy().bucket("own").send().await,
        403,
        "AccessDenied",
    );
    s.raw("GET", "/own?policy")
        .anonymous()
        .send()
        .await
        .assert_error(403, "AccessDenied");
    // A Deny of everything to everyone still leaves the owner able to
    // manage the policy.
    let deny_all = statement("Deny", r#""*""#, "s3:*", "arn:aws:s3:::own", "");
    put_policy(&s, "own", &deny_all).await;
    assert_sdk_err(
        s.client(ALICE).list_objects_v2().bucket("own").send().await,
        403,
        "AccessDenied",
    );
    ok(s.client(ALICE)
        .delete_bucket_policy()
        .bucket("own")
        .send()
        .await);
    ok(s.client(ALICE).list_objects_v2().bucket("own").send().await);
}

#[tokio::test]
async fn public_read_policy_lets_anonymous_read_but_not_write() {
    let s = TestServer::start();
    setup(&s, "pub", &["a.txt"]).await;
    s.raw("GET", "/pub/a.txt")
        .anonymous()
        .send()
        .await
        .assert_error(403, "AccessDenied");
    put_policy(&s, "pub", &public_read("pub")).await;
    let r = s.raw("GET", "/pub/a.txt").anonymous().send().await;
    r.assert_success();
    assert_eq!(r.text(), "a.txt");
    assert_eq!(
        s.raw("HEAD", "/pub/a.txt").anonymous().send().await.status,
        200
    );
    // Without s3:ListBucket a missing key is 403, not 404.
    s.raw("GET", "/pub/missing")
        .anonymous()
        .send()
        .await
        .assert_error(403, "AccessDenied");
    s.raw("PUT", "/pub/new.txt")
        .anonymous()
        .body("x")
        .send()
        .await
        .assert_error(403, "AccessDenied");
    s.raw("GET", "/pub?list-type=2")
        .anonymous()
        .send()
        .await
        .assert_error(403, "AccessDenied");
    s.raw("DELETE", "/pub/a.txt")
        .anonymous()
        .send()
        .await
        .assert_error(403, "AccessDenied");
    // Signed requests of other accounts match "*" as well.
    assert_eq!(get_object(&s.client(CAROL), "pub", "a.txt").await, b"a.txt");
}

#[tokio::test]
async fn deny_beats_an_acl_grant_and_allow_is_scoped() {
    let s = TestServer::start();
    setup(
        &s,
        "share",
        &["shared/doc", "shared/deep/x", "private/doc", "top"],
    )
    .await;
    let alice = s.client(ALICE);
    for k in ["shared/doc", "private/doc", "top"] {
        ok(alice
            .put_object_acl()
            .bucket("share")
            .key(k)
            .acl(ObjectCannedAcl::AuthenticatedRead)
            .send()
            .await);
    }
    let bob = s.client(BOB);
    assert_eq!(
        get_object(&bob, "share", "private/doc").await,
        b"private/doc"
    );
    let bob_id = owner_id(&s, BOB).await;
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[
          {{"Sid":"deny","Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::bob:root"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::share/private/*"}},
          {{"Sid":"allow","Effect":"Allow","Principal":{{"AWS":["{bob_id}"]}},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::share/shared/*"]}}
        ]}}"#
    );
    put_policy(&s, "share", &doc).await;
    assert_sdk_err(
        bob.get_object()
            .bucket("share")
            .key("private/doc")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_eq!(get_object(&bob, "share", "shared/doc").await, b"shared/doc");
    assert_eq!(
        get_object(&bob, "share", "shared/deep/x").await,
        b"shared/deep/x"
    );
    // "top" is still readable through its ACL; the Allow grants nothing else.
    assert_eq!(get_object(&bob, "share", "top").await, b"top");
    ok(alice
        .put_object_acl()
        .bucket("share")
        .key("top")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await);
    assert_sdk_err(
        bob.get_object().bucket("share").key("top").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.put_object()
            .bucket("share")
            .key("shared/new")
            .body(ByteStream::from_static(b"n"))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        s.client(CAROL)
            .get_object()
            .bucket("share")
            .key("shared/deep/x")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    // The owner keeps its own access where the Deny does not name it.
    assert_eq!(
        get_object(&alice, "share", "private/doc").await,
        b"private/doc"
    );
}

#[tokio::test]
async fn allow_lets_another_account_write_and_copy() {
    let s = TestServer::start();
    setup(&s, "drop", &["src"]).await;
    let doc = r#"{"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Principal":{"AWS":"bob"},"Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::drop/inbox/*"},
      {"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::drop/src"}
    ]}"#;
    put_policy(&s, "drop", doc).await;
    let bob = s.client(BOB);
    put_object(&bob, "drop", "inbox/b1", b"from bob").await;
    assert_eq!(get_object(&bob, "drop", "inbox/b1").await, b"from bob");
    ok(bob
        .copy_object()
        .bucket("drop")
        .key("inbox/copy")
        .copy_source("drop/src")
        .send()
        .await);
    assert_sdk_err(
        bob.copy_object()
            .bucket("drop")
            .key("outside")
            .copy_source("drop/src")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.delete_object()
            .bucket("drop")
            .key("inbox/b1")
            .send()
            .await,
        403,
        "AccessDenied",
    );
}

#[tokio::test]
async fn list_bucket_with_a_prefix_condition() {
    let s = TestServer::start();
    setup(&s, "lst", &["home/bob/a", "home/carol/b", "root"]).await;
    let doc = statement(
        "Allow",
        r#"{"AWS":"arn:aws:iam::bob:root"}"#,
        "s3:ListBucket",
        "arn:aws:s3:::lst",
        r#"{"StringLike":{"s3:prefix":["home/bob/*","home/bob"]},"StringEquals":{"s3:delimiter":"/"}}"#,
    );
    put_policy(&s, "lst", &doc).await;
    let bob = s.client(BOB);
    let out = ok(bob
        .list_objects_v2()
        .bucket("lst")
        .prefix("home/bob/")
        .delimiter("/")
        .send()
        .await);
    let keys: Vec<_> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["home/bob/a"]);
    assert_sdk_err(
        bob.list_objects_v2()
            .bucket("lst")
            .prefix("home/carol/")
            .delimiter("/")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.list_objects_v2()
            .bucket("lst")
            .prefix("home/bob/")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.list_objects().bucket("lst").send().await,
        403,
        "AccessDenied",
    );
}

#[tokio::test]
async fn ip_address_conditions() {
    let s = TestServer::start();
    setup(&s, "ipb", &["o"]).await;
    let here = statement(
        "Allow",
        r#""*""#,
        "s3:GetObject",
        "arn:aws:s3:::ipb/*",
        r#"{"IpAddress":{"aws:SourceIp":"127.0.0.1/32"}}"#,
    );
    put_policy(&s, "ipb", &here).await;
    s.raw("GET", "/ipb/o")
        .anonymous()
        .send()
        .await
        .assert_success();
    let status = ok(s
        .client(ALICE)
        .get_bucket_policy_status()
        .bucket("ipb")
        .send()
        .await);
    assert_eq!(
        status.policy_status().and_then(|p| p.is_public()),
        Some(false),
        "an Allow pinned to a /32 is not public"
    );
    let elsewhere = statement(
        "Allow",
        r#""*""#,
        "s3:GetObject",
        "arn:aws:s3:::ipb/*",
        r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
    );
    put_policy(&s, "ipb", &elsewhere).await;
    s.raw("GET", "/ipb/o")
        .anonymous()
        .send()
        .await
        .assert_error(403, "AccessDenied");
    let deny_not_here = statement(
        "Deny",
        r#""*""#,
        "s3:*",
        "arn:aws:s3:::ipb/*",
        r#"{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}"#,
    );
    put_policy(&s, "ipb", &deny_not_here).await;
    assert_sdk_err(
        s.client(ALICE)
            .get_object()
            .bucket("ipb")
            .key("o")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    let deny_plain_http = statement(
        "Deny",
        r#""*""#,
        "s3:GetObject",
        "arn:aws:s3:::ipb/*",
        r#"{"Bool":{"aws:SecureTransport":"false"}}"#,
    );
    put_policy(&s, "ipb", &deny_plain_http).await;
    assert_sdk_err(
        s.client(ALICE)
            .get_object()
            .bucket("ipb")
            .key("o")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    ok(s.client(ALICE).list_objects_v2().bucket("ipb").send().await);
}

#[tokio::test]
async fn block_public_policy_and_restrict_public_buckets() {
    let s = TestServer::start();
    setup(&s, "bpa", &["o"]).await;
    let alice = s.client(ALICE);
    put_policy(&s, "bpa", &public_read("bpa")).await;
    let status = ok(alice.get_bucket_policy_status().bucket("bpa").send().await);
    assert_eq!(
        status.policy_status().and_then(|p| p.is_public()),
        Some(true)
    );
    let raw = s.raw("GET", "/bpa?policyStatus").send().await;
    raw.assert_success();
    assert!(raw.text().contains("<PolicyStatus"), "{}", raw.text());
    assert!(
        raw.text().contains("<IsPublic>true</IsPublic>"),
        "{}",
        raw.text()
    );
    s.raw("GET", "/bpa/o")
        .anonymous()
        .send()
        .await
        .assert_success();

    ok(alice
        .put_public_access_block()
        .bucket("bpa")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await);
    s.raw("GET", "/bpa/o")
        .anonymous()
        .send()
        .await
        .assert_error(403, "AccessDenied");
    assert_sdk_err(
        s.client(BOB)
            .get_object()
            .bucket("bpa")
            .key("o")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_eq!(get_object(&alice, "bpa", "o").await, b"o");

    ok(alice
        .put_public_access_block()
        .bucket("bpa")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_policy(true)
                .build(),
        )
        .send()
        .await);
    assert_sdk_err(
        alice
            .put_bucket_policy()
            .bucket("bpa")
            .policy(statement(
                "Allow",
                r#"{"AWS":"*"}"#,
                "s3:GetObject",
                "arn:aws:s3:::bpa/*",
                "",
            ))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    // A policy naming one account is not public and is accepted.
    put_policy(
        &s,
        "bpa",
        &statement(
            "Allow",
            r#"{"AWS":"bob"}"#,
            "s3:GetObject",
            "arn:aws:s3:::bpa/*",
            "",
        ),
    )
    .await;
    let status = ok(alice.get_bucket_policy_status().bucket("bpa").send().await);
    assert_eq!(
        status.policy_status().and_then(|p| p.is_public()),
        Some(false)
    );
    assert_eq!(get_object(&s.client(BOB), "bpa", "o").await, b"o");
}

#[tokio::test]
async fn header_conditions_acl_referer_and_copy_source() {
    let s = TestServer::start();
    setup(&s, "hdr", &["public/src", "private/src"]).await;
    let doc = r#"{"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::*/*"},
      {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::hdr/*",
       "Condition":{"StringLike":{"s3:x-amz-acl":"public*"}}},
      {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::hdr/*",
       "Condition":{"StringNotLike":{"s3:x-amz-copy-source":"hdr/public/*"},"Null":{"s3:x-amz-copy-source":"false"}}},
      {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::hdr/*",
       "Condition":{"StringLikeIfExists":{"aws:Referer":"http://www.example.com/*"}}}
    ]}"#;
    put_policy(&s, "hdr", doc).await;
    let bob = s.client(BOB);
    put_object(&bob, "hdr", "bobs", b"b").await;
    assert_sdk_err(
        bob.put_object()
            .bucket("hdr")
            .key("bobs-public")
            .acl(ObjectCannedAcl::PublicRead)
            .body(ByteStream::from_static(b"b"))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    ok(bob
        .copy_object()
        .bucket("hdr")
        .key("copied")
        .copy_source("hdr/public/src")
        .send()
        .await);
    assert_sdk_err(
        bob.copy_object()
            .bucket("hdr")
            .key("copied2")
            .copy_source("hdr/private/src")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    let get = |referer: Option<&'static str>| {
        let mut r = s.raw("GET", "/hdr/bobs").anonymous();
        if let Some(v) = referer {
            r = r.header("referer", v);
        }
        r.send()
    };
    get(None).await.assert_success();
    get(Some("http://www.example.com/index.html"))
        .await
        .assert_success();
    get(Some("http://example.com/"))
        .await
        .assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn tagging_and_attributes_follow_the_policy() {
    use aws_sdk_s3::types::{ObjectAttributes, Tag, Tagging};
    let s = TestServer::start();
    setup(&s, "tags", &["shared/a", "private/b"]).await;
    let doc = r#"{"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Principal":{"AWS":"bob"},"Action":["s3:GetObjectTagging","s3:PutObjectTagging","s3:GetObjectAttributes"],"Resource":"arn:aws:s3:::tags/shared/*"},
      {"Effect":"Deny","Principal":{"AWS":"alice"},"Action":"s3:DeleteObjectTagging","Resource":"arn:aws:s3:::tags/*"}
    ]}"#;
    put_policy(&s, "tags", doc).await;
    let (alice, bob) = (s.client(ALICE), s.client(BOB));
    let tagging = Tagging::builder()
        .tag_set(Tag::builder().key("team").value("blue").build().unwrap())
        .build()
        .unwrap();
    ok(bob
        .put_object_tagging()
        .bucket("tags")
        .key("shared/a")
        .tagging(tagging.clone())
        .send()
        .await);
    let got = ok(bob
        .get_object_tagging()
        .bucket("tags")
        .key("shared/a")
        .send()
        .await);
    assert_eq!(got.tag_set().len(), 1);
    let attrs = ok(bob
        .get_object_attributes()
        .bucket("tags")
        .key("shared/a")
        .object_attributes(ObjectAttributes::ObjectSize)
        .send()
        .await);
    assert_eq!(attrs.object_size(), Some(8));
    assert_sdk_err(
        bob.put_object_tagging()
            .bucket("tags")
            .key("private/b")
            .tagging(tagging)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.get_object_attributes()
            .bucket("tags")
            .key("private/b")
            .object_attributes(ObjectAttributes::ObjectSize)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    // An explicit Deny binds even the bucket owner.
    assert_sdk_err(
        alice
            .delete_object_tagging()
            .bucket("tags")
            .key("shared/a")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    let still = ok(alice
        .get_object_tagging()
        .bucket("tags")
        .key("shared/a")
        .send()
        .await);
    assert_eq!(still.tag_set().len(), 1);
}

/// `aws:SourceIp` is the TCP peer, unless the peer is a trusted proxy: then
/// `X-Forwarded-For` names the client. From an untrusted peer the header is
/// ignored, so a client cannot choose its own address.
#[tokio::test]
async fn source_ip_follows_forwarded_headers_from_trusted_proxies_only() {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::fwd/*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}"#;
    for trusted in [true, false] {
        let s = TestServer::start_with(ServerOptions {
            env: if trusted {
                vec![(
                    "CLOUDMUX__SERVER__TRUSTED_PROXIES".into(),
                    "[\"127.0.0.0/8\"]".into(),
                )]
            } else {
                Vec::new()
            },
            ..Default::default()
        });
        let alice = s.client(ALICE);
        create_bucket(&alice, "fwd").await;
        put_object(&alice, "fwd", "k", b"data").await;
        ok(alice
            .put_bucket_policy()
            .bucket("fwd")
            .policy(policy)
            .send()
            .await);
        let get = |xff: Option<&str>| {
            let mut r = s.raw("GET", "/fwd/k").anonymous();
            if let Some(v) = xff {
                r = r.header("x-forwarded-for", v);
            }
            r.send()
        };
        let forwarded = get(Some("203.0.113.5")).await;
        let forged_chain = get(Some("203.0.113.5, 198.51.100.9")).await;
        let direct = get(None).await;
        assert_eq!(
            direct.status, 403,
            "the peer 127.0.0.1 is outside the range"
        );
        if trusted {
            assert_eq!(forwarded.status, 200, "{}", forwarded.text());
            // The nearest untrusted hop is the client, not the first entry.
            assert_eq!(forged_chain.status, 403);
        } else {
            assert_eq!(
                forwarded.status, 403,
                "an untrusted peer's header is ignored"
            );
        }
    }
}

#[tokio::test]
async fn policy_status_follows_the_meaning_of_public() {
    let s = TestServer::start();
    setup(&s, "stat", &[]).await;
    let alice = s.client(ALICE);
    // A public ACL is no policy: GetBucketPolicyStatus answers as S3 does.
    ok(alice
        .put_bucket_acl()
        .bucket("stat")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await);
    assert_sdk_err(
        alice.get_bucket_policy_status().bucket("stat").send().await,
        404,
        "NoSuchBucketPolicy",
    );
    let res = "arn:aws:s3:::stat/*";
    for (cond, public) in [
        ("", true),
        (
            r#"{"StringEquals":{"aws:SourceVpc":"vpc-91237329"}}"#,
            false,
        ),
        (r#"{"StringLike":{"aws:SourceVpc":"vpc-*"}}"#, true),
        (
            r#"{"StringEquals":{"aws:SourceVpce":"vpce-1a2b3c4d"}}"#,
            false,
        ),
        (
            r#"{"StringEquals":{"aws:PrincipalOrgID":"o-exampleorg"}}"#,
            false,
        ),
        (
            r#"{"StringEquals":{"aws:SourceAccount":"111122223333"}}"#,
            false,
        ),
        (
            r#"{"StringEquals":{"aws:SourceOwner":"111122223333"}}"#,
            false,
        ),
        (
            r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:cloudfront::111122223333:distribution/E1"}}"#,
            false,
        ),
        (
            r#"{"ArnLike":{"aws:SourceArn":"arn:aws:cloudfront::*"}}"#,
            true,
        ),
        (r#"{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#, false),
        (r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#, true),
        (
            r#"{"StringEqualsIfExists":{"aws:SourceVpc":"vpc-1"}}"#,
            true,
        ),
        (
            r#"{"StringEquals":{"aws:SourceAccount":"${aws:username}"}}"#,
            true,
        ),
        (r#"{"StringLike":{"s3:prefix":"pub/"}}"#, true),
    ] {
        put_policy(
            &s,
            "stat",
            &statement("Allow", r#""*""#, "s3:GetObject", res, cond),
        )
        .await;
        let status = ok(alice.get_bucket_policy_status().bucket("stat").send().await);
        assert_eq!(
            status.policy_status().and_then(|p| p.is_public()),
            Some(public),
            "{cond}"
        );
    }
    // A fixed principal, and a Deny to everyone, are not public.
    for (effect, principal) in [("Allow", r#"{"AWS":"bob"}"#), ("Deny", r#""*""#)] {
        put_policy(
            &s,
            "stat",
            &statement(effect, principal, "s3:GetObject", res, ""),
        )
        .await;
        let status = ok(alice.get_bucket_policy_status().bucket("stat").send().await);
        assert_eq!(
            status.policy_status().and_then(|p| p.is_public()),
            Some(false),
            "{effect} {principal}"
        );
    }
    // A policy that names a VPC never lets a request without one in.
    put_object(&alice, "stat", "k", b"v").await;
    put_policy(
        &s,
        "stat",
        &statement(
            "Allow",
            r#""*""#,
            "s3:GetObject",
            res,
            r#"{"StringEquals":{"aws:SourceVpc":"vpc-91237329"}}"#,
        ),
    )
    .await;
    ok(alice
        .put_object_acl()
        .bucket("stat")
        .key("k")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await);
    s.raw("GET", "/stat/k")
        .anonymous()
        .send()
        .await
        .assert_error(403, "AccessDenied");
    // Only the owner reads the status.
    assert_sdk_err(
        s.client(BOB)
            .get_bucket_policy_status()
            .bucket("stat")
            .send()
            .await,
        403,
        "AccessDenied",
    );
}

/// GET, HEAD, GetObjectAcl, GetObjectTagging, GetObjectAttributes and a
/// copy whose source key is missing answer 404 NoSuchKey only to callers
/// who may `s3:ListBucket` the bucket (by policy or ACL), 403 AccessDenied
/// to the others, as S3 does.
#[tokio::test]
async fn missing_keys_are_404_only_for_callers_who_may_list() {
    let s = TestServer::start();
    setup(&s, "nfb", &["a.txt"]).await;
    create_bucket(&s.client(BOB), "bobs").await;
    let missing_reads = [
        ("GET", "/nfb/missing", None),
        ("HEAD", "/nfb/missing", None),
        ("GET", "/nfb/missing?acl", None),
        ("GET", "/nfb/missing?tagging", None),
        ("GET", "/nfb/missing?attributes", Some("ETag")),
    ];
    let expect_all = |status: u16, code: &'static str| {
        let s = &s;
        async move {
            for (method, path, attrs) in missing_reads {
                let mut r = s.raw(method, path).anonymous();
                if let Some(a) = attrs {
                    r = r.header("x-amz-object-attributes", a);
                }
                let r = r.send().await;
                if method == "HEAD" {
                    assert_eq!(r.status, status, "anonymous HEAD {path}");
                } else {
                    r.assert_error(status, code);
                }
            }
            let copy = s
                .client(BOB)
                .copy_object()
                .bucket("bobs")
                .key("copy")
                .copy_source("nfb/missing")
                .send()
                .await;
            assert_sdk_err(copy, status, code);
        }
    };
    // Without any grant: 403 for strangers, 404 for the owner.
    expect_all(403, "AccessDenied").await;
    assert_sdk_err(
        s.client(ALICE)
            .get_object()
            .bucket("nfb")
            .key("missing")
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    // s3:GetObject alone lets them read what exists, not learn what does not.
    let get_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::nfb/*"}]}"#;
    put_policy(&s, "nfb", get_only).await;
    s.raw("GET", "/nfb/a.txt")
        .anonymous()
        .send()
        .await
        .assert_success();
    expect_all(403, "AccessDenied").await;
    // With s3:ListBucket as well: 404.
    let get_and_list = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::nfb/*"},{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::nfb"}]}"#;
    put_policy(&s, "nfb", get_and_list).await;
    expect_all(404, "NoSuchKey").await;

    // By ACL: a public-read bucket lets anyone list, so a missing key is 404.
    let alice = s.client(ALICE);
    ok(alice
        .create_bucket()
        .bucket("pubacl")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await);
    s.raw("GET", "/pubacl/missing")
        .anonymous()
        .send()
        .await
        .assert_error(404, "NoSuchKey");
    assert_sdk_err(
        s.client(BOB)
            .head_object()
            .bucket("pubacl")
            .key("missing")
            .send()
            .await,
        404,
        "NotFound",
    );
}
