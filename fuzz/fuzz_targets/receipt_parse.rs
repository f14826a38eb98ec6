//! Delivery receipt text parsing never panics, and what parses re-parses the same.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smpp_proto::message::fuzzing::receipt_parse(data));
