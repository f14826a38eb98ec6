//! Arbitrary bytes as a TCP stream, strict then lenient: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smpp_proto::fuzzing::decode_stream(data));
