//! Canned ACLs on buckets and objects, cross-account access and the ACL documents.

use std::collections::BTreeSet;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketCannedAcl, Delete, ObjectCannedAcl, ObjectIdentifier};
use cloudmux_e2e::*;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTH_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn bucket_with_acl(s: &TestServer, name: &str, acl: Option<BucketCannedAcl>) {
    ok(s.client(ALICE)
        .create_bucket()
        .bucket(name)
        .set_acl(acl)
        .send()
        .await);
    put_object(&s.client(ALICE), name, "obj", b"alice's object").await;
}

#[tokio::test]
async fn private_bucket_denies_others() {
    let s = TestServer::start();
    bucket_with_acl(&s, "priv", None).await;
    let bob = s.client(BOB);
    assert_sdk_err(
        bob.list_objects_v2().bucket("priv").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.list_objects().bucket("priv").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.get_object().bucket("priv").key("obj").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.put_object()
            .bucket("priv")
            .key("bobs")
            .body(ByteStream::from_static(b"b"))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.delete_object().bucket("priv").key("obj").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.get_bucket_acl().bucket("priv").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.get_object_acl().bucket("priv").key("obj").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.put_bucket_acl()
            .bucket("priv")
            .acl(BucketCannedAcl::PublicReadWrite)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.create_multipart_upload()
            .bucket("priv")
            .key("mp")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    let r = s.raw("GET", "/priv/obj").anonymous().send().await;
    r.assert_error(403, "AccessDenied");
    assert_eq!(list_keys(&s.client(ALICE), "priv").await, vec!["obj"]);
    assert_eq!(
        get_object(&s.client(ALICE), "priv", "obj").await,
        b"alice's object"
    );
}

#[tokio::test]
async fn default_acls_have_only_the_owner() {
    let s = TestServer::start();
    bucket_with_acl(&s, "plain", None).await;
    let alice_id = owner_id(&s, ALICE).await;
    let acl = ok(s
        .client(ALICE)
        .get_bucket_acl()
        .bucket("plain")
        .send()
        .await);
    let owner = acl.owner().expect("Owner");
    assert_eq!(
        owner.id(),
        Some(alice_id.as_str()),
        "ACL owner id == ListBuckets owner id"
    );
    assert_eq!(owner.display_name(), Some("alice"));
    let id_grant = format!("id:{alice_id}");
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[(&id_grant, "FULL_CONTROL")])
    );
    let g = &acl.grants()[0];
    assert_eq!(g.grantee().and_then(|g| g.display_name()), Some("alice"));

    let acl = ok(s
        .client(ALICE)
        .get_object_acl()
        .bucket("plain")
        .key("obj")
        .send()
        .await);
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(alice_id.as_str()));
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[(&id_grant, "FULL_CONTROL")])
    );

    // Raw XML carries the xsi:type of each grantee.
    let r = s.raw("GET", "/plain?acl").send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let x = r.xml();
    assert_eq!(x.name, "AccessControlPolicy");
    let grant = x.path("AccessControlList/Grant").expect("Grant");
    let grantee = grant.child("Grantee").expect("Grantee");
    assert_eq!(
        grantee.attrs.get("xsi:type").map(String::as_str),
        Some("CanonicalUser")
    );
    assert_eq!(grantee.text_of("ID"), Some(alice_id));
    assert_eq!(grant.text_of("Permission").as_deref(), Some("FULL_CONTROL"));
}

#[tokio::test]
async fn public_read_bucket() {
    let s = TestServer::start();
    bucket_with_acl(&s, "pubread", Some(BucketCannedAcl::PublicRead)).await;
    let alice_id = owner_id(&s, ALICE).await;
    let bob = s.client(BOB);
    // Bob and anonymous can list.
    let out = ok(bob.list_objects_v2().bucket("pubread").send().await);
    assert_eq!(out.contents().len(), 1);
    let r = s
        .raw("GET", "/pubread?list-type=2")
        .anonymous()
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml().texts("Contents", "Key"), vec!["obj"]);
    // But the object itself is private.
    assert_sdk_err(
        bob.get_object().bucket("pubread").key("obj").send().await,
        403,
        "AccessDenied",
    );
    // And nobody else can write.
    assert_sdk_err(
        bob.put_object()
            .bucket("pubread")
            .key("bobs")
            .body(ByteStream::from_static(b"b"))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    let r = s
        .raw("PUT", "/pubread/anon")
        .anonymous()
        .body("x")
        .send()
        .await;
    r.assert_error(403, "AccessDenied");
    assert_eq!(list_keys(&s.client(ALICE), "pubread").await, vec!["obj"]);

    let acl = ok(s
        .client(ALICE)
        .get_bucket_acl()
        .bucket("pubread")
        .send()
        .await);
    let id_grant = format!("id:{alice_id}");
    let all = format!("uri:{ALL_USERS}");
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[(&id_grant, "FULL_CONTROL"), (&all, "READ")])
    );
    // The raw document marks the group grantee.
    let r = s.raw("GET", "/pubread?acl").send().await;
    let x = r.xml();
    let groups: Vec<_> = x
        .path("AccessControlList")
        .expect("AccessControlList")
        .all("Grant")
        .into_iter()
        .filter(|g| {
            g.child("Grantee")
                .and_then(|ge| ge.attrs.get("xsi:type"))
                .is_some_and(|t| t == "Group")
        })
        .map(|g| g.text_at("Grantee/URI").unwrap_or_default())
        .collect();
    assert_eq!(groups, vec![ALL_USERS.to_owned()]);
}

#[tokio::test]
async fn public_read_write_bucket() {
    let s = TestServer::start();
    bucket_with_acl(&s, "prw", Some(BucketCannedAcl::PublicReadWrite)).await;
    let alice_id = owner_id(&s, ALICE).await;
    let bob = s.client(BOB);
    put_object(&bob, "prw", "from-bob", b"bob wrote this").await;
    let r = s
        .raw("PUT", "/prw/from-anon")
        .anonymous()
        .body("anon wrote this")
        .send()
        .await;
    assert_eq!(
        r.status,
        200,
        "anonymous PUT into public-read-write: {}",
        r.text()
    );
    let r = s.raw("GET", "/prw").anonymous().send().await;
    assert_eq!(r.status, 200);
    let mut keys = r.xml().texts("Contents", "Key");
    keys.sort();
    assert_eq!(keys, vec!["from-anon", "from-bob", "obj"]);
    // Bob owns his object and reads it back.
    assert_eq!(get_object(&bob, "prw", "from-bob").await, b"bob wrote this");

    let acl = ok(s.client(ALICE).get_bucket_acl().bucket("prw").send().await);
    let id_grant = format!("id:{alice_id}");
    let all = format!("uri:{ALL_USERS}");
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[(&id_grant, "FULL_CONTROL"), (&all, "READ"), (&all, "WRITE")])
    );
}

#[tokio::test]
async fn authenticated_read_bucket() {
    let s = TestServer::start();
    bucket_with_acl(&s, "authread", Some(BucketCannedAcl::AuthenticatedRead)).await;
    let alice_id = owner_id(&s, ALICE).await;
    let out = ok(s
        .client(BOB)
        .list_objects_v2()
        .bucket("authread")
        .send()
        .await);
    assert_eq!(out.contents().len(), 1);
    let out = ok(s
        .client(CAROL)
        .list_objects()
        .bucket("authread")
        .send()
        .await);
    assert_eq!(out.contents().len(), 1);
    let r = s.raw("GET", "/authread").anonymous().send().await;
    r.assert_error(403, "AccessDenied");
    assert_sdk_err(
        s.client(BOB)
            .put_object()
            .bucket("authread")
            .key("x")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    let acl = ok(s
        .client(ALICE)
        .get_bucket_acl()
        .bucket("authread")
        .send()
        .await);
    let id_grant = format!("id:{alice_id}");
    let auth = format!("uri:{AUTH_USERS}");
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[(&id_grant, "FULL_CONTROL"), (&auth, "READ")])
    );
}

#[tokio::test]
async fn put_bucket_acl_changes_access() {
    let s = TestServer::start();
    bucket_with_acl(&s, "flip", None).await;
    let alice = s.client(ALICE);
    let anon_list = || async { s.raw("GET", "/flip").anonymous().send().await.status };
    assert_eq!(anon_list().await, 403);

    ok(alice
        .put_bucket_acl()
        .bucket("flip")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await);
    assert_eq!(anon_list().await, 200, "public-read after PutBucketAcl");
    let acl = ok(alice.get_bucket_acl().bucket("flip").send().await);
    assert!(grant_summary(acl.grants()).contains(&(format!("uri:{ALL_USERS}"), "READ".to_owned())));

    // Raw x-amz-acl header form.
    let r = s
        .raw("PUT", "/flip?acl")
        .header("x-amz-acl", "private")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(anon_list().await, 403, "private again");
    let acl = ok(alice.get_bucket_acl().bucket("flip").send().await);
    assert_eq!(acl.grants().len(), 1, "{:?}", acl.grants());

    ok(alice
        .put_bucket_acl()
        .bucket("flip")
        .acl(BucketCannedAcl::AuthenticatedRead)
        .send()
        .await);
    assert_eq!(anon_list().await, 403);
    ok(s.client(BOB).list_objects_v2().bucket("flip").send().await);

    // An unknown canned ACL is rejected and changes nothing.
    let r = s
        .raw("PUT", "/flip?acl")
        .header("x-amz-acl", "world-writable")
        .send()
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    ok(s.client(BOB).list_objects_v2().bucket("flip").send().await);
}

#[tokio::test]
async fn object_canned_acls() {
    let s = TestServer::start();
    bucket_with_acl(&s, "objs", None).await;
    let alice = s.client(ALICE);
    let alice_id = owner_id(&s, ALICE).await;
    let id_grant = format!("id:{alice_id}");
    let all = format!("uri:{ALL_USERS}");
    let auth = format!("uri:{AUTH_USERS}");

    ok(alice
        .put_object()
        .bucket("objs")
        .key("pub")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"public data"))
        .send()
        .await);
    let r = s.raw("GET", "/objs/pub").anonymous().send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.as_ref(), b"public data");
    assert_eq!(
        get_object(&s.client(BOB), "objs", "pub").await,
        b"public data"
    );
    let acl = ok(alice
        .get_object_acl()
        .bucket("objs")
        .key("pub")
        .send()
        .await);
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[(&id_grant, "FULL_CONTROL"), (&all, "READ")])
    );
    // Reading is not writing.
    let r = s
        .raw("PUT", "/objs/pub")
        .anonymous()
        .body("defaced")
        .send()
        .await;
    r.assert_error(403, "AccessDenied");
    let r = s.raw("DELETE", "/objs/pub").anonymous().send().await;
    r.assert_error(403, "AccessDenied");
    assert_eq!(get_object(&alice, "objs", "pub").await, b"public data");

    // PutObjectAcl back to private.
    ok(alice
        .put_object_acl()
        .bucket("objs")
        .key("pub")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await);
    let r = s.raw("GET", "/objs/pub").anonymous().send().await;
    r.assert_error(403, "AccessDenied");
    assert_sdk_err(
        s.client(BOB)
            .get_object()
            .bucket("objs")
            .key("pub")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    let acl = ok(alice
        .get_object_acl()
        .bucket("objs")
        .key("pub")
        .send()
        .await);
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[(&id_grant, "FULL_CONTROL")])
    );

    // authenticated-read via raw x-amz-acl on PUT.
    let r = s
        .raw("PUT", "/objs/authd")
        .header("x-amz-acl", "authenticated-read")
        .body("for signed-in users")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        get_object(&s.client(BOB), "objs", "authd").await,
        b"for signed-in users"
    );
    let r = s.raw("GET", "/objs/authd").anonymous().send().await;
    r.assert_error(403, "AccessDenied");
    let acl = ok(alice
        .get_object_acl()
        .bucket("objs")
        .key("authd")
        .send()
        .await);
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[(&id_grant, "FULL_CONTROL"), (&auth, "READ")])
    );

    // public-read-write on an object lists both group grants.
    ok(alice
        .put_object_acl()
        .bucket("objs")
        .key("authd")
        .acl(ObjectCannedAcl::PublicReadWrite)
        .send()
        .await);
    let acl = ok(alice
        .get_object_acl()
        .bucket("objs")
        .key("authd")
        .send()
        .await);
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[(&id_grant, "FULL_CONTROL"), (&all, "READ"), (&all, "WRITE")])
    );
    // PutObjectAcl by raw header.
    let r = s
        .raw("PUT", "/objs/authd?acl")
        .header("x-amz-acl", "public-read")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let acl = ok(alice
        .get_object_acl()
        .bucket("objs")
        .key("authd")
        .send()
        .await);
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[(&id_grant, "FULL_CONTROL"), (&all, "READ")])
    );

    // ACLs of a missing object.
    assert_sdk_err(
        alice
            .get_object_acl()
            .bucket("objs")
            .key("missing")
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    // Bob cannot change alice's object ACL even when he can read it.
    assert_sdk_err(
        s.client(BOB)
            .put_object_acl()
            .bucket("objs")
            .key("authd")
            .acl(ObjectCannedAcl::PublicReadWrite)
            .send()
            .await,
        403,
        "AccessDenied",
    );
}

#[tokio::test]
async fn object_acl_in_public_read_bucket() {
    // A public-read bucket lists to everyone, but its private objects stay private.
    let s = TestServer::start();
    bucket_with_acl(&s, "mixed", Some(BucketCannedAcl::PublicRead)).await;
    let alice = s.client(ALICE);
    ok(alice
        .put_object()
        .bucket("mixed")
        .key("open")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"open"))
        .send()
        .await);
    let r = s.raw("GET", "/mixed/open").anonymous().send().await;
    assert_eq!(r.status, 200);
    let r = s.raw("GET", "/mixed/obj").anonymous().send().await;
    r.assert_error(403, "AccessDenied");
    let r = s.raw("HEAD", "/mixed/obj").anonymous().send().await;
    assert_eq!(r.status, 403);
    let r = s.raw("HEAD", "/mixed/open").anonymous().send().await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn cross_account_copy() {
    let s = TestServer::start();
    bucket_with_acl(&s, "src-priv", None).await;
    let alice = s.client(ALICE);
    ok(alice
        .put_object()
        .bucket("src-priv")
        .key("shared")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"shared bytes"))
        .send()
        .await);
    let bob = s.client(BOB);
    create_bucket(&bob, "bobs").await;
    assert_sdk_err(
        bob.copy_object()
            .bucket("bobs")
            .key("stolen")
            .copy_source("src-priv/obj")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_status(
        bob.head_object().bucket("bobs").key("stolen").send().await,
        404,
    );
    ok(bob
        .copy_object()
        .bucket("bobs")
        .key("copy")
        .copy_source("src-priv/shared")
        .send()
        .await);
    assert_eq!(get_object(&bob, "bobs", "copy").await, b"shared bytes");
    // Alice cannot copy into bob's private bucket.
    assert_sdk_err(
        alice
            .copy_object()
            .bucket("bobs")
            .key("push")
            .copy_source("src-priv/obj")
            .send()
            .await,
        403,
        "AccessDenied",
    );
}

#[tokio::test]
async fn delete_objects_without_permission() {
    // AWS authorizes DeleteObjects per key: the request succeeds with an
    // AccessDenied <Error> per key (or is refused as a whole); nothing is deleted.
    let s = TestServer::start();
    bucket_with_acl(&s, "nodelete", Some(BucketCannedAcl::PublicRead)).await;
    put_object(&s.client(ALICE), "nodelete", "obj2", b"2").await;
    let bob = s.client(BOB);
    let ids: Vec<ObjectIdentifier> = ["obj", "obj2"]
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().expect("id"))
        .collect();
    let res = bob
        .delete_objects()
        .bucket("nodelete")
        .delete(
            Delete::builder()
                .set_objects(Some(ids))
                .build()
                .expect("delete"),
        )
        .send()
        .await;
    match res {
        Ok(out) => {
            assert!(
                out.deleted().is_empty(),
                "nothing reported deleted: {:?}",
                out.deleted()
            );
            let mut keys: Vec<&str> = out.errors().iter().filter_map(|e| e.key()).collect();
            keys.sort();
            assert_eq!(keys, vec!["obj", "obj2"]);
            for e in out.errors() {
                assert_eq!(e.code(), Some("AccessDenied"));
            }
        }
        Err(e) => {
            assert_eq!(
                (e.status(), e.s3_code().as_deref()),
                (403, Some("AccessDenied"))
            );
        }
    }
    // Quiet mode: only errors are reported.
    let body = "<Delete><Quiet>true</Quiet><Object><Key>obj</Key></Object></Delete>";
    let r = s
        .raw("POST", "/nodelete?delete")
        .signed_by(BOB)
        .body(body)
        .with_content_md5()
        .send()
        .await;
    if r.status == 200 {
        let x = r.xml();
        assert!(x.all("Deleted").is_empty());
        assert_eq!(x.texts("Error", "Key"), vec!["obj"]);
        assert_eq!(x.texts("Error", "Code"), vec!["AccessDenied"]);
    } else {
        r.assert_error(403, "AccessDenied");
    }
    let mut keys = list_keys(&s.client(ALICE), "nodelete").await;
    keys.sort();
    assert_eq!(keys, vec!["obj", "obj2"], "nothing deleted");
}

#[tokio::test]
async fn acl_owner_matches_listing_owner() {
    let s = TestServer::start();
    let bob = s.client(BOB);
    create_bucket(&bob, "bob-owned").await;
    put_object(&bob, "bob-owned", "k", b"v").await;
    let bob_id = owner_id(&s, BOB).await;
    let acl = ok(bob.get_bucket_acl().bucket("bob-owned").send().await);
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(bob_id.as_str()));
    assert_eq!(acl.owner().and_then(|o| o.display_name()), Some("bob"));
    let out = ok(bob
        .list_objects_v2()
        .bucket("bob-owned")
        .fetch_owner(true)
        .send()
        .await);
    assert_eq!(
        out.contents()[0].owner().and_then(|o| o.id()),
        Some(bob_id.as_str())
    );
    let out = ok(bob.list_objects().bucket("bob-owned").send().await);
    assert_eq!(
        out.contents()[0].owner().and_then(|o| o.display_name()),
        Some("bob")
    );
    assert_ne!(bob_id, owner_id(&s, ALICE).await);
}
