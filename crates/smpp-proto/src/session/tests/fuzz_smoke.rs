//! The fuzz drivers on seeded pseudo-random scripts, so that `cargo test`
//! exercises them too (the real runs are `cargo xtask fuzz session_*`).

use crate::fuzzing::{endpoint, session_esme, session_mc};

/// xorshift64*: deterministic and dependency-free.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn scripts(seed: u64, count: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut rng = Rng(seed);
    (0..count).map(move |_| {
        let len = rng.below(400) as usize;
        (0..len).map(|_| rng.next() as u8).collect()
    })
}

#[test]
fn esme_driver_on_random_scripts() {
    for s in scripts(0x5EED_0001, 3000) {
        session_esme(&s);
    }
}

#[test]
fn mc_driver_on_random_scripts() {
    for s in scripts(0x5EED_0002, 3000) {
        session_mc(&s);
    }
}

#[test]
fn endpoint_driver_on_random_scripts() {
    for s in scripts(0x5EED_0003, 3000) {
        endpoint(&s);
    }
}

/// Inputs the fuzzers found, kept as regressions.
#[test]
fn fuzz_regressions() {
    let esme: &[&[u8]] = &[&[
        186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186,
        186, 186, 186, 186, 186, 184, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186,
        186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186, 186,
        186, 186, 186, 186, 186, 186, 186, 186, 186, 115, 115, 115, 115, 115, 139, 115, 61, 61,
        161, 61, 61, 61, 61, 61, 61, 128, 61, 61, 61, 61, 61, 128, 61, 61, 61, 61, 61, 61, 128, 0,
        0, 16, 245, 0, 61, 128, 0, 115, 115, 0, 16, 115, 115, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 115, 115, 115, 115, 115, 115, 115, 115, 5, 17, 222, 163, 59, 17, 0, 0, 14, 0, 63,
        0, 0, 23,
    ]];
    let mc: &[&[u8]] = &[&[
        16, 210, 200, 66, 210, 40, 163, 163, 163, 162, 162, 162, 162, 162, 162, 162, 162, 166, 162,
        162, 162, 162, 162, 162, 162, 112, 140, 162, 140, 140, 140, 200, 66, 210, 40, 163, 163,
        163, 162, 162, 162, 162, 162, 162, 166, 162, 162, 162, 162, 162, 162, 162, 162, 162, 112,
        140, 140, 140, 140, 140, 0, 0, 48, 0, 0, 0, 48, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0,
        0, 16, 255, 255, 255, 140, 212, 140, 140, 140, 140, 140, 251, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0,
        0, 0, 64, 0, 0, 255, 0, 26, 82, 48, 57, 140, 140, 0,
    ]];
    for s in esme {
        session_esme(s);
    }
    for s in mc {
        session_mc(s);
    }
}
