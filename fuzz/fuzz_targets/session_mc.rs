//! An MC session driven by a script of peer bytes, commands and time: never a panic, bounded memory.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smpp_proto::fuzzing::session_mc(data));
