//! `smpp-bench`: the peer programs of `cargo xtask bench`, the end-to-end race.
//!
//! ```text
//! smpp-bench serve-ours    [--listen ADDR]      our smpp-tokio Server, in-memory ids
//! smpp-bench serve-smpp34  [--listen ADDR]      the smpp34 crate's server
//! smpp-bench serve-raw     [--listen ADDR]      byte mover: 25-byte answer per frame
//! smpp-bench client-smpp34  --port P [LOAD]     the smpp34 crate's client
//! smpp-bench client-rusmppc --port P [LOAD] [--repoll N]    the rusmppc client
//! smpp-bench client-raw     --port P [LOAD]     byte mover: 224-byte requests, pipelined
//! smpp-bench idle-binds     --port P --count N  N idle binds; prints BOUND N, holds until stdin closes
//! LOAD: --sessions N (1) --window W (64) --secs S (3) --system-id ID --password PW
//! ```
//!
//! Servers print `SMPP listening on ADDR` once ready (the `smpp serve`
//! contract). Clients print one JSON object: `{"throughput": .., "ok": ..,
//! "failed": .., "elapsed_s": ..}` (the keys `smpp bench --json` uses).
//! Every client sends the same submit_sm: 160 octets of GSM text from
//! 447700900123 to 447700900456, no TLVs.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

mod ours;
mod raw;
mod rusmppc_peer;
mod smpp34_peer;

/// Parsed `--key value` options.
#[derive(Debug)]
struct Options(HashMap<String, String>);

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(key) = it.next() {
            let key = key
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {key:?}"))?;
            let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            map.insert(key.to_owned(), value.clone());
        }
        Ok(Options(map))
    }

    fn str(&self, key: &str, default: &str) -> String {
        self.0
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{key}: bad number {v:?}")),
        }
    }
}

/// What every client is asked to do.
#[derive(Debug, Clone)]
struct Load {
    host: String,
    port: u16,
    sessions: usize,
    window: usize,
    duration: Duration,
    system_id: String,
    password: String,
}

impl Load {
    fn from(o: &Options) -> Result<Load, String> {
        Ok(Load {
            host: o.str("host", "127.0.0.1"),
            port: o.num("port", 0u16).and_then(|p| {
                if p == 0 {
                    Err("--port is required".into())
                } else {
                    Ok(p)
                }
            })?,
            sessions: o.num("sessions", 1usize)?.max(1),
            window: o.num("window", 64usize)?.max(1),
            duration: Duration::from_secs_f64(o.num("secs", 3.0f64)?.max(0.01)),
            system_id: o.str("system-id", "smppclient1"),
            password: o.str("password", "password"),
        })
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A client's outcome, printed as JSON.
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    ok: u64,
    failed: u64,
    elapsed: Duration,
}

impl Outcome {
    fn print(&self) {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        };
        println!(
            "{{\"throughput\":{rate:.0},\"ok\":{},\"failed\":{},\"elapsed_s\":{secs:.3}}}",
            self.ok, self.failed
        );
    }
}

/// The text every client sends: 160 GSM characters.
fn text() -> Vec<u8> {
    (0..160u8).map(|i| b'a' + i % 26).collect()
}

const SOURCE: &str = "447700900123";
const DEST: &str = "447700900456";

/// Prints the `smpp serve` readiness line.
fn listening(addr: std::net::SocketAddr) {
    use std::io::Write as _;
    println!("SMPP listening on {addr}");
    let _ = std::io::stdout().flush();
}

/// Raises the open-file limit to `wanted` descriptors: the soft limit up to
/// the hard one, and the hard one too where the process may (root). Whatever
/// could not be had is reported on stderr; the binds beyond it then fail.
fn raise_file_limit(wanted: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current.is_none_or(|soft| soft >= wanted) {
        return;
    }
    let hard = now.maximum.map(|hard| hard.max(wanted));
    let raised = Rlimit {
        current: hard.map(|h| h.min(wanted)),
        maximum: hard,
    };
    if setrlimit(Resource::Nofile, raised).is_err() {
        let kept = Rlimit {
            current: now.maximum,
            maximum: now.maximum,
        };
        let _ = setrlimit(Resource::Nofile, kept);
        eprintln!(
            "smpp-bench: open-file limit {:?} (wanted {wanted})",
            getrlimit(Resource::Nofile).current
        );
    }
}

/// Waits until stdin closes (the parent's way to stop a server or a probe).
async fn until_stdin_closes() {
    use tokio::io::AsyncReadExt as _;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{}", usage());
        return ExitCode::from(2);
    };
    let options = match Options::parse(rest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("smpp-bench: {e}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("smpp-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listen = options.str("listen", "127.0.0.1:0");
    let result: Result<(), String> = runtime.block_on(async {
        match command.as_str() {
            "serve-ours" => ours::serve(&listen).await,
            "serve-smpp34" => smpp34_peer::serve(&listen).await,
            "serve-raw" => raw::serve(&listen).await,
            "client-smpp34" => smpp34_peer::client(Load::from(&options)?).await,
            "client-rusmppc" => {
                let repoll = options.num("repoll", 1usize)?;
                rusmppc_peer::client(Load::from(&options)?, repoll).await
            }
            "client-raw" => raw::client(Load::from(&options)?).await,
            "idle-binds" => {
                ours::idle_binds(Load::from(&options)?, options.num("count", 1000)?).await
            }
            _ => Err(usage()),
        }
    });
    // Peer libraries may leave tasks behind (reconnect loops): do not wait for them.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smpp-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> String {
    "usage: smpp-bench serve-ours|serve-smpp34|serve-raw [--listen ADDR]\n       \
     smpp-bench client-smpp34|client-rusmppc|client-raw --port P [--sessions N] [--window W] [--secs S]\n       \
     smpp-bench idle-binds --port P [--count N]"
        .into()
}
