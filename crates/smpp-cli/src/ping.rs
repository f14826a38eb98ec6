//! `smpp ping`: the connection status inquiry. Binds once, then sends
//! `enquire_link` in a loop like `ping`: one line per probe with its round
//! trip, a loss/min/avg/max summary at the end, exit code 1 on any loss.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::Error;

use crate::common::{ConnectArgs, ShutdownSignal};

/// Arguments of `smpp ping`.
#[derive(Debug, Args)]
#[command(after_long_help = "OUTPUT:\n  \
    `enquire_link seq=N time=T ms` per answered probe, `enquire_link seq=N timeout` (or the error) \
    per lost one, then a summary: `N probes, M answered, L% loss` and \
    `rtt min/avg/max = A/B/C ms`. With --json, one object per probe \
    ({\"event\":\"reply\",\"seq\":1,\"time_ms\":0.41} or {\"event\":\"lost\",...}) and a last \
    {\"event\":\"summary\",...}.\n\n\
    EXIT CODE:\n  0 when every probe was answered, 1 on any loss (or when the bind fails), \
    2 on usage errors.")]
pub struct PingArgs {
    /// Where to connect and how to bind (as a transmitter: nothing is delivered to it).
    #[command(flatten)]
    pub connect: Box<ConnectArgs>,
    /// Stop after this many probes (default: until Ctrl-C, then print the summary).
    #[arg(short = 'c', long)]
    pub count: Option<u64>,
    /// Time between the starts of two probes.
    #[arg(short = 'i', long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// How long a probe (and the connection and the bind) may wait for its answer
    /// before it counts as lost.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What the probes measured.
#[derive(Debug, Default)]
pub struct Summary {
    /// Probes sent.
    pub sent: u64,
    /// Round trips of the answered ones.
    pub rtts: Vec<Duration>,
}

impl Summary {
    /// Probes answered.
    pub fn received(&self) -> u64 {
        self.rtts.len() as u64
    }

    /// Lost probes, in percent of those sent.
    pub fn loss_percent(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        (self.sent - self.received()) as f64 * 100.0 / self.sent as f64
    }

    /// Minimum, mean and maximum round trip (`None` when nothing came back).
    pub fn min_avg_max(&self) -> Option<(Duration, Duration, Duration)> {
        let min = *self.rtts.iter().min()?;
        let max = *self.rtts.iter().max()?;
        let total: Duration = self.rtts.iter().sum();
        let avg = total / u32::try_from(self.rtts.len()).unwrap_or(u32::MAX);
        Some((min, avg, max))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `smpp ping`.
pub async fn run(args: PingArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.count != Some(0), "--count must be at least 1");
    anyhow::ensure!(!args.timeout.is_zero(), "--timeout must be more than 0");
    let signal = ShutdownSignal::install()?;
    let addr = args.connect.addr();
    // No keepalive of the session's own: every enquire_link is a probe.
    let config = SessionConfig::default()
        .with_response_timeout(args.timeout)
        .with_enquire_link_interval(None);
    // The session bounds the connect and the bind by the timeout each (and
    // says which failed); this is only a backstop, late enough never to
    // race them.
    let (client, _inbound) = tokio::time::timeout(
        args.timeout.saturating_mul(3),
        args.connect.connect(BindKind::Transmitter, config),
    )
    .await
    .with_context(|| format!("the bind to {addr} timed out"))??;
    if !args.json {
        println!("PING {addr} as {:?}: enquire_link", args.connect.system_id);
    }
    let mut summary = Summary::default();
    let probes = async {
        let mut next = tokio::time::Instant::now();
        loop {
            if args.count.is_some_and(|n| summary.sent >= n) {
                break;
            }
            tokio::time::sleep_until(next).await;
            next += args.interval;
            summary.sent += 1;
            let seq = summary.sent;
            match client.enquire_link().await {
                Ok(rtt) => {
                    summary.rtts.push(rtt);
                    if args.json {
                        println!(
                            "{}",
                            json!({"event": "reply", "seq": seq, "time_ms": ms(rtt)})
                        );
                    } else {
                        println!("enquire_link seq={seq} time={:.3} ms", ms(rtt));
                    }
                }
                Err(e) => {
                    let error = match &e {
                        Error::Timeout => "timeout".to_owned(),
                        e => e.to_string(),
                    };
                    if args.json {
                        println!("{}", json!({"event": "lost", "seq": seq, "error": error}));
                    } else {
                        println!("enquire_link seq={seq} {error}");
                    }
                    if client.is_closed() {
                        // Nothing more can be asked on this connection.
                        let reason = client.closed().await;
                        if !args.json {
                            println!("connection closed: {reason:?}");
                        }
                        break;
                    }
                }
            }
            if next < tokio::time::Instant::now() {
                next = tokio::time::Instant::now(); // a slow probe: the next goes at once
            }
        }
    };
    tokio::select! {
        () = probes => {}
        () = signal.wait() => {}
    }
    if !client.is_closed() {
        let unbind = tokio::time::timeout(args.timeout, client.unbind()).await;
        if !matches!(unbind, Ok(Ok(()))) {
            client.close();
        }
    }
    print_summary(&addr, &summary, args.json);
    Ok(if summary.received() == summary.sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_summary(addr: &str, summary: &Summary, json: bool) {
    let stats = summary.min_avg_max();
    if json {
        let (min, avg, max) = match stats {
            Some((a, b, c)) => (Some(ms(a)), Some(ms(b)), Some(ms(c))),
            None => (None, None, None),
        };
        println!(
            "{}",
            json!({"event": "summary", "sent": summary.sent, "received": summary.received(),
                   "loss_percent": summary.loss_percent(),
                   "min_ms": min, "avg_ms": avg, "max_ms": max})
        );
        return;
    }
    println!("--- {addr} smpp ping statistics ---");
    println!(
        "{} probes, {} answered, {:.1}% loss",
        summary.sent,
        summary.received(),
        summary.loss_percent()
    );
    if let Some((min, avg, max)) = stats {
        println!(
            "rtt min/avg/max = {:.3}/{:.3}/{:.3} ms",
            ms(min),
            ms(avg),
            ms(max)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_loss_and_extremes() {
        let mut s = Summary::default();
        assert_eq!(s.loss_percent(), 0.0);
        assert_eq!(s.min_avg_max(), None);
        s.sent = 4;
        s.rtts = vec![Duration::from_millis(3), Duration::from_millis(1)];
        assert_eq!(s.received(), 2);
        assert_eq!(s.loss_percent(), 50.0);
        assert_eq!(
            s.min_avg_max(),
            Some((
                Duration::from_millis(1),
                Duration::from_millis(2),
                Duration::from_millis(3)
            ))
        );
    }
}
