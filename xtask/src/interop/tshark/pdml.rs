//! A small parser for the PDML (packet details XML) that `tshark -T pdml`
//! prints: `<packet>`s of nested `<proto>` and `<field>` elements, with the
//! attributes the comparison reads. Nothing else of XML is needed.

use crate::Result;

/// One `<proto>` or `<field>` element of tshark's PDML.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub(super) name: String,
    pub(super) show: String,
    /// Hex of the octets (for bit fields: of the masked value).
    pub(super) value: String,
    /// Hex of the whole octets of a bit field.
    pub(super) unmasked: Option<String>,
    pub(super) pos: usize,
    pub(super) size: usize,
    pub(super) children: Vec<Node>,
}

impl Node {
    pub(super) fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Node)) {
        f(self);
        for c in &self.children {
            c.walk(f);
        }
    }

    pub(super) fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The octets, from `unmaskedvalue` for a bit field.
    pub(super) fn octets(&self) -> Result<Vec<u8>> {
        let hex = self.unmasked.as_deref().unwrap_or(&self.value);
        hex::decode(hex).map_err(|e| format!("field {}: value `{hex}` is not hex: {e}", self.name))
    }

    /// The octets as a big-endian unsigned integer.
    pub(super) fn uint(&self) -> Result<u64> {
        let o = self.octets()?;
        if o.is_empty() || o.len() > 8 {
            return Err(format!(
                "field {}: {} octets is not an integer",
                self.name,
                o.len()
            ));
        }
        Ok(o.iter().fold(0, |a, &b| a << 8 | u64::from(b)))
    }

    pub(super) fn end(&self) -> usize {
        self.pos + self.size
    }
}

/// A `<packet>`: its top-level protocols.
pub(super) type Packet = Vec<Node>;

pub(super) fn parse_pdml(xml: &str) -> Result<Vec<Packet>> {
    let mut packets = Vec::new();
    let mut current: Option<Packet> = None;
    let mut stack: Vec<Node> = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            let end = after.find("-->").ok_or("unterminated comment")?;
            rest = &after[end + 3..];
            continue;
        }
        let end = rest.find('>').ok_or("unterminated tag")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') {
            continue;
        }
        if let Some(closing) = tag.strip_prefix('/') {
            match closing.trim() {
                "packet" => {
                    if !stack.is_empty() {
                        return Err("</packet> inside an open element".into());
                    }
                    packets.push(current.take().ok_or("</packet> without <packet>")?);
                }
                "proto" | "field" => {
                    let node = stack.pop().ok_or("unbalanced closing tag")?;
                    attach(&mut stack, &mut current, node)?;
                }
                _ => {}
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (kind, attrs) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
        match kind {
            "packet" => {
                if current.is_some() {
                    return Err("nested <packet>".into());
                }
                current = Some(Vec::new());
            }
            "proto" | "field" => {
                let node = parse_node(attrs)?;
                if self_closing {
                    attach(&mut stack, &mut current, node)?;
                } else {
                    stack.push(node);
                }
            }
            _ => {}
        }
    }
    if current.is_some() || !stack.is_empty() {
        return Err("truncated PDML (an element is never closed)".into());
    }
    Ok(packets)
}

fn attach(stack: &mut [Node], packet: &mut Option<Packet>, node: Node) -> Result {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => packet
            .as_mut()
            .ok_or("element outside <packet>")?
            .push(node),
    }
    Ok(())
}

fn parse_node(attrs: &str) -> Result<Node> {
    let mut node = Node::default();
    let mut rest = attrs.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .ok_or_else(|| format!("bad attributes `{attrs}`"))?;
        let (val, after) = after
            .split_once('"')
            .ok_or_else(|| format!("unterminated attribute in `{attrs}`"))?;
        let val = unescape(val)?;
        let number = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("attribute {key}=\"{v}\" is not a number"))
        };
        match key.trim() {
            "name" => node.name = val,
            "show" => node.show = val,
            "value" => node.value = val,
            "unmaskedvalue" => node.unmasked = Some(val),
            "pos" => node.pos = number(&val)?,
            "size" => node.size = number(&val)?,
            _ => {}
        }
        rest = after.trim_start();
    }
    Ok(node)
}

fn unescape(s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find(';')
            .ok_or_else(|| format!("bad entity in `{s}`"))?;
        let entity = &rest[i + 1..i + end];
        let c = match entity {
            "quot" => '"',
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "apos" => '\'',
            _ => {
                let code = if let Some(h) = entity.strip_prefix("#x") {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = entity.strip_prefix('#') {
                    d.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity &{entity}; in `{s}`"))?
            }
        };
        out.push(c);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdml_parses_nesting_and_entities() {
        let xml = r#"<?xml version="1.0"?>
<pdml>
<packet>
  <proto name="smpp" pos="54" size="16">
    <field name="smpp.system_id" show="a&quot;b&#x27;" value="61" pos="70" size="1"/>
    <field name="x" show="" value="">
      <proto name="_ws.malformed" hide="yes" size="0" pos="54"/>
    </field>
  </proto>
</packet>
</pdml>"#;
        let p = parse_pdml(xml).unwrap();
        assert_eq!(p.len(), 1);
        let smpp = &p[0][0];
        assert_eq!(smpp.children[0].show, "a\"b'");
        assert_eq!(smpp.children[0].uint().unwrap(), 0x61);
        assert_eq!(smpp.children[1].children[0].name, "_ws.malformed");
        assert!(parse_pdml("<packet><proto name=\"a\">").is_err());
    }
}
