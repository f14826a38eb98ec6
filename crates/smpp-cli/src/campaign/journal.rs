//! The campaign journal: an append-only file of what happened to each row,
//! written in batches, each batch `fsync`ed before the callers waiting on it
//! go on (group commit: one `fsync` for everything a window produced).
//!
//! Records, one per line, tab-separated, times in Unix milliseconds:
//!
//! ```text
//! H  <fingerprint of the recipients file>            first line
//! S  <row> <ms>                                       about to submit (synced BEFORE the submit)
//! A  <row> <ms> <id,id,...>                           accepted: every part answered with status 0
//! F  <row> <ms> <ids> <error>                         refused with an error status: not resent
//! U  <row> <ms> <error>                               no answer (timeout, closed): may have been sent
//! R  <row> <ms> <id> <state> <err>                    a delivery receipt for one part
//! Q  <row> <ms> <id> <state> <err>                    a query_sm answer for one part (`status --live`)
//! ```
//!
//! A torn last line (a crash mid-write) is ignored on reading.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tokio::sync::oneshot;

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The recipients file's fingerprint.
    Header(String),
    /// About to submit `row`.
    Submitting {
        /// 0-based data row of the recipients file.
        row: usize,
        /// Unix milliseconds.
        at: u64,
    },
    /// Every part accepted, with these ids.
    Accepted {
        /// 0-based data row.
        row: usize,
        /// Unix milliseconds.
        at: u64,
        /// The SMSC's message ids, one per part.
        ids: Vec<String>,
    },
    /// Refused (error status); `ids` of the parts accepted before.
    Failed {
        /// 0-based data row.
        row: usize,
        /// Unix milliseconds.
        at: u64,
        /// Ids of the parts that were accepted.
        ids: Vec<String>,
        /// The error status or reason.
        error: String,
    },
    /// Unanswered: may or may not have reached the SMSC.
    Unknown {
        /// 0-based data row.
        row: usize,
        /// Unix milliseconds.
        at: u64,
        /// Why there is no answer.
        error: String,
    },
    /// A receipt for part `id` of `row`.
    Receipt {
        /// 0-based data row.
        row: usize,
        /// Unix milliseconds.
        at: u64,
        /// The part's message id, as the submit answer gave it.
        id: String,
        /// The receipt's state word (`delivered`, `undeliverable`...).
        state: String,
        /// The receipt's `err:` field.
        error: String,
    },
    /// A `query_sm` answer for part `id` of `row` (`smpp campaign status --live`).
    Query {
        /// 0-based data row.
        row: usize,
        /// Unix milliseconds.
        at: u64,
        /// The part's message id.
        id: String,
        /// The state word of the answer's `message_state`.
        state: String,
        /// The answer's `error_code`.
        error: String,
    },
}

/// Tabs and newlines cannot appear in a field.
fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

impl Record {
    fn line(&self) -> String {
        match self {
            Record::Header(f) => format!("H\t{}\n", clean(f)),
            Record::Submitting { row, at } => format!("S\t{row}\t{at}\n"),
            Record::Accepted { row, at, ids } => {
                format!("A\t{row}\t{at}\t{}\n", clean(&ids.join(",")))
            }
            Record::Failed {
                row,
                at,
                ids,
                error,
            } => format!(
                "F\t{row}\t{at}\t{}\t{}\n",
                clean(&ids.join(",")),
                clean(error)
            ),
            Record::Unknown { row, at, error } => format!("U\t{row}\t{at}\t{}\n", clean(error)),
            Record::Receipt {
                row,
                at,
                id,
                state,
                error,
            } => format!(
                "R\t{row}\t{at}\t{}\t{}\t{}\n",
                clean(id),
                clean(state),
                clean(error)
            ),
            Record::Query {
                row,
                at,
                id,
                state,
                error,
            } => format!(
                "Q\t{row}\t{at}\t{}\t{}\t{}\n",
                clean(id),
                clean(state),
                clean(error)
            ),
        }
    }

    fn parse(line: &str) -> Option<Record> {
        let f: Vec<&str> = line.split('\t').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        let row = || num(1).and_then(|r| usize::try_from(r).ok());
        let ids = |i: usize| -> Option<Vec<String>> {
            let v = f.get(i)?;
            Some(if v.is_empty() {
                Vec::new()
            } else {
                v.split(',').map(str::to_owned).collect()
            })
        };
        let text = |i: usize| f.get(i).map(|s| (*s).to_owned());
        Some(match *f.first()? {
            "H" => Record::Header(text(1)?),
            "S" if f.len() == 3 => Record::Submitting {
                row: row()?,
                at: num(2)?,
            },
            "A" if f.len() == 4 => Record::Accepted {
                row: row()?,
                at: num(2)?,
                ids: ids(3)?,
            },
            "F" if f.len() == 5 => Record::Failed {
                row: row()?,
                at: num(2)?,
                ids: ids(3)?,
                error: text(4)?,
            },
            "U" if f.len() == 4 => Record::Unknown {
                row: row()?,
                at: num(2)?,
                error: text(3)?,
            },
            "R" if f.len() == 6 => Record::Receipt {
                row: row()?,
                at: num(2)?,
                id: text(3)?,
                state: text(4)?,
                error: text(5)?,
            },
            "Q" if f.len() == 6 => Record::Query {
                row: row()?,
                at: num(2)?,
                id: text(3)?,
                state: text(4)?,
                error: text(5)?,
            },
            _ => return None,
        })
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Reads every complete record of a journal (none if it does not exist).
pub fn read(path: &Path) -> anyhow::Result<Vec<Record>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut records = Vec::new();
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 || !line.ends_with('\n') {
            break; // end, or a torn last line
        }
        if let Some(r) = Record::parse(line.trim_end_matches('\n')) {
            records.push(r);
        }
    }
    Ok(records)
}

enum Job {
    Write(Record, Option<oneshot::Sender<Result<(), String>>>),
    Sync(oneshot::Sender<Result<(), String>>),
}

/// Appends records from a dedicated thread; a record sent with
/// [`Journal::write_synced`] resolves once it is on disk.
#[derive(Clone, Debug)]
pub struct Journal {
    tx: std_mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Journal {
    /// Opens (creating) the journal for appending; writes `header` when new.
    pub fn open(path: &Path, header: Option<Record>) -> anyhow::Result<Journal> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the journal {}", path.display()))?;
        if let Some(h) = header {
            file.write_all(h.line().as_bytes())?;
            file.sync_data()?;
        }
        let (tx, rx) = std_mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer(file, rx))
            .context("cannot start the journal thread")?;
        Ok(Journal { tx })
    }

    /// Appends `record` and waits until it is synced to disk.
    pub async fn write_synced(&self, record: Record) -> anyhow::Result<()> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Job::Write(record, Some(done)))
            .map_err(|_| anyhow::anyhow!("the journal is closed"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("the journal is closed"))?
            .map_err(|e| anyhow::anyhow!("journal write failed: {e}"))
    }

    /// Waits until everything written before is synced to disk.
    pub async fn sync(&self) -> anyhow::Result<()> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Job::Sync(done))
            .map_err(|_| anyhow::anyhow!("the journal is closed"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("the journal is closed"))?
            .map_err(|e| anyhow::anyhow!("journal write failed: {e}"))
    }

    /// Appends `record` (synced with the next batch); does not wait.
    pub fn write(&self, record: Record) {
        let _ = self.tx.send(Job::Write(record, None));
    }
}

/// Group commit: write everything queued, one `fsync`, then answer the waiters.
fn writer(mut file: File, rx: std_mpsc::Receiver<Job>) {
    let mut buf = Vec::new();
    let mut waiters = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut job = Some(first);
        while let Some(next) = job.take() {
            match next {
                Job::Write(record, waiter) => {
                    buf.extend_from_slice(record.line().as_bytes());
                    waiters.extend(waiter);
                }
                Job::Sync(waiter) => waiters.push(waiter),
            }
            job = rx.try_recv().ok();
        }
        let result = file
            .write_all(&buf)
            .and_then(|()| file.sync_data())
            .map_err(|e| e.to_string());
        buf.clear();
        for w in waiters.drain(..) {
            let _ = w.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_torn_lines_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let records = vec![
            Record::Header("abc 12".into()),
            Record::Submitting { row: 3, at: 7 },
            Record::Accepted {
                row: 3,
                at: 8,
                ids: vec!["A1".into(), "A2".into()],
            },
            Record::Failed {
                row: 4,
                at: 9,
                ids: vec![],
                error: "ESME_RTHROTTLED".into(),
            },
            Record::Unknown {
                row: 5,
                at: 10,
                error: "no\tanswer".into(),
            },
            Record::Receipt {
                row: 3,
                at: 11,
                id: "A1".into(),
                state: "delivered".into(),
                error: "000".into(),
            },
            Record::Query {
                row: 3,
                at: 12,
                id: "A2".into(),
                state: "delivered".into(),
                error: "0".into(),
            },
        ];
        let mut text: String = records.iter().map(Record::line).collect();
        text.push_str("S\t9\t1"); // torn
        std::fs::write(&path, text).unwrap();
        let mut expected = records;
        expected[4] = Record::Unknown {
            row: 5,
            at: 10,
            error: "no answer".into(),
        };
        assert_eq!(read(&path).unwrap(), expected);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn synced_writes_are_on_disk_when_they_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let j = Journal::open(&path, Some(Record::Header("h".into()))).unwrap();
        j.write(Record::Submitting { row: 1, at: 1 });
        j.write_synced(Record::Submitting { row: 2, at: 2 })
            .await
            .unwrap();
        let read = read(&path).unwrap();
        assert_eq!(read.len(), 3);
    }
}
