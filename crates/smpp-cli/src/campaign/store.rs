//! Where campaigns live on this machine: one directory per campaign, named
//! by its id, under the campaigns directory.
//!
//! ```text
//! <campaigns dir>/<id>/campaign.json   what it was (recipients file, text, source, journal path...)
//! <campaigns dir>/<id>/recipients.csv  the recipients file as it was at the first run
//! <campaigns dir>/<id>/journal         the journal (unless --journal put it elsewhere)
//! ```
//!
//! The campaigns directory is `--campaigns-dir` or `$SMPP_CAMPAIGNS_DIR`,
//! else the platform's data directory: `$XDG_DATA_HOME/smpp/campaigns`
//! (`~/.local/share/smpp/campaigns`) on Linux and other Unix,
//! `~/Library/Application Support/smpp/campaigns` on macOS,
//! `%LOCALAPPDATA%\smpp\campaigns` on Windows; `./smpp-campaigns` when none
//! of these is known.
//!
//! A campaign's id is `--id`, or the recipients file's name and a hash of
//! its absolute path (`list-1a2b3c4d`): running the same command again finds
//! the same campaign, and resumes it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The directory that holds every campaign.
pub(crate) fn campaigns_dir(given: Option<&Path>) -> PathBuf {
    if let Some(dir) = given {
        return dir.to_owned();
    }
    platform_data_dir().map_or_else(
        || PathBuf::from("smpp-campaigns"),
        |d| d.join("smpp").join("campaigns"),
    )
}

fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

fn platform_data_dir() -> Option<PathBuf> {
    if cfg!(windows) {
        return env_dir("LOCALAPPDATA");
    }
    if cfg!(target_os = "macos") {
        return env_dir("HOME").map(|h| h.join("Library").join("Application Support"));
    }
    env_dir("XDG_DATA_HOME").or_else(|| env_dir("HOME").map(|h| h.join(".local").join("share")))
}

/// What a campaign was started with (`campaign.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Its id (the directory's name).
    pub(crate) id: String,
    /// When it was first run, Unix milliseconds.
    pub(crate) created_ms: u64,
    /// The recipients file given at the first run (absolute).
    pub(crate) recipients: PathBuf,
    /// `--to-column`.
    pub(crate) to_column: Option<String>,
    /// `--text` (else each row's `text` column).
    pub(crate) text: Option<String>,
    /// The source address.
    pub(crate) source: String,
    /// Whether receipts were requested.
    pub(crate) receipts: bool,
    /// The journal (absolute).
    pub(crate) journal: PathBuf,
    /// Where it was sent, for people reading the listing.
    pub(crate) host: String,
    /// The SMSC's port.
    pub(crate) port: u16,
    /// The account it was sent with.
    pub(crate) system_id: String,
}

/// A campaign id: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with a dot.
pub(crate) fn check_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    anyhow::ensure!(
        ok,
        "{id:?} is not a campaign id (1 to 64 letters, digits, '.', '_' or '-')"
    );
    Ok(())
}

/// The id of a campaign over the recipients file at `absolute`.
pub(crate) fn derive_id(absolute: &Path) -> String {
    let stem: String = absolute
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let hash = super::fnv1a(absolute.as_os_str().as_encoded_bytes());
    let stem = if stem.is_empty() {
        "campaign".to_owned()
    } else {
        stem
    };
    format!("{stem}-{:08x}", (hash ^ (hash >> 32)) as u32)
}

/// The campaigns directory and one campaign's place in it.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub(crate) dir: PathBuf,
}

impl Store {
    pub(crate) fn new(given: Option<&Path>) -> Store {
        Store {
            dir: campaigns_dir(given),
        }
    }

    pub(crate) fn campaign_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The journal's default place.
    pub(crate) fn default_journal(&self, id: &str) -> PathBuf {
        self.campaign_dir(id).join("journal")
    }

    /// The copy of the recipients file.
    pub(crate) fn recipients_copy(&self, id: &str) -> PathBuf {
        self.campaign_dir(id).join("recipients.csv")
    }

    /// Records a campaign at its first run (the directory, `campaign.json`,
    /// the copy of the recipients); an existing record is kept as it is.
    pub(crate) fn register(&self, meta: &Meta, recipients: &[u8]) -> anyhow::Result<()> {
        let dir = self.campaign_dir(&meta.id);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the campaign directory {}", dir.display()))?;
        let meta_path = dir.join("campaign.json");
        if meta_path.exists() {
            return Ok(());
        }
        write_atomic(&self.recipients_copy(&meta.id), recipients)?;
        let json = serde_json::to_vec_pretty(meta).context("campaign.json")?;
        write_atomic(&meta_path, &json)
    }

    /// The campaign `id`.
    pub(crate) fn load(&self, id: &str) -> anyhow::Result<Meta> {
        check_id(id)?;
        let path = self.campaign_dir(id).join("campaign.json");
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "no campaign {id:?} in {} (see `smpp campaign list`)",
                self.dir.display()
            )
        })?;
        serde_json::from_slice(&bytes).with_context(|| format!("bad {}", path.display()))
    }

    /// Every campaign recorded here, oldest first (unreadable ones skipped).
    pub(crate) fn list(&self) -> anyhow::Result<Vec<Meta>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", self.dir.display())),
        };
        let mut all = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if check_id(&name).is_err() {
                continue;
            }
            match self.load(&name) {
                Ok(meta) => all.push(meta),
                Err(e) => tracing::debug!(error = %e, "skipping {name}"),
            }
        }
        all.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(all)
    }

    /// The campaign whose journal is `journal`.
    pub(crate) fn by_journal(&self, journal: &Path) -> anyhow::Result<Meta> {
        let wanted = absolute(journal)?;
        self.list()?
            .into_iter()
            .find(|m| m.journal == wanted)
            .with_context(|| {
                format!(
                    "no campaign in {} uses the journal {}",
                    self.dir.display(),
                    wanted.display()
                )
            })
    }
}

/// `path` made absolute (against the current directory), without touching the file system.
pub(crate) fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("bad path {}", path.display()))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_and_derived_from_the_path() {
        assert!(check_id("list-1a2b3c4d").is_ok());
        assert!(check_id("spring_2027.v2").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        let a = derive_id(Path::new("/data/lists/spring list.csv"));
        assert!(a.starts_with("spring_list-"), "{a}");
        assert!(check_id(&a).is_ok());
        assert_eq!(a, derive_id(Path::new("/data/lists/spring list.csv")));
        assert_ne!(a, derive_id(Path::new("/data/other/spring list.csv")));
    }

    #[test]
    fn register_load_list_and_find_by_journal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(Some(dir.path()));
        let meta = |id: &str, created_ms| Meta {
            id: id.to_owned(),
            created_ms,
            recipients: "/l.csv".into(),
            to_column: None,
            text: Some("hi".into()),
            source: String::new(),
            receipts: true,
            journal: store.default_journal(id),
            host: "127.0.0.1".into(),
            port: 2775,
            system_id: "smppclient1".into(),
        };
        store.register(&meta("b", 2), b"recipient\n1\n").unwrap();
        store.register(&meta("a", 1), b"recipient\n2\n").unwrap();
        // A second registration keeps the first record.
        store.register(&meta("a", 9), b"changed").unwrap();
        assert_eq!(store.load("a").unwrap(), meta("a", 1));
        assert_eq!(
            std::fs::read(store.recipients_copy("a")).unwrap(),
            b"recipient\n2\n"
        );
        let ids: Vec<String> = store.list().unwrap().into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            store.by_journal(&store.default_journal("b")).unwrap().id,
            "b"
        );
        assert!(store.load("c").is_err());
        assert!(store.load("../x").is_err());
    }

    #[test]
    fn the_default_place_is_the_platform_data_dir() {
        let dir = campaigns_dir(None);
        assert!(
            dir.ends_with("smpp/campaigns") || dir == Path::new("smpp-campaigns"),
            "{}",
            dir.display()
        );
        assert_eq!(campaigns_dir(Some(Path::new("/x"))), Path::new("/x"));
    }
}
