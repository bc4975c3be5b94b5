//! Fuzz target: every XML request document (CompleteMultipartUpload, Delete,
//! CreateBucketConfiguration, AccessControlPolicy, CORSConfiguration, Tagging,
//! PublicAccessBlockConfiguration).
//! Input format: see `cloudmux_s3::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudmux_s3::fuzzing::xml_bodies(data));
