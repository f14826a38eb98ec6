//! `smpp bench`: a load generator against any SMSC.
//!
//! N binds (transceivers), each keeping up to W `submit_sm` in flight: one
//! task per window slot submits, awaits its answer, and submits again, so
//! the window stays full. Every submit takes a ticket from one shared
//! counter; the ticket number gives the message its destination (from the
//! address template) and, with `--rate`, the instant it may leave
//! (`start + n / rate`), which makes the rate limit global and exact on
//! average without a central scheduler.
//!
//! Latency is measured per call, from the call to its `submit_sm_resp`, in
//! one hdrhistogram per slot (merged at the end: no lock on the hot path).
//! With `--receipt`, receipts are matched to submits by message id
//! (normalised with [`MessageIdFormat`]), and their latency is measured from
//! the submit.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{ArgGroup, Args, ValueEnum};
use hdrhistogram::Histogram;
use serde::Serialize;
use smpp_proto::message::{MessageIdFormat, ReferenceCounter, ShortMessage};
use smpp_proto::pdu::{CommandStatus, SubmitSm};
use smpp_proto::session::{BindKind, InboundOverflow, SessionConfig, Stats};
use smpp_tokio::{Client, Error, Inbound};

use crate::common::ConnectArgs;

mod plot;
pub use plot::Sample;

/// What `--json` prints, documented in `smpp bench --help`.
const JSON_HELP: &str = "\
With --json, one JSON object on stdout (with --sweep-window: {\"sweep\": [object per window]}):
  sessions, window        binds and slots per bind
  coding, text_len        text coding and length in characters; parts: submit_sm per message
  sent                    submit_sm handed to the sessions
  ok                      answered with status 0
  failed                  answered with an error status: {\"ESME_RTHROTTLED\": 12, ...}
  failed_total            sum of failed
  unanswered              no response within --response-timeout
  lost                    the session closed under them (or another local error)
  unsent                  with --count: tickets never sent (a session died)
  elapsed_s               from the first submit to the last answer
  throughput              ok / elapsed_s (submit_sm per second)
  latency_us              submit to submit_sm_resp, of ok: {p50, p90, p99, p99_9, max, mean}
  receipts                null without --receipt, else {expected, received, unmatched,
                          missing, latency_ms: {p50, p90, p99, p99_9, max, mean}}
  congestion_state        null unless the SMSC reported SMPP 5.0 congestion_state (bind with
                          --interface-version 5.0), else {max, last, responses, window_min,
                          window_end}: the highest value seen, the highest of the binds' last
                          values, responses that carried one, and the smallest effective window
                          (per bind) at the end of the run; the client narrows its window above 90
  success                 true when everything sent was answered ok (and every receipt came)
Exit status 1 when anything failed, went unanswered, was lost or unsent, or a receipt is missing.";

/// Arguments of `smpp bench`.
#[derive(Debug, Args)]
#[command(after_long_help = JSON_HELP)]
#[command(group(ArgGroup::new("amount").required(true).args(["count", "duration"])))]
pub struct BenchArgs {
    /// Where to connect and how to bind.
    #[command(flatten)]
    pub connect: Box<ConnectArgs>,
    /// Binds that submit (transceivers, or transmitters with `--bind tx-rx`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub sessions: u64,
    /// submit_sm kept in flight per bind.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub window: u64,
    /// Send this many submit_sm in all, then stop.
    #[arg(long)]
    pub count: Option<u64>,
    /// Send for this long (e.g. `10s`), then stop.
    #[arg(long)]
    pub duration: Option<humantime::Duration>,
    /// Global limit, submit_sm per second over all binds.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Characters of text per message (a fixed text; longer than one part
    /// gives concatenated parts, each one submit_sm).
    #[arg(long, default_value_t = 160)]
    pub text_len: usize,
    /// Text coding.
    #[arg(long, value_enum, default_value_t = Coding::Gsm7)]
    pub coding: Coding,
    /// Random text (256 messages prepared in advance, used in turn) instead
    /// of one fixed text.
    #[arg(long)]
    pub random_text: bool,
    /// How to bind: `trx` one transceiver per session; `tx-rx` a
    /// transmitter per session, plus (with --receipt) a receiver per
    /// session for the receipts.
    #[arg(long, value_enum, default_value_t = BindMode::Trx)]
    pub bind: BindMode,
    /// Source address.
    #[arg(long, default_value = "447700900123")]
    pub source: String,
    /// Destination address template: each run of `#` takes the low digits of
    /// the message number (`44770090####` spreads over 10,000 numbers).
    #[arg(long, default_value = "447700900456")]
    pub dest: String,
    /// Ask for delivery receipts and measure their latency.
    #[arg(long)]
    pub receipt: bool,
    /// With --receipt: how long to wait for the last receipts after the last answer.
    #[arg(long, default_value = "10s")]
    pub wait_receipts: humantime::Duration,
    /// A submit without an answer this long counts as unanswered.
    #[arg(long, default_value = "10s")]
    pub response_timeout: humantime::Duration,
    /// Print the summary as one JSON object (fields: see --help).
    #[arg(long)]
    pub json: bool,
    /// The interface_version the binds offer: 3.3, 3.4 or 5.0 (with 5.0 the
    /// SMSC's congestion_state is read, shown, and narrows the window).
    #[arg(long, value_name = "VERSION", value_parser = crate::send::parse_version)]
    pub interface_version: Option<u8>,
    /// Runtime threads for the load: 0 shares the command's runtime (one
    /// worker per core); 1 runs it on one thread (no cross-thread wake-ups,
    /// and a core left to a server on the same machine); N > 1: N workers.
    /// Default: one per session, at most half the cores (at least one). A
    /// session's submits all pass through its one connection task, so more
    /// threads than sessions only add wake-ups from core to core.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=256))]
    pub threads: Option<u64>,
    /// Run the same load once per window (e.g. `1,8,64,512`) and print a table.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub sweep_window: Option<Vec<u64>>,
    /// Draw the throughput and the submit latency percentiles (p50, p90, p99,
    /// max) over time as SVG to this file; with --sweep-window, also both
    /// against the window, and one line per window over time.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<std::path::PathBuf>,
    /// With --plot: the time one point of the series over time covers.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = humantime::parse_duration, requires = "plot")]
    pub plot_interval: Duration,
}

/// How `smpp bench` binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BindMode {
    /// Transceivers.
    Trx,
    /// Transmitters, and receivers for receipts.
    TxRx,
}

/// Text coding of the generated messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Coding {
    /// GSM 03.38 default alphabet (one octet per character, unpacked).
    Gsm7,
    /// UCS-2 (two octets per character).
    Ucs2,
}

/// Runs `smpp bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.plot.is_some() {
        anyhow::ensure!(
            !args.plot_interval.is_zero(),
            "--plot-interval must be more than 0"
        );
    }
    let template = Arc::new(Template::new(&args)?);
    let windows = args
        .sweep_window
        .clone()
        .unwrap_or_else(|| vec![args.window]);
    let mut reports = Vec::with_capacity(windows.len());
    let args = Arc::new(args);
    for window in windows {
        let report = match args
            .threads
            .unwrap_or_else(|| default_threads(args.sessions))
        {
            0 => run_load(&args, &template, window).await?,
            threads => {
                // A runtime of its own, on threads of its own.
                let (args, template) = (args.clone(), template.clone());
                let threads = usize::try_from(threads).unwrap_or(1);
                tokio::task::spawn_blocking(move || -> anyhow::Result<Report> {
                    let runtime = if threads == 1 {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()?
                    } else {
                        tokio::runtime::Builder::new_multi_thread()
                            .worker_threads(threads)
                            .enable_all()
                            .build()?
                    };
                    runtime.block_on(run_load(&args, &template, window))
                })
                .await
                .context("the load's runtime failed")??
            }
        };
        reports.push(report);
    }
    let success = reports.iter().all(|r| r.success);
    if let Some(path) = &args.plot {
        plot::write(path, &reports, args.sweep_window.is_some())?;
    }
    if args.json {
        let json = if args.sweep_window.is_some() {
            serde_json::to_string(&serde_json::json!({ "sweep": reports }))?
        } else {
            serde_json::to_string(&reports[0])?
        };
        println!("{json}");
    } else if args.sweep_window.is_some() {
        print!("{}", sweep_table(&reports));
    } else {
        print!("{}", reports[0].human());
    }
    Ok(if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One runtime thread per session, at most half the cores, at least one.
fn default_threads(sessions: u64) -> u64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    sessions.min(cores / 2).max(1)
}

/// The messages to send, built once.
#[derive(Debug)]
struct Template {
    /// The parts of one message; message n is part `n % parts.len()`.
    parts: Vec<SubmitSm>,
    /// With --random-text: more messages of random text, used in turn.
    variants: Vec<Vec<SubmitSm>>,
    /// Where the `#` runs of the destination template are: (start, len).
    dest_digits: Vec<(usize, usize)>,
    dest: String,
}

impl Template {
    fn new(args: &BenchArgs) -> anyhow::Result<Template> {
        // Cyrillic for UCS-2: not in the GSM alphabet, so UCS-2 is chosen.
        let alphabet: Vec<char> = match args.coding {
            Coding::Gsm7 => ('a'..='z').chain('A'..='Z').chain('0'..='9').collect(),
            Coding::Ucs2 => ('а'..='я').chain('А'..='Я').collect(),
        };
        let fixed: String = alphabet.iter().cycle().take(args.text_len).collect();
        let parts = build_parts(args, fixed)?;
        let mut variants = Vec::new();
        if args.random_text {
            let mut rng = XorShift::seeded();
            for _ in 0..RANDOM_TEXTS {
                let text: String = (0..args.text_len)
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect();
                variants.push(build_parts(args, text)?);
            }
        }
        Ok(Template {
            parts,
            variants,
            dest_digits: digit_runs(&args.dest),
            dest: args.dest.clone(),
        })
    }

    /// The submit_sm of message `n`.
    fn submit(&self, n: u64) -> SubmitSm {
        let parts = match self.variants.len() {
            0 => &self.parts,
            k => {
                let message = n / self.parts.len() as u64;
                &self.variants[(message % k as u64) as usize]
            }
        };
        // Lossless: a message has 1 to 255 parts.
        let part = (n % parts.len() as u64) as usize;
        let mut sm = parts[part].clone();
        if !self.dest_digits.is_empty() {
            sm.destination_addr = fill_digits(&self.dest, &self.dest_digits, n).into();
        }
        sm
    }
}

/// Random texts prepared with --random-text.
const RANDOM_TEXTS: usize = 256;

/// The submit_sm parts of one message of `text`.
fn build_parts(args: &BenchArgs, text: String) -> anyhow::Result<Vec<SubmitSm>> {
    let mut message = ShortMessage::text(text)
        .from(args.source.as_str())
        .to(args.dest.replace('#', "0").as_str());
    if args.receipt {
        message = message.request_receipt();
    }
    let parts = message
        .build(&mut ReferenceCounter::new(1))
        .context("cannot build the message")?;
    let expected = match args.coding {
        Coding::Gsm7 => 0x00,
        Coding::Ucs2 => 0x08,
    };
    if parts.is_empty() || parts.iter().any(|p| p.data_coding != expected) {
        anyhow::bail!("the text was not coded as {:?}", args.coding);
    }
    Ok(parts)
}

/// A small PRNG for random texts (quality is not a concern here).
struct XorShift(u64);

impl XorShift {
    fn seeded() -> XorShift {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        XorShift(u64::from(nanos) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// The runs of `#` in an address template.
fn digit_runs(template: &str) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'#' {
            let start = i;
            while i < bytes.len() && bytes[i] == b'#' {
                i += 1;
            }
            runs.push((start, i - start));
        } else {
            i += 1;
        }
    }
    runs
}

/// The template with each `#` run replaced by the low digits of `n`, zero-padded.
fn fill_digits(template: &str, runs: &[(usize, usize)], n: u64) -> String {
    let mut out = template.to_owned();
    for &(start, len) in runs {
        let digits = format!("{n:020}");
        let low = &digits[digits.len() - len.min(20)..];
        let pad = "0".repeat(len.saturating_sub(20));
        out.replace_range(start..start + len, &format!("{pad}{low}"));
    }
    out
}

/// Counters shared by the slots of one run.
#[derive(Debug, Default)]
struct Counters {
    next_ticket: AtomicU64,
    sent: AtomicU64,
    ok: AtomicU64,
    unanswered: AtomicU64,
    lost: AtomicU64,
    failed: Mutex<BTreeMap<u32, u64>>,
}

impl Counters {
    fn done(&self) -> u64 {
        let failed: u64 = lock(&self.failed).values().sum();
        self.ok.load(Ordering::Relaxed)
            + self.unanswered.load(Ordering::Relaxed)
            + self.lost.load(Ordering::Relaxed)
            + failed
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Receipts matched to submits by canonical message id.
#[derive(Debug)]
struct ReceiptBook {
    format: MessageIdFormat,
    /// Accepted submits still waiting for their receipt: id -> submit instant.
    waiting: HashMap<String, Instant>,
    /// Receipts that arrived before their submit_sm_resp was seen: id -> arrival.
    early: HashMap<String, Instant>,
    received: u64,
    unmatched: u64,
    latency: Histogram<u64>,
}

impl ReceiptBook {
    fn new() -> ReceiptBook {
        ReceiptBook {
            format: MessageIdFormat::default(),
            waiting: HashMap::new(),
            early: HashMap::new(),
            received: 0,
            unmatched: 0,
            latency: new_histogram(),
        }
    }

    fn submitted(&mut self, id: &str, at: Instant) {
        let key = self.format.canonical_submit(id);
        match self.early.remove(&key) {
            Some(arrived) => self.record(arrived.saturating_duration_since(at)),
            None => drop(self.waiting.insert(key, at)),
        }
    }

    fn receipt(&mut self, id: &str, now: Instant) {
        let key = self.format.canonical_receipt(id);
        match self.waiting.remove(&key) {
            Some(at) => self.record(now.saturating_duration_since(at)),
            // Bounded: an id can be early only once per submit we await.
            None if self.early.len() < 1_000_000 => drop(self.early.insert(key, now)),
            None => self.unmatched += 1,
        }
    }

    fn record(&mut self, latency: Duration) {
        self.received += 1;
        let _ = self.latency.record(micros(latency));
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 1 hour, 3 significant digits; values above are clamped.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| {
        // Unreachable with these constant bounds; fall back to an auto-resizing one.
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid"))
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Latency percentiles.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// From a histogram in µs, scaled by `scale` (1.0: µs; 0.001: ms).
    fn of(h: &Histogram<u64>, scale: f64) -> Percentiles {
        let q = |q: f64| round1(h.value_at_quantile(q) as f64 * scale);
        Percentiles {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            max: round1(h.max() as f64 * scale),
            mean: round1(h.mean() * scale),
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Receipt figures of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptReport {
    /// Receipts expected: one per accepted submit_sm.
    pub expected: u64,
    /// Receipts matched to a submit.
    pub received: u64,
    /// Receipts whose id matched no submit of this run.
    pub unmatched: u64,
    /// Expected receipts that did not come within --wait-receipts.
    pub missing: u64,
    /// From the submit to the receipt, in milliseconds.
    pub latency_ms: Option<Percentiles>,
}

/// SMPP 5.0 `congestion_state` as the binds saw it.
#[derive(Debug, Clone, Serialize)]
pub struct CongestionReport {
    /// The highest value any response carried.
    pub max: u8,
    /// The highest of the binds' last values.
    pub last: u8,
    /// Responses that carried one.
    pub responses: u64,
    /// The smallest effective window of a bind at the end of the run.
    pub window_min: usize,
    /// The effective windows at the end of the run, summed over the binds.
    pub window_end: usize,
}

impl CongestionReport {
    /// Folds the binds' stats; `None` when no response carried a value.
    fn of(stats: &[Stats]) -> Option<CongestionReport> {
        let seen: Vec<&Stats> = stats
            .iter()
            .filter(|s| s.congestion_states_received > 0)
            .collect();
        if seen.is_empty() {
            return None;
        }
        Some(CongestionReport {
            max: seen.iter().filter_map(|s| s.peer_congestion_max).max()?,
            last: seen.iter().filter_map(|s| s.peer_congestion).max()?,
            responses: seen.iter().map(|s| s.congestion_states_received).sum(),
            window_min: stats.iter().map(|s| s.max_in_flight).min()?,
            window_end: stats.iter().map(|s| s.max_in_flight).sum(),
        })
    }
}

/// The outcome of one run (one window).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Binds.
    pub sessions: u64,
    /// Slots per bind.
    pub window: u64,
    /// Text coding.
    pub coding: Coding,
    /// Characters per message.
    pub text_len: usize,
    /// submit_sm per message.
    pub parts: usize,
    /// submit_sm handed to the sessions.
    pub sent: u64,
    /// Answered with status 0.
    pub ok: u64,
    /// Error statuses, by name, with counts.
    pub failed: BTreeMap<String, u64>,
    /// Sum of `failed`.
    pub failed_total: u64,
    /// No answer within the response timeout.
    pub unanswered: u64,
    /// The session closed under them.
    pub lost: u64,
    /// With --count: never sent.
    pub unsent: u64,
    /// From the first submit to the last answer.
    pub elapsed_s: f64,
    /// ok per second.
    pub throughput: f64,
    /// Submit latency of accepted submits, µs.
    pub latency_us: Option<Percentiles>,
    /// Receipts, with --receipt.
    pub receipts: Option<ReceiptReport>,
    /// SMPP 5.0 congestion_state seen, if any.
    pub congestion_state: Option<CongestionReport>,
    /// Everything was accepted (and every receipt came).
    pub success: bool,
    /// With --plot: the run over time, one sample per --plot-interval.
    #[serde(skip)]
    pub timeline: Vec<Sample>,
}

impl Report {
    fn human(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "sent {}, ok {}, failed {}, unanswered {}, lost {}, unsent {}",
            self.sent, self.ok, self.failed_total, self.unanswered, self.lost, self.unsent
        );
        for (status, n) in &self.failed {
            let _ = writeln!(s, "  {status}: {n}");
        }
        let _ = writeln!(
            s,
            "throughput {:.0} submit_sm/s over {:.3} s ({} session(s), window {}, {} {:?} characters)",
            self.throughput, self.elapsed_s, self.sessions, self.window, self.text_len, self.coding
        );
        if let Some(l) = &self.latency_us {
            let _ = writeln!(
                s,
                "submit latency µs: p50 {} p90 {} p99 {} p99.9 {} max {} (mean {})",
                l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
            );
        }
        if let Some(r) = &self.receipts {
            let _ = writeln!(
                s,
                "receipts: {} of {} received, {} missing, {} unmatched",
                r.received, r.expected, r.missing, r.unmatched
            );
            if let Some(l) = &r.latency_ms {
                let _ = writeln!(
                    s,
                    "receipt latency ms: p50 {} p90 {} p99 {} p99.9 {} max {}",
                    l.p50, l.p90, l.p99, l.p99_9, l.max
                );
            }
        }
        if let Some(c) = &self.congestion_state {
            let _ = writeln!(
                s,
                "congestion_state: max {}, last {} ({} responses); window at the end {} (smallest per bind {})",
                c.max, c.last, c.responses, c.window_end, c.window_min
            );
        }
        let _ = writeln!(s, "{}", if self.success { "OK" } else { "FAILED" });
        s
    }
}

fn sweep_table(reports: &[Report]) -> String {
    use std::fmt::Write as _;
    let mut s = String::from(
        "| window | submit_sm/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | ok | failed | unanswered | lost |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let l = r.latency_us.clone().unwrap_or(Percentiles {
            p50: 0.0,
            p90: 0.0,
            p99: 0.0,
            p99_9: 0.0,
            max: 0.0,
            mean: 0.0,
        });
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.window,
            r.throughput,
            l.p50,
            l.p90,
            l.p99,
            l.p99_9,
            l.max,
            r.ok,
            r.failed_total,
            r.unanswered,
            r.lost + r.unsent
        );
    }
    s
}

/// The submit latencies of one bind's slots: the whole run's, and (with
/// --plot) the current interval's, emptied by the sampler.
struct Latency {
    total: Histogram<u64>,
    interval: Option<Histogram<u64>>,
}

impl Latency {
    fn record(&mut self, micros: u64) {
        let _ = self.total.record(micros);
        if let Some(h) = &mut self.interval {
            let _ = h.record(micros);
        }
    }
}

/// With --plot: every `every`, the accepted submits and their latency since
/// the last sample; the last sample when `stop` fires.
async fn sampler(
    load: Arc<Load>,
    latencies: Vec<Arc<Mutex<Latency>>>,
    every: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut merged = plot::interval_histogram();
    let (mut last_at, mut last_ok) = (load.start, 0u64);
    let mut tick = tokio::time::interval_at((load.start + every).into(), every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = &mut stop => true,
        };
        let now = Instant::now();
        for l in &latencies {
            if let Some(h) = &mut lock(l).interval {
                let _ = merged.add(&*h);
                h.reset();
            }
        }
        let ok = load.counters.ok.load(Ordering::Relaxed);
        let dt = now.saturating_duration_since(last_at);
        if !last || ok > last_ok {
            let s = plot::sample(load.start, now, dt, ok - last_ok, &mut merged);
            match samples.last_mut() {
                // A last piece shorter than half an interval joins the one
                // before (its rate over both; the worse of the latencies).
                Some(prev) if last && dt < every / 2 => plot::fold(prev, &s, every, dt),
                _ => samples.push(s),
            }
        }
        (last_at, last_ok) = (now, ok);
        if last {
            return samples;
        }
    }
}

/// What every slot needs.
struct Load {
    template: Arc<Template>,
    counters: Counters,
    count: Option<u64>,
    deadline: Option<Instant>,
    rate: Option<f64>,
    start: Instant,
    receipts: Option<Mutex<ReceiptBook>>,
}

/// Connects, runs one load with `window` slots per bind, unbinds, reports.
async fn run_load(
    args: &BenchArgs,
    template: &Arc<Template>,
    window: u64,
) -> anyhow::Result<Report> {
    if let Some(rate) = args.rate {
        anyhow::ensure!(rate > 0.0 && rate.is_finite(), "--rate must be positive");
    }
    let window_usize = usize::try_from(window).context("window")?;
    let config = Arc::new(
        SessionConfig::default()
            .with_max_in_flight(window_usize)
            // Receipts are answered at once; a burst beyond the inbound
            // window waits in TCP (backpressure) instead of being refused.
            .with_max_inbound(window_usize.max(256))
            .with_inbound_overflow(InboundOverflow::Backpressure)
            .with_response_timeout(*args.response_timeout),
    );
    let (kind, receivers) = match args.bind {
        BindMode::Trx => (BindKind::Transceiver, 0),
        BindMode::TxRx => (
            BindKind::Transmitter,
            if args.receipt { args.sessions } else { 0 },
        ),
    };
    let connect = |kind: BindKind| {
        let (mut connect, config) = (args.connect.clone(), config.clone());
        if let Some(v) = args.interface_version {
            connect.interface_version = v;
        }
        async move { connect.connect(kind, config).await }
    };
    let listening: Vec<(Client, Inbound)> =
        futures_join_all((0..receivers).map(|_| connect(BindKind::Receiver))).await?;
    let sessions: Vec<(Client, Inbound)> =
        futures_join_all((0..args.sessions).map(|_| connect(kind))).await?;

    let start = Instant::now();
    let load = Arc::new(Load {
        template: template.clone(),
        counters: Counters::default(),
        count: args.count,
        deadline: args.duration.map(|d| start + *d),
        rate: args.rate,
        start,
        receipts: args.receipt.then(|| Mutex::new(ReceiptBook::new())),
    });

    let mut readers = Vec::new();
    let mut slots = Vec::new();
    let mut clients = Vec::new();
    // One histogram per bind, shared by its slots: one per slot would
    // spread the hot path over W x 190 KiB of counters.
    let mut histograms = Vec::new();
    let listening_count = listening.len();
    for (client, inbound) in listening {
        readers.push(tokio::spawn(read_inbound(inbound, load.clone())));
        clients.push(client);
    }
    for (client, inbound) in sessions {
        readers.push(tokio::spawn(read_inbound(inbound, load.clone())));
        let histogram = Arc::new(Mutex::new(Latency {
            total: new_histogram(),
            interval: args.plot.is_some().then(plot::interval_histogram),
        }));
        for _ in 0..window {
            slots.push(tokio::spawn(slot(
                client.clone(),
                load.clone(),
                histogram.clone(),
            )));
        }
        histograms.push(histogram);
        clients.push(client);
    }

    let progress = Progress::start(args.count, load.clone());
    let (stop_sampler, stopped) = tokio::sync::oneshot::channel();
    let sampling = args.plot.is_some().then(|| {
        let every = args.plot_interval;
        tokio::spawn(sampler(load.clone(), histograms.clone(), every, stopped))
    });
    for s in slots {
        s.await.context("a submit task failed")?;
    }
    let elapsed = start.elapsed();
    let _ = stop_sampler.send(());
    let timeline = match sampling {
        Some(task) => task.await.context("the sampler failed")?,
        None => Vec::new(),
    };
    let mut latency = new_histogram();
    for h in &histograms {
        let _ = latency.add(&lock(h).total);
    }

    let expected = load.counters.ok.load(Ordering::Relaxed);
    if let Some(book) = &load.receipts {
        let until = Instant::now() + *args.wait_receipts;
        while lock(book).received < expected && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    progress.finish();

    // The submitting binds' view of congestion_state, before they unbind.
    let mut session_stats = Vec::new();
    for client in clients.iter().skip(listening_count) {
        if let Ok(Ok(stats)) = tokio::time::timeout(Duration::from_secs(5), client.stats()).await {
            session_stats.push(stats);
        }
    }
    let congestion_state = CongestionReport::of(&session_stats);

    for client in &clients {
        let _ = tokio::time::timeout(Duration::from_secs(5), client.unbind()).await;
        client.close();
    }
    for r in readers {
        r.abort();
    }

    let c = &load.counters;
    let failed_raw = lock(&c.failed).clone();
    let failed: BTreeMap<String, u64> = failed_raw
        .iter()
        .map(|(&s, &n)| (CommandStatus(s).to_string(), n))
        .collect();
    let failed_total: u64 = failed.values().sum();
    let sent = c.sent.load(Ordering::Relaxed);
    let ok = c.ok.load(Ordering::Relaxed);
    let unanswered = c.unanswered.load(Ordering::Relaxed);
    let lost = c.lost.load(Ordering::Relaxed);
    let unsent = args.count.map_or(0, |n| n.saturating_sub(sent));
    let receipts = load.receipts.as_ref().map(|book| {
        let book = lock(book);
        ReceiptReport {
            expected,
            received: book.received,
            unmatched: book.unmatched + book.early.len() as u64,
            missing: expected.saturating_sub(book.received),
            latency_ms: (book.received > 0).then(|| Percentiles::of(&book.latency, 0.001)),
        }
    });
    let secs = elapsed.as_secs_f64();
    let success = failed_total == 0
        && unanswered == 0
        && lost == 0
        && unsent == 0
        && receipts.as_ref().is_none_or(|r| r.missing == 0);
    Ok(Report {
        sessions: args.sessions,
        window,
        coding: args.coding,
        text_len: args.text_len,
        parts: template.parts.len(),
        sent,
        ok,
        failed,
        failed_total,
        unanswered,
        lost,
        unsent,
        elapsed_s: (secs * 1000.0).round() / 1000.0,
        throughput: if secs > 0.0 {
            (ok as f64 / secs).round()
        } else {
            0.0
        },
        latency_us: (ok > 0).then(|| Percentiles::of(&latency, 1.0)),
        receipts,
        congestion_state,
        success,
        timeline,
    })
}

/// Connects every session; fails with the first failure.
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> anyhow::Result<Vec<T>>
where
    F: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    // Spawned so that many binds proceed in parallel.
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.context("a connect task failed")??);
    }
    Ok(out)
}

/// One window slot: takes tickets and submits until the load is done.
async fn slot(client: Client, load: Arc<Load>, latency: Arc<Mutex<Latency>>) {
    let c = &load.counters;
    // One clock read per message: the end of one submit is the start of the
    // next (building the PDU in between takes well under a microsecond).
    let mut now = Instant::now();
    loop {
        if client.is_closed() {
            break; // the rest of the tickets stay unsent
        }
        let n = c.next_ticket.fetch_add(1, Ordering::Relaxed);
        if load.count.is_some_and(|count| n >= count) {
            break;
        }
        if let Some(rate) = load.rate {
            let due = load.start + Duration::from_secs_f64(n as f64 / rate);
            if load.deadline.is_some_and(|d| due >= d) {
                break;
            }
            if due > now {
                tokio::time::sleep_until(due.into()).await;
                now = Instant::now();
            }
        } else if load.deadline.is_some_and(|d| now >= d) {
            break;
        }
        let sm = load.template.submit(n);
        c.sent.fetch_add(1, Ordering::Relaxed);
        let at = now;
        let result = client.submit(sm).await;
        now = Instant::now();
        match result {
            Ok(id) => {
                lock(&latency).record(micros(now - at));
                if let Some(book) = &load.receipts {
                    lock(book).submitted(&id.to_string_lossy(), at);
                }
                c.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(Error::Status(status)) => {
                *lock(&c.failed).entry(status.get()).or_default() += 1;
            }
            Err(Error::Timeout) => drop(c.unanswered.fetch_add(1, Ordering::Relaxed)),
            Err(e) => {
                tracing::debug!(error = %e, "submit lost");
                c.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Answers the MC's requests (dropping an `InboundRequest` answers it with
/// status 0) and records receipts.
async fn read_inbound(inbound: Inbound, load: Arc<Load>) {
    while let Some(request) = inbound.recv().await {
        if let (Some(book), Some(receipt)) = (&load.receipts, request.receipt()) {
            lock(book).receipt(&receipt.id, Instant::now());
        }
    }
}

/// The progress bar: drawn on stdout only when it is a terminal.
struct Progress {
    bar: indicatif::ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(count: Option<u64>, load: Arc<Load>) -> Progress {
        use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
        let bar = if std::io::stdout().is_terminal() {
            let bar = match count {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            bar.set_draw_target(ProgressDrawTarget::stdout());
            let template = match count {
                Some(_) => "{bar:40} {pos}/{len} {msg} [{elapsed_precise}]",
                None => "{spinner} {pos} {msg} [{elapsed_precise}]",
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        let ticking = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                if ticking.is_hidden() {
                    continue;
                }
                let done = load.counters.done();
                let now = Instant::now();
                let dt = now.duration_since(last.0).as_secs_f64();
                if dt > 0.0 {
                    let rate = done.saturating_sub(last.1) as f64 / dt;
                    ticking.set_message(format!("{rate:.0}/s"));
                }
                ticking.set_position(done);
                last = (now, done);
            }
        });
        Progress { bar, ticker }
    }

    fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_template_takes_low_digits() {
        let t = "4477009#####";
        let runs = digit_runs(t);
        assert_eq!(runs, vec![(7, 5)]);
        assert_eq!(fill_digits(t, &runs, 42), "447700900042");
        assert_eq!(fill_digits(t, &runs, 1_234_567), "447700934567");
        assert_eq!(fill_digits("#1#", &digit_runs("#1#"), 7), "717");
    }

    #[test]
    fn receipts_match_in_either_order() {
        let mut book = ReceiptBook::new();
        let t0 = Instant::now();
        book.submitted("0000A1", t0);
        book.receipt("A1", t0 + Duration::from_millis(5));
        book.receipt("B2", t0 + Duration::from_millis(6));
        book.submitted("B2", t0);
        assert_eq!(book.received, 2);
        assert!(book.waiting.is_empty() && book.early.is_empty());
    }
}
