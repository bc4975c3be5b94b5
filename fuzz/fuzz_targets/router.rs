//! Fuzz target: the operation table and operational endpoints, then the request
//! through the service.
//! Input format: see `cloudmux_s3::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudmux_s3::fuzzing::router(data));
