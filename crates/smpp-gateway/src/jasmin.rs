//! Jasmin's HTTP API parameters (`/send`, `/balance`, `/rate`), parsed
//! without I/O so that it can be fuzzed on its own: the same names, the
//! same rules and the same error texts as Jasmin 0.11, so that a Jasmin
//! user's code works unchanged.
//!
//! This module needs nothing but `std` and `form_urlencoded`.

/// What `/send` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    /// The account.
    pub username: String,
    /// Its password.
    pub password: String,
    /// The destination.
    pub to: String,
    /// The originator, if given.
    pub from: Option<String>,
    /// The `data_coding` value (0 by default).
    pub coding: u8,
    /// The content.
    pub content: Content,
    /// `priority_flag`, 0-3.
    pub priority: u8,
    /// `schedule_delivery_time` in SMPP's 16-character form.
    pub sdt: Option<String>,
    /// Validity in minutes from now.
    pub validity_minutes: Option<u32>,
    /// A receipt callback, when `dlr=yes` came with a `dlr-url`.
    pub dlr: Option<DlrRequest>,
}

/// `content` (text) or `hex-content` (octets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Text, coded by the gateway per `coding`.
    Text(String),
    /// Octets sent as they are, with `coding` as `data_coding`.
    Hex(Vec<u8>),
}

/// Where and how receipts are called back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlrRequest {
    /// `dlr-url`.
    pub url: String,
    /// `dlr-level`: 1 the SMSC's acceptance, 2 the terminal's receipt, 3 both.
    pub level: u8,
    /// `dlr-method`: POST when true, GET otherwise.
    pub post: bool,
}

/// A parameter error, with Jasmin's wording ([`ParamError::message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// A parameter Jasmin does not know.
    Unknown(String),
    /// A value that breaks the parameter's rule.
    Invalid(String, String),
    /// A mandatory parameter is missing.
    Missing(String),
}

impl ParamError {
    /// The text Jasmin answers, inside `Error "..."`.
    pub fn message(&self) -> String {
        match self {
            ParamError::Unknown(name) => format!("Argument {name} is unknown."),
            ParamError::Invalid(name, value) => {
                format!("Argument {name} has an invalid value: {value}.")
            }
            ParamError::Missing(name) => format!("Mandatory argument {name} is not found."),
        }
    }
}

/// The parameters of a query string or a form-encoded body, in order.
pub fn parse_fields(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

const SEND_PARAMS: &[&str] = &[
    "username",
    "password",
    "to",
    "from",
    "coding",
    "content",
    "hex-content",
    "priority",
    "sdt",
    "validity-period",
    "dlr",
    "dlr-url",
    "dlr-level",
    "dlr-method",
    "tags",
];

/// The first value of `name`.
fn get<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn required(fields: &[(String, String)], name: &str) -> Result<String, ParamError> {
    get(fields, name)
        .map(str::to_owned)
        .ok_or_else(|| ParamError::Missing(name.into()))
}

fn number<T: std::str::FromStr>(
    fields: &[(String, String)],
    name: &str,
    ok: impl Fn(&T) -> bool,
) -> Result<Option<T>, ParamError> {
    match get(fields, name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<T>()
            .ok()
            .filter(|n| ok(n))
            .map(Some)
            .ok_or_else(|| ParamError::Invalid(name.into(), v.into())),
    }
}

/// Checks that every parameter is one `allowed` names.
pub fn check_known(fields: &[(String, String)], allowed: &[&str]) -> Result<(), ParamError> {
    match fields.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(ParamError::Unknown(k.clone())),
        None => Ok(()),
    }
}

/// Octets from hex digits (`None` unless an even number of them).
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses `/send`'s parameters.
pub fn parse_send(fields: &[(String, String)]) -> Result<SendRequest, ParamError> {
    check_known(fields, SEND_PARAMS)?;
    let username = required(fields, "username")?;
    let password = required(fields, "password")?;
    let to = required(fields, "to")?;
    if to.is_empty() || to.len() > 20 {
        return Err(ParamError::Invalid("to".into(), to));
    }
    let from = get(fields, "from").map(str::to_owned);
    if from.as_ref().is_some_and(|f| f.len() > 20) {
        return Err(ParamError::Invalid("from".into(), from.unwrap_or_default()));
    }
    let coding = number::<u8>(fields, "coding", |c| matches!(c, 0..=10 | 13 | 14))?.unwrap_or(0);
    let content = match (get(fields, "content"), get(fields, "hex-content")) {
        (Some(text), None) => Content::Text(text.to_owned()),
        (None, Some(h)) => Content::Hex(
            parse_hex(h).ok_or_else(|| ParamError::Invalid("hex-content".into(), h.into()))?,
        ),
        (Some(_), Some(h)) => {
            return Err(ParamError::Invalid("hex-content".into(), h.into()));
        }
        (None, None) => return Err(ParamError::Missing("content".into())),
    };
    let priority = number::<u8>(fields, "priority", |p| *p <= 3)?.unwrap_or(0);
    let sdt = match get(fields, "sdt") {
        None => None,
        Some(t)
            if t.len() == 16
                && t.ends_with(['R', '+', '-'])
                && t[..12].bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(t.to_owned())
        }
        Some(t) => return Err(ParamError::Invalid("sdt".into(), t.into())),
    };
    let validity_minutes = number::<u32>(fields, "validity-period", |m| *m > 0)?;
    let wants = match get(fields, "dlr") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("yes") => true,
        Some(v) if v.eq_ignore_ascii_case("no") => false,
        Some(v) => return Err(ParamError::Invalid("dlr".into(), v.into())),
    };
    let level = number::<u8>(fields, "dlr-level", |l| (1..=3).contains(l))?.unwrap_or(1);
    let post = match get(fields, "dlr-method") {
        None => false,
        Some(m) if m.eq_ignore_ascii_case("GET") => false,
        Some(m) if m.eq_ignore_ascii_case("POST") => true,
        Some(m) => return Err(ParamError::Invalid("dlr-method".into(), m.into())),
    };
    // dlr=yes without a URL is taken as dlr=no, as Jasmin does.
    let dlr = match get(fields, "dlr-url") {
        Some(url) if wants => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ParamError::Invalid("dlr-url".into(), url.into()));
            }
            Some(DlrRequest {
                url: url.to_owned(),
                level,
                post,
            })
        }
        _ => None,
    };
    Ok(SendRequest {
        username,
        password,
        to,
        from,
        coding,
        content,
        priority,
        sdt,
        validity_minutes,
        dlr,
    })
}

/// Parses `/balance`'s parameters: (username, password).
pub fn parse_balance(fields: &[(String, String)]) -> Result<(String, String), ParamError> {
    check_known(fields, &["username", "password"])?;
    Ok((required(fields, "username")?, required(fields, "password")?))
}

/// What `/rate` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRequest {
    /// The account.
    pub username: String,
    /// Its password.
    pub password: String,
    /// The destination to price.
    pub to: String,
    /// The content, to count its parts (one part without it).
    pub content: Option<Content>,
    /// The `data_coding` value of the content.
    pub coding: u8,
}

/// Parses `/rate`'s parameters.
pub fn parse_rate(fields: &[(String, String)]) -> Result<RateRequest, ParamError> {
    check_known(
        fields,
        &[
            "username",
            "password",
            "to",
            "from",
            "coding",
            "content",
            "hex-content",
        ],
    )?;
    let coding = number::<u8>(fields, "coding", |c| matches!(c, 0..=10 | 13 | 14))?.unwrap_or(0);
    let content = match (get(fields, "content"), get(fields, "hex-content")) {
        (Some(text), _) => Some(Content::Text(text.to_owned())),
        (None, Some(h)) => {
            Some(Content::Hex(parse_hex(h).ok_or_else(|| {
                ParamError::Invalid("hex-content".into(), h.into())
            })?))
        }
        (None, None) => None,
    };
    Ok(RateRequest {
        username: required(fields, "username")?,
        password: required(fields, "password")?,
        to: required(fields, "to")?,
        content,
        coding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(query: &str) -> Vec<(String, String)> {
        parse_fields(query.as_bytes())
    }

    /// Jasmin's documented examples (ja-http: example_send_gsm0338.py,
    /// example_send_dlr2.py, example_send_misc.py).
    #[test]
    fn jasmin_s_documented_requests_parse() {
        let r = parse_send(&fields(
            "username=foo&password=bar&to=%2B336222172&content=Hello",
        ))
        .unwrap();
        assert_eq!((r.to.as_str(), r.coding), ("+336222172", 0));
        assert_eq!(r.content, Content::Text("Hello".into()));
        assert_eq!(r.dlr, None);
        let r = parse_send(&fields(
            "username=foo&password=bar&to=%2B336222172&content=Hello&dlr=yes&dlr-url=http%3A%2F%2Fsome.host%2Fdlr.php&dlr-level=3",
        ))
        .unwrap();
        assert_eq!(
            r.dlr,
            Some(DlrRequest {
                url: "http://some.host/dlr.php".into(),
                level: 3,
                post: false
            })
        );
        // UCS-2 as hex content (example_send_misc.py).
        let r = parse_send(&fields(
            "username=foo&password=bar&to=%2B336222172&hex-content=0623064406270020&coding=8",
        ))
        .unwrap();
        assert_eq!(
            r.content,
            Content::Hex(vec![6, 0x23, 6, 0x44, 6, 0x27, 0, 0x20])
        );
        assert_eq!(r.coding, 8);
        // dlr=yes without a URL is dlr=no.
        let r = parse_send(&fields("username=a&password=b&to=1&content=x&dlr=yes")).unwrap();
        assert_eq!(r.dlr, None);
    }

    #[test]
    fn errors_have_jasmin_s_words() {
        let e = parse_send(&fields("username=a&password=b&to=1&content=x&colour=red")).unwrap_err();
        assert_eq!(e.message(), "Argument colour is unknown.");
        let e = parse_send(&fields("username=a&password=b&content=x")).unwrap_err();
        assert_eq!(e.message(), "Mandatory argument to is not found.");
        let e = parse_send(&fields("username=a&password=b&to=1&content=x&coding=12")).unwrap_err();
        assert_eq!(e.message(), "Argument coding has an invalid value: 12.");
        for bad in [
            "username=a&password=b&to=1&hex-content=0g",
            "username=a&password=b&to=1&content=x&hex-content=00",
            "username=a&password=b&to=1&content=x&priority=4",
            "username=a&password=b&to=1&content=x&dlr=maybe",
            "username=a&password=b&to=1&content=x&dlr=yes&dlr-url=ftp://x",
            "username=a&password=b&to=1&content=x&sdt=tomorrow",
            "username=a&password=b&to=1&content=x&validity-period=0",
        ] {
            assert!(parse_send(&fields(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            parse_balance(&fields("username=a&password=b")),
            Ok(("a".into(), "b".into()))
        );
        let rate = parse_rate(&fields("username=a&password=b&to=336")).unwrap();
        assert_eq!((rate.to.as_str(), rate.content), ("336", None));
    }
}
