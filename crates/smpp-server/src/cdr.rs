//! Billing records (CDRs): one JSON line per message that reached a final
//! state, appended to a file, which is what billing software consumes.
//!
//! ```text
//! {"account":"smppclient1","source_addr":"Acme","destination_addr":"447700900123",
//!  "message_id":"0000a1b2","parts":2,"data_coding":0,"submit_time":"2026-01-17T10:30:00.000Z",
//!  "done_time":"2026-01-17T10:30:01.250Z","final_state":"DELIVRD","error":null,
//!  "billing_identification":"8062696c6c2d37"}
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;
use smpp_proto::message::MessageState;
use smpp_proto::pdu::{TlvTag, Tlvs};

/// One billing record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CdrRecord {
    /// The submitting account (`system_id`).
    pub account: String,
    /// `source_addr` of the message.
    pub source_addr: String,
    /// `destination_addr` of the message (empty for a `broadcast_sm`, which
    /// goes to broadcast areas, not to an address).
    pub destination_addr: String,
    /// The MC's message id.
    pub message_id: String,
    /// Number of parts (submit_sm PDUs) the message took.
    pub parts: u32,
    /// `data_coding`.
    pub data_coding: u8,
    /// When it was accepted: RFC 3339, UTC (see [`rfc3339`]).
    pub submit_time: String,
    /// When it reached its final state: RFC 3339, UTC.
    pub done_time: String,
    /// The final state's stat word (`DELIVRD`, `UNDELIV`, `EXPIRED`...).
    pub final_state: String,
    /// Error code (network or MC specific), when the delivery failed.
    pub error: Option<u32>,
    /// The v5.0 `billing_identification` TLV value in hex, when the submit had one.
    pub billing_identification: Option<String>,
}

impl CdrRecord {
    /// The stat word to put in [`CdrRecord::final_state`].
    pub fn state_word(state: MessageState) -> String {
        state.stat_word().to_owned()
    }

    /// The `billing_identification` TLV (0x060B) of a submit, in hex.
    pub fn billing_identification(tlvs: &Tlvs) -> Option<String> {
        tlvs.get(TlvTag::BILLING_IDENTIFICATION).map(hex)
    }
}

/// A time as RFC 3339 in UTC with milliseconds (`2026-01-17T10:30:00.000Z`).
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// Appends [`CdrRecord`]s to a file, one JSON line each.
///
/// Each record is written with one `write` call of the whole line on a file
/// opened in append mode, under a lock, with no user-space buffer: a crash of
/// the process loses at most the line being written, and concurrent writers
/// (threads, or several processes appending) never interleave within a line.
/// [`sync`](CdrWriter::sync) also forces the data to the disk.
#[derive(Debug)]
pub struct CdrWriter {
    file: Mutex<File>,
}

impl CdrWriter {
    /// Opens (creating it if needed) `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> io::Result<CdrWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.as_ref())?;
        Ok(CdrWriter {
            file: Mutex::new(file),
        })
    }

    /// Appends one record (a [`CdrRecord`], or a record that extends it) as a JSON line.
    pub fn write<T: Serialize>(&self, record: &T) -> io::Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line)?;
        file.flush()
    }

    /// Forces what was written to the disk (`fsync`).
    pub fn sync(&self) -> io::Result<()> {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.sync_data()
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    fn record(i: u32) -> CdrRecord {
        CdrRecord {
            account: "smppclient1".into(),
            source_addr: "Acme".into(),
            destination_addr: format!("4477009{i:05}"),
            message_id: format!("{i:08x}"),
            parts: 1 + i % 3,
            data_coding: 8,
            submit_time: rfc3339(UNIX_EPOCH + Duration::from_millis(1_768_645_800_000)),
            done_time: rfc3339(UNIX_EPOCH + Duration::from_millis(1_768_645_801_250)),
            final_state: CdrRecord::state_word(MessageState::Delivered),
            error: (i % 2 == 1).then_some(i),
            billing_identification: None,
        }
    }

    #[test]
    fn json_line_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cdr.jsonl");
        let w = CdrWriter::open(&path).expect("open");
        let mut r = record(1);
        let mut tlvs = Tlvs::new();
        tlvs.push(
            TlvTag::BILLING_IDENTIFICATION,
            &[0x80, b'b', b'i', b'l', b'l'],
        )
        .expect("tlv");
        r.billing_identification = CdrRecord::billing_identification(&tlvs);
        w.write(&r).expect("write");
        w.sync().expect("sync");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "{\"account\":\"smppclient1\",\"source_addr\":\"Acme\",\"destination_addr\":\"447700900001\",\
             \"message_id\":\"00000001\",\"parts\":2,\"data_coding\":8,\
             \"submit_time\":\"2026-01-17T10:30:00.000Z\",\"done_time\":\"2026-01-17T10:30:01.250Z\",\
             \"final_state\":\"DELIVRD\",\"error\":1,\"billing_identification\":\"8062696c6c\"}\n"
        );
        assert_eq!(CdrRecord::billing_identification(&Tlvs::new()), None);
    }

    #[test]
    fn appends_and_threads_do_not_interleave() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cdr.jsonl");
        CdrWriter::open(&path)
            .expect("open")
            .write(&record(0))
            .expect("write");
        // Reopening appends.
        let w = Arc::new(CdrWriter::open(&path).expect("reopen"));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..250 {
                        w.write(&record(1 + t * 250 + i)).expect("write");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let mut ids: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value =
                    serde_json::from_str(l).expect("one JSON object per line");
                v["message_id"].as_str().expect("id").to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 1001);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 1001);
    }

    #[test]
    fn open_errors_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(CdrWriter::open(dir.path()).is_err());
        assert!(CdrWriter::open(dir.path().join("missing/dir/cdr.jsonl")).is_err());
    }
}
