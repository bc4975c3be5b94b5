//! Fuzz target: SigV4 and SigV2 headers and presigned queries (and a declared
//! aws-chunked body).
//! Input format: see `cloudmux_s3::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudmux_s3::fuzzing::auth(data));
