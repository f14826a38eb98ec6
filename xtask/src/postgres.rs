//! A PostgreSQL server for the tests of the gateway's PostgreSQL store:
//! the one at 127.0.0.1:5432 when it answers, else the local Debian
//! cluster, started here (`pg_ctlcluster`; `.ci/run` installs the
//! `postgresql` package when it is missing).

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{run, Result};

/// The URL the tests use when `SMPP_TEST_DATABASE_URL` is not set.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The password set for `postgres` when the cluster asks for one.
const PASSWORD: &str = "smpp-test";

fn answers() -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], 5432));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// `psql` as the `postgres` system user over the local socket (peer
/// authentication), on database `db`.
fn psql_local(db: &str, sql: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args([
        "-u", "postgres", "--", "psql", "-X", "-q", "-d", db, "-c", sql,
    ]);
    c
}

/// A login over TCP as the tests make it works.
fn tcp_login_works(url: &str) -> bool {
    Command::new("psql")
        .args([url, "-X", "-q", "-c", "SELECT 1"])
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Makes sure the tests reach a PostgreSQL server; returns the URL they
/// should use (`SMPP_TEST_DATABASE_URL`).
pub(crate) fn ensure() -> Result<String> {
    if let Ok(url) = std::env::var("SMPP_TEST_DATABASE_URL") {
        return Ok(url);
    }
    if answers() {
        return Ok(DEFAULT_URL.into());
    }
    let versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .map_err(|e| {
            format!(
                "no PostgreSQL at 127.0.0.1:5432 and none installed (/etc/postgresql: {e}); \
                 install the postgresql package or set SMPP_TEST_DATABASE_URL"
            )
        })?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    let version = versions
        .iter()
        .max()
        .ok_or("/etc/postgresql has no cluster")?;
    run(Command::new("pg_ctlcluster").args([
        "--skip-systemctl-redirect",
        version,
        "main",
        "start",
    ]))?;
    let started = Instant::now();
    while !answers() {
        if started.elapsed() > Duration::from_secs(60) {
            return Err("PostgreSQL started but does not answer on 127.0.0.1:5432".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // A fresh Debian cluster: no database `test`, and TCP logins need a
    // password.
    let _ = run(&mut psql_local("postgres", "CREATE DATABASE test"));
    if tcp_login_works(DEFAULT_URL) {
        return Ok(DEFAULT_URL.into());
    }
    run(&mut psql_local(
        "postgres",
        &format!("ALTER ROLE postgres PASSWORD '{PASSWORD}'"),
    ))?;
    let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/test");
    if !tcp_login_works(&url) {
        return Err(format!("cannot log in to the local PostgreSQL as {url}"));
    }
    Ok(url)
}

/// The command that restarts the test server, when it is this machine's
/// Debian cluster (the default URL, `pg_ctlcluster` present); `None` for a
/// server elsewhere (`SMPP_TEST_DATABASE_URL`), which is not ours to restart.
pub(crate) fn restart_command(url: &str) -> Option<String> {
    if std::env::var_os("SMPP_TEST_DATABASE_URL").is_some() || !url.contains("@127.0.0.1:5432/") {
        return None;
    }
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .max()?;
    let found = Command::new("pg_ctlcluster").arg("--help").output().is_ok();
    found.then(|| format!("pg_ctlcluster --skip-systemctl-redirect {version} main restart"))
}
