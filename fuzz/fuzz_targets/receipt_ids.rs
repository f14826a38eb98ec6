//! Receipt-id normalisation (hex, decimal, case, leading zeros) never
//! panics and keeps its promises.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smpp_proto::message::fuzzing::receipt_ids(data));
