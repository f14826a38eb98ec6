//! `smpp ussd`: a USSD session from the terminal, playing the phone. It dials a code
//! (a PSSR indication to the service), prints each screen the application sends, and
//! sends every line read from stdin as the answer to the prompt on screen (a USSR
//! confirm), until the application's last screen. Binds as a transceiver registering
//! the subscriber's number as its address_range, so `smpp serve` routes the
//! application's screens back here.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use smpp_proto::message::ussd::{UssdMessage, UssdPhone, UssdScreen};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Inbound};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::common::ConnectArgs;

/// Arguments of `smpp ussd`.
#[derive(Debug, Args)]
#[command(after_long_help = "OUTPUT:\n  \
    Each screen the application sends, as it arrives; a prompt is followed by the line \
    read from stdin as the answer (echoed as `> ANSWER`). With --json, one object per \
    line: {\"type\": \"prompt\"|\"final\"|\"answer\"|\"cancel\", \"text\", \"op\", \"session\"}.\n\n\
    EXIT CODE:\n  \
    0 when the application ended the dialog (its last screen arrived); 1 when stdin ended \
    at a prompt (the dialog is cancelled), a screen did not come within --timeout, or the \
    bind failed; 2 on usage errors.")]
pub struct UssdArgs {
    /// Where to connect and how to bind.
    #[command(flatten)]
    pub connect: Box<ConnectArgs>,
    /// The subscriber's number (the phone this session plays); also the bind's
    /// address_range, so the SMSC routes the answers here.
    #[arg(long)]
    pub from: String,
    /// The service code or short number of the USSD application.
    #[arg(long)]
    pub to: String,
    /// What the subscriber dials (default: `*TO#`).
    #[arg(long)]
    pub code: Option<String>,
    /// How long to wait for each screen.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print one JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `smpp ussd`.
pub async fn run(mut args: UssdArgs) -> anyhow::Result<ExitCode> {
    // The number as it travels (a `+` is dropped from addresses), so the answers match.
    args.from = args.from.trim_start_matches('+').to_owned();
    args.connect.address_range = regex_literal(&args.from);
    let (client, inbound) = args
        .connect
        .connect(
            BindKind::Transceiver,
            SessionConfig::default().with_response_timeout(args.timeout),
        )
        .await?;
    let outcome = dialog(&client, &inbound, &args).await;
    if tokio::time::timeout(args.timeout, client.unbind())
        .await
        .map_or(true, |r| r.is_err())
    {
        client.close();
    }
    outcome
}

/// `s` as a regular expression that matches exactly it (the SMSC anchors it).
fn regex_literal(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escape = !c.is_ascii_alphanumeric();
            escape.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

async fn dialog(client: &Client, inbound: &Inbound, args: &UssdArgs) -> anyhow::Result<ExitCode> {
    let code = args
        .code
        .clone()
        .unwrap_or_else(|| format!("*{}#", args.to));
    let session = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos() as u8);
    let (mut phone, dial) = UssdPhone::dial(&args.from, &args.to, session, &code)?;
    client.submit_message(&dial.to_short_message()).await?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while !phone.is_ended() {
        let message = match next_ussd(inbound, args.timeout).await? {
            Some(m) => m,
            None => {
                eprintln!("smpp: error: no screen within {:?}", args.timeout);
                return Ok(ExitCode::FAILURE);
            }
        };
        let screen = match phone.handle(&message) {
            Ok(screen) => screen,
            Err(e) => {
                tracing::warn!(error = %e, op = message.op.name(), "USSD message ignored");
                continue;
            }
        };
        match screen {
            UssdScreen::Final(text) => print(args.json, "final", &text, &message),
            UssdScreen::Prompt(text) => {
                print(args.json, "prompt", &text, &message);
                match stdin.next_line().await? {
                    Some(answer) => {
                        let answer = answer.trim_end_matches('\r');
                        let m = phone.answer(answer)?;
                        print(args.json, "answer", answer, &m);
                        client.submit_message(&m.to_short_message()).await?;
                    }
                    None => {
                        let m = phone.cancel()?;
                        print(args.json, "cancel", "", &m);
                        client.submit_message(&m.to_short_message()).await?;
                        eprintln!("smpp: error: stdin ended at a prompt; the dialog is cancelled");
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The next USSD message (others are answered and skipped); `None` after `timeout`.
async fn next_ussd(inbound: &Inbound, timeout: Duration) -> anyhow::Result<Option<UssdMessage>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let Ok(request) = tokio::time::timeout_at(deadline, inbound.recv()).await else {
            return Ok(None);
        };
        let request = request.ok_or_else(|| anyhow::anyhow!("the SMSC closed the session"))?;
        match UssdMessage::from_body(request.body()) {
            Some(m) => return Ok(Some(m)),
            None => tracing::info!(
                command = %request.pdu().command_id(),
                "not a USSD message; answered and skipped"
            ),
        }
    }
}

fn print(json: bool, kind: &str, text: &str, m: &UssdMessage) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = if json {
        writeln!(
            out,
            "{}",
            json!({"type": kind, "text": text, "op": m.op.name(),
                "session": m.session.map(|s| s.session_number)})
        )
    } else if kind == "answer" {
        writeln!(out, "> {text}")
    } else if kind == "cancel" {
        writeln!(out, "> (cancelled)")
    } else {
        writeln!(out, "{text}")
    };
    let _ = out.flush();
}
