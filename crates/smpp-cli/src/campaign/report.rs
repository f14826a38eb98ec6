//! The campaign's CSV report and its summary by state.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;

use super::{Outcome, Row};

/// The report's columns and states, for `smpp campaign --help`.
pub(crate) const HELP: &str = "\
The report (--report FILE.csv) has one line per row of the recipients file:
  row            1-based data row
  recipient      as in the file
  state          pending     not sent yet (interrupted before its turn)
                 duplicate   same recipient and text as an earlier row: not sent
                 accepted    every part accepted by the SMSC (no final receipt yet)
                 delivered   every part's receipt says delivered
                 expired, deleted, undeliverable, rejected, receipt_unknown, enroute, ...:
                             a part's receipt says so
                 failed      refused by the SMSC with an error status: not resent
                 unknown     sent, but no answer was recorded (timeout, connection lost,
                             crash): it may have reached the SMSC, so it is never resent
  message_ids    the SMSC's ids, one per part, separated by spaces
  error          the error status or reason
  submitted_at, answered_at, receipt_at   RFC 3339 UTC times
Run the same command again to resume: rows already attempted are not sent again.
Exit status 1 unless every row is accepted (or a duplicate).

Every campaign has an id (--id, or the recipients file's name and a hash of its path)
and a directory in the campaigns directory (--campaigns-dir, $SMPP_CAMPAIGNS_DIR, else
the platform's data directory, e.g. ~/.local/share/smpp/campaigns; ./smpp-campaigns
when none is known) with campaign.json, a copy of the recipients and the journal.
`smpp campaign list` shows them; `smpp campaign status ID` reads one offline, and
with --live asks the SMSC about messages whose receipt never came.";

fn time(ms: Option<u64>) -> String {
    ms.map(|ms| {
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
    })
    .unwrap_or_default()
}

/// Writes the report.
pub(crate) fn write(path: &Path, rows: &[Row], outcomes: &[Outcome]) -> anyhow::Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record([
        "row",
        "recipient",
        "state",
        "message_ids",
        "error",
        "submitted_at",
        "answered_at",
        "receipt_at",
    ])?;
    for (i, (row, o)) in rows.iter().zip(outcomes).enumerate() {
        let receipt_at = o.receipts.values().map(|r| r.2).max();
        let mut error = o.error.clone();
        for (state, err, _) in o.receipts.values() {
            if state != "delivered" && !err.is_empty() && error.is_empty() {
                error = format!("receipt err:{err}");
            }
        }
        w.write_record([
            (i + 1).to_string(),
            row.recipient.clone(),
            o.final_state(),
            o.ids.join(" "),
            error,
            time(o.submitted_at),
            time(o.answered_at),
            time(receipt_at),
        ])?;
    }
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Rows per final state.
pub(crate) fn summary(outcomes: &[Outcome]) -> BTreeMap<String, usize> {
    let mut by_state = BTreeMap::new();
    for o in outcomes {
        *by_state.entry(o.final_state()).or_default() += 1;
    }
    by_state
}

pub(crate) fn summary_text(summary: &BTreeMap<String, usize>) -> String {
    let total: usize = summary.values().sum();
    let mut s = format!("{total} recipients\n");
    for (state, n) in summary {
        s.push_str(&format!("  {state}: {n}\n"));
    }
    s
}
