//! Fuzz target: the aws-chunked decoder: signed chunks, signed and unsigned
//! trailers, split input.
//! Input format: see `cloudmux_s3::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudmux_s3::fuzzing::aws_chunked(data));
