//! `smpp campaign`.

use std::process::ExitCode;

use clap::Args;

/// Arguments of `smpp campaign`.
#[derive(Debug, Args)]
pub struct CampaignArgs {}

/// Runs `smpp campaign`.
pub async fn run(_args: CampaignArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`smpp campaign` is not built yet")
}
