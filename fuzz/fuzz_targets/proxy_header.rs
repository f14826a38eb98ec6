//! The PROXY protocol header parser (v1 and v2) never panics and never claims octets it was not given.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smpp_proto::fuzzing::proxy_header(data));
