//! `smpp send`.

use std::process::ExitCode;

use clap::Args;

/// Arguments of `smpp send`.
#[derive(Debug, Args)]
pub struct SendArgs {}

/// Runs `smpp send`.
pub async fn run(_args: SendArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`smpp send` is not built yet")
}
