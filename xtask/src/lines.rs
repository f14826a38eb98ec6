//! `cargo xtask lines`: code lines of the adapters and the async core they
//! share (non-blank lines that are not `//` comments, doc comments
//! included in what is skipped), per file and per crate.

use std::fs;

use crate::{root, Result};

/// The crates counted, and the files that make up each one's core
/// (driver, client, server).
const CRATES: [(&str, &[&str]); 4] = [
    ("smpp-async", &["driver.rs", "client.rs", "server.rs"]),
    ("smpp-tokio", &["lib.rs"]),
    ("smpp-smol", &["lib.rs"]),
    ("smpp-blocking", &["rt.rs", "client.rs", "server.rs"]),
];

/// Non-blank lines that are not comments.
fn code_lines(text: &str) -> usize {
    let code = |l: &&str| !l.trim().is_empty() && !l.trim_start().starts_with("//");
    text.lines().filter(code).count()
}

pub(crate) fn run(_args: &[&str]) -> Result {
    println!("code lines (non-blank, not `//` or `///`), src/ only");
    for (name, core_files) in CRATES {
        let dir = root().join("crates").join(name).join("src");
        let mut files: Vec<_> = fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        files.sort();
        let (mut total, mut core) = (0, 0);
        for path in &files {
            let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let n = code_lines(&text);
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("?");
            let in_core = core_files.contains(&file);
            println!(
                "  {name}/src/{file:<14} {n:>5}{}",
                if in_core { "  core" } else { "" }
            );
            total += n;
            core += if in_core { n } else { 0 };
        }
        println!(
            "{name}: {total} in all, {core} in the core ({})",
            core_files.join(" + ")
        );
    }
    Ok(())
}
