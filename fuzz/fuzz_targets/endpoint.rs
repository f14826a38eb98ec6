//! An ESME and an MC endpoint joined by a pipe, driven by a script of requests, answers, cut and corrupted octets, time and failures: every reply token comes back exactly once.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smpp_proto::fuzzing::endpoint(data));
