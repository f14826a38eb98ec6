//! `smpp serve`.

use std::process::ExitCode;

use clap::Args;

/// Arguments of `smpp serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {}

/// Runs `smpp serve`.
pub async fn run(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`smpp serve` is not built yet")
}
