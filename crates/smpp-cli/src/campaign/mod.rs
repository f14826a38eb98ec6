//! `smpp campaign`: one message (or one per row) to a list of recipients,
//! rate-limited, with receipts matched to recipients, a CSV report and a
//! summary by state; resumable after Ctrl-C or a crash.
//!
//! # Nobody receives it twice: at most once
//!
//! Every row goes through a journal (see [`journal`]): before a row's
//! `submit_sm` leaves, an `S` (submitting) record is appended and `fsync`ed;
//! after the answer, `A` (accepted, with the message ids), `F` (refused with
//! an error status) or `U` (no answer). On a restart with the same journal,
//! rows with no `S` are sent; rows with `A`/`F` keep their outcome; and a row
//! with `S` but no answer, or with `U`, may or may not have reached the SMSC.
//! Resending it could deliver the message twice, so it is **not** resent: it
//! is reported as `unknown` for a person to decide (at-most-once). The price
//! is that a crash between the `fsync` and the write to the socket leaves a
//! few rows (at most the window) `unknown` that the SMSC never saw; an
//! at-least-once design would resend them, and so could send others twice.
//!
//! The `S` records of a whole window are synced together (group commit), so
//! the journal costs one `fsync` per batch, not per message.
//!
//! Rows with the same recipient and text are sent once; the later ones are
//! reported as `duplicate`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use smpp_proto::message::{MessageIdFormat, MessageState, ReferenceCounter, ShortMessage};
use smpp_proto::session::{BindKind, InboundOverflow, SessionConfig};
use smpp_tokio::{Client, Error, Inbound};

use crate::common::ConnectArgs;

pub mod journal;
mod report;
mod status;
mod store;

use journal::{now_ms, Journal, Record};
use store::{Meta, Store};

/// Arguments of `smpp campaign`.
#[derive(Debug, Args)]
#[command(
    after_long_help = report::HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct CampaignArgs {
    /// `status` or `list` (without one: send the campaign).
    #[command(subcommand)]
    pub action: Option<CampaignAction>,
    /// Where to connect and how to bind.
    #[command(flatten)]
    pub connect: Box<ConnectArgs>,
    /// CSV file with a header row: a recipient column (`recipient`, `to`,
    /// `msisdn`, `phone`, `destination`, or the first column) and optionally
    /// a `text` column.
    #[arg(long, required = true)]
    pub recipients: Option<PathBuf>,
    /// The campaign's id (letters, digits, `.`, `_`, `-`; default: the
    /// recipients file's name and a hash of its path, so the same command
    /// resumes the same campaign). Give a new one to send the same list again.
    #[arg(long)]
    pub id: Option<String>,
    /// Where campaigns are kept.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The text for every recipient (otherwise each row's `text` column).
    #[arg(long)]
    pub text: Option<String>,
    /// The recipient column's name (default: found by name, else the first).
    #[arg(long)]
    pub to_column: Option<String>,
    /// Source address.
    #[arg(long, default_value = "")]
    pub source: String,
    /// Binds (transceivers) to open.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub sessions: u64,
    /// Messages in flight per bind.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub window: u64,
    /// Global limit, messages (rows) per second over all binds.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Ask for delivery receipts and match them to recipients.
    #[arg(long)]
    pub receipts: bool,
    /// With --receipts: how long to wait for receipts after the last submit.
    #[arg(long, default_value = "30s")]
    pub wait_receipts: humantime::Duration,
    /// A submit without an answer this long is `unknown` (and not resent).
    #[arg(long, default_value = "30s")]
    pub response_timeout: humantime::Duration,
    /// Write the report (one row per recipient) to this CSV file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The journal that makes the campaign resumable (default: `journal` in
    /// the campaign's directory). Run again with the same journal to resume.
    #[arg(long)]
    pub journal: Option<PathBuf>,
}

/// Where campaigns are kept (see `smpp campaign --help`).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The directory of every campaign on this machine [default: the platform's
    /// data directory, e.g. ~/.local/share/smpp/campaigns; ./smpp-campaigns
    /// when there is none].
    #[arg(long, value_name = "DIR", env = "SMPP_CAMPAIGNS_DIR")]
    pub campaigns_dir: Option<PathBuf>,
}

/// `smpp campaign status` and `smpp campaign list`.
#[derive(Debug, clap::Subcommand)]
pub enum CampaignAction {
    /// A campaign's progress and its recipients by state, from its journal;
    /// with --live, asks the SMSC (query_sm) about messages whose receipt never came.
    Status(status::StatusArgs),
    /// The campaigns on this machine.
    List(status::ListArgs),
}

/// One row of the recipients file.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) recipient: String,
    pub(crate) text: String,
}

/// What happened to a row, rebuilt from the journal and updated live.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    pub(crate) state: State,
    pub(crate) ids: Vec<String>,
    pub(crate) error: String,
    pub(crate) submitted_at: Option<u64>,
    pub(crate) answered_at: Option<u64>,
    /// Receipts by part id: (state word, error, at).
    pub(crate) receipts: HashMap<String, (String, String, u64)>,
    /// The last `query_sm` answer by part id: (state word, error, at).
    pub(crate) queries: HashMap<String, (String, String, u64)>,
}

/// Whether a state word (of a receipt or a query answer) is final.
pub(crate) fn is_final_word(word: &str) -> bool {
    !matches!(word, "scheduled" | "enroute" | "receipt_unknown")
}

/// A row's state before receipts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum State {
    /// Not attempted yet.
    #[default]
    Pending,
    /// Same recipient and text as an earlier row: not sent.
    Duplicate,
    /// Submitting: an `S` record without an answer (only during a run).
    InFlight,
    /// Every part accepted.
    Accepted,
    /// Refused with an error status.
    Failed,
    /// May or may not have reached the SMSC; not resent.
    Unknown,
}

impl Outcome {
    /// The state shown in the report: receipts refine `accepted`.
    pub(crate) fn final_state(&self) -> String {
        match self.state {
            State::Pending => "pending".into(),
            State::Duplicate => "duplicate".into(),
            State::InFlight | State::Unknown => "unknown".into(),
            State::Failed => "failed".into(),
            State::Accepted => {
                // A part's state: its receipt, else a final query_sm answer.
                let queried = self
                    .queries
                    .iter()
                    .filter(|(id, q)| !self.receipts.contains_key(*id) && is_final_word(&q.0));
                let known: Vec<(&String, &str)> = self
                    .receipts
                    .iter()
                    .map(|(id, r)| (id, r.0.as_str()))
                    .chain(queried.map(|(id, q)| (id, q.0.as_str())))
                    .collect();
                // Any negative one decides, whatever the other parts say.
                if let Some((_, state)) = known.iter().find(|(_, s)| *s != "delivered") {
                    return (*state).to_owned();
                }
                let all = !self.ids.is_empty()
                    && self
                        .ids
                        .iter()
                        .all(|id| known.iter().any(|(k, _)| *k == id));
                if all {
                    "delivered".into()
                } else {
                    "accepted".into()
                }
            }
        }
    }

    /// Accepted, and some part has neither a receipt nor a final query answer.
    pub(crate) fn awaiting_receipt(&self) -> bool {
        self.state == State::Accepted && self.final_state() == "accepted"
    }

    /// The part ids still without a receipt or a final query answer.
    pub(crate) fn unresolved_ids(&self) -> Vec<String> {
        let resolved = |id: &String| {
            self.receipts.contains_key(id)
                || self.queries.get(id).is_some_and(|q| is_final_word(&q.0))
        };
        self.ids
            .iter()
            .filter(|id| !resolved(id))
            .cloned()
            .collect()
    }

    fn apply(&mut self, record: &Record) {
        match record {
            Record::Header(_) => {}
            Record::Submitting { at, .. } => {
                self.state = State::InFlight;
                self.submitted_at = Some(*at);
            }
            Record::Accepted { at, ids, .. } => {
                self.state = State::Accepted;
                self.ids.clone_from(ids);
                self.answered_at = Some(*at);
            }
            Record::Failed { at, ids, error, .. } => {
                self.state = State::Failed;
                self.ids.clone_from(ids);
                self.error.clone_from(error);
                self.answered_at = Some(*at);
            }
            Record::Unknown { at, error, .. } => {
                self.state = State::Unknown;
                self.error.clone_from(error);
                self.answered_at = Some(*at);
            }
            Record::Receipt {
                at,
                id,
                state,
                error,
                ..
            } => {
                self.receipts
                    .insert(id.clone(), (state.clone(), error.clone(), *at));
            }
            Record::Query {
                at,
                id,
                state,
                error,
                ..
            } => {
                self.queries
                    .insert(id.clone(), (state.clone(), error.clone(), *at));
            }
        }
    }
}

/// The receipt state word used in reports.
fn state_word(state: MessageState) -> String {
    match state {
        MessageState::Unknown => "receipt_unknown".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Reads the recipients CSV.
pub(crate) fn read_rows(args: &CampaignArgs) -> anyhow::Result<(Vec<Row>, String, Vec<u8>)> {
    let path = args
        .recipients
        .as_deref()
        .context("--recipients is required")?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (rows, fingerprint) = parse_rows(&bytes, args.to_column.as_deref(), args.text.as_deref())?;
    Ok((rows, fingerprint, bytes))
}

/// Parses a recipients file (`to_column` and `text` as the flags say) and
/// fingerprints it for the journal.
pub(crate) fn parse_rows(
    bytes: &[u8],
    to_column: Option<&str>,
    text: Option<&str>,
) -> anyhow::Result<(Vec<Row>, String)> {
    let fingerprint = format!("{:016x} {}", fnv1a(bytes), bytes.len());
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .context("the recipients file has no header row")?;
    let lower: Vec<String> = headers.iter().map(str::to_lowercase).collect();
    let to = match to_column {
        Some(name) => lower
            .iter()
            .position(|h| *h == name.to_lowercase())
            .with_context(|| format!("no column {name:?} in the recipients file"))?,
        None => [
            "recipient",
            "to",
            "msisdn",
            "phone",
            "destination",
            "number",
        ]
        .iter()
        .find_map(|n| lower.iter().position(|h| h == n))
        .unwrap_or(0),
    };
    let text_col = lower.iter().position(|h| h == "text");
    if text.is_none() && text_col.is_none() {
        anyhow::bail!("give --text, or a `text` column in the recipients file");
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("bad CSV at data row {}", i + 1))?;
        let recipient = record.get(to).unwrap_or("").to_owned();
        let text = match text {
            Some(t) => t.to_owned(),
            None => text_col
                .and_then(|c| record.get(c))
                .unwrap_or("")
                .to_owned(),
        };
        rows.push(Row { recipient, text });
    }
    Ok((rows, fingerprint))
}

/// FNV-1a: identifies the recipients file in the journal.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The campaign's id and record, its journal registered in the store.
fn register(args: &CampaignArgs, store: &Store, bytes: &[u8]) -> anyhow::Result<Meta> {
    let recipients = store::absolute(args.recipients.as_deref().context("--recipients")?)?;
    let id = match &args.id {
        Some(id) => {
            store::check_id(id)?;
            id.clone()
        }
        None => store::derive_id(&recipients),
    };
    let journal = match &args.journal {
        Some(j) => store::absolute(j)?,
        None => store.default_journal(&id),
    };
    let meta = Meta {
        id: id.clone(),
        created_ms: now_ms(),
        recipients,
        to_column: args.to_column.clone(),
        text: args.text.clone(),
        source: args.source.clone(),
        receipts: args.receipts,
        journal,
        host: args.connect.host.clone(),
        port: args.connect.port,
        system_id: args.connect.system_id.clone(),
    };
    store.register(&meta, bytes)?;
    // The record of an earlier run stands (its journal, its recipients copy).
    let recorded = store.load(&id)?;
    if args.journal.is_some() && recorded.journal != meta.journal {
        anyhow::bail!(
            "campaign {id} keeps its journal at {}; give that --journal, or another --id",
            recorded.journal.display()
        );
    }
    Ok(recorded)
}

/// Rebuilds every row's outcome from the journal; checks it belongs to this list.
pub(crate) fn restore(
    path: &Path,
    rows: &[Row],
    fingerprint: &str,
) -> anyhow::Result<(Vec<Outcome>, bool)> {
    let records = journal::read(path)?;
    let mut outcomes = vec![Outcome::default(); rows.len()];
    let fresh = records.is_empty();
    if let Some(first) = records.first() {
        match first {
            Record::Header(f) if f == fingerprint => {}
            _ => anyhow::bail!(
                "the journal {} belongs to another recipients list (or was changed); \
                 give another --journal",
                path.display()
            ),
        }
    }
    for r in &records {
        let row = match r {
            Record::Header(_) => continue,
            Record::Submitting { row, .. }
            | Record::Accepted { row, .. }
            | Record::Failed { row, .. }
            | Record::Unknown { row, .. }
            | Record::Receipt { row, .. }
            | Record::Query { row, .. } => *row,
        };
        if let Some(o) = outcomes.get_mut(row) {
            o.apply(r);
        }
    }
    // A submit with no recorded answer may have reached the SMSC.
    for o in &mut outcomes {
        if o.state == State::InFlight {
            o.state = State::Unknown;
            o.error = "interrupted before the answer was recorded".into();
        }
    }
    // The same recipient and text twice: send once.
    let mut seen = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        if let Some(&first) = seen.get(&(row.recipient.as_str(), row.text.as_str())) {
            if outcomes[i].state == State::Pending {
                outcomes[i].state = State::Duplicate;
                outcomes[i].error = format!("same recipient and text as row {}", first + 1);
            }
        } else {
            seen.insert((row.recipient.as_str(), row.text.as_str()), i);
        }
    }
    Ok((outcomes, fresh))
}

/// Shared by the sending slots and the receipt readers.
struct Campaign {
    rows: Vec<Row>,
    outcomes: Mutex<Vec<Outcome>>,
    /// Canonical part id -> row.
    ids: Mutex<HashMap<String, usize>>,
    /// Receipts that came before their submit's answer was seen: key -> record parts.
    early: Mutex<HashMap<String, (String, String, u64)>>,
    format: MessageIdFormat,
    journal: Journal,
    /// Rows still to send, in order.
    todo: Vec<usize>,
    next: AtomicU64,
    start: Instant,
    rate: Option<f64>,
    stop: AtomicBool,
    source: String,
    receipts: bool,
    done: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `smpp campaign` (and its `status` and `list`).
pub async fn run(args: CampaignArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        Some(CampaignAction::Status(status)) => status::status(status).await,
        Some(CampaignAction::List(list)) => status::list(&list),
        None => send(args).await,
    }
}

/// Sends (or resumes) the campaign.
async fn send(args: CampaignArgs) -> anyhow::Result<ExitCode> {
    if let Some(rate) = args.rate {
        anyhow::ensure!(rate > 0.0 && rate.is_finite(), "--rate must be positive");
    }
    let (rows, fingerprint, bytes) = read_rows(&args)?;
    let store = Store::new(args.store.campaigns_dir.as_deref());
    let meta = register(&args, &store, &bytes)?;
    let path = meta.journal.clone();
    let (outcomes, fresh) = restore(&path, &rows, &fingerprint)?;
    let journal = Journal::open(&path, fresh.then(|| Record::Header(fingerprint.clone())))?;
    let todo: Vec<usize> = (0..rows.len())
        .filter(|&i| outcomes[i].state == State::Pending)
        .collect();
    let mut ids = HashMap::new();
    let format = MessageIdFormat::default();
    for (i, o) in outcomes.iter().enumerate() {
        for id in &o.ids {
            ids.insert(format.canonical_submit(id), i);
        }
    }
    let awaiting_receipts = |c: &Campaign| {
        c.receipts
            && lock(&c.outcomes)
                .iter()
                .any(|o| o.state == State::Accepted && o.receipts.len() < o.ids.len())
    };
    eprintln!(
        "campaign {}: {} recipients, {} to send, journal {}",
        meta.id,
        rows.len(),
        todo.len(),
        path.display()
    );
    let campaign = Arc::new(Campaign {
        rows,
        outcomes: Mutex::new(outcomes),
        ids: Mutex::new(ids),
        early: Mutex::new(HashMap::new()),
        format,
        journal,
        todo,
        next: AtomicU64::new(0),
        start: Instant::now(),
        rate: args.rate,
        stop: AtomicBool::new(false),
        source: args.source.clone(),
        receipts: args.receipts,
        done: AtomicU64::new(0),
    });

    let need_bind = !campaign.todo.is_empty() || awaiting_receipts(&campaign);
    if need_bind {
        let window = usize::try_from(args.window).unwrap_or(1024);
        let config = Arc::new(
            SessionConfig::default()
                .with_max_in_flight(window * 4)
                // Receipts wait in TCP rather than being refused when they burst.
                .with_max_inbound(window.max(256))
                .with_inbound_overflow(InboundOverflow::Backpressure)
                .with_response_timeout(*args.response_timeout),
        );
        let mut sessions = Vec::new();
        for _ in 0..args.sessions {
            sessions.push(
                args.connect
                    .connect(BindKind::Transceiver, config.clone())
                    .await?,
            );
        }
        // Ctrl-C: stop taking rows; in-flight ones finish (or time out).
        let stopper = campaign.clone();
        let ctrl_c = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("campaign: interrupted: finishing the messages in flight");
                stopper.stop.store(true, Ordering::SeqCst);
            }
        });
        let progress = progress(&campaign);
        let mut readers = Vec::new();
        let mut slots = Vec::new();
        let mut clients = Vec::new();
        for (client, inbound) in sessions {
            readers.push(tokio::spawn(read_receipts(inbound, campaign.clone())));
            for _ in 0..args.window {
                slots.push(tokio::spawn(slot(client.clone(), campaign.clone())));
            }
            clients.push(client);
        }
        for s in slots {
            s.await.context("a sending task failed")?;
        }
        if args.receipts && !campaign.stop.load(Ordering::SeqCst) {
            let until = Instant::now() + *args.wait_receipts;
            while awaiting_receipts(&campaign)
                && Instant::now() < until
                && !campaign.stop.load(Ordering::SeqCst)
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        progress.finish_and_clear();
        ctrl_c.abort();
        for client in &clients {
            let _ = tokio::time::timeout(Duration::from_secs(5), client.unbind()).await;
            client.close();
        }
        for r in readers {
            r.abort();
        }
    }
    // Everything recorded is synced before the report is written.
    campaign.journal.sync().await?;

    let outcomes = lock(&campaign.outcomes).clone();
    if let Some(path) = &args.report {
        report::write(path, &campaign.rows, &outcomes)?;
    }
    let summary = report::summary(&outcomes);
    print!("{}", report::summary_text(&summary));
    let complete = outcomes
        .iter()
        .all(|o| matches!(o.state, State::Accepted | State::Duplicate));
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn progress(campaign: &Arc<Campaign>) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    let bar = if std::io::stdout().is_terminal() {
        let bar = indicatif::ProgressBar::new(campaign.todo.len() as u64);
        bar.set_draw_target(indicatif::ProgressDrawTarget::stdout());
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} {per_sec} [{elapsed_precise}]",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let (ticking, c) = (bar.clone(), campaign.clone());
    tokio::spawn(async move {
        while !ticking.is_finished() && !ticking.is_hidden() {
            ticking.set_position(c.done.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    bar
}

/// One window slot: takes rows and sends them until none is left.
async fn slot(client: Client, c: Arc<Campaign>) {
    let mut refs = ReferenceCounter::new((now_ms() & 0xFFFF) as u16);
    loop {
        if c.stop.load(Ordering::SeqCst) || client.is_closed() {
            return;
        }
        let n = c.next.fetch_add(1, Ordering::Relaxed);
        let Some(&row) = usize::try_from(n).ok().and_then(|n| c.todo.get(n)) else {
            return;
        };
        if let Some(rate) = c.rate {
            let due = c.start + Duration::from_secs_f64(n as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            if c.stop.load(Ordering::SeqCst) {
                return; // not recorded: stays pending
            }
        }
        send_row(&client, &c, row, &mut refs).await;
        c.done.fetch_add(1, Ordering::Relaxed);
    }
}

async fn send_row(client: &Client, c: &Campaign, row: usize, refs: &mut ReferenceCounter) {
    let r = &c.rows[row];
    let mut message = ShortMessage::text(r.text.clone()).to(r.recipient.as_str());
    if !c.source.is_empty() {
        message = message.from(c.source.as_str());
    }
    if c.receipts {
        message = message.request_receipt();
    }
    let parts = match message.build(refs) {
        Ok(parts) if !r.recipient.is_empty() => parts,
        Ok(_) => return record(c, row, failed(row, Vec::new(), "empty recipient")),
        Err(e) => return record(c, row, failed(row, Vec::new(), &e.to_string())),
    };
    // At most once: the intent is on disk before anything is sent.
    let submitting = Record::Submitting { row, at: now_ms() };
    if let Err(e) = c.journal.write_synced(submitting.clone()).await {
        tracing::error!(error = %e, "journal write failed: stopping");
        c.stop.store(true, Ordering::SeqCst);
        return;
    }
    lock(&c.outcomes)[row].apply(&submitting);
    let results =
        futures_util::future::join_all(parts.into_iter().map(|sm| client.submit(sm))).await;
    let mut ids = Vec::new();
    let mut refused = None;
    let mut unanswered = None;
    for result in results {
        match result {
            Ok(id) => ids.push(id.to_string_lossy().into_owned()),
            Err(Error::Status(status)) => refused = refused.or(Some(status.to_string())),
            Err(e) => unanswered = unanswered.or(Some(e.to_string())),
        }
    }
    let mut early = Vec::new();
    {
        let mut known = lock(&c.ids);
        let mut waiting = lock(&c.early);
        for id in &ids {
            let key = c.format.canonical_submit(id);
            if let Some((state, error, at)) = waiting.remove(&key) {
                let id = id.to_string();
                early.push(Record::Receipt {
                    row,
                    at,
                    id,
                    state,
                    error,
                });
            }
            known.insert(key, row);
        }
    }
    let at = now_ms();
    let outcome = match (unanswered, refused) {
        (Some(error), _) => Record::Unknown { row, at, error },
        (None, Some(error)) => Record::Failed {
            row,
            at,
            ids,
            error,
        },
        (None, None) => Record::Accepted { row, at, ids },
    };
    record(c, row, outcome);
    for r in early {
        record(c, row, r);
    }
}

fn failed(row: usize, ids: Vec<String>, error: &str) -> Record {
    Record::Failed {
        row,
        at: now_ms(),
        ids,
        error: error.to_owned(),
    }
}

fn record(c: &Campaign, row: usize, r: Record) {
    lock(&c.outcomes)[row].apply(&r);
    c.journal.write(r);
}

/// Matches receipts to rows (dropping the request answers it with status 0).
async fn read_receipts(inbound: Inbound, c: Arc<Campaign>) {
    while let Some(request) = inbound.recv().await {
        let Some(receipt) = request.receipt() else {
            continue;
        };
        let key = c.format.canonical_receipt(&receipt.id);
        let state = state_word(receipt.state);
        let error = receipt.error.clone().unwrap_or_default();
        let Some(row) = lock(&c.ids).get(&key).copied() else {
            // Its submit's answer may not be processed yet (bounded wait room).
            let mut early = lock(&c.early);
            if early.len() < 100_000 {
                early.insert(key, (state, error, now_ms()));
            }
            continue;
        };
        // Record under the id as the submit answer gave it.
        let id = lock(&c.outcomes)[row]
            .ids
            .iter()
            .find(|id| c.format.canonical_submit(id) == key)
            .cloned()
            .unwrap_or(receipt.id.clone());
        let r = Record::Receipt {
            row,
            at: now_ms(),
            id,
            state,
            error,
        };
        record(&c, row, r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(state: State, ids: &[&str], receipts: &[(&str, &str)]) -> Outcome {
        Outcome {
            state,
            ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            receipts: receipts
                .iter()
                .map(|(id, s)| ((*id).to_owned(), ((*s).to_owned(), String::new(), 0)))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn final_state_follows_receipts() {
        assert_eq!(
            outcome(State::Accepted, &["a"], &[]).final_state(),
            "accepted"
        );
        let done = outcome(
            State::Accepted,
            &["a", "b"],
            &[("a", "delivered"), ("b", "delivered")],
        );
        assert_eq!(done.final_state(), "delivered");
        let half = outcome(State::Accepted, &["a", "b"], &[("a", "delivered")]);
        assert_eq!(half.final_state(), "accepted");
        let bad = outcome(State::Accepted, &["a", "b"], &[("b", "undeliverable")]);
        assert_eq!(bad.final_state(), "undeliverable");
        assert_eq!(outcome(State::InFlight, &[], &[]).final_state(), "unknown");
    }

    #[test]
    fn final_query_answers_count_for_parts_without_a_receipt() {
        let mut o = outcome(State::Accepted, &["a", "b"], &[("a", "delivered")]);
        assert!(o.awaiting_receipt());
        assert_eq!(o.unresolved_ids(), ["b"]);
        // A query that finds the message still en route decides nothing.
        let q = |s: &str| (s.to_owned(), "0".to_owned(), 1);
        o.queries.insert("b".into(), q("enroute"));
        assert_eq!(o.final_state(), "accepted");
        assert_eq!(o.unresolved_ids(), ["b"]);
        o.queries.insert("b".into(), q("delivered"));
        assert_eq!(o.final_state(), "delivered");
        assert!(!o.awaiting_receipt());
        assert!(o.unresolved_ids().is_empty());
        // A receipt wins over a query answer for the same part.
        o.queries.insert("a".into(), q("expired"));
        assert_eq!(o.final_state(), "delivered");
        o.queries.insert("b".into(), q("undeliverable"));
        assert_eq!(o.final_state(), "undeliverable");
    }

    #[test]
    fn receipt_states_are_words() {
        assert_eq!(state_word(MessageState::Delivered), "delivered");
        assert_eq!(state_word(MessageState::Undeliverable), "undeliverable");
        assert_eq!(state_word(MessageState::Unknown), "receipt_unknown");
    }
}
