//! Fuzz target: bucket policy JSON: validation and evaluation.
//! Input format: see `cloudmux_s3::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudmux_s3::fuzzing::bucket_policy(data));
