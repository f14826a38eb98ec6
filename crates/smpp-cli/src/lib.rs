//! The `smpp` command: an SMSC simulator (`serve`), a client (`send`, `listen`, `ussd`),
//! a load generator (`bench`, `campaign`), a PDU decoder (`decode`) and a
//! password hasher for its configuration (`hash-password`).
//!
//! Exit codes: 0 success, 1 failure (an error status, a timeout, a lost
//! message), 2 usage error (clap's own).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod bench;
pub mod campaign;
pub mod common;
pub mod decode;
pub mod gateway;
pub mod hash_password;
pub mod listen;
pub mod manage;
pub mod mo_csv;
pub mod obs;
pub mod ping;
pub mod send;
pub mod serve;
pub mod ussd;

/// An SMPP 3.4 / 5.0 toolkit: SMSC simulator, client, load generator and decoder.
#[derive(Debug, Parser)]
#[command(name = "smpp", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); `RUST_LOG` overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an SMSC simulator: accepts binds, answers every operation, sends receipts.
    Serve(serve::ServeArgs),
    /// Run an SMS gateway: customers over SMPP, routes to upstream SMSCs, receipts mapped back.
    Gateway(gateway::GatewayArgs),
    /// Bind, send one message (split into parts when needed), optionally wait for its receipt.
    Send(send::SendArgs),
    /// Bind as a receiver (or transceiver) and print every deliver_sm / data_sm.
    Listen(listen::ListenArgs),
    /// Decode hex PDUs (argument or stdin) and print every field by name.
    Decode(decode::DecodeArgs),
    /// Load generator: N binds, window W, report throughput and latency.
    Bench(bench::BenchArgs),
    /// Send a message to a list of recipients (CSV) with a rate limit and a report.
    Campaign(campaign::CampaignArgs),
    /// Ask the SMSC for the state of a message it accepted (query_sm).
    Query(manage::QueryArgs),
    /// Cancel a message that is still pending (cancel_sm).
    Cancel(manage::CancelArgs),
    /// Replace the content of a message that is still pending (replace_sm).
    Replace(manage::ReplaceArgs),
    /// A USSD session from the terminal: dial a code, answer each menu from stdin.
    Ussd(ussd::UssdArgs),
    /// Check the link: enquire_link in a loop, round trip per probe, loss/min/avg/max summary.
    Ping(ping::PingArgs),
    /// Read a password (stdin, or a prompt) and print its argon2id hash for
    /// `--account ID:HASH` or the config file.
    HashPassword(hash_password::HashPasswordArgs),
}

/// Parses the command line, sets up logging, runs the subcommand.
/// Raises the soft limit on open files to the hard limit: a server holds a
/// descriptor per bind, and the usual soft limit (1,024) would refuse binds
/// long before memory runs short. Failing to raise it is not fatal (the
/// limit stays as it was); the result is logged.
pub fn raise_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    let Some(hard) = limit.maximum else {
        // No hard limit: leave the soft one alone (it is what the system chose).
        return;
    };
    if limit.current.is_some_and(|soft| soft >= hard) {
        return;
    }
    let raised = rustix::process::Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::debug!(from = ?limit.current, to = hard, "open-file limit raised"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match cli.command {
        Command::Decode(args) => report(decode::run(args)),
        Command::HashPassword(args) => report(hash_password::run(args)),
        command => {
            if matches!(
                command,
                Command::Serve(_) | Command::Gateway(_) | Command::Bench(_)
            ) {
                raise_file_limit();
            }
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Command::Serve(args) = &command {
                if let Some(n) = args.options.threads {
                    builder.worker_threads(usize::from(n));
                }
            }
            let runtime = match builder.enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("smpp: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            report(runtime.block_on(async move {
                match command {
                    Command::Serve(args) => serve::run(args).await,
                    Command::Gateway(args) => gateway::run(args).await,
                    Command::Send(args) => send::run(args).await,
                    Command::Listen(args) => listen::run(args).await,
                    Command::Bench(args) => bench::run(args).await,
                    Command::Campaign(args) => campaign::run(args).await,
                    Command::Query(args) => manage::query(args).await,
                    Command::Cancel(args) => manage::cancel(args).await,
                    Command::Replace(args) => manage::replace(args).await,
                    Command::Ussd(args) => ussd::run(args).await,
                    Command::Ping(args) => ping::run(args).await,
                    Command::Decode(_) | Command::HashPassword(_) => {
                        unreachable!("handled above")
                    }
                }
            }))
        }
    }
}

/// Maps a subcommand's outcome to the exit code, printing the error chain.
fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("smpp: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
