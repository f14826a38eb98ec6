//! `smpp campaign status` (a campaign's progress and states from its
//! journal; `--live` asks the SMSC about the messages whose receipt never
//! came) and `smpp campaign list`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Args;
use futures_util::StreamExt as _;
use serde_json::json;
use smpp_proto::message::{Address, MessageIdFormat, MessageState};
use smpp_proto::pdu::{Body, COctetString, QuerySm};
use smpp_proto::session::{BindKind, InboundOverflow, SessionConfig};

use super::journal::{now_ms, Journal, Record};
use super::store::{Meta, Store};
use super::{lock, parse_rows, read_receipts, record, report, restore, state_word};
use super::{Campaign, Outcome, Row, State, StoreArgs};
use crate::common::{ConnectArgs, DEFAULT_HOST, DEFAULT_PORT};

/// Arguments of `smpp campaign status`.
#[derive(Debug, Args)]
#[command(after_long_help = "OUTPUT:\n  \
    `campaign ID`, where its recipients and journal are, `progress: A/N rows attempted (P%), \
    W awaiting a receipt`, then the recipients by state (the states of `smpp campaign --help`). \
    With --json, one object: id, recipients_file, journal, rows, attempted, awaiting_receipt, \
    states {STATE: N}, and with --live: live {receipts, queried, answered, failed}.\n\n\
    EXIT CODE:\n  0 when the status could be read (and, with --live, the SMSC was reached), 1 otherwise.")]
pub struct StatusArgs {
    /// The campaign's id (see `smpp campaign list`; default: the latest campaign).
    #[arg(conflicts_with = "journal")]
    pub id: Option<String>,
    /// The campaign whose journal this is.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Bind to the SMSC, take the receipts it kept for us, and ask (query_sm) about
    /// every message whose receipt never came; both are recorded in the journal.
    #[arg(long)]
    pub live: bool,
    /// With --live: where to connect and how to bind (as a transceiver). Left at
    /// their defaults, --host and --port are those the campaign was sent to.
    #[command(flatten)]
    pub connect: Box<ConnectArgs>,
    /// With --live: how long to take the receipts the SMSC kept before asking about the rest.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub wait: Duration,
    /// With --live: how long the connection, the bind and each query may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub response_timeout: Duration,
    /// Write the per-recipient report (the CSV of `smpp campaign --report`) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Where campaigns are kept.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Arguments of `smpp campaign list`.
#[derive(Debug, Args)]
#[command(after_long_help = "OUTPUT:\n  \
    One line per campaign, oldest first: its id, when it started (UTC), rows attempted of \
    all, the recipients by state, and its recipients file. With --json, one object per line.")]
pub struct ListArgs {
    /// Print one JSON object per campaign.
    #[arg(long)]
    pub json: bool,
    /// Where campaigns are kept.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A campaign read back from its record, its recipients copy and its journal.
struct Loaded {
    meta: Meta,
    rows: Vec<Row>,
    outcomes: Vec<Outcome>,
}

fn load(store: &Store, meta: Meta) -> anyhow::Result<Loaded> {
    let copy = store.recipients_copy(&meta.id);
    let bytes = std::fs::read(&copy).with_context(|| format!("cannot read {}", copy.display()))?;
    let (rows, fingerprint) = parse_rows(&bytes, meta.to_column.as_deref(), meta.text.as_deref())?;
    let (outcomes, _) = restore(&meta.journal, &rows, &fingerprint)?;
    Ok(Loaded {
        meta,
        rows,
        outcomes,
    })
}

/// Rows attempted (not pending, not duplicates of another) and rows whose
/// receipt is still awaited.
fn progress(outcomes: &[Outcome]) -> (usize, usize) {
    let attempted = outcomes
        .iter()
        .filter(|o| !matches!(o.state, State::Pending))
        .count();
    let awaiting = outcomes.iter().filter(|o| o.awaiting_receipt()).count();
    (attempted, awaiting)
}

fn time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// What `--live` did.
#[derive(Debug, Default)]
struct Live {
    receipts: usize,
    queried: usize,
    answered: usize,
    failed: usize,
}

/// Runs `smpp campaign status`.
pub(crate) async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = Store::new(args.store.campaigns_dir.as_deref());
    let meta = match (&args.id, &args.journal) {
        (Some(id), _) => store.load(id)?,
        (None, Some(journal)) => store.by_journal(journal)?,
        (None, None) => store.list()?.pop().with_context(|| {
            format!(
                "no campaign in {} (give an id or --journal)",
                store.dir.display()
            )
        })?,
    };
    let mut loaded = load(&store, meta)?;
    let live = if args.live {
        Some(live(&args, &mut loaded).await?)
    } else {
        None
    };
    if let Some(path) = &args.report {
        report::write(path, &loaded.rows, &loaded.outcomes)?;
    }
    print_status(&loaded, live.as_ref(), args.json);
    Ok(ExitCode::SUCCESS)
}

fn print_status(c: &Loaded, live: Option<&Live>, as_json: bool) {
    let (attempted, awaiting) = progress(&c.outcomes);
    let states = report::summary(&c.outcomes);
    let total = c.rows.len();
    if as_json {
        let mut v = json!({
            "id": c.meta.id, "recipients_file": c.meta.recipients, "journal": c.meta.journal,
            "created": time(c.meta.created_ms), "rows": total, "attempted": attempted,
            "awaiting_receipt": awaiting, "states": states,
        });
        if let Some(l) = live {
            v["live"] = json!({"receipts": l.receipts, "queried": l.queried,
                               "answered": l.answered, "failed": l.failed});
        }
        println!("{v}");
        return;
    }
    println!("campaign {}", c.meta.id);
    println!(
        "  started {} to {}:{} as {}",
        time(c.meta.created_ms),
        c.meta.host,
        c.meta.port,
        c.meta.system_id
    );
    println!("  recipients {}", c.meta.recipients.display());
    println!("  journal {}", c.meta.journal.display());
    if let Some(l) = live {
        println!(
            "live: {} receipts taken, {} messages queried, {} answered, {} queries failed",
            l.receipts, l.queried, l.answered, l.failed
        );
    }
    let percent = if total == 0 {
        100.0
    } else {
        attempted as f64 * 100.0 / total as f64
    };
    println!("progress: {attempted}/{total} rows attempted ({percent:.1}%), {awaiting} awaiting a receipt");
    print!("{}", report::summary_text(&states));
}

/// `--live`: binds, takes the receipts the SMSC kept, queries the rest.
async fn live(args: &StatusArgs, loaded: &mut Loaded) -> anyhow::Result<Live> {
    let meta = &loaded.meta;
    let format = MessageIdFormat::default();
    let mut ids = HashMap::new();
    for (i, o) in loaded.outcomes.iter().enumerate() {
        for id in &o.ids {
            ids.insert(format.canonical_submit(id), i);
        }
    }
    let config = SessionConfig::default()
        .with_max_in_flight(64)
        .with_max_inbound(256)
        .with_inbound_overflow(InboundOverflow::Backpressure)
        .with_response_timeout(args.response_timeout);
    let mut connect = args.connect.clone();
    if connect.host == DEFAULT_HOST && connect.port == DEFAULT_PORT {
        connect.host.clone_from(&meta.host);
        connect.port = meta.port;
    }
    let (client, inbound) = tokio::time::timeout(
        args.response_timeout,
        connect.connect(BindKind::Transceiver, config),
    )
    .await
    .context("the bind timed out")??;
    let journal = Journal::open(&meta.journal, None)?;
    let campaign = Arc::new(Campaign {
        rows: std::mem::take(&mut loaded.rows),
        outcomes: Mutex::new(std::mem::take(&mut loaded.outcomes)),
        ids: Mutex::new(ids),
        early: Mutex::new(HashMap::new()),
        format,
        journal,
        todo: Vec::new(),
        next: AtomicU64::new(0),
        start: Instant::now(),
        rate: None,
        stop: AtomicBool::new(false),
        source: meta.source.clone(),
        receipts: true,
        done: AtomicU64::new(0),
    });
    let receipts_before = count_receipts(&campaign);
    let reader = tokio::spawn(read_receipts(inbound, campaign.clone()));
    // The receipts the SMSC kept for this account come first.
    let awaiting = |c: &Campaign| lock(&c.outcomes).iter().any(Outcome::awaiting_receipt);
    let until = Instant::now() + args.wait;
    while awaiting(&campaign) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Then ask about every part still without one.
    let unresolved: Vec<(usize, String)> = lock(&campaign.outcomes)
        .iter()
        .enumerate()
        .filter(|(_, o)| o.state == State::Accepted)
        .flat_map(|(row, o)| o.unresolved_ids().into_iter().map(move |id| (row, id)))
        .collect();
    let source = if meta.source.is_empty() {
        Address {
            ton: 0,
            npi: 0,
            addr: COctetString::default(),
        }
    } else {
        Address::guess(&meta.source)
    };
    let mut live = Live {
        queried: unresolved.len(),
        ..Live::default()
    };
    let queries = futures_util::stream::iter(unresolved)
        .map(|(row, id)| {
            let body = Body::QuerySm(Box::new(QuerySm {
                message_id: COctetString::from(id.clone()),
                source_addr_ton: source.ton,
                source_addr_npi: source.npi,
                source_addr: source.addr.clone(),
                ..Default::default()
            }));
            let client = &client;
            async move { (row, id, client.request(body).await) }
        })
        .buffer_unordered(16);
    let answers: Vec<_> = queries.collect().await;
    for (row, id, answer) in answers {
        match answer.map(|pdu| pdu.body) {
            Ok(Body::QuerySmResp(r)) => {
                live.answered += 1;
                let state = MessageState::from_u8(r.message_state).unwrap_or(MessageState::Unknown);
                let r = Record::Query {
                    row,
                    at: now_ms(),
                    id,
                    state: state_word(state),
                    error: r.error_code.to_string(),
                };
                record(&campaign, row, r);
            }
            Ok(_) => live.failed += 1,
            Err(e) => {
                live.failed += 1;
                tracing::warn!(message_id = %id, error = %e, "query_sm failed");
            }
        }
    }
    let unbind = tokio::time::timeout(args.response_timeout, client.unbind()).await;
    if !matches!(unbind, Ok(Ok(()))) {
        client.close();
    }
    reader.abort();
    let _ = reader.await;
    campaign.journal.sync().await?;
    live.receipts = count_receipts(&campaign).saturating_sub(receipts_before);
    let campaign =
        Arc::try_unwrap(campaign).map_err(|_| anyhow::anyhow!("the receipt reader still runs"))?;
    loaded.rows = campaign.rows;
    loaded.outcomes = campaign
        .outcomes
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    Ok(live)
}

fn count_receipts(c: &Campaign) -> usize {
    lock(&c.outcomes).iter().map(|o| o.receipts.len()).sum()
}

/// Runs `smpp campaign list`.
pub(crate) fn list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let store = Store::new(args.store.campaigns_dir.as_deref());
    let all = store.list()?;
    if all.is_empty() && !args.json {
        println!("no campaigns in {}", store.dir.display());
    }
    for meta in all {
        let (id, created, recipients) = (
            meta.id.clone(),
            time(meta.created_ms),
            meta.recipients.clone(),
        );
        let read = load(&store, meta);
        let (rows, attempted, states) = match &read {
            Ok(c) => (
                Some(c.rows.len()),
                Some(progress(&c.outcomes).0),
                report::summary(&c.outcomes),
            ),
            Err(_) => (None, None, BTreeMap::new()),
        };
        if args.json {
            let error = read.as_ref().err().map(|e| format!("{e:#}"));
            println!(
                "{}",
                json!({"id": id, "created": created, "recipients_file": recipients,
                       "rows": rows, "attempted": attempted, "states": states, "error": error})
            );
            continue;
        }
        let counts = match &read {
            Ok(_) => states
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("unreadable: {e:#}"),
        };
        let done = match (attempted, rows) {
            (Some(a), Some(r)) => format!("{a}/{r}"),
            _ => "?".into(),
        };
        println!(
            "{id}  {created}  {done}  {counts}  {}",
            recipients.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
