//! cargo-fuzz on the stable toolchain.

use crate::Result;

pub(crate) fn run(_args: &[&str]) -> Result {
    Err("fuzz: not written yet".into())
}
