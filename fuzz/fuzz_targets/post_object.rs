//! Fuzz target: POST Object forms: multipart parsing, policy signature and
//! policy document.
//! Input format: see `cloudmux_s3::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudmux_s3::fuzzing::post_object(data));
