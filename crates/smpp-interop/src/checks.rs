//! One `PASS`/`FAIL` line per check, the format `cargo xtask interop` counts.

use std::future::Future;
use std::time::Duration;

/// Runs named checks for one peer and prints one line for each.
#[derive(Debug)]
pub struct Checks {
    peer: String,
    passed: usize,
    failed: usize,
}

impl Checks {
    /// Checks of `peer` (its name and version, as printed on every line).
    pub fn new(peer: impl Into<String>) -> Self {
        Checks {
            peer: peer.into(),
            passed: 0,
            failed: 0,
        }
    }

    /// Runs `check` with a time limit; prints its line; returns its value on success.
    pub async fn run<T>(
        &mut self,
        name: &str,
        limit: Duration,
        check: impl Future<Output = anyhow::Result<T>>,
    ) -> Option<T> {
        let result = match tokio::time::timeout(limit, check).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!("no result within {limit:?}")),
        };
        match result {
            Ok(v) => {
                self.pass(name);
                Some(v)
            }
            Err(e) => {
                self.fail(name, &format!("{e:#}"));
                None
            }
        }
    }

    /// Prints a PASS line.
    pub fn pass(&mut self, name: &str) {
        self.passed += 1;
        println!("PASS {}: {name}", self.peer);
    }

    /// Prints a FAIL line.
    pub fn fail(&mut self, name: &str, why: &str) {
        self.failed += 1;
        println!("FAIL {}: {name}: {why}", self.peer);
    }

    /// Prints a SKIPPED line (not a pass: the check could not run).
    pub fn skip(&self, name: &str, why: &str) {
        println!("SKIPPED {}: {name}: {why}", self.peer);
    }

    /// Whether every check so far passed.
    pub fn all_passed(&self) -> bool {
        self.failed == 0
    }

    /// Prints the totals on stderr.
    pub fn summary(&self) {
        eprintln!(
            "{}: {} passed, {} failed",
            self.peer, self.passed, self.failed
        );
    }
}
