//! Any PDU the codec can encode decodes back to itself, byte for byte.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|pdu: smpp_proto::pdu::Pdu| smpp_proto::fuzzing::roundtrip(&pdu));
