//! `smpp decode`.

use std::process::ExitCode;

use clap::Args;

/// Arguments of `smpp decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {}

/// Runs `smpp decode`.
pub fn run(_args: DecodeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`smpp decode` is not built yet")
}
