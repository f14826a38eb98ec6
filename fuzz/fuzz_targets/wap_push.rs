//! The WAP push decoder (SI, SL, MMS notification) never panics, and what it decodes
//! re-encodes to the same content.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smpp_proto::message::fuzzing::wap_push(data));
