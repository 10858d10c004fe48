//! Decodes NTP packets given as hex (files, or `-` for standard input) and prints every
//! field, with the verdict a client would reach on a response.
//!
//! ```text
//! cargo run -p tempora-ntp-proto --example ntp-decode                 # the golden vectors
//! cargo run -p tempora-ntp-proto --example ntp-decode -- FILE.hex ... # your own captures
//! echo 2300...f0 | cargo run -p tempora-ntp-proto --example ntp-decode -- -
//! ```

use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use tempora_ntp_proto::{
    AssociationMode, NtpPacket, NtpTimestamp, ReferenceIdKind, UnixTime, check_response,
};

fn main() -> ExitCode {
    let mut inputs: Vec<String> = std::env::args().skip(1).collect();
    if inputs.is_empty() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "hex"))
                    .map(|p| p.display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        inputs = files;
    }
    let mut failed = false;
    let mut out = String::new();
    for input in &inputs {
        let text = if input == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map(|_| s)
        } else {
            std::fs::read_to_string(input)
        };
        let bytes = match text.map_err(|e| e.to_string()).and_then(|t| decode_hex(&t)) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("{input}: {e}");
                failed = true;
                continue;
            }
        };
        let name = input.rsplit('/').next().unwrap_or(input);
        let _ = writeln!(out, "{name} ({} bytes)", bytes.len());
        match NtpPacket::parse(&bytes) {
            Ok(packet) => print_packet(&mut out, &packet),
            Err(e) => {
                let _ = writeln!(out, "  not a valid NTP time packet: {e}");
                failed = true;
            }
        }
        let _ = writeln!(out);
    }
    // A reader that stops early (`| head`, `| grep -q`) closes the pipe: that is not an error.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Hex digits, ignoring white space and `#` comment lines.
fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| format!("not hex at digit {i}: {:?}", &digits[i..i + 2]))
        })
        .collect()
}

fn print_packet(out: &mut String, packet: &NtpPacket<'_>) {
    let h = &packet.header;
    let pivot = UnixTime::from(std::time::SystemTime::now());
    let _ = writeln!(out, "  leap          {:?}", h.leap);
    let _ = writeln!(out, "  version       {:?}", h.version);
    let _ = writeln!(out, "  mode          {:?}", h.mode);
    let is_request = matches!(h.mode, AssociationMode::Client);
    let class = match h.stratum.0 {
        0 if is_request => "unspecified",
        0 => "kiss-o'-death / unspecified",
        1 => "primary",
        2..=15 => "secondary",
        16 => "unsynchronised",
        _ => "reserved",
    };
    let _ = writeln!(out, "  stratum       {} ({class})", h.stratum.0);
    let _ = writeln!(
        out,
        "  poll          {} ({} s)",
        h.poll.0,
        h.poll.to_seconds_f64()
    );
    let _ = writeln!(
        out,
        "  precision     {} ({:.3e} s)",
        h.precision.0,
        h.precision.to_seconds_f64()
    );
    let _ = writeln!(
        out,
        "  root delay    {:.6} s",
        h.root_delay.to_seconds_f64()
    );
    let _ = writeln!(
        out,
        "  root disp.    {:.6} s",
        h.root_dispersion.to_seconds_f64()
    );
    let refid = match h.reference_id.interpret(h.stratum) {
        _ if h.reference_id.0 == [0; 4] => "none".to_string(),
        ReferenceIdKind::Kiss(code) => format!("kiss code {:?}", code),
        ReferenceIdKind::ReferenceClock(name) => {
            format!(
                "reference clock {:?}",
                String::from_utf8_lossy(&name).trim_end_matches('\0')
            )
        }
        ReferenceIdKind::Upstream(id) => format!("upstream {} (or an IPv6 hash)", id.to_ipv4()),
        ReferenceIdKind::Unspecified(id) => format!("{:02x?}", id.0),
    };
    let _ = writeln!(out, "  reference id  {refid}");
    for (label, ts) in [
        ("reference", h.reference_timestamp),
        ("origin", h.origin_timestamp),
        ("receive", h.receive_timestamp),
        ("transmit", h.transmit_timestamp),
    ] {
        let _ = writeln!(out, "  {label:<13} {}", format_timestamp(ts, pivot));
    }
    let fields: Vec<_> = packet.extension_fields.into_iter().collect();
    if fields.is_empty() {
        let _ = writeln!(out, "  ext. fields   none");
    }
    for field in fields {
        let _ = writeln!(
            out,
            "  ext. field    {:?}, {} value bytes",
            field.field_type,
            field.value.len()
        );
    }
    match packet.mac {
        None => {
            let _ = writeln!(out, "  MAC           none");
        }
        Some(mac) if mac.is_crypto_nak() => {
            let _ = writeln!(out, "  MAC           crypto-NAK");
        }
        Some(mac) => {
            let _ = writeln!(
                out,
                "  MAC           key {}, {}-byte digest",
                mac.key_id,
                mac.digest.len()
            );
        }
    }
    if h.mode == AssociationMode::Server {
        let verdict = match check_response(h, h.origin_timestamp, None) {
            Ok(()) => "usable".to_string(),
            Err(rejection) => format!("not usable: {rejection}"),
        };
        let _ = writeln!(out, "  as a response {verdict}");
    }
}

/// An NTP timestamp as UTC, in the era nearest to now.
fn format_timestamp(ts: NtpTimestamp, pivot: UnixTime) -> String {
    if ts.is_zero() {
        return "0 (unknown)".into();
    }
    format!("{}  ({:#018x})", ts.to_unix(pivot), ts.to_bits())
}
