//! `smpp query`, `smpp cancel`, `smpp replace`: ask an SMSC about one message
//! it accepted earlier, cancel it, or replace it while it is pending.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgGroup, Args};
use serde_json::json;
use smpp_proto::message::{Address, MessageState};
use smpp_proto::pdu::{Body, COctetString, CancelSm, QuerySm, RegisteredDelivery, ReplaceSm};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Error};

use crate::common::ConnectArgs;
use crate::send::{message_content, Coding};

/// What every one of these commands needs.
#[derive(Debug, Args)]
pub struct Target {
    /// Where to connect and how to bind (as a transmitter).
    #[command(flatten)]
    pub connect: Box<ConnectArgs>,
    /// The message id the SMSC gave in its submit_sm_resp.
    #[arg(long)]
    pub id: String,
    /// The originator address of the submission (the SMSC checks it matches).
    #[arg(long, default_value = "")]
    pub from: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the connection, the bind and the response.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub response_timeout: Duration,
}

/// Arguments of `smpp query`.
#[derive(Debug, Args)]
#[command(
    after_long_help = "OUTPUT:\n  `message_id ID state STATE final_date DATE error CODE` \
    (or one JSON object with --json).\n\nEXIT CODE:\n  0 when the SMSC answered with status 0, \
    1 otherwise, 2 on usage errors."
)]
pub struct QueryArgs {
    /// The message.
    #[command(flatten)]
    pub target: Target,
}

/// Arguments of `smpp cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The message.
    #[command(flatten)]
    pub target: Target,
    /// Its recipient (some SMSCs check it).
    #[arg(long, default_value = "")]
    pub to: String,
}

/// Arguments of `smpp replace`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("content").required(true).args(["text", "hex"])))]
pub struct ReplaceArgs {
    /// The message.
    #[command(flatten)]
    pub target: Target,
    /// The new text (one part: replace_sm cannot split).
    #[arg(long)]
    pub text: Option<String>,
    /// The new user data as hex octets.
    #[arg(long)]
    pub hex: Option<String>,
    /// Coding of the new content (as for `smpp send`; it must match the original's
    /// data_coding, which replace_sm cannot change).
    #[arg(long, value_enum, default_value_t = Coding::Auto)]
    pub coding: Coding,
    /// Ask for a receipt of the replaced message.
    #[arg(long)]
    pub receipt: bool,
    /// A new validity_period (forms of `smpp send --validity`).
    #[arg(long, value_name = "WHEN", value_parser = crate::send::parse_when)]
    pub validity: Option<String>,
    /// A new schedule_delivery_time.
    #[arg(long, value_name = "WHEN", value_parser = crate::send::parse_when)]
    pub schedule: Option<String>,
}

impl Target {
    async fn client(&self) -> anyhow::Result<Client> {
        let config = SessionConfig::default().with_response_timeout(self.response_timeout);
        let (client, _inbound) = tokio::time::timeout(
            self.response_timeout,
            self.connect.connect(BindKind::Transmitter, config),
        )
        .await
        .context("the bind timed out")??;
        Ok(client)
    }

    /// Sends `body`, unbinds, and prints the outcome; `Ok(response)` on status 0.
    async fn ask(&self, what: &str, body: Body) -> anyhow::Result<Option<Body>> {
        let client = self.client().await?;
        let answer = client.request(body).await;
        let unbind = tokio::time::timeout(self.response_timeout, client.unbind()).await;
        if !matches!(unbind, Ok(Ok(()))) {
            client.close();
        }
        match answer {
            Ok(pdu) => Ok(Some(pdu.body)),
            Err(e) => {
                let status = match &e {
                    Error::Status(s) | Error::GenericNack(s) => Some(s.to_string()),
                    _ => None,
                };
                if self.json {
                    println!(
                        "{}",
                        json!({"event": format!("{what}_failed"), "message_id": self.id,
                               "status": status, "error": e.to_string()})
                    );
                } else {
                    println!("message_id {} error {e}", self.id);
                }
                Ok(None)
            }
        }
    }

    fn source(&self) -> Address {
        if self.from.is_empty() {
            Address {
                ton: 0,
                npi: 0,
                addr: COctetString::default(),
            }
        } else {
            Address::guess(&self.from)
        }
    }

    fn id(&self) -> COctetString {
        COctetString::from(self.id.clone())
    }
}

/// Runs `smpp query`.
pub async fn query(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let t = &args.target;
    let source = t.source();
    let body = Body::QuerySm(Box::new(QuerySm {
        message_id: t.id(),
        source_addr_ton: source.ton,
        source_addr_npi: source.npi,
        source_addr: source.addr,
        ..Default::default()
    }));
    let Some(Body::QuerySmResp(r)) = t.ask("query", body).await? else {
        return Ok(ExitCode::FAILURE);
    };
    let state = MessageState::from_u8(r.message_state).unwrap_or(MessageState::Unknown);
    let final_date = r.final_date.to_string_lossy();
    if t.json {
        println!(
            "{}",
            json!({"event": "state", "message_id": r.message_id.to_string_lossy(),
                   "state": state.stat_word(), "message_state": r.message_state,
                   "final_date": final_date, "error_code": r.error_code})
        );
    } else {
        println!(
            "message_id {} state {} final_date {} error {}",
            r.message_id.to_string_lossy(),
            state.stat_word(),
            if final_date.is_empty() {
                "-"
            } else {
                &final_date
            },
            r.error_code
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `smpp cancel`.
pub async fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    let t = &args.target;
    let source = t.source();
    let dest = if args.to.is_empty() {
        Address {
            ton: 0,
            npi: 0,
            addr: COctetString::default(),
        }
    } else {
        Address::guess(&args.to)
    };
    let body = Body::CancelSm(Box::new(CancelSm {
        message_id: t.id(),
        source_addr_ton: source.ton,
        source_addr_npi: source.npi,
        source_addr: source.addr,
        dest_addr_ton: dest.ton,
        dest_addr_npi: dest.npi,
        destination_addr: dest.addr,
        ..Default::default()
    }));
    Ok(done(t, "cancelled", t.ask("cancel", body).await?.is_some()))
}

/// Runs `smpp replace`.
pub async fn replace(args: ReplaceArgs) -> anyhow::Result<ExitCode> {
    let t = &args.target;
    let source = t.source();
    let content = message_content(args.text.as_deref(), args.hex.as_deref(), args.coding)?
        .to("0")
        .build(&mut smpp_proto::message::ReferenceCounter::new(0))
        .context("cannot build the new content")?;
    let [part] = <[_; 1]>::try_from(content).map_err(|parts: Vec<_>| {
        anyhow::anyhow!(
            "the new content needs {} parts; replace_sm carries one",
            parts.len()
        )
    })?;
    let registered = if args.receipt {
        RegisteredDelivery::default()
            .with_receipt(smpp_proto::pdu::ReceiptRequest::SuccessOrFailure)
    } else {
        RegisteredDelivery::default()
    };
    let body = Body::ReplaceSm(Box::new(ReplaceSm {
        message_id: t.id(),
        source_addr_ton: source.ton,
        source_addr_npi: source.npi,
        source_addr: source.addr,
        schedule_delivery_time: COctetString::from(args.schedule.clone().unwrap_or_default()),
        validity_period: COctetString::from(args.validity.clone().unwrap_or_default()),
        registered_delivery: registered.into(),
        short_message: part.short_message,
        ..Default::default()
    }));
    Ok(done(t, "replaced", t.ask("replace", body).await?.is_some()))
}

fn done(t: &Target, what: &str, ok: bool) -> ExitCode {
    if !ok {
        return ExitCode::FAILURE;
    }
    if t.json {
        println!("{}", json!({"event": what, "message_id": t.id}));
    } else {
        println!("message_id {} {what}", t.id);
    }
    ExitCode::SUCCESS
}
