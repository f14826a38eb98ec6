//! A scripted USSD menu: service codes, each a tree of screens. A screen
//! with options is a menu (its text, then one numbered line per option) that
//! waits for the subscriber's choice; a screen without options is the last
//! one of the dialog.
//!
//! ```toml
//! [[service]]
//! code = "*123#"               # what the subscriber dials (or the service number, 123)
//! text = "My operator"
//!
//! [[service.option]]           # "1 Balance"
//! label = "Balance"
//! text = "Your balance is 5.00 EUR"       # no options: the last screen
//!
//! [[service.option]]           # "2 Bundles"
//! label = "Bundles"
//! text = "Choose a bundle"
//!
//! [[service.option.option]]    # "1 1 GB"
//! label = "1 GB"
//! text = "1 GB added. Thank you."
//! ```
//!
//! Walking it is plain data: [`UssdMenu::service`] finds where a dial
//! starts, [`Service::screen`] says what a path of choices shows, and
//! [`Service::choose`] follows one answer.

use std::path::Path;

use anyhow::{bail, Context as _};
use serde::Deserialize;

/// Characters a USSD screen holds at most (GSM 7-bit, 3GPP TS 23.038).
pub const MAX_SCREEN: usize = 182;
/// Menu levels at most.
pub const MAX_DEPTH: usize = 16;
/// Options of one menu at most.
pub const MAX_OPTIONS: usize = 20;
/// What a subscriber sees after an answer that names no option (the menu follows).
pub const INVALID_CHOICE: &str = "Invalid choice";

/// The menu file: its services.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UssdMenu {
    /// The services, by code.
    #[serde(rename = "service")]
    pub services: Vec<Service>,
}

/// One service: the code that opens it and its first screen.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// What the subscriber dials (`*123#`).
    pub code: String,
    /// The first screen's text.
    pub text: String,
    /// The first screen's options (none: the dialog ends with it).
    #[serde(default, rename = "option")]
    pub options: Vec<Node>,
}

/// One option: its label in the menu above, and the screen it leads to.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// The option's line in the menu (after its number).
    pub label: String,
    /// The screen's text.
    pub text: String,
    /// Its options (none: the last screen).
    #[serde(default, rename = "option")]
    pub options: Vec<Node>,
}

/// What the subscriber sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// A menu: the text shown, waiting for a choice.
    Menu(String),
    /// The last screen of the dialog.
    Final(String),
}

impl UssdMenu {
    /// Reads and checks a menu file.
    pub fn load(path: &Path) -> anyhow::Result<UssdMenu> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let menu: UssdMenu =
            toml::from_str(&text).with_context(|| format!("bad USSD menu {}", path.display()))?;
        menu.check()
            .with_context(|| format!("bad USSD menu {}", path.display()))?;
        Ok(menu)
    }

    /// Checks the limits: a service at least, codes given and distinct,
    /// screens that fit, at most [`MAX_DEPTH`] levels and [`MAX_OPTIONS`]
    /// options per menu.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.services.is_empty() {
            bail!("no [[service]]");
        }
        for (i, s) in self.services.iter().enumerate() {
            if s.code.trim().is_empty() || s.code.len() > 64 {
                bail!("service #{}: `code` must be 1 to 64 characters", i + 1);
            }
            if self.services[..i].iter().any(|o| o.code == s.code) {
                bail!("service {:?} given twice", s.code);
            }
            check_screen(&s.code, &s.text, &s.options, 0)?;
        }
        Ok(())
    }

    /// The service a dial opens: the service whose code is the dialled
    /// string, or whose code without its `*` and `#` is the service number
    /// the dial was sent to.
    pub fn service(&self, dialled: &str, number: &str) -> Option<&Service> {
        let dialled = dialled.trim();
        self.services
            .iter()
            .find(|s| s.code == dialled)
            .or_else(|| {
                self.services.iter().find(|s| {
                    !number.is_empty() && s.code.trim_matches(|c| c == '*' || c == '#') == number
                })
            })
    }
}

fn check_screen(at: &str, text: &str, options: &[Node], depth: usize) -> anyhow::Result<()> {
    if depth >= MAX_DEPTH {
        bail!("{at}: more than {MAX_DEPTH} levels");
    }
    if options.len() > MAX_OPTIONS {
        bail!("{at}: more than {MAX_OPTIONS} options");
    }
    let shown = menu_text(text, options);
    // An invalid answer shows the menu again after a line of its own.
    let longest = if options.is_empty() {
        shown.chars().count()
    } else {
        shown.chars().count() + INVALID_CHOICE.len() + 1
    };
    if longest > MAX_SCREEN {
        bail!("{at}: the screen has {longest} characters (at most {MAX_SCREEN})");
    }
    for (i, o) in options.iter().enumerate() {
        if o.label.trim().is_empty() {
            bail!("{at}: option {} has no label", i + 1);
        }
        check_screen(&format!("{at} > {}", i + 1), &o.text, &o.options, depth + 1)?;
    }
    Ok(())
}

/// A screen's text: its own, then `N label` per option.
fn menu_text(text: &str, options: &[Node]) -> String {
    let mut out = text.to_owned();
    for (i, o) in options.iter().enumerate() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("{} {}", i + 1, o.label));
    }
    out
}

impl Service {
    /// The options and text at `path` (the choices so far, 0-based).
    fn at(&self, path: &[usize]) -> Option<(&str, &[Node])> {
        let (mut text, mut options) = (self.text.as_str(), self.options.as_slice());
        for &i in path {
            let node = options.get(i)?;
            (text, options) = (node.text.as_str(), node.options.as_slice());
        }
        Some((text, options))
    }

    /// What the subscriber sees after the choices of `path`.
    pub fn screen(&self, path: &[usize]) -> Option<Screen> {
        let (text, options) = self.at(path)?;
        Some(if options.is_empty() {
            Screen::Final(text.to_owned())
        } else {
            Screen::Menu(menu_text(text, options))
        })
    }

    /// Follows an answer at `path`: the option it names (`"2"`: the second)
    /// is pushed on `path` and its screen returned; an answer naming no
    /// option leaves `path` and shows the menu again after
    /// [`INVALID_CHOICE`].
    pub fn choose(&self, path: &mut Vec<usize>, answer: &str) -> Option<Screen> {
        let (_, options) = self.at(path)?;
        match answer.trim().parse::<usize>() {
            Ok(n) if (1..=options.len()).contains(&n) => {
                path.push(n - 1);
                self.screen(path)
            }
            _ => match self.screen(path)? {
                Screen::Menu(text) => Some(Screen::Menu(format!("{INVALID_CHOICE}\n{text}"))),
                last => Some(last),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MENU: &str = r#"
        [[service]]
        code = "*123#"
        text = "My operator"
        [[service.option]]
        label = "Balance"
        text = "Your balance is 5.00 EUR"
        [[service.option]]
        label = "Bundles"
        text = "Choose a bundle"
        [[service.option.option]]
        label = "1 GB"
        text = "1 GB added"
        [[service]]
        code = "*100#"
        text = "Nothing here"
    "#;

    fn menu() -> UssdMenu {
        let menu: UssdMenu = toml::from_str(MENU).unwrap();
        menu.check().unwrap();
        menu
    }

    #[test]
    fn walks_the_tree() {
        let menu = menu();
        let s = menu.service("*123#", "").unwrap();
        assert_eq!(
            s.screen(&[]),
            Some(Screen::Menu("My operator\n1 Balance\n2 Bundles".into()))
        );
        let mut path = Vec::new();
        assert_eq!(
            s.choose(&mut path, "2"),
            Some(Screen::Menu("Choose a bundle\n1 1 GB".into()))
        );
        assert_eq!(
            s.choose(&mut path, "7"),
            Some(Screen::Menu(
                "Invalid choice\nChoose a bundle\n1 1 GB".into()
            ))
        );
        assert_eq!(path, [1]);
        assert_eq!(
            s.choose(&mut path, " 1 "),
            Some(Screen::Final("1 GB added".into()))
        );
        let mut path = Vec::new();
        assert_eq!(
            s.choose(&mut path, "1"),
            Some(Screen::Final("Your balance is 5.00 EUR".into()))
        );
        let other = menu.service("*100#", "").unwrap();
        assert_eq!(
            other.screen(&[]),
            Some(Screen::Final("Nothing here".into()))
        );
        assert_eq!(other.screen(&[3]), None);
    }

    #[test]
    fn finds_services_by_code_or_number() {
        let menu = menu();
        assert_eq!(menu.service("*123#", "999").unwrap().code, "*123#");
        assert_eq!(menu.service("hello", "123").unwrap().code, "*123#");
        assert!(menu.service("*124#", "124").is_none());
        assert!(menu.service("", "").is_none());
    }

    #[test]
    fn refuses_bad_menus() {
        let bad = |s: &str| {
            toml::from_str::<UssdMenu>(s)
                .map_err(|e| e.to_string())
                .and_then(|m| m.check().map_err(|e| e.to_string()))
        };
        assert!(bad("").is_err(), "no service");
        assert!(bad("[[service]]\ncode = \"\"\ntext = \"x\"").is_err());
        assert!(bad("[[service]]\ncode = \"*1#\"\ntext = \"x\"\ncolour = 1").is_err());
        assert!(bad(
            "[[service]]\ncode = \"*1#\"\ntext = \"x\"\n[[service]]\ncode = \"*1#\"\ntext = \"y\""
        )
        .is_err());
        let long = format!(
            "[[service]]\ncode = \"*1#\"\ntext = \"{}\"",
            "x".repeat(183)
        );
        assert!(bad(&long).is_err());
        let mut deep = String::from("[[service]]\ncode = \"*1#\"\ntext = \"x\"\n");
        let mut table = String::from("service");
        for _ in 0..=MAX_DEPTH {
            table.push_str(".option");
            deep.push_str(&format!("[[{table}]]\nlabel = \"l\"\ntext = \"t\"\n"));
        }
        assert!(bad(&deep).is_err(), "too deep");
        assert!(bad("[[service]]\ncode = \"*1#\"\ntext = \"x\"\n[[service.option]]\nlabel = \" \"\ntext = \"t\"").is_err());
    }
}
