//! Arbitrary part sequences into the reassembler: no panic, bounded memory.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::Instant;

// One fixed origin: the reassembler only sees time as offsets from it.
static START: OnceLock<Instant> = OnceLock::new();

fuzz_target!(|data: &[u8]| smpp_proto::message::fuzzing::reassembly(*START.get_or_init(Instant::now), data));
