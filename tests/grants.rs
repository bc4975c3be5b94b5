//! ACL grants across three accounts: `x-amz-grant-*` headers and
//! `AccessControlPolicy` documents, to users (by id and by e-mail) and to the
//! AllUsers / AuthenticatedUsers groups, on buckets and objects (PutObject,
//! CopyObject, CreateMultipartUpload); READ_ACP / WRITE_ACP; the owner's
//! implicit control; and Block Public Access against public ACLs.

use std::collections::BTreeSet;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AccessControlPolicy, BucketCannedAcl, CompletedMultipartUpload, CompletedPart, Grant, Grantee,
    ObjectCannedAcl, Owner, Permission, PublicAccessBlockConfiguration, Type,
};
use cloudmux_e2e::*;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTH_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// A fourth account with an e-mail address, for grants by e-mail.
const DAVE: Account = Account {
    name: "dave",
    access_key: "AKIADAVE00000000004",
    secret_key: "dave-secret-key-00000000000000000000004",
};

fn server() -> TestServer {
    TestServer::start_with(ServerOptions {
        extra_config: format!(
            "[[accounts]]\nname = \"dave\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\nemail = \"dave@example.com\"\n",
            DAVE.access_key, DAVE.secret_key
        ),
        ..Default::default()
    })
}

fn set(items: &[(String, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.clone(), b.to_string()))
        .collect()
}

fn user_grant(id: &str, p: Permission) -> Grant {
    Grant::builder()
        .grantee(
            Grantee::builder()
                .r#type(Type::CanonicalUser)
                .id(id)
                .build()
                .expect("grantee"),
        )
        .permission(p)
        .build()
}

fn group_grant(uri: &str, p: Permission) -> Grant {
    Grant::builder()
        .grantee(
            Grantee::builder()
                .r#type(Type::Group)
                .uri(uri)
                .build()
                .expect("grantee"),
        )
        .permission(p)
        .build()
}

fn policy(owner: &str, grants: Vec<Grant>) -> AccessControlPolicy {
    AccessControlPolicy::builder()
        .owner(Owner::builder().id(owner).build())
        .set_grants(Some(grants))
        .build()
}

#[tokio::test]
async fn bucket_grants_by_header_to_a_user_and_a_group() {
    let s = server();
    let (alice, bob, carol) = (s.client(ALICE), s.client(BOB), s.client(CAROL));
    let bob_id = owner_id(&s, BOB).await;
    ok(alice.create_bucket().bucket("shared").send().await);
    put_object(&alice, "shared", "a", b"a").await;
    assert_sdk_err(
        bob.list_objects_v2().bucket("shared").send().await,
        403,
        "AccessDenied",
    );
    ok(alice
        .put_bucket_acl()
        .bucket("shared")
        .grant_read(format!("id=\"{bob_id}\""))
        .grant_write(format!("uri=\"{AUTH_USERS}\""))
        .send()
        .await);
    let acl = ok(alice.get_bucket_acl().bucket("shared").send().await);
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[
            (format!("id:{bob_id}"), "READ"),
            (format!("uri:{AUTH_USERS}"), "WRITE")
        ])
    );
    // READ for bob: he lists; carol does not.
    ok(bob.list_objects_v2().bucket("shared").send().await);
    assert_sdk_err(
        carol.list_objects_v2().bucket("shared").send().await,
        403,
        "AccessDenied",
    );
    // WRITE for every authenticated account, not for anonymous callers.
    put_object(&carol, "shared", "from-carol", b"c").await;
    s.raw("PUT", "/shared/anon")
        .anonymous()
        .body("x")
        .send()
        .await
        .assert_error(403, "AccessDenied");
    // READ_ACP / WRITE_ACP were not granted to bob.
    assert_sdk_err(
        bob.get_bucket_acl().bucket("shared").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.put_bucket_acl()
            .bucket("shared")
            .acl(BucketCannedAcl::PublicRead)
            .send()
            .await,
        403,
        "AccessDenied",
    );
}

#[tokio::test]
async fn bucket_grants_by_document_and_the_owner_keeps_control() {
    let s = server();
    let (alice, bob, carol) = (s.client(ALICE), s.client(BOB), s.client(CAROL));
    let alice_id = owner_id(&s, ALICE).await;
    let carol_id = owner_id(&s, CAROL).await;
    ok(alice.create_bucket().bucket("doc").send().await);
    ok(alice
        .put_bucket_acl()
        .bucket("doc")
        .access_control_policy(policy(
            &alice_id,
            vec![
                user_grant(&carol_id, Permission::FullControl),
                group_grant(ALL_USERS, Permission::Read),
            ],
        ))
        .send()
        .await);
    // The ACL holds exactly what the document said, no owner grant added.
    let acl = ok(carol.get_bucket_acl().bucket("doc").send().await);
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[
            (format!("id:{carol_id}"), "FULL_CONTROL"),
            (format!("uri:{ALL_USERS}"), "READ")
        ])
    );
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(alice_id.as_str()));
    // AllUsers READ: anonymous listing works; bob lists too.
    s.raw("GET", "/doc")
        .anonymous()
        .send()
        .await
        .assert_success();
    ok(bob.list_objects_v2().bucket("doc").send().await);
    // FULL_CONTROL lets carol write objects and the ACL.
    put_object(&carol, "doc", "k", b"v").await;
    ok(carol
        .put_bucket_acl()
        .bucket("doc")
        .access_control_policy(policy(&alice_id, vec![]))
        .send()
        .await);
    assert_sdk_err(
        carol.list_objects_v2().bucket("doc").send().await,
        403,
        "AccessDenied",
    );
    // The owner, with no grant left, still reads and writes the ACL.
    let acl = ok(alice.get_bucket_acl().bucket("doc").send().await);
    assert!(acl.grants().is_empty(), "{:?}", acl.grants());
    ok(alice
        .put_bucket_acl()
        .bucket("doc")
        .acl(BucketCannedAcl::Private)
        .send()
        .await);
    // A document naming another owner is refused.
    assert_sdk_err(
        alice
            .put_bucket_acl()
            .bucket("doc")
            .access_control_policy(policy(&carol_id, vec![]))
            .send()
            .await,
        403,
        "AccessDenied",
    );
}

#[tokio::test]
async fn object_grants_read_acp_and_write_acp() {
    let s = server();
    let (alice, bob, carol) = (s.client(ALICE), s.client(BOB), s.client(CAROL));
    let bob_id = owner_id(&s, BOB).await;
    let carol_id = owner_id(&s, CAROL).await;
    let alice_id = owner_id(&s, ALICE).await;
    ok(alice.create_bucket().bucket("objs").send().await);
    ok(alice
        .put_object()
        .bucket("objs")
        .key("o")
        .body(ByteStream::from_static(b"data"))
        .grant_read(format!("id=\"{bob_id}\""))
        .grant_read_acp(format!("id=\"{bob_id}\""))
        .grant_write_acp(format!("id=\"{carol_id}\""))
        .send()
        .await);
    // bob: READ and READ_ACP, not WRITE_ACP.
    let got = ok(bob.get_object().bucket("objs").key("o").send().await);
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"data"
    );
    let acl = ok(bob.get_object_acl().bucket("objs").key("o").send().await);
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[
            (format!("id:{bob_id}"), "READ"),
            (format!("id:{bob_id}"), "READ_ACP"),
            (format!("id:{carol_id}"), "WRITE_ACP")
        ])
    );
    assert_sdk_err(
        bob.put_object_acl()
            .bucket("objs")
            .key("o")
            .acl(ObjectCannedAcl::PublicRead)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    // carol: WRITE_ACP only, so she can rewrite the ACL but not read it or the data.
    assert_sdk_err(
        carol.get_object().bucket("objs").key("o").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        carol.get_object_acl().bucket("objs").key("o").send().await,
        403,
        "AccessDenied",
    );
    ok(carol
        .put_object_acl()
        .bucket("objs")
        .key("o")
        .access_control_policy(policy(
            &alice_id,
            vec![user_grant(&carol_id, Permission::Read)],
        ))
        .send()
        .await);
    let got = ok(carol.get_object().bucket("objs").key("o").send().await);
    assert_eq!(got.content_length(), Some(4));
    assert_sdk_err(
        bob.get_object().bucket("objs").key("o").send().await,
        403,
        "AccessDenied",
    );
    // AllUsers READ by header: anonymous GET.
    ok(alice
        .put_object_acl()
        .bucket("objs")
        .key("o")
        .grant_read(format!("uri=\"{ALL_USERS}\""))
        .send()
        .await);
    let anon = s.raw("GET", "/objs/o").anonymous().send().await;
    anon.assert_success();
    assert_eq!(anon.body.as_ref(), b"data");
}

#[tokio::test]
async fn grants_on_copy_and_multipart_and_by_email() {
    let s = server();
    let (alice, bob, dave) = (s.client(ALICE), s.client(BOB), s.client(DAVE));
    let bob_id = owner_id(&s, BOB).await;
    let dave_id = owner_id(&s, DAVE).await;
    ok(alice.create_bucket().bucket("cmx").send().await);
    put_object(&alice, "cmx", "src", b"source").await;
    ok(alice
        .copy_object()
        .bucket("cmx")
        .key("copy")
        .copy_source("cmx/src")
        .grant_full_control(format!("id=\"{bob_id}\""))
        .send()
        .await);
    let got = ok(bob.get_object().bucket("cmx").key("copy").send().await);
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"source"
    );
    ok(bob.get_object_acl().bucket("cmx").key("copy").send().await);

    let up = ok(alice
        .create_multipart_upload()
        .bucket("cmx")
        .key("mp")
        .grant_read("emailAddress=\"dave@example.com\"")
        .send()
        .await);
    let part = ok(alice
        .upload_part()
        .bucket("cmx")
        .key("mp")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(ByteStream::from_static(b"multi"))
        .send()
        .await);
    ok(alice
        .complete_multipart_upload()
        .bucket("cmx")
        .key("mp")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await);
    // The e-mail grant is stored and reported as dave's canonical user.
    let acl = ok(alice.get_object_acl().bucket("cmx").key("mp").send().await);
    assert!(grant_summary(acl.grants()).contains(&(format!("id:{dave_id}"), "READ".to_owned())));
    let got = ok(dave.get_object().bucket("cmx").key("mp").send().await);
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"multi"
    );
    assert_sdk_err(
        bob.get_object().bucket("cmx").key("mp").send().await,
        403,
        "AccessDenied",
    );
    // An e-mail in an AccessControlPolicy document.
    s.raw("PUT", "/cmx/src?acl")
        .body(format!(
            r#"<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>{}</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="AmazonCustomerByEmail"><EmailAddress>dave@example.com</EmailAddress></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"#,
            owner_id(&s, ALICE).await
        ))
        .send()
        .await
        .assert_success();
    ok(dave.get_object().bucket("cmx").key("src").send().await);
}

#[tokio::test]
async fn grant_errors() {
    let s = server();
    let alice = s.client(ALICE);
    let alice_id = owner_id(&s, ALICE).await;
    ok(alice.create_bucket().bucket("errs").send().await);
    let put_acl = |h: &str, v: &str| s.raw("PUT", "/errs?acl").header(h, v);
    put_acl("x-amz-grant-read", "nonsense")
        .send()
        .await
        .assert_error(400, "InvalidArgument");
    put_acl("x-amz-grant-read", "id=\"0123456789abcdef-no-such-user\"")
        .send()
        .await
        .assert_error(400, "InvalidArgument");
    put_acl("x-amz-grant-read", "uri=\"http://example.com/not-a-group\"")
        .send()
        .await
        .assert_error(400, "InvalidArgument");
    put_acl("x-amz-grant-read", "emailAddress=\"nobody@example.com\"")
        .send()
        .await
        .assert_error(400, "UnresolvableGrantByEmailAddress");
    s.raw("PUT", "/errs?acl")
        .header("x-amz-acl", "private")
        .header("x-amz-grant-read", &format!("id=\"{alice_id}\""))
        .send()
        .await
        .assert_error(400, "InvalidRequest");
    s.raw("PUT", "/errs?acl")
        .body("<AccessControlPolicy><Owner>")
        .send()
        .await
        .assert_error(400, "MalformedACLError");
    s.raw("PUT", "/errs?acl")
        .body(format!("<AccessControlPolicy><Owner><ID>{alice_id}</ID></Owner><AccessControlList><Grant><Grantee><ID>{alice_id}</ID></Grantee><Permission>EVERYTHING</Permission></Grant></AccessControlList></AccessControlPolicy>"))
        .send()
        .await
        .assert_error(400, "MalformedACLError");
    s.raw("PUT", "/errs?acl")
        .header("x-amz-acl", "private")
        .body(format!(
            "<AccessControlPolicy><Owner><ID>{alice_id}</ID></Owner></AccessControlPolicy>"
        ))
        .send()
        .await
        .assert_error(400, "UnexpectedContent");
    s.raw("PUT", "/errs/k")
        .header("x-amz-grant-full-control", "id=\"nobody\"")
        .body("x")
        .send()
        .await
        .assert_error(400, "InvalidArgument");
    assert_sdk_err(
        alice
            .head_object()
            .bucket("errs")
            .key("k")
            .send()
            .await
            .map(|_| ()),
        404,
        "NotFound",
    );
}

async fn set_pab(s: &TestServer, bucket: &str, block: bool, ignore: bool) {
    ok(s.client(ALICE)
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(block)
                .ignore_public_acls(ignore)
                .block_public_policy(true)
                .restrict_public_buckets(false)
                .build(),
        )
        .send()
        .await);
}

#[tokio::test]
async fn public_access_block_configuration() {
    let s = server();
    let (alice, bob) = (s.client(ALICE), s.client(BOB));
    ok(alice.create_bucket().bucket("pab").send().await);
    assert_sdk_err(
        alice.get_public_access_block().bucket("pab").send().await,
        404,
        "NoSuchPublicAccessBlockConfiguration",
    );
    set_pab(&s, "pab", true, false).await;
    let got = ok(alice.get_public_access_block().bucket("pab").send().await);
    let c = got
        .public_access_block_configuration()
        .expect("configuration");
    assert_eq!(
        (
            c.block_public_acls(),
            c.ignore_public_acls(),
            c.block_public_policy(),
            c.restrict_public_buckets()
        ),
        (Some(true), Some(false), Some(true), Some(false))
    );
    // Only the bucket owner reads or changes it.
    assert_sdk_err(
        bob.get_public_access_block().bucket("pab").send().await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        bob.delete_public_access_block().bucket("pab").send().await,
        403,
        "AccessDenied",
    );
    ok(alice
        .delete_public_access_block()
        .bucket("pab")
        .send()
        .await);
    assert_sdk_err(
        alice.get_public_access_block().bucket("pab").send().await,
        404,
        "NoSuchPublicAccessBlockConfiguration",
    );
    s.raw("PUT", "/pab?publicAccessBlock")
        .body("<Wrong/>")
        .send()
        .await
        .assert_error(400, "MalformedXML");
}

#[tokio::test]
async fn block_public_acls_stops_public_acls() {
    let s = server();
    let alice = s.client(ALICE);
    ok(alice.create_bucket().bucket("locked").send().await);
    set_pab(&s, "locked", true, false).await;
    assert_sdk_err(
        alice
            .put_bucket_acl()
            .bucket("locked")
            .acl(BucketCannedAcl::PublicRead)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        alice
            .put_bucket_acl()
            .bucket("locked")
            .grant_read(format!("uri=\"{AUTH_USERS}\""))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        alice
            .put_object()
            .bucket("locked")
            .key("pub")
            .acl(ObjectCannedAcl::PublicRead)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        alice
            .create_multipart_upload()
            .bucket("locked")
            .key("pub")
            .grant_read(format!("uri=\"{ALL_USERS}\""))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    put_object(&alice, "locked", "private", b"p").await;
    assert_sdk_err(
        alice
            .copy_object()
            .bucket("locked")
            .key("pubcopy")
            .copy_source("locked/private")
            .acl(ObjectCannedAcl::PublicReadWrite)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    assert_sdk_err(
        alice
            .put_object_acl()
            .bucket("locked")
            .key("private")
            .acl(ObjectCannedAcl::PublicRead)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    // Non-public ACLs still work.
    ok(alice
        .put_object_acl()
        .bucket("locked")
        .key("private")
        .acl(ObjectCannedAcl::BucketOwnerRead)
        .send()
        .await);
    assert_sdk_status(
        alice.head_object().bucket("locked").key("pub").send().await,
        404,
    );
}

#[tokio::test]
async fn ignore_public_acls_makes_public_grants_ineffective() {
    let s = server();
    let alice = s.client(ALICE);
    ok(alice
        .create_bucket()
        .bucket("ignored")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await);
    ok(alice
        .put_object()
        .bucket("ignored")
        .key("o")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"pub"))
        .send()
        .await);
    s.raw("GET", "/ignored/o")
        .anonymous()
        .send()
        .await
        .assert_success();
    s.raw("GET", "/ignored")
        .anonymous()
        .send()
        .await
        .assert_success();
    set_pab(&s, "ignored", false, true).await;
    s.raw("GET", "/ignored/o")
        .anonymous()
        .send()
        .await
        .assert_error(403, "AccessDenied");
    s.raw("GET", "/ignored")
        .anonymous()
        .send()
        .await
        .assert_error(403, "AccessDenied");
    // The owner is unaffected, and the stored ACL is kept.
    ok(alice.get_object().bucket("ignored").key("o").send().await);
    let acl = ok(alice
        .get_object_acl()
        .bucket("ignored")
        .key("o")
        .send()
        .await);
    assert!(grant_summary(acl.grants()).contains(&(format!("uri:{ALL_USERS}"), "READ".to_owned())));
    ok(alice
        .delete_public_access_block()
        .bucket("ignored")
        .send()
        .await);
    s.raw("GET", "/ignored/o")
        .anonymous()
        .send()
        .await
        .assert_success();
}

#[tokio::test]
async fn create_bucket_with_grant_headers() {
    let s = server();
    let (alice, bob, carol) = (s.client(ALICE), s.client(BOB), s.client(CAROL));
    let bob_id = owner_id(&s, BOB).await;
    let carol_id = owner_id(&s, CAROL).await;
    ok(alice
        .create_bucket()
        .bucket("granted")
        .grant_read(format!("id=\"{bob_id}\""))
        .grant_read_acp(format!("id=\"{carol_id}\""))
        .grant_write(format!("id=\"{carol_id}\", id=\"{bob_id}\""))
        .send()
        .await);
    ok(bob.list_objects_v2().bucket("granted").send().await);
    put_object(&bob, "granted", "b", b"b").await;
    put_object(&carol, "granted", "c", b"c").await;
    assert_sdk_err(
        carol.list_objects_v2().bucket("granted").send().await,
        403,
        "AccessDenied",
    );
    let acl = ok(carol.get_bucket_acl().bucket("granted").send().await);
    assert_eq!(
        grant_summary(acl.grants()),
        set(&[
            (format!("id:{bob_id}"), "READ"),
            (format!("id:{bob_id}"), "WRITE"),
            (format!("id:{carol_id}"), "READ_ACP"),
            (format!("id:{carol_id}"), "WRITE")
        ])
    );
    assert_sdk_err(
        bob.get_bucket_acl().bucket("granted").send().await,
        403,
        "AccessDenied",
    );
}
