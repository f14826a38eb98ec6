//! Interop checks against independent implementations.

use crate::Result;

pub(crate) fn run(args: &[&str]) -> Result {
    match args {
        ["tshark"] => Err("interop tshark: not written yet".into()),
        _ => Err("usage: cargo xtask interop tshark".into()),
    }
}
