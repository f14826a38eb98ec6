//! `cargo xtask interop rust`: the crates.io peers (smpp34, rusmppc) from
//! `crates/smpp-interop`.

use super::{SmscChoice, Tally};
use crate::Result;

pub(super) fn run(_smsc: &SmscChoice, _tally: &mut Tally) -> Result {
    Err("interop rust: not written yet".into())
}
