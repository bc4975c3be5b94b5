//! S3 Object Ownership with aws-sdk-s3: CreateBucket's
//! `x-amz-object-ownership`, Put/Get/DeleteBucketOwnershipControls, ACLs
//! disabled under `BucketOwnerEnforced` (every ACL-carrying write refused
//! with AccessControlListNotSupported, stored grants granting nothing, the
//! bucket owner owning every object), `BucketOwnerPreferred`, and buckets
//! without a setting keeping their ACLs.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketCannedAcl, ObjectCannedAcl, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
};
use aws_sdk_s3::Client;
use cloudmux_e2e::*;

fn controls(o: ObjectOwnership) -> OwnershipControls {
    OwnershipControls::builder()
        .rules(
            OwnershipControlsRule::builder()
                .object_ownership(o)
                .build()
                .expect("rule"),
        )
        .build()
        .expect("controls")
}

async fn set_ownership(c: &Client, bucket: &str, o: ObjectOwnership) {
    ok(c.put_bucket_ownership_controls()
        .bucket(bucket)
        .ownership_controls(controls(o))
        .send()
        .await);
}

async fn ownership_of(c: &Client, bucket: &str) -> ObjectOwnership {
    let out = ok(c
        .get_bucket_ownership_controls()
        .bucket(bucket)
        .send()
        .await);
    let rules = out.ownership_controls().expect("controls").rules();
    assert_eq!(rules.len(), 1);
    rules[0].object_ownership().clone()
}

async fn object_owner(c: &Client, bucket: &str, key: &str) -> String {
    let out = ok(c.get_object_acl().bucket(bucket).key(key).send().await);
    out.owner()
        .and_then(|o| o.id())
        .expect("owner id")
        .to_owned()
}

/// Lets bob write (and read back) objects in `bucket` by bucket policy, so
/// that a bucket with an owner-only ACL can hold objects of another writer.
async fn let_bob_write(s: &TestServer, bucket: &str) {
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"bob"}},"Action":["s3:PutObject"],"Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    );
    ok(s.client(ALICE)
        .put_bucket_policy()
        .bucket(bucket)
        .policy(doc)
        .send()
        .await);
}

#[tokio::test]
async fn create_bucket_with_each_ownership_value() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    for (name, o) in [
        ("enforced", ObjectOwnership::BucketOwnerEnforced),
        ("preferred", ObjectOwnership::BucketOwnerPreferred),
        ("writer", ObjectOwnership::ObjectWriter),
    ] {
        ok(alice
            .create_bucket()
            .bucket(name)
            .object_ownership(o.clone())
            .send()
            .await);
        assert_eq!(ownership_of(&alice, name).await, o);
    }
    // Without the header the bucket has no setting: ACLs work as before.
    create_bucket(&alice, "plain").await;
    assert_sdk_err(
        alice
            .get_bucket_ownership_controls()
            .bucket("plain")
            .send()
            .await,
        404,
        "OwnershipControlsNotFoundError",
    );
    // An unknown value is refused and creates nothing.
    let r = s
        .raw("PUT", "/nobody")
        .header("x-amz-object-ownership", "Nobody")
        .send()
        .await;
    r.assert_error(400, "InvalidArgument");
    assert!(r.text().contains("x-amz-object-ownership"), "{}", r.text());
    assert_sdk_status(alice.head_bucket().bucket("nobody").send().await, 404);
    // ACLs cannot be disabled on a bucket whose ACL grants others access;
    // the owner's own full control (`private`) is fine.
    assert_sdk_err(
        alice
            .create_bucket()
            .bucket("public")
            .object_ownership(ObjectOwnership::BucketOwnerEnforced)
            .acl(BucketCannedAcl::PublicRead)
            .send()
            .await,
        400,
        "InvalidBucketAclWithObjectOwnership",
    );
    assert_sdk_status(alice.head_bucket().bucket("public").send().await, 404);
    ok(alice
        .create_bucket()
        .bucket("private")
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .acl(BucketCannedAcl::Private)
        .send()
        .await);
    // A public bucket ACL is fine with the other settings.
    ok(alice
        .create_bucket()
        .bucket("public-writer")
        .object_ownership(ObjectOwnership::ObjectWriter)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await);
}

#[tokio::test]
async fn put_get_delete_ownership_controls() {
    let mut s = TestServer::start();
    let alice = s.client(ALICE);
    create_bucket(&alice, "own").await;
    for o in [
        ObjectOwnership::BucketOwnerPreferred,
        ObjectOwnership::ObjectWriter,
        ObjectOwnership::BucketOwnerEnforced,
    ] {
        set_ownership(&alice, "own", o.clone()).await;
        assert_eq!(ownership_of(&alice, "own").await, o);
    }
    // The setting is stored with the bucket.
    s.restart();
    let (alice, bob) = (s.client(ALICE), s.client(BOB));
    assert_eq!(
        ownership_of(&alice, "own").await,
        ObjectOwnership::BucketOwnerEnforced
    );
    // Owner only.
    assert_sdk_err(
        bob.get_bucket_ownership_controls()
            .bucket("own")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.put_bucket_ownership_controls()
            .bucket("own")
            .ownership_controls(controls(ObjectOwnership::ObjectWriter))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.delete_bucket_ownership_controls()
            .bucket("own")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    // Malformed documents.
    for body in [
        "<OwnershipControls><Rule><ObjectOwnership>Nobody</ObjectOwnership></Rule></OwnershipControls>",
        "<OwnershipControls></OwnershipControls>",
        "<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>",
        "<Other/>",
        "not xml",
    ] {
        let r = s
            .raw("PUT", "/own?ownershipControls")
            .body(body)
            .with_content_md5()
            .send()
            .await;
        r.assert_error(400, "MalformedXML");
    }
    assert_eq!(
        ownership_of(&alice, "own").await,
        ObjectOwnership::BucketOwnerEnforced
    );
    ok(alice
        .delete_bucket_ownership_controls()
        .bucket("own")
        .send()
        .await);
    assert_sdk_err(
        alice
            .get_bucket_ownership_controls()
            .bucket("own")
            .send()
            .await,
        404,
        "OwnershipControlsNotFoundError",
    );
    assert_sdk_err(
        alice
            .get_bucket_ownership_controls()
            .bucket("missing")
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
    // BucketOwnerEnforced needs a bucket ACL that grants only the owner.
    ok(alice
        .put_bucket_acl()
        .bucket("own")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await);
    assert_sdk_err(
        alice
            .put_bucket_ownership_controls()
            .bucket("own")
            .ownership_controls(controls(ObjectOwnership::BucketOwnerEnforced))
            .send()
            .await,
        400,
        "InvalidBucketAclWithObjectOwnership",
    );
    set_ownership(&alice, "own", ObjectOwnership::BucketOwnerPreferred).await;
}

#[tokio::test]
async fn every_acl_carrying_request_is_refused_while_enforced() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    let alice_id = owner_id(&s, ALICE).await;
    ok(alice
        .create_bucket()
        .bucket("noacl")
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .send()
        .await);
    put_object(&alice, "noacl", "obj", b"data").await;
    let refused = |what: &str, r: RawResponse| {
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_eq!(
            r.code().as_deref(),
            Some("AccessControlListNotSupported"),
            "{what}"
        );
        assert!(
            r.text().contains("The bucket does not allow ACLs"),
            "{what}"
        );
    };
    // Setting an ACL, even the owner's own `private`, is refused.
    assert_sdk_err(
        alice
            .put_bucket_acl()
            .bucket("noacl")
            .acl(BucketCannedAcl::Private)
            .send()
            .await,
        400,
        "AccessControlListNotSupported",
    );
    assert_sdk_err(
        alice
            .put_object_acl()
            .bucket("noacl")
            .key("obj")
            .acl(ObjectCannedAcl::BucketOwnerFullControl)
            .send()
            .await,
        400,
        "AccessControlListNotSupported",
    );
    // Writes carrying an ACL other than the bucket owner's full control.
    assert_sdk_err(
        alice
            .put_object()
            .bucket("noacl")
            .key("p")
            .acl(ObjectCannedAcl::PublicRead)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        400,
        "AccessControlListNotSupported",
    );
    assert_sdk_err(
        alice
            .put_object()
            .bucket("noacl")
            .key("p")
            .acl(ObjectCannedAcl::Private)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        400,
        "AccessControlListNotSupported",
    );
    assert_sdk_err(
        alice
            .put_object()
            .bucket("noacl")
            .key("p")
            .grant_read(format!("id={alice_id}"))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        400,
        "AccessControlListNotSupported",
    );
    assert_sdk_err(
        alice
            .copy_object()
            .bucket("noacl")
            .key("c")
            .copy_source("noacl/obj")
            .acl(ObjectCannedAcl::AuthenticatedRead)
            .send()
            .await,
        400,
        "AccessControlListNotSupported",
    );
    assert_sdk_err(
        alice
            .create_multipart_upload()
            .bucket("noacl")
            .key("m")
            .acl(ObjectCannedAcl::PublicReadWrite)
            .send()
            .await,
        400,
        "AccessControlListNotSupported",
    );
    let r = s
        .raw("PUT", "/noacl?acl")
        .header(
            "x-amz-grant-read",
            "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
        )
        .send()
        .await;
    refused("PutBucketAcl by grant header", r);
    // Nothing was written by the refused requests.
    assert_eq!(list_keys(&alice, "noacl").await, vec!["obj"]);
    // The bucket owner's full control, canned or as a grant, is accepted.
    ok(alice
        .put_object()
        .bucket("noacl")
        .key("bofc")
        .acl(ObjectCannedAcl::BucketOwnerFullControl)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await);
    ok(alice
        .put_object()
        .bucket("noacl")
        .key("grant")
        .grant_full_control(format!("id={alice_id}"))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await);
    ok(alice
        .copy_object()
        .bucket("noacl")
        .key("copy")
        .copy_source("noacl/obj")
        .acl(ObjectCannedAcl::BucketOwnerFullControl)
        .send()
        .await);
    // Reading ACLs answers the bucket owner's full control only.
    for acl in [
        ok(alice.get_bucket_acl().bucket("noacl").send().await)
            .grants()
            .to_vec(),
        ok(alice
            .get_object_acl()
            .bucket("noacl")
            .key("obj")
            .send()
            .await)
        .grants()
        .to_vec(),
    ] {
        assert_eq!(
            grant_summary(&acl),
            [(format!("id:{alice_id}"), "FULL_CONTROL".to_owned())].into()
        );
    }
}

#[tokio::test]
async fn enforcing_takes_away_what_stored_acls_granted() {
    let s = TestServer::start();
    let (alice, bob) = (s.client(ALICE), s.client(BOB));
    let alice_id = owner_id(&s, ALICE).await;
    let bob_id = owner_id(&s, BOB).await;
    create_bucket(&alice, "legacy").await;
    let_bob_write(&s, "legacy").await;
    ok(alice
        .put_object()
        .bucket("legacy")
        .key("pub")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"public"))
        .send()
        .await);
    put_object(&bob, "legacy", "bobs", b"bob's").await;
    // Before: the object ACLs decide, and bob owns what he wrote.
    let r = s.raw("GET", "/legacy/pub").anonymous().send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_sdk_err(
        alice.get_object().bucket("legacy").key("bobs").send().await,
        403,
        "AccessDenied",
    );
    assert_eq!(object_owner(&bob, "legacy", "bobs").await, bob_id);

    set_ownership(&alice, "legacy", ObjectOwnership::BucketOwnerEnforced).await;
    // After: the public-read grant gives nothing, the bucket owner owns and
    // reads every object, the writer lost the rights his ownership gave.
    let r = s.raw("GET", "/legacy/pub").anonymous().send().await;
    r.assert_error(403, "AccessDenied");
    assert_eq!(get_object(&alice, "legacy", "bobs").await, b"bob's");
    assert_eq!(object_owner(&alice, "legacy", "bobs").await, alice_id);
    assert_sdk_err(
        bob.get_object_acl()
            .bucket("legacy")
            .key("bobs")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    let listed = ok(alice
        .list_objects_v2()
        .bucket("legacy")
        .fetch_owner(true)
        .send()
        .await);
    for o in listed.contents() {
        assert_eq!(o.owner().and_then(|o| o.id()), Some(alice_id.as_str()));
    }
    // Bob still writes through the policy; the object is alice's.
    put_object(&bob, "legacy", "new", b"new").await;
    assert_eq!(object_owner(&alice, "legacy", "new").await, alice_id);

    // Deleting the setting brings the stored ACLs back into force.
    ok(alice
        .delete_bucket_ownership_controls()
        .bucket("legacy")
        .send()
        .await);
    let r = s.raw("GET", "/legacy/pub").anonymous().send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(object_owner(&bob, "legacy", "bobs").await, bob_id);
}

#[tokio::test]
async fn bucket_owner_preferred_and_object_writer() {
    let s = TestServer::start();
    let (alice, bob) = (s.client(ALICE), s.client(BOB));
    let alice_id = owner_id(&s, ALICE).await;
    let bob_id = owner_id(&s, BOB).await;
    for (bucket, o) in [
        ("pref", ObjectOwnership::BucketOwnerPreferred),
        ("wrtr", ObjectOwnership::ObjectWriter),
    ] {
        ok(alice
            .create_bucket()
            .bucket(bucket)
            .object_ownership(o)
            .send()
            .await);
        let_bob_write(&s, bucket).await;
        ok(bob
            .put_object()
            .bucket(bucket)
            .key("bofc")
            .acl(ObjectCannedAcl::BucketOwnerFullControl)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await);
        put_object(&bob, bucket, "plain", b"y").await;
        // Without bucket-owner-full-control the writer owns its object.
        assert_eq!(object_owner(&bob, bucket, "plain").await, bob_id);
        // ACLs stay enabled under both settings.
        ok(alice
            .put_bucket_acl()
            .bucket(bucket)
            .acl(BucketCannedAcl::Private)
            .send()
            .await);
    }
    // BucketOwnerPreferred: bucket-owner-full-control hands the object over.
    assert_eq!(object_owner(&alice, "pref", "bofc").await, alice_id);
    // ObjectWriter: the writer keeps it and the bucket owner gets full control.
    assert_eq!(object_owner(&alice, "wrtr", "bofc").await, bob_id);
    let grants = ok(alice
        .get_object_acl()
        .bucket("wrtr")
        .key("bofc")
        .send()
        .await)
    .grants()
    .to_vec();
    assert_eq!(
        grant_summary(&grants),
        [
            (format!("id:{alice_id}"), "FULL_CONTROL".to_owned()),
            (format!("id:{bob_id}"), "FULL_CONTROL".to_owned())
        ]
        .into()
    );
}

#[tokio::test]
async fn buckets_without_a_setting_keep_their_acls() {
    let s = TestServer::start();
    let (alice, bob) = (s.client(ALICE), s.client(BOB));
    let bob_id = owner_id(&s, BOB).await;
    create_bucket(&alice, "old").await;
    ok(alice
        .put_bucket_acl()
        .bucket("old")
        .grant_write(format!("id={bob_id}"))
        .send()
        .await);
    ok(bob
        .put_object()
        .bucket("old")
        .key("b")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"b"))
        .send()
        .await);
    assert_eq!(object_owner(&bob, "old", "b").await, bob_id);
    let r = s.raw("GET", "/old/b").anonymous().send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_sdk_err(
        alice
            .get_bucket_ownership_controls()
            .bucket("old")
            .send()
            .await,
        404,
        "OwnershipControlsNotFoundError",
    );
}
