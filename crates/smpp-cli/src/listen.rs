//! `smpp listen`.

use std::process::ExitCode;

use clap::Args;

/// Arguments of `smpp listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {}

/// Runs `smpp listen`.
pub async fn run(_args: ListenArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`smpp listen` is not built yet")
}
