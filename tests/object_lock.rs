//! S3 Object Lock: buckets created with Object Lock, the bucket's
//! configuration and default retention, per-version retention and legal
//! hold, the lock headers of writes and reads, and what a lock refuses
//! (deleting a version by id, shortening COMPLIANCE, GOVERNANCE without an
//! allowed bypass), with the real SDK and signed raw requests.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, DefaultRetention, Delete, ObjectIdentifier, ObjectLockConfiguration,
    ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode,
    ObjectLockRetention, ObjectLockRetentionMode, ObjectLockRule, VersioningConfiguration,
};
use aws_sdk_s3::Client;
use cloudmux_e2e::*;

/// One day, in seconds.
const DAY: u64 = 86_400;

/// Creates `bucket` with Object Lock enabled, as `client`'s account.
async fn create_locked_bucket(client: &Client, bucket: &str) {
    ok(client
        .create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await);
}

/// `secs` seconds from now, as an SDK date.
fn in_secs(secs: u64) -> DateTime {
    DateTime::from(SystemTime::now() + Duration::from_secs(secs))
}

/// Seconds since the epoch, now.
fn now_secs() -> i64 {
    DateTime::from(SystemTime::now()).secs()
}

/// An `ObjectLockConfiguration` with a default retention of `days` days.
fn default_days(mode: ObjectLockRetentionMode, days: i32) -> ObjectLockConfiguration {
    ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .rule(
            ObjectLockRule::builder()
                .default_retention(DefaultRetention::builder().mode(mode).days(days).build())
                .build(),
        )
        .build()
}

/// A retention of `mode` until `until`.
fn retention(mode: ObjectLockRetentionMode, until: DateTime) -> ObjectLockRetention {
    ObjectLockRetention::builder()
        .mode(mode)
        .retain_until_date(until)
        .build()
}

/// Puts `body` at `bucket/key`; answers the new version's id.
async fn put_version(client: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    let out = ok(client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await);
    out.version_id().expect("a version id").to_owned()
}

/// Puts `body` with an explicit retention; answers the version id.
async fn put_locked(
    client: &Client,
    bucket: &str,
    key: &str,
    mode: ObjectLockMode,
    until: DateTime,
) -> String {
    let out = ok(client
        .put_object()
        .bucket(bucket)
        .key(key)
        .object_lock_mode(mode)
        .object_lock_retain_until_date(until)
        .body(ByteStream::from_static(b"locked"))
        .send()
        .await);
    out.version_id().expect("a version id").to_owned()
}

/// DeleteObject of one version, with or without the governance bypass.
async fn delete_version(
    client: &Client,
    bucket: &str,
    key: &str,
    version: &str,
    bypass: bool,
) -> Result<
    aws_sdk_s3::operation::delete_object::DeleteObjectOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::delete_object::DeleteObjectError,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
> {
    let mut req = client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(version);
    if bypass {
        req = req.bypass_governance_retention(true);
    }
    req.send().await
}

/// Asserts a DeleteObject of a locked version is refused as S3 refuses it.
#[track_caller]
fn assert_locked<T: std::fmt::Debug, E>(
    result: Result<
        T,
        aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    >,
) where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    assert_sdk_err(result, 403, "AccessDenied");
}

/// The `ObjectLockConfiguration` document of a raw request.
fn lock_doc(rule: &str) -> String {
    format!(
        r#"<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled>{rule}</ObjectLockConfiguration>"#
    )
}

#[tokio::test]
async fn bucket_created_with_object_lock_is_versioned_for_good() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_locked_bucket(&alice, "worm").await;
    let v = ok(alice.get_bucket_versioning().bucket("worm").send().await);
    assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));
    let c = ok(alice
        .get_object_lock_configuration()
        .bucket("worm")
        .send()
        .await);
    let c = c.object_lock_configuration().expect("a configuration");
    assert_eq!(c.object_lock_enabled(), Some(&ObjectLockEnabled::Enabled));
    assert!(c.rule().is_none(), "no default retention: {c:?}");
    let suspend = |status| {
        alice
            .put_bucket_versioning()
            .bucket("worm")
            .versioning_configuration(VersioningConfiguration::builder().status(status).build())
            .send()
    };
    assert_sdk_err(
        suspend(BucketVersioningStatus::Suspended).await,
        409,
        "InvalidBucketState",
    );
    ok(suspend(BucketVersioningStatus::Enabled).await);
    let v = ok(alice.get_bucket_versioning().bucket("worm").send().await);
    assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));
    // A plain bucket has neither.
    create_bucket(&alice, "plain").await;
    let v = ok(alice.get_bucket_versioning().bucket("plain").send().await);
    assert_eq!(v.status(), None);
    assert_sdk_err(
        alice
            .get_object_lock_configuration()
            .bucket("plain")
            .send()
            .await,
        404,
        "ObjectLockConfigurationNotFoundError",
    );
    // Only the owner (or whom a policy allows) reads the configuration.
    assert_sdk_err(
        s.client(BOB)
            .get_object_lock_configuration()
            .bucket("worm")
            .send()
            .await,
        403,
        "AccessDenied",
    );
}

#[tokio::test]
async fn object_lock_configuration_rules() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_bucket(&alice, "later").await;
    let put = |bucket: &'static str, c: ObjectLockConfiguration| {
        alice
            .put_object_lock_configuration()
            .bucket(bucket)
            .object_lock_configuration(c)
            .send()
    };
    // A bucket without versioning cannot get Object Lock.
    assert_sdk_err(
        put(
            "later",
            default_days(ObjectLockRetentionMode::Governance, 1),
        )
        .await,
        409,
        "InvalidBucketState",
    );
    // With versioning Enabled it can, as AWS allows since November 2023.
    ok(alice
        .put_bucket_versioning()
        .bucket("later")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await);
    ok(put(
        "later",
        default_days(ObjectLockRetentionMode::Compliance, 3),
    )
    .await);
    let got = ok(alice
        .get_object_lock_configuration()
        .bucket("later")
        .send()
        .await);
    let d = got
        .object_lock_configuration()
        .and_then(|c| c.rule())
        .and_then(|r| r.default_retention())
        .expect("a default retention");
    assert_eq!(
        (d.mode(), d.days(), d.years()),
        (Some(&ObjectLockRetentionMode::Compliance), Some(3), None)
    );
    assert_sdk_err(
        alice
            .put_bucket_versioning()
            .bucket("later")
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send()
            .await,
        409,
        "InvalidBucketState",
    );
    // A configuration without a rule removes the default retention.
    ok(put(
        "later",
        ObjectLockConfiguration::builder()
            .object_lock_enabled(ObjectLockEnabled::Enabled)
            .build(),
    )
    .await);
    let got = ok(alice
        .get_object_lock_configuration()
        .bucket("later")
        .send()
        .await);
    assert!(got.object_lock_configuration().unwrap().rule().is_none());

    // Validation, with raw documents.
    let send = |doc: String| {
        s.raw("PUT", "/later?object-lock")
            .body(doc)
            .with_content_md5()
    };
    for (rule, code) in [
        (
            "<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years></DefaultRetention></Rule>",
            "MalformedXML",
        ),
        (
            "<Rule><DefaultRetention><Mode>GOVERNANCE</Mode></DefaultRetention></Rule>",
            "MalformedXML",
        ),
        (
            "<Rule><DefaultRetention><Mode>governance</Mode><Days>1</Days></DefaultRetention></Rule>",
            "MalformedXML",
        ),
        (
            "<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>0</Days></DefaultRetention></Rule>",
            "InvalidArgument",
        ),
        (
            "<Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>-1</Years></DefaultRetention></Rule>",
            "InvalidArgument",
        ),
    ] {
        send(lock_doc(rule)).send().await.assert_error(400, code);
    }
    send(
        "<ObjectLockConfiguration><ObjectLockEnabled>Disabled</ObjectLockEnabled></ObjectLockConfiguration>"
            .into(),
    )
    .send()
    .await
    .assert_error(400, "MalformedXML");
    s.raw("PUT", "/later?object-lock")
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "MissingRequestBodyError");
    // Content-MD5 or a checksum is required, x-amz-sdk-checksum-algorithm
    // alone is accepted.
    let years = lock_doc(
        "<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Years>1</Years></DefaultRetention></Rule>",
    );
    s.raw("PUT", "/later?object-lock")
        .body(years.clone())
        .send()
        .await
        .assert_error(400, "InvalidRequest");
    s.raw("PUT", "/later?object-lock")
        .header("x-amz-sdk-checksum-algorithm", "CRC32")
        .body(years.clone())
        .send()
        .await
        .assert_success();
    let got = s.raw("GET", "/later?object-lock").send().await;
    got.assert_success();
    assert!(
        got.text().contains(
            "<DefaultRetention><Mode>GOVERNANCE</Mode><Years>1</Years></DefaultRetention>"
        ),
        "{}",
        got.text()
    );
    // Another account may not configure it.
    assert_sdk_err(
        s.client(BOB)
            .put_object_lock_configuration()
            .bucket("later")
            .object_lock_configuration(default_days(ObjectLockRetentionMode::Governance, 1))
            .send()
            .await,
        403,
        "AccessDenied",
    );
}

#[tokio::test]
async fn default_retention_applies_to_new_versions() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_locked_bucket(&alice, "dflt").await;
    // Before a default retention, a version has none.
    let plain = put_version(&alice, "dflt", "before", b"x").await;
    assert_sdk_err(
        alice
            .get_object_retention()
            .bucket("dflt")
            .key("before")
            .version_id(&plain)
            .send()
            .await,
        404,
        "NoSuchObjectLockConfiguration",
    );
    ok(delete_version(&alice, "dflt", "before", &plain, false).await);
    ok(alice
        .put_object_lock_configuration()
        .bucket("dflt")
        .object_lock_configuration(default_days(ObjectLockRetentionMode::Governance, 1))
        .send()
        .await);

    let started = now_secs();
    let v1 = put_version(&alice, "dflt", "k", b"one").await;
    let v2 = put_version(&alice, "dflt", "k", b"two").await;
    assert_ne!(v1, v2);
    for v in [&v1, &v2] {
        let head = ok(alice
            .head_object()
            .bucket("dflt")
            .key("k")
            .version_id(v)
            .send()
            .await);
        assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
        let until = head.object_lock_retain_until_date().expect("a date").secs();
        let expected = started + DAY as i64;
        assert!(
            (expected - 5..=expected + 60).contains(&until),
            "until {until}, expected about {expected}"
        );
        assert!(head.object_lock_legal_hold_status().is_none());
        let r = ok(alice
            .get_object_retention()
            .bucket("dflt")
            .key("k")
            .version_id(v)
            .send()
            .await);
        let r = r.retention().expect("a retention");
        assert_eq!(r.mode(), Some(&ObjectLockRetentionMode::Governance));
        assert_eq!(r.retain_until_date().map(|d| d.secs()), Some(until));
        // Without the bypass, neither version can be deleted.
        assert_locked(delete_version(&alice, "dflt", "k", v, false).await);
    }
    // The current version's retention, without a version id.
    let r = ok(alice
        .get_object_retention()
        .bucket("dflt")
        .key("k")
        .send()
        .await);
    assert_eq!(
        r.retention().and_then(|r| r.mode()),
        Some(&ObjectLockRetentionMode::Governance)
    );
    // An explicit retention wins over the default.
    let until = in_secs(2 * DAY);
    let v3 = put_locked(&alice, "dflt", "k", ObjectLockMode::Compliance, until).await;
    let head = ok(alice
        .head_object()
        .bucket("dflt")
        .key("k")
        .version_id(&v3)
        .send()
        .await);
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    assert_eq!(
        head.object_lock_retain_until_date().map(|d| d.secs()),
        Some(until.secs())
    );
    // GET answers the headers too.
    let get = s
        .raw("GET", &format!("/dflt/k?versionId={v3}"))
        .send()
        .await;
    get.assert_success();
    assert_eq!(
        get.header("x-amz-object-lock-mode").as_deref(),
        Some("COMPLIANCE")
    );
    assert!(get.header("x-amz-object-lock-retain-until-date").is_some());
    // A copy gets the default, never its source's lock.
    let copy = ok(alice
        .copy_object()
        .bucket("dflt")
        .key("copy")
        .copy_source(format!("dflt/k?versionId={v3}"))
        .send()
        .await);
    let head = ok(alice
        .head_object()
        .bucket("dflt")
        .key("copy")
        .version_id(copy.version_id().expect("a version id"))
        .send()
        .await);
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    // A multipart upload: the lock named at Create, or else the default.
    for (key, mode) in [
        ("mp-default", None),
        ("mp-explicit", Some(ObjectLockMode::Compliance)),
    ] {
        let mut create = alice.create_multipart_upload().bucket("dflt").key(key);
        if let Some(m) = mode.clone() {
            create = create
                .object_lock_mode(m)
                .object_lock_retain_until_date(in_secs(3 * DAY))
                .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On);
        }
        let up = ok(create.send().await);
        let id = up.upload_id().expect("an upload id");
        let part = ok(alice
            .upload_part()
            .bucket("dflt")
            .key(key)
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from_static(b"part"))
            .send()
            .await);
        let done = ok(alice
            .complete_multipart_upload()
            .bucket("dflt")
            .key(key)
            .upload_id(id)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .parts(
                        aws_sdk_s3::types::CompletedPart::builder()
                            .part_number(1)
                            .e_tag(part.e_tag().unwrap_or_default())
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await);
        let head = ok(alice
            .head_object()
            .bucket("dflt")
            .key(key)
            .version_id(done.version_id().expect("a version id"))
            .send()
            .await);
        let expected = mode.clone().unwrap_or(ObjectLockMode::Governance);
        assert_eq!(head.object_lock_mode(), Some(&expected), "{key}");
        let hold = mode.map(|_| ObjectLockLegalHoldStatus::On);
        assert_eq!(head.object_lock_legal_hold_status(), hold.as_ref(), "{key}");
    }
}

#[tokio::test]
async fn compliance_version_cannot_be_deleted_even_by_the_owner_with_bypass() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_locked_bucket(&alice, "comp").await;
    let until = in_secs(DAY);
    let v = put_locked(&alice, "comp", "k", ObjectLockMode::Compliance, until).await;
    for bypass in [false, true] {
        let e = delete_version(&alice, "comp", "k", &v, bypass).await;
        assert_locked(e);
    }
    let raw = s
        .raw("DELETE", &format!("/comp/k?versionId={v}"))
        .header("x-amz-bypass-governance-retention", "true")
        .send()
        .await;
    raw.assert_error(403, "AccessDenied");
    assert!(raw.text().contains("object lock"), "{}", raw.text());
    // DeleteObjects with the version id refuses it in its answer.
    let out = ok(alice
        .delete_objects()
        .bucket("comp")
        .bypass_governance_retention(true)
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("k")
                        .version_id(&v)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await);
    assert!(out.deleted().is_empty(), "{out:?}");
    assert_eq!(out.errors()[0].code(), Some("AccessDenied"));
    assert_eq!(out.errors()[0].version_id(), Some(v.as_str()));
    // Extending is allowed; shortening, GOVERNANCE and removal are not.
    let put = |r: Option<ObjectLockRetention>, bypass: bool| {
        let mut req = alice
            .put_object_retention()
            .bucket("comp")
            .key("k")
            .version_id(&v)
            .set_retention(r);
        if bypass {
            req = req.bypass_governance_retention(true);
        }
        req.send()
    };
    let longer = in_secs(2 * DAY);
    ok(put(
        Some(retention(ObjectLockRetentionMode::Compliance, longer)),
        false,
    )
    .await);
    for bypass in [false, true] {
        assert_locked(
            put(
                Some(retention(ObjectLockRetentionMode::Compliance, until)),
                bypass,
            )
            .await,
        );
        assert_locked(
            put(
                Some(retention(
                    ObjectLockRetentionMode::Governance,
                    in_secs(3 * DAY),
                )),
                bypass,
            )
            .await,
        );
    }
    let empty = s
        .raw("PUT", &format!("/comp/k?retention&versionId={v}"))
        .header("x-amz-bypass-governance-retention", "true")
        .body("<Retention/>")
        .with_content_md5()
        .send()
        .await;
    empty.assert_error(403, "AccessDenied");
    let r = ok(alice
        .get_object_retention()
        .bucket("comp")
        .key("k")
        .version_id(&v)
        .send()
        .await);
    assert_eq!(
        r.retention()
            .and_then(|r| r.retain_until_date())
            .map(|d| d.secs()),
        Some(longer.secs())
    );
    // The version is still there, whole.
    let got = ok(alice
        .get_object()
        .bucket("comp")
        .key("k")
        .version_id(&v)
        .send()
        .await);
    let body = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(body.as_ref(), b"locked");
}

#[tokio::test]
async fn governance_yields_only_to_an_allowed_bypass() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    let bob = s.client(BOB);
    create_locked_bucket(&alice, "gov").await;
    // bob may delete versions and manage retention, but not bypass yet.
    let policy = |bypass: bool| {
        let extra = if bypass {
            r#","s3:BypassGovernanceRetention""#
        } else {
            ""
        };
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"bob"}},"Action":["s3:DeleteObjectVersion","s3:PutObjectRetention","s3:GetObjectRetention"{extra}],"Resource":"arn:aws:s3:::gov/*"}}]}}"#
        )
    };
    ok(alice
        .put_bucket_policy()
        .bucket("gov")
        .policy(policy(false))
        .send()
        .await);
    let until = in_secs(DAY);
    let a = put_locked(&alice, "gov", "a", ObjectLockMode::Governance, until).await;
    let b = put_locked(&alice, "gov", "b", ObjectLockMode::Governance, until).await;
    let c = put_locked(&alice, "gov", "c", ObjectLockMode::Governance, until).await;
    // Without the bypass nobody deletes it.
    assert_locked(delete_version(&alice, "gov", "a", &a, false).await);
    assert_locked(delete_version(&bob, "gov", "a", &a, false).await);
    // bob's bypass is refused until the policy allows it.
    assert_locked(delete_version(&bob, "gov", "a", &a, true).await);
    // The owner's bypass is allowed by default.
    ok(delete_version(&alice, "gov", "a", &a, true).await);
    assert_sdk_status(
        alice
            .head_object()
            .bucket("gov")
            .key("a")
            .version_id(&a)
            .send()
            .await,
        404,
    );
    // Shortening or removing needs the bypass too.
    let shorter = retention(ObjectLockRetentionMode::Governance, in_secs(DAY / 2));
    assert_locked(
        bob.put_object_retention()
            .bucket("gov")
            .key("b")
            .version_id(&b)
            .retention(shorter.clone())
            .bypass_governance_retention(true)
            .send()
            .await,
    );
    assert_locked(
        alice
            .put_object_retention()
            .bucket("gov")
            .key("b")
            .version_id(&b)
            .retention(shorter.clone())
            .send()
            .await,
    );
    // Changing the mode to COMPLIANCE is a change that needs it as well.
    assert_locked(
        alice
            .put_object_retention()
            .bucket("gov")
            .key("b")
            .version_id(&b)
            .retention(retention(ObjectLockRetentionMode::Compliance, until))
            .send()
            .await,
    );
    // Extending needs nothing, even for bob.
    ok(bob
        .put_object_retention()
        .bucket("gov")
        .key("b")
        .version_id(&b)
        .retention(retention(
            ObjectLockRetentionMode::Governance,
            in_secs(2 * DAY),
        ))
        .send()
        .await);
    // Once the policy allows bob's bypass, it works.
    ok(alice
        .put_bucket_policy()
        .bucket("gov")
        .policy(policy(true))
        .send()
        .await);
    ok(bob
        .put_object_retention()
        .bucket("gov")
        .key("b")
        .version_id(&b)
        .retention(shorter)
        .bypass_governance_retention(true)
        .send()
        .await);
    ok(delete_version(&bob, "gov", "b", &b, true).await);
    // An explicit Deny of the bypass binds even the owner.
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:BypassGovernanceRetention","Resource":"arn:aws:s3:::gov/*"}]}"#;
    ok(alice
        .put_bucket_policy()
        .bucket("gov")
        .policy(deny)
        .send()
        .await);
    assert_locked(delete_version(&alice, "gov", "c", &c, true).await);
    // The owner removes the retention with an allowed bypass, then deletes.
    ok(alice.delete_bucket_policy().bucket("gov").send().await);
    s.raw("PUT", &format!("/gov/c?retention&versionId={c}"))
        .header("x-amz-bypass-governance-retention", "true")
        .body("<Retention/>")
        .with_content_md5()
        .send()
        .await
        .assert_success();
    assert_sdk_err(
        alice
            .get_object_retention()
            .bucket("gov")
            .key("c")
            .version_id(&c)
            .send()
            .await,
        404,
        "NoSuchObjectLockConfiguration",
    );
    ok(delete_version(&alice, "gov", "c", &c, false).await);
}

#[tokio::test]
async fn legal_hold_blocks_deletion_until_removed() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_locked_bucket(&alice, "hold").await;
    let v = put_version(&alice, "hold", "k", b"held").await;
    let hold = |status| {
        alice
            .put_object_legal_hold()
            .bucket("hold")
            .key("k")
            .version_id(&v)
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
    };
    let status = || async {
        ok(alice
            .get_object_legal_hold()
            .bucket("hold")
            .key("k")
            .version_id(&v)
            .send()
            .await)
        .legal_hold()
        .and_then(|h| h.status())
        .cloned()
    };
    assert_eq!(status().await, Some(ObjectLockLegalHoldStatus::Off));
    ok(hold(ObjectLockLegalHoldStatus::On).await);
    assert_eq!(status().await, Some(ObjectLockLegalHoldStatus::On));
    let head = ok(alice
        .head_object()
        .bucket("hold")
        .key("k")
        .version_id(&v)
        .send()
        .await);
    assert_eq!(
        head.object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    assert!(head.object_lock_mode().is_none());
    for bypass in [false, true] {
        assert_locked(delete_version(&alice, "hold", "k", &v, bypass).await);
    }
    // A legal hold in a PutObject.
    let held = ok(alice
        .put_object()
        .bucket("hold")
        .key("k2")
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await);
    let held = held.version_id().unwrap().to_owned();
    assert_locked(delete_version(&alice, "hold", "k2", &held, true).await);
    // Invalid status documents.
    s.raw("PUT", &format!("/hold/k?legal-hold&versionId={v}"))
        .body("<LegalHold><Status>on</Status></LegalHold>")
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "MalformedXML");
    ok(hold(ObjectLockLegalHoldStatus::Off).await);
    assert_eq!(status().await, Some(ObjectLockLegalHoldStatus::Off));
    ok(delete_version(&alice, "hold", "k", &v, false).await);
}

#[tokio::test]
async fn delete_without_version_id_adds_a_marker_and_keeps_the_locked_version() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_locked_bucket(&alice, "mark").await;
    let v = put_locked(
        &alice,
        "mark",
        "k",
        ObjectLockMode::Compliance,
        in_secs(DAY),
    )
    .await;
    let del = ok(alice.delete_object().bucket("mark").key("k").send().await);
    assert_eq!(del.delete_marker(), Some(true));
    let marker = del
        .version_id()
        .expect("the marker's version id")
        .to_owned();
    assert_sdk_err(
        alice.get_object().bucket("mark").key("k").send().await,
        404,
        "NoSuchKey",
    );
    let got = ok(alice
        .get_object()
        .bucket("mark")
        .key("k")
        .version_id(&v)
        .send()
        .await);
    assert_eq!(got.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    let body = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(body.as_ref(), b"locked");
    let versions = ok(alice.list_object_versions().bucket("mark").send().await);
    assert_eq!(versions.versions().len(), 1);
    assert_eq!(versions.delete_markers().len(), 1);
    // The marker itself is not locked: deleting it brings the version back.
    ok(delete_version(&alice, "mark", "k", &marker, false).await);
    assert_eq!(get_object(&alice, "mark", "k").await, b"locked");
    // DeleteObjects without a version id adds a marker too.
    let out = ok(alice
        .delete_objects()
        .bucket("mark")
        .delete(
            Delete::builder()
                .objects(ObjectIdentifier::builder().key("k").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await);
    assert_eq!(out.deleted()[0].delete_marker(), Some(true));
    assert_locked(delete_version(&alice, "mark", "k", &v, true).await);
}

#[tokio::test]
async fn lock_requests_need_an_object_lock_bucket_and_a_checksum() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_bucket(&alice, "plain").await;
    put_object(&alice, "plain", "k", b"x").await;
    // On a bucket without Object Lock: 400 InvalidRequest.
    assert_sdk_err(
        alice
            .put_object()
            .bucket("plain")
            .key("k2")
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(in_secs(DAY))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    assert_sdk_err(
        alice
            .put_object_retention()
            .bucket("plain")
            .key("k")
            .retention(retention(ObjectLockRetentionMode::Governance, in_secs(DAY)))
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    assert_sdk_err(
        alice
            .get_object_retention()
            .bucket("plain")
            .key("k")
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    assert_sdk_err(
        alice
            .put_object_legal_hold()
            .bucket("plain")
            .key("k")
            .legal_hold(
                ObjectLockLegalHold::builder()
                    .status(ObjectLockLegalHoldStatus::On)
                    .build(),
            )
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    assert_sdk_err(
        alice
            .get_object_legal_hold()
            .bucket("plain")
            .key("k")
            .send()
            .await,
        400,
        "InvalidRequest",
    );

    create_locked_bucket(&alice, "worm").await;
    let until = headers_date(SystemTime::now() + Duration::from_secs(DAY));
    let lock = |r: Raw| {
        r.header("x-amz-object-lock-mode", "GOVERNANCE")
            .header("x-amz-object-lock-retain-until-date", &until)
            .body("locked body")
    };
    // A PutObject with lock headers needs Content-MD5 or a checksum.
    let missing = lock(s.raw("PUT", "/worm/raw")).send().await;
    missing.assert_error(400, "InvalidRequest");
    assert!(missing.text().contains("Content-MD5"), "{}", missing.text());
    lock(s.raw("PUT", "/worm/raw"))
        .with_content_md5()
        .send()
        .await
        .assert_success();
    lock(s.raw("PUT", "/worm/raw"))
        .header("x-amz-sdk-checksum-algorithm", "SHA256")
        .send()
        .await
        .assert_success();
    lock(s.raw("PUT", "/worm/raw"))
        .header("x-amz-checksum-crc32", &Checksum::Crc32.b64(b"locked body"))
        .send()
        .await
        .assert_success();
    // Mode and date come together; the date is in the future and ISO 8601.
    s.raw("PUT", "/worm/half")
        .header("x-amz-object-lock-mode", "GOVERNANCE")
        .body("x")
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "InvalidArgument");
    s.raw("PUT", "/worm/past")
        .header("x-amz-object-lock-mode", "GOVERNANCE")
        .header(
            "x-amz-object-lock-retain-until-date",
            "2001-01-01T00:00:00Z",
        )
        .body("x")
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "InvalidArgument");
    s.raw("PUT", "/worm/bad-date")
        .header("x-amz-object-lock-mode", "GOVERNANCE")
        .header("x-amz-object-lock-retain-until-date", "tomorrow")
        .body("x")
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "InvalidArgument");
    // A write without lock headers to a bucket without a default retention
    // needs no checksum.
    s.raw("PUT", "/worm/free")
        .body("x")
        .send()
        .await
        .assert_success();
    // PutObjectRetention and PutObjectLegalHold need one too.
    let doc = format!(
        "<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>"
    );
    s.raw("PUT", "/worm/free?retention")
        .body(doc.clone())
        .send()
        .await
        .assert_error(400, "InvalidRequest");
    s.raw("PUT", "/worm/free?legal-hold")
        .body("<LegalHold><Status>ON</Status></LegalHold>")
        .send()
        .await
        .assert_error(400, "InvalidRequest");
    s.raw("PUT", "/worm/free?retention")
        .header("x-amz-sdk-checksum-algorithm", "CRC32")
        .body(doc)
        .send()
        .await
        .assert_success();
    // A retention in the past is refused; an unknown mode is MalformedXML.
    s.raw("PUT", "/worm/raw?retention")
        .body("<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2001-01-01T00:00:00Z</RetainUntilDate></Retention>")
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "InvalidArgument");
    s.raw("PUT", "/worm/raw?retention")
        .body(format!(
            "<Retention><Mode>FOREVER</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>"
        ))
        .with_content_md5()
        .send()
        .await
        .assert_error(400, "MalformedXML");
    // A missing key or version.
    assert_sdk_err(
        alice
            .get_object_retention()
            .bucket("worm")
            .key("nothing")
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    let missing_version = format!("{:016x}{}", 7u64, "0123456789abcdef");
    assert_sdk_err(
        alice
            .get_object_legal_hold()
            .bucket("worm")
            .key("raw")
            .version_id(&missing_version)
            .send()
            .await,
        404,
        "NoSuchVersion",
    );
    // Another account may not read or set a version's lock.
    assert_sdk_err(
        s.client(BOB)
            .get_object_retention()
            .bucket("worm")
            .key("raw")
            .send()
            .await,
        403,
        "AccessDenied",
    );
}

#[tokio::test]
async fn bucket_policies_accept_the_lock_and_version_actions() {
    let s = TestServer::start();
    let alice = s.client(ALICE);
    create_locked_bucket(&alice, "pol").await;
    let actions = [
        "s3:BypassGovernanceRetention",
        "s3:PutObjectRetention",
        "s3:GetObjectRetention",
        "s3:PutObjectLegalHold",
        "s3:GetObjectLegalHold",
        "s3:GetObjectVersion",
        "s3:DeleteObjectVersion",
        "s3:GetObjectVersionAcl",
        "s3:PutObjectVersionAcl",
        "s3:GetObjectVersionTagging",
        "s3:PutObjectVersionTagging",
        "s3:DeleteObjectVersionTagging",
        "s3:GetObjectVersionAttributes",
    ];
    let bucket_actions = [
        "s3:PutBucketObjectLockConfiguration",
        "s3:GetBucketObjectLockConfiguration",
        "s3:ListBucketVersions",
        "s3:PutBucketVersioning",
        "s3:GetBucketVersioning",
    ];
    let list = |a: &[&str]| {
        a.iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"bob"}},"Action":[{}],"Resource":"arn:aws:s3:::pol/*"}},{{"Effect":"Allow","Principal":{{"AWS":"bob"}},"Action":[{}],"Resource":"arn:aws:s3:::pol"}}]}}"#,
        list(&actions),
        list(&bucket_actions)
    );
    ok(alice
        .put_bucket_policy()
        .bucket("pol")
        .policy(doc)
        .send()
        .await);
    // bob now reads and changes the lock configuration and a version's
    // legal hold.
    let bob = s.client(BOB);
    ok(bob
        .put_object_lock_configuration()
        .bucket("pol")
        .object_lock_configuration(default_days(ObjectLockRetentionMode::Governance, 1))
        .send()
        .await);
    ok(bob
        .get_object_lock_configuration()
        .bucket("pol")
        .send()
        .await);
    let v = put_version(&alice, "pol", "k", b"x").await;
    ok(bob
        .put_object_legal_hold()
        .bucket("pol")
        .key("k")
        .version_id(&v)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await);
    ok(bob
        .get_object_retention()
        .bucket("pol")
        .key("k")
        .version_id(&v)
        .send()
        .await);
}

/// An ISO 8601 date for a header or a document.
fn headers_date(t: SystemTime) -> String {
    let d = DateTime::from(t);
    d.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .expect("a date")
}
