//! Versioned buckets on the cloud locations (issue 14), on the emulators
//! (moto, Azurite, fake-gcs-server): the current version is the object at
//! its native name, a noncurrent version is the object
//! `.cloudmux-versions/<name>/<version-id>` (where `<name>` is the native
//! name: `<bucket>/<key>`, or `<key>` with `bucket_match = true`), each
//! readable with the cloud's own API; and versioned PUT, GET by id, DELETE
//! (delete marker) and the marker's removal work there, and Object Lock
//! protects a version kept in the cloud.

use cloudmux_e2e::clouds::{Cloud, Target};
use cloudmux_e2e::versions::*;
use cloudmux_e2e::*;

const BUCKET: &str = "versioned";

async fn versioned_on(cloud: Cloud, bucket_match: bool) {
    let target = Target::create(cloud).await;
    let mut config = target.location_config(30_000);
    if bucket_match {
        config.push_str("bucket_match = true\n");
    }
    let s = TestServer::start_with(ServerOptions {
        extra_config: config,
        ..Default::default()
    });
    let c = s.client(ALICE);
    create_bucket_on(&c, BUCKET, "cloud").await;
    enable_versioning(&c, BUCKET).await;
    let native = |key: &str| {
        if bucket_match {
            key.to_owned()
        } else {
            format!("{BUCKET}/{key}")
        }
    };
    let kept = |key: &str, id: &str| format!(".cloudmux-versions/{}/{id}", native(key));
    let kept_names = |listing: &cloudmux_e2e::clouds::NativeListing, key: &str| -> Vec<String> {
        let prefix = format!(".cloudmux-versions/{}/", native(key));
        listing
            .objects
            .keys()
            .filter(|n| n.starts_with(&prefix))
            .cloned()
            .collect()
    };

    let key = "dir/k.txt";
    let bodies: Vec<Vec<u8>> = (0..3).map(|i| random_bytes(2000 + i)).collect();
    let mut ids = Vec::new();
    for b in &bodies {
        ids.push(put_version(&c, BUCKET, key, b).await);
    }
    let what = format!("{cloud:?} bucket_match={bucket_match}");
    assert!(
        target.read(&native(key)).await == bodies[2],
        "{what}: the native object is the current version"
    );
    for i in 0..2 {
        assert!(
            target.read(&kept(key, &ids[i])).await == bodies[i],
            "{what}: noncurrent version {} at {}",
            ids[i],
            kept(key, &ids[i])
        );
        let (got, etag) = get_version(&c, BUCKET, key, &ids[i]).await;
        assert!(got == bodies[i], "{what}: GET ?versionId={}", ids[i]);
        assert_eq!(etag, etag_of(&bodies[i]));
    }
    let listing = target.listing().await;
    let mut want = vec![kept(key, &ids[0]), kept(key, &ids[1])];
    want.sort();
    assert_eq!(
        kept_names(&listing, key),
        want,
        "{what}: {:?}",
        listing.objects
    );

    // A delete marker: the native object goes, the version is kept aside.
    let out = ok(c.delete_object().bucket(BUCKET).key(key).send().await);
    assert_eq!(out.delete_marker(), Some(true));
    let marker = out.version_id().expect("marker id").to_owned();
    let listing = target.listing().await;
    assert!(
        !listing.objects.contains_key(&native(key)),
        "{what}: native object after a delete marker"
    );
    assert!(target.read(&kept(key, &ids[2])).await == bodies[2]);
    assert_sdk_err(
        c.get_object().bucket(BUCKET).key(key).send().await,
        404,
        "NoSuchKey",
    );

    // Removing the marker puts the version back at the native name.
    ok(c.delete_object()
        .bucket(BUCKET)
        .key(key)
        .version_id(&marker)
        .send()
        .await);
    assert!(
        target.read(&native(key)).await == bodies[2],
        "{what}: back after the marker went"
    );
    assert!(get_object(&c, BUCKET, key).await == bodies[2]);
    assert_eq!(
        kept_names(&target.listing().await, key),
        want,
        "{what}: the current version is not also kept as noncurrent"
    );

    // Deleting a noncurrent version removes its object; deleting the
    // current one puts the next at the native name.
    ok(c.delete_object()
        .bucket(BUCKET)
        .key(key)
        .version_id(&ids[0])
        .send()
        .await);
    assert_eq!(
        kept_names(&target.listing().await, key),
        vec![kept(key, &ids[1])]
    );
    ok(c.delete_object()
        .bucket(BUCKET)
        .key(key)
        .version_id(&ids[2])
        .send()
        .await);
    assert!(
        target.read(&native(key)).await == bodies[1],
        "{what}: the promoted version is native"
    );
    let listing = target.listing().await;
    assert!(
        kept_names(&listing, key).is_empty(),
        "{what}: {:?}",
        listing.objects
    );
    assert!(
        listing.leftovers.is_empty(),
        "{what}: {:?}",
        listing.leftovers
    );
    assert!(get_object(&c, BUCKET, key).await == bodies[1]);
    if !bucket_match {
        object_lock_on(&c, &target, &what).await;
    }
}

/// Object Lock on a bucket in the cloud location: a COMPLIANCE version
/// cannot be deleted by id, a DELETE without one adds a delete marker, and
/// the locked version stays readable, natively too, as a kept copy.
async fn object_lock_on(c: &aws_sdk_s3::Client, target: &Target, what: &str) {
    use aws_sdk_s3::types::{CreateBucketConfiguration, ObjectLockMode};
    let bucket = "locked";
    ok(c.create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from("cloud"))
                .build(),
        )
        .send()
        .await);
    let body = random_bytes(3000);
    let until = aws_sdk_s3::primitives::DateTime::from(
        std::time::SystemTime::now() + std::time::Duration::from_secs(86_400),
    );
    let id = ok(c
        .put_object()
        .bucket(bucket)
        .key("k")
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(until)
        .body(aws_sdk_s3::primitives::ByteStream::from(body.clone()))
        .send()
        .await)
    .version_id()
    .expect("a version id")
    .to_owned();
    let refused = c
        .delete_object()
        .bucket(bucket)
        .key("k")
        .version_id(&id)
        .bypass_governance_retention(true)
        .send()
        .await;
    let status = refused
        .as_ref()
        .err()
        .and_then(|e| e.raw_response())
        .map(|r| r.status().as_u16());
    assert_eq!(
        status,
        Some(403),
        "{what}: a COMPLIANCE version was deleted"
    );
    let marker = ok(c.delete_object().bucket(bucket).key("k").send().await);
    assert_eq!(marker.delete_marker(), Some(true), "{what}");
    assert!(
        target
            .read(&format!(".cloudmux-versions/{bucket}/k/{id}"))
            .await
            == body,
        "{what}: the locked version is kept natively"
    );
    let got = ok(c
        .get_object()
        .bucket(bucket)
        .key("k")
        .version_id(&id)
        .send()
        .await);
    assert_eq!(
        got.object_lock_mode(),
        Some(&ObjectLockMode::Compliance),
        "{what}"
    );
    assert!(got.body.collect().await.unwrap().to_vec() == body, "{what}");
}

#[tokio::test]
async fn versions_on_moto() {
    versioned_on(Cloud::Moto, false).await;
}

#[tokio::test]
async fn versions_on_moto_with_bucket_match() {
    versioned_on(Cloud::Moto, true).await;
}

#[tokio::test]
async fn versions_on_azurite() {
    versioned_on(Cloud::Azurite, false).await;
}

#[tokio::test]
async fn versions_on_azurite_with_bucket_match() {
    versioned_on(Cloud::Azurite, true).await;
}

#[tokio::test]
async fn versions_on_fake_gcs() {
    versioned_on(Cloud::FakeGcs, false).await;
}

#[tokio::test]
async fn versions_on_fake_gcs_with_bucket_match() {
    versioned_on(Cloud::FakeGcs, true).await;
}
