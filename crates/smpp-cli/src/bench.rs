//! `smpp bench`.

use std::process::ExitCode;

use clap::Args;

/// Arguments of `smpp bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {}

/// Runs `smpp bench`.
pub async fn run(_args: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`smpp bench` is not built yet")
}
