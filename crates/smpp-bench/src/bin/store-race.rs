//! `store-race`: the candidate engines for `smpp serve`'s durable store on
//! the same workload, in one run (`cargo xtask bench store`).
//!
//! ```text
//! store-race [--secs S] [--rounds N] [--dir DIR]
//! ```
//!
//! The workload is the store's: a writer commits batches of records (new
//! ids in ascending order, the size of a stored submit_sm of 160 octets),
//! each batch made durable with one sync before the next starts (the group
//! commit of `smpp serve`: a window's worth of submissions per commit).
//! Loads: 64 or 256 records per commit, and 64 new records each with 3
//! rewrites of older records (the gateway's pattern: accepted, forwarded,
//! receipt, delivered). Every engine is set up for a durable commit:
//! - `append+fdatasync`: the disk's own limit, not a candidate (no index);
//! - `redb`: the first store's engine, one write transaction per batch
//!   (`Durability::Immediate`, the default);
//! - `fjall`: one write batch per commit, `PersistMode::SyncData`;
//! - `sqlite`: WAL mode, `synchronous=FULL`, one transaction per batch,
//!   automatic checkpoints (SQLite's default) or checkpoints from a second
//!   connection (`bg checkpoint`).
//!
//! Rounds are interleaved (each round runs every engine once per load) and
//! the table gives medians. CPU is the whole process's (user + system,
//! background threads included) per message.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One candidate: commits a batch of (key, value) durably.
trait Engine {
    fn commit(&mut self, puts: &[(u64, Vec<u8>)]);
}

struct Log {
    file: std::fs::File,
    buf: Vec<u8>,
}

impl Engine for Log {
    fn commit(&mut self, puts: &[(u64, Vec<u8>)]) {
        self.buf.clear();
        for (k, v) in puts {
            self.buf.extend_from_slice(&k.to_le_bytes());
            self.buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
            self.buf.extend_from_slice(v);
        }
        self.file.write_all(&self.buf).expect("append");
        self.file.sync_data().expect("fdatasync");
    }
}

struct Redb(redb::Database);
const TABLE: redb::TableDefinition<'_, u64, &[u8]> = redb::TableDefinition::new("messages");

impl Engine for Redb {
    fn commit(&mut self, puts: &[(u64, Vec<u8>)]) {
        let tx = self.0.begin_write().expect("begin");
        {
            let mut t = tx.open_table(TABLE).expect("table");
            for (k, v) in puts {
                t.insert(*k, v.as_slice()).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
}

struct Fjall(fjall::Database, fjall::Keyspace);

impl Engine for Fjall {
    fn commit(&mut self, puts: &[(u64, Vec<u8>)]) {
        let mut b = self.0.batch();
        for (k, v) in puts {
            b.insert(&self.1, k.to_be_bytes(), v.as_slice());
        }
        b.durability(Some(fjall::PersistMode::SyncData))
            .commit()
            .expect("commit");
    }
}

struct Sqlite {
    conn: rusqlite::Connection,
    /// The checkpointing thread, when checkpoints are not automatic.
    checkpointer: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

impl Engine for Sqlite {
    fn commit(&mut self, puts: &[(u64, Vec<u8>)]) {
        let tx = self.conn.transaction().expect("begin");
        {
            let mut st = tx
                .prepare_cached("INSERT OR REPLACE INTO messages(id, v) VALUES (?1, ?2)")
                .expect("prepare");
            for (k, v) in puts {
                st.execute(rusqlite::params![*k as i64, v]).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.checkpointer.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
    }
}

const ENGINES: [&str; 5] = [
    "append+fdatasync (ceiling)",
    "redb 2.6",
    "fjall 3",
    "sqlite WAL full",
    "sqlite WAL full, bg checkpoint",
];

fn open(engine: usize, dir: &Path) -> Box<dyn Engine> {
    match engine {
        0 => Box::new(Log {
            file: std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("log"))
                .expect("log"),
            buf: Vec::new(),
        }),
        1 => Box::new(Redb(
            redb::Builder::new()
                .set_cache_size(32 << 20)
                .create(dir.join("messages.redb"))
                .expect("redb"),
        )),
        2 => {
            let db = fjall::Database::builder(dir.join("messages"))
                .worker_threads(1)
                .manual_journal_persist(true)
                .open()
                .expect("fjall");
            let ks = db
                .keyspace("messages", fjall::KeyspaceCreateOptions::default)
                .expect("keyspace");
            Box::new(Fjall(db, ks))
        }
        _ => {
            let path = dir.join("messages.db");
            let conn = rusqlite::Connection::open(&path).expect("sqlite");
            conn.pragma_update(None, "journal_mode", "WAL")
                .expect("wal");
            conn.pragma_update(None, "synchronous", "FULL")
                .expect("sync");
            conn.execute(
                "CREATE TABLE messages (id INTEGER PRIMARY KEY, v BLOB NOT NULL)",
                [],
            )
            .expect("table");
            let checkpointer = (engine == 4).then(|| {
                conn.pragma_update(None, "wal_autocheckpoint", 0)
                    .expect("no auto checkpoint");
                let stop = Arc::new(AtomicBool::new(false));
                let flag = stop.clone();
                let thread = std::thread::spawn(move || {
                    let c = rusqlite::Connection::open(&path).expect("second connection");
                    while !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                        let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    }
                });
                (stop, thread)
            });
            Box::new(Sqlite { conn, checkpointer })
        }
    }
}

/// (records per commit, rewrites of older records per new one).
const LOADS: [(usize, usize); 3] = [(64, 0), (256, 0), (64, 3)];
/// A stored submit_sm of 160 octets (smpp-server's binary record).
const RECORD: usize = 200;

/// Process CPU (user + system) in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[derive(Clone, Copy)]
struct Sample {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us: f64,
}

fn run(engine: usize, load: (usize, usize), secs: f64, base: &Path) -> Sample {
    let dir = base.join(format!("e{engine}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut e = open(engine, &dir);
    let (batch, rewrites) = load;
    let value: Vec<u8> = (0..RECORD).map(|i| (i * 31 % 251) as u8).collect();
    let mut next = 1u64;
    let mut latencies = Vec::new();
    let mut puts = Vec::with_capacity(batch * (1 + rewrites));
    let mut messages = 0u64;
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs_f64(secs) {
        puts.clear();
        for _ in 0..batch {
            puts.push((next, value.clone()));
            for r in 1..=rewrites as u64 {
                puts.push((next.saturating_sub(1000 * r).max(1), value.clone()));
            }
            next += 1;
        }
        let t = Instant::now();
        e.commit(&puts);
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        messages += batch as u64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    drop(e);
    let _ = std::fs::remove_dir_all(&dir);
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Sample {
        rate: messages as f64 / elapsed,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        cpu_us: cpu * 1e6 / messages as f64,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let secs: f64 = opt("--secs").and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let rounds: usize = opt("--rounds").and_then(|s| s.parse().ok()).unwrap_or(3);
    let base = opt("--dir").map_or_else(|| PathBuf::from("target/store-race"), PathBuf::from);
    let mut samples = vec![vec![Vec::new(); ENGINES.len()]; LOADS.len()];
    for round in 1..=rounds {
        for (l, &load) in LOADS.iter().enumerate() {
            for (e, name) in ENGINES.iter().enumerate() {
                let s = run(e, load, secs, &base);
                eprintln!(
                    "round {round}: {name}, {} per commit{}: {:.0}/s",
                    load.0,
                    if load.1 > 0 { " + rewrites" } else { "" },
                    s.rate
                );
                samples[l][e].push(s);
            }
        }
    }
    println!("| load | engine | messages/s | commit p50 | commit p99 | CPU per message |");
    println!("|---|---|---:|---:|---:|---:|");
    for (l, &(batch, rewrites)) in LOADS.iter().enumerate() {
        for (e, name) in ENGINES.iter().enumerate() {
            let mut v = samples[l][e].clone();
            v.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            let m = v[v.len() / 2];
            let load = if rewrites > 0 {
                format!("{batch} new + {rewrites} rewrites each per commit")
            } else {
                format!("{batch} per commit")
            };
            println!(
                "| {load} | {name} | {:.0} | {:.2} ms | {:.2} ms | {:.2} µs |",
                m.rate, m.p50_ms, m.p99_ms, m.cpu_us
            );
        }
    }
}
