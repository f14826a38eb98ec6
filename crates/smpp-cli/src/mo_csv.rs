//! The MO feed file of `smpp serve --mo-csv`: one message per line,
//! `from,to,text[,coding]` (coding: `auto`, the default, `gsm7`, `ucs2`,
//! `latin1` or `binary`, as `smpp send --coding`). A field with a comma, a
//! quote or a line break is quoted (`"..."`, a quote inside doubled), as in
//! RFC 4180. Empty lines and lines starting with `#` are skipped, and so is
//! a first line `from,to,text...` (a header).

use std::path::Path;

use anyhow::{bail, Context as _};
use clap::ValueEnum as _;
use smpp_proto::message::ShortMessage;

use crate::send::{message_content, Coding};

/// The largest file read (the messages are kept in memory).
pub const MAX_FILE: u64 = 64 << 20;

/// Reads the messages of a feed file.
pub fn load(path: &Path) -> anyhow::Result<Vec<ShortMessage>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if size > MAX_FILE {
        bail!("{}: larger than {} MiB", path.display(), MAX_FILE >> 20);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).with_context(|| format!("bad MO file {}", path.display()))
}

/// Parses the text of a feed file.
pub fn parse(text: &str) -> anyhow::Result<Vec<ShortMessage>> {
    let mut out = Vec::new();
    for (n, record) in records(text)?.into_iter().enumerate() {
        let (line, fields) = record;
        if n == 0
            && fields
                .first()
                .is_some_and(|f| f.trim().eq_ignore_ascii_case("from"))
        {
            continue;
        }
        out.push(message(&fields).with_context(|| format!("line {line}"))?);
    }
    Ok(out)
}

fn message(fields: &[String]) -> anyhow::Result<ShortMessage> {
    let [from, to, text, rest @ ..] = fields else {
        bail!("expected from,to,text[,coding]");
    };
    let coding = match rest {
        [] => Coding::Auto,
        [c] if c.trim().is_empty() => Coding::Auto,
        [c] => Coding::from_str(c.trim(), true).map_err(|_| {
            anyhow::anyhow!("unknown coding {c:?}: auto, gsm7, ucs2, latin1 or binary")
        })?,
        _ => bail!("more than 4 fields"),
    };
    let (from, to) = (from.trim(), to.trim());
    // deliver_sm addresses hold 20 characters.
    if from.len() > 20 {
        bail!("from {from:?}: more than 20 characters");
    }
    if to.is_empty() || to.len() > 20 {
        bail!("to {to:?}: 1 to 20 characters");
    }
    Ok(message_content(Some(text), None, coding)?.from(from).to(to))
}

/// The records of the file with their first line numbers; comments and
/// empty lines left out.
fn records(text: &str) -> anyhow::Result<Vec<(usize, Vec<String>)>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        if matches!(chars.peek(), Some('#')) {
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            line += 1;
            continue;
        }
        let mut fields = vec![String::new()];
        let mut quoted = false;
        let mut at_field_start = true;
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    bail!("line {start}: a quoted field does not end");
                }
                break;
            };
            let field = fields.last_mut().expect("one field at least");
            match c {
                '"' if at_field_start && !quoted => {
                    quoted = true;
                    at_field_start = false;
                }
                '"' if quoted => {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        quoted = false;
                    }
                }
                '\n' if quoted => {
                    line += 1;
                    field.push('\n');
                }
                '\n' => {
                    line += 1;
                    break;
                }
                ',' if !quoted => {
                    fields.push(String::new());
                    at_field_start = true;
                }
                '\r' if !quoted && chars.peek() == Some(&'\n') => {}
                c => {
                    field.push(c);
                    at_field_start = false;
                }
            }
        }
        if fields.len() == 1 && fields[0].trim().is_empty() {
            continue;
        }
        out.push((start, fields));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        records(text).unwrap().into_iter().map(|(_, f)| f).collect()
    }

    #[test]
    fn reads_csv_records() {
        assert_eq!(
            fields("a,b,c\r\n\n# comment\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\nd,e,f"),
            [
                vec!["a", "b", "c"],
                vec!["x, y", "say \"hi\"", "two\nlines"],
                vec!["d", "e", "f"]
            ]
        );
        assert!(records("a,\"open").is_err());
    }

    #[test]
    fn builds_messages() {
        let messages = parse("from,to,text,coding\n447700900001,4470,hello\n447700900002,4470,\"héllo, ünïcode\",ucs2\n").unwrap();
        assert_eq!(messages.len(), 2);
        let mut refs = smpp_proto::message::concat::ReferenceCounter::new(1);
        let part = &messages[1].build(&mut refs).unwrap()[0];
        assert_eq!(part.data_coding, 0x08);
        assert_eq!(part.destination_addr.as_str(), Ok("4470"));
        for bad in [
            "1,2\n",
            "1,2,3,4,5\n",
            "1,2,3,klingon\n",
            "1,,text\n",
            "1,123456789012345678901,text\n",
            "123456789012345678901,2,text\n",
            "1,2,ü,gsm7x\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        let err = parse("1,2,3\n1,2\n").unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
    }
}
