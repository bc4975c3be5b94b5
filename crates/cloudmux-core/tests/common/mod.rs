//! What the in-process write-path tests share: a real gateway over a real
//! sled store and a real `fs` location in a temporary directory, and the
//! inputs and reads they use.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use cloudmux_core::digest::BodyExpectations;
use cloudmux_core::policy::RequestEnv;
use cloudmux_core::records::ObjectMeta;
use cloudmux_core::{
    Account, Accounts, CompletePart, CompleteUploadInput, CoreError, CreateUploadInput, Gateway,
    GatewayConfig, GetObjectInput, Locations, Principal, PutObjectInput, RequestContext,
    UploadPartInput, WriteConditions,
};
use cloudmux_data::fs::{FsBackend, FsConfig};
use cloudmux_data::{Backend, BodyStream};
use futures_util::StreamExt;

/// A gateway with one `fs` location (`local`) and one account (alice).
pub struct World {
    pub dir: tempfile::TempDir,
    pub gw: Arc<Gateway>,
    pub meta: Arc<cloudmux_meta::SledStore>,
    pub who: RequestContext,
}

/// A fresh world, without buckets.
pub fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = Arc::new(cloudmux_meta::SledStore::open(&dir.path().join("meta")).expect("sled"));
    let fs = FsBackend::open(&FsConfig {
        path: dir.path().join("objects"),
    })
    .expect("fs location");
    let mut backends: HashMap<String, Arc<dyn Backend>> = HashMap::new();
    backends.insert("local".into(), Arc::new(fs));
    let gw = Gateway::new(
        GatewayConfig {
            region: "us-east-1".into(),
        },
        meta.clone(),
        Accounts::new(vec![Account::new("alice", "AKALICE", "secret")]),
        Locations::new(backends, "local".into()).expect("locations"),
    );
    let who = RequestContext::new(
        Principal::Account(gw.accounts().by_access_key("AKALICE").cloned().unwrap()),
        RequestEnv::default(),
    );
    World {
        dir,
        gw: Arc::new(gw),
        meta,
        who,
    }
}

/// A fresh world with the bucket `bkt`.
pub async fn setup() -> World {
    let w = world();
    w.gw.create_bucket(&w.who, "bkt", None, None, None)
        .await
        .expect("create bucket");
    w
}

/// A body of `data` in 4 KiB chunks.
pub fn body(data: &[u8]) -> BodyStream {
    let chunks: Vec<Result<Bytes, cloudmux_data::BodyError>> = data
        .chunks(4096)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(chunks).boxed()
}

/// A PutObject of `data`.
pub fn put_input(bucket: &str, key: &str, data: &[u8]) -> PutObjectInput {
    PutObjectInput {
        bucket: bucket.into(),
        key: key.into(),
        body: body(data),
        expect: BodyExpectations::default(),
        meta: ObjectMeta::default(),
        acl: None,
        location: None,
        sse: None,
        conditions: WriteConditions::default(),
        lock: Default::default(),
    }
}

/// A DeleteObject of `bucket/key` (no version id).
pub async fn delete(w: &World, bucket: &str, key: &str) -> Result<(), cloudmux_core::CoreError> {
    let input = cloudmux_core::DeleteInput {
        key: key.into(),
        ..Default::default()
    };
    w.gw.delete_object(&w.who, bucket, input).await.map(|_| ())
}

/// The object's bytes, `None` for NoSuchKey or NoSuchBucket; any other error
/// fails the test.
pub async fn read(w: &World, bucket: &str, key: &str) -> Option<Vec<u8>> {
    read_as(&w.gw, &w.who, bucket, key).await
}

/// [`read`] through a gateway and caller of one's own (for a spawned task).
pub async fn read_as(
    gw: &Gateway,
    who: &RequestContext,
    bucket: &str,
    key: &str,
) -> Option<Vec<u8>> {
    let input = GetObjectInput {
        bucket: bucket.into(),
        key: key.into(),
        range: None,
        part_number: None,
        conditions: Default::default(),
        head: false,
        version_id: None,
    };
    match gw.get_object(who, input).await {
        Ok(o) => {
            let mut data = Vec::new();
            let mut b = o.body.expect("body");
            while let Some(chunk) = b.next().await {
                data.extend_from_slice(&chunk.expect("object bytes"));
            }
            assert_eq!(data.len() as u64, o.record.size, "size of {key}");
            Some(data)
        }
        Err(CoreError::NoSuchKey(_) | CoreError::NoSuchBucket(_)) => None,
        Err(e) => panic!("reading {bucket}/{key}: {e}"),
    }
}

/// `len` bytes that differ with `tag`.
pub fn pattern(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| tag.wrapping_add((i % 251) as u8))
        .collect()
}

/// UploadPart of part 1 of `bkt/key`.
pub fn part_input(key: &str, upload_id: &str, data: &[u8]) -> UploadPartInput {
    UploadPartInput {
        bucket: "bkt".into(),
        key: key.into(),
        upload_id: upload_id.into(),
        part_number: 1,
        body: body(data),
        expect: BodyExpectations::default(),
    }
}

/// Creates an upload of `bkt/key` with one part holding `data`; returns the
/// upload id and the part's ETag.
pub async fn upload_with_part(w: &World, key: &str, data: &[u8]) -> (String, String) {
    let up =
        w.gw.create_upload(
            &w.who,
            CreateUploadInput {
                bucket: "bkt".into(),
                key: key.into(),
                ..Default::default()
            },
        )
        .await
        .expect("create upload");
    let part =
        w.gw.upload_part(&w.who, part_input(key, &up.upload_id, data))
            .await
            .expect("upload part");
    (up.upload_id, part.etag)
}

/// CompleteMultipartUpload of `bkt/key` with part 1 of ETag `etag`.
pub fn complete_input(key: &str, upload_id: &str, etag: &str) -> CompleteUploadInput {
    CompleteUploadInput {
        bucket: "bkt".into(),
        key: key.into(),
        upload_id: upload_id.into(),
        parts: vec![CompletePart {
            part_number: 1,
            etag: format!("\"{etag}\""),
            checksums: Vec::new(),
        }],
        conditions: WriteConditions::default(),
        checksum_type: None,
        checksum: None,
    }
}
