//! Decodes hex SMPP PDUs (arguments, or one per line on stdin) and prints them.
//!
//! `cargo run -p smpp-examples --example decode -- 00000010000000150000000000000007`

use std::io::BufRead;

use bytes::BytesMut;
use smpp_proto::pdu::{self, DecodeConfig, Decoded, FieldValue, Pdu};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let inputs: Vec<String> = if args.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .collect()
    } else {
        args
    };
    let mut failed = false;
    for input in inputs {
        let hex: String = input.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        if hex.is_empty() {
            continue;
        }
        let Some(bytes) = decode_hex(&hex) else {
            eprintln!("not hex: {input}");
            failed = true;
            continue;
        };
        let mut buf = BytesMut::from(&bytes[..]);
        loop {
            match pdu::decode(&mut buf, &DecodeConfig::default()) {
                Ok(Decoded::Pdu(p)) => print_pdu(&p),
                Ok(Decoded::Partial { needed }) => {
                    if !buf.is_empty() {
                        eprintln!("incomplete PDU: {needed} more octets needed");
                        failed = true;
                    }
                    break;
                }
                Err(e) => {
                    eprintln!(
                        "error: {e} (answer: {:?})",
                        e.response().map(|r| (r.command_id(), r.command_status))
                    );
                    failed = true;
                    if e.is_fatal() {
                        break;
                    }
                }
            }
        }
    }
    std::process::exit(i32::from(failed));
}

fn print_pdu(p: &Pdu) {
    println!("{} (0x{:08X})", p.command_id(), p.command_id().get());
    println!("  command_status   {}", p.command_status);
    println!("  sequence_number  {}", p.sequence_number);
    p.body.for_each_field(|f| match f.value {
        FieldValue::Int(v) => println!("  {:<16} {v}", f.name),
        FieldValue::Str(s) | FieldValue::Time(s) => {
            println!("  {:<16} {:?}", f.name, s.to_string_lossy())
        }
        FieldValue::Octets(o) => println!(
            "  {:<16} {} ({:?})",
            f.name,
            hex(o),
            String::from_utf8_lossy(o)
        ),
        FieldValue::Tlvs(t) => {
            for tlv in t.iter() {
                println!("  tlv {:<12} {}", tlv.tag, hex(tlv.value));
            }
        }
        _ => println!("  {:<16} {:?}", f.name, f.value),
    });
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}
