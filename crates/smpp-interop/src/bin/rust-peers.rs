//! The Rust peers' checks, one peer per run, printing one PASS/FAIL line per
//! check (see `cargo xtask interop`):
//!
//! - `rust-peers smpp34 HOST:PORT`: the smpp34 client against our SMSC;
//! - `rust-peers rusmppc HOST:PORT`: the rusmppc client against our SMSC;
//! - `rust-peers tokio-client HOST:PORT`: our `smpp_tokio::Client` against an
//!   independent SMSC (`smpp34-smsc`);
//! - `rust-peers submit HOST:PORT`: binds a transmitter, submits one message
//!   asking for a receipt and prints `message id: <id>` (for the
//!   `smpp listen` check).
//!
//! Exits 1 when a check failed.

use std::process::ExitCode;

use anyhow::Context as _;
use smpp_interop::checks::Checks;
use smpp_interop::{rusmppc_client, smpp34_client, tokio_client};

const USAGE: &str = "usage: rust-peers smpp34|rusmppc|tokio-client|submit HOST:PORT";

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [peer, addr] = args.as_slice() else {
        anyhow::bail!(USAGE);
    };
    let (host, port) = addr.rsplit_once(':').context(USAGE)?;
    let port: u16 = port.parse().context(USAGE)?;
    if peer == "submit" {
        let id = tokio_client::submit_one(addr).await?;
        println!("message id: {id}");
        return Ok(ExitCode::SUCCESS);
    }
    let checks = match peer.as_str() {
        "smpp34" => {
            let mut c = Checks::new(smpp34_client::PEER);
            smpp34_client::run(host, port, &mut c).await;
            c
        }
        "rusmppc" => {
            let mut c = Checks::new(rusmppc_client::PEER);
            rusmppc_client::run(addr, &mut c).await;
            c
        }
        "tokio-client" => {
            let mut c = Checks::new(tokio_client::PEER);
            tokio_client::run(addr, &mut c).await;
            c
        }
        _ => anyhow::bail!(USAGE),
    };
    checks.summary();
    let ok = checks.all_passed();
    drop(checks);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
