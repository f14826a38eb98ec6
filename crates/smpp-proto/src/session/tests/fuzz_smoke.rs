//! The fuzz drivers on seeded pseudo-random scripts, so that `cargo test`
//! exercises them too (the real runs are `cargo xtask fuzz session_*`).

use crate::fuzzing::{session_esme, session_mc};

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
