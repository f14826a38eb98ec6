//! GSM 03.38 decoding (unpacked and packed, every national table) never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smpp_proto::message::fuzzing::gsm7_decode(data));
