// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Decoded views of every architected block, as serde structures with stable field names.
//!
//! These structures are what `--json` prints (field names are part of ccwctl's interface and
//! documented in the crate README); the text output prints the same fields. Flag sets are
//! arrays of short names (`["CE", "DE"]`) next to the raw value; addresses are numbers.
//!
//! ```
//! use ccwctl::decode::{decode, Block};
//! let d = decode(Block::Ccw, &[0xE4, 0x20, 0x00, 0x07, 0x00, 0x01, 0x23, 0x40]).unwrap();
//! assert_eq!(d.summary, "CCW cmd=0xe4 flags=SLI count=7 cda=0x00012340 (sense-id)");
//! assert_eq!(d.fields["count"], 7);
//! ```

use std::fmt;
use std::str::FromStr;

use ccw_types::{
    ActivityControl, CcwFormat, CcwRepr, Crw, DecodeError, DeviceStatus, FunctionControl, Irb,
    OrbRepr, Pmcw, Schib, Scsw, StatusControl, SubchannelStatus,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::senseid::{SenseIdView, SenseView};

/// The blocks `ccwctl decode` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Block {
    /// Format-1 CCW (8 bytes).
    Ccw,
    /// Format-0 CCW (8 bytes).
    Ccw0,
    /// ORB (12 or 32 bytes).
    Orb,
    /// SCSW (12 bytes).
    Scsw,
    /// IRB (64 or 96 bytes).
    Irb,
    /// SCHIB (52 bytes).
    Schib,
    /// CRW (4 bytes).
    Crw,
    /// SENSE ID data (4 to 256 bytes).
    SenseId,
    /// Basic sense data (1 to 32 bytes).
    Sense,
}

impl Block {
    /// Every block with its command-line name.
    pub const ALL: &'static [(Block, &'static str)] = &[
        (Block::Ccw, "ccw"),
        (Block::Ccw0, "ccw0"),
        (Block::Orb, "orb"),
        (Block::Scsw, "scsw"),
        (Block::Irb, "irb"),
        (Block::Schib, "schib"),
        (Block::Crw, "crw"),
        (Block::SenseId, "senseid"),
        (Block::Sense, "sense"),
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(b, _)| *b == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }
}

/// An unknown block name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown block `{0}` (one of: ccw, ccw0, orb, scsw, irb, schib, crw, senseid, sense)")]
pub struct UnknownBlock(pub String);

impl FromStr for Block {
    type Err = UnknownBlock;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase().replace(['-', '_'], "");
        Self::ALL
            .iter()
            .find(|(_, n)| *n == lower)
            .map(|(b, _)| *b)
            .ok_or_else(|| UnknownBlock(s.to_string()))
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded block: one summary line and the fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decoded {
    /// Which block (`"irb"`, ...).
    pub block: &'static str,
    /// One line a person reads.
    pub summary: String,
    /// Every field, by stable name.
    pub fields: Value,
}

/// Why `decode` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeFailure {
    /// The hex text is malformed.
    #[error("bad hex input: {0}")]
    Hex(&'static str),
    /// The bytes do not form a valid block.
    #[error("{0}")]
    Block(#[from] DecodeError),
    /// More bytes than the block holds.
    #[error("{block} is at most {max} bytes, got {got}")]
    TooLong {
        /// The block.
        block: &'static str,
        /// Its largest size.
        max: usize,
        /// Bytes given.
        got: usize,
    },
}

/// Parses hex text: digits with optional whitespace, `_`, `:` or `,` between bytes, an
/// optional `0x` prefix.
///
/// ```
/// assert_eq!(ccwctl::decode::parse_hex("0xE420 0007:00012340").unwrap(),
///            vec![0xE4, 0x20, 0x00, 0x07, 0x00, 0x01, 0x23, 0x40]);
/// assert!(ccwctl::decode::parse_hex("abc").is_err());
/// ```
pub fn parse_hex(text: &str) -> Result<Vec<u8>, DecodeFailure> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let digits: Vec<u8> = t
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && !matches!(b, b'_' | b':' | b','))
        .collect();
    if digits.len() % 2 != 0 {
        return Err(DecodeFailure::Hex("odd number of hex digits"));
    }
    // Checked per digit: `u8::from_str_radix` alone would accept a sign ("+f" as 0x0f).
    let nibble = |b: u8| {
        char::from(b)
            .to_digit(16)
            .ok_or(DecodeFailure::Hex("not a hex digit"))
    };
    digits
        .chunks(2)
        .map(|pair| Ok(((nibble(pair[0])? << 4) | nibble(pair[1])?) as u8))
        .collect()
}

pub use crate::hex::hex;

fn names(bits: u8, table: impl Iterator<Item = (u8, &'static str)>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = bits;
    for (v, n) in table {
        if v != 0 && bits & v == v {
            out.push(n.to_string());
            rest &= !v;
        }
    }
    if rest != 0 {
        out.push(format!("{rest:#04x}"));
    }
    out
}

macro_rules! set_names {
    ($t:ty, $bits:expr) => {
        names($bits, <$t>::NAMES.iter().map(|(v, n)| (v.bits(), *n)))
    };
}

fn too_long(block: &'static str, max: usize, bytes: &[u8]) -> Result<(), DecodeFailure> {
    if bytes.len() > max {
        Err(DecodeFailure::TooLong {
            block,
            max,
            got: bytes.len(),
        })
    } else {
        Ok(())
    }
}

/// Decodes `bytes` as `block`.
pub fn decode(block: Block, bytes: &[u8]) -> Result<Decoded, DecodeFailure> {
    let (summary, fields) = match block {
        Block::Ccw | Block::Ccw0 => {
            too_long("CCW", 8, bytes)?;
            let fmt = if block == Block::Ccw {
                CcwFormat::Format1
            } else {
                CcwFormat::Format0
            };
            let raw = ccw_types::Ccw1::read_from(bytes)?.into_bytes();
            let ccw = CcwRepr::parse(raw, fmt)?;
            (ccw_summary(&ccw), ccw_fields(&ccw, fmt))
        }
        Block::Orb => {
            too_long("ORB", 32, bytes)?;
            let orb = OrbRepr::parse(bytes)?;
            (orb.to_string(), orb_fields(&orb))
        }
        Block::Scsw => {
            too_long("SCSW", 12, bytes)?;
            let scsw = Scsw::read_from(bytes)?;
            (scsw.to_string(), scsw_fields(&scsw))
        }
        Block::Irb => {
            too_long("IRB", 96, bytes)?;
            let irb = Irb::read_from(bytes)?;
            (irb.to_string(), irb_fields(&irb))
        }
        Block::Schib => {
            too_long("SCHIB", 52, bytes)?;
            let schib = Schib::read_from(bytes)?;
            (schib_summary(&schib), schib_fields(&schib))
        }
        Block::Crw => {
            too_long("CRW", 4, bytes)?;
            let crw = Crw::read_from(bytes)?;
            (crw.to_string(), crw_fields(&crw))
        }
        Block::SenseId => {
            too_long("SenseID", 256, bytes)?;
            let id = SenseIdView::parse(bytes)?;
            (
                id.summary.clone(),
                serde_json::to_value(&id).unwrap_or(Value::Null),
            )
        }
        Block::Sense => {
            too_long("sense", 32, bytes)?;
            let s = SenseView::parse(bytes)?;
            (
                s.summary.clone(),
                serde_json::to_value(&s).unwrap_or(Value::Null),
            )
        }
    };
    let mut fields = fields;
    if let Value::Object(map) = &mut fields {
        // The summary is reported once, beside the fields.
        map.remove("summary");
    }
    Ok(Decoded {
        block: block.name(),
        summary,
        fields,
    })
}

/// The CCW summary line, with the command's mnemonic when it has one.
pub fn ccw_summary(ccw: &CcwRepr) -> String {
    match crate::program::command_name(ccw.cmd) {
        Some(n) => format!("{ccw} ({n})"),
        None => ccw.to_string(),
    }
}

/// CCW fields.
pub fn ccw_fields(ccw: &CcwRepr, fmt: CcwFormat) -> Value {
    json!({
        "format": if fmt == CcwFormat::Format1 { 1 } else { 0 },
        "cmd": ccw.cmd,
        "command": crate::program::command_name(ccw.cmd),
        "class": format!("{:?}", ccw.class(fmt)).to_ascii_lowercase(),
        "flags": set_names!(ccw_types::CcwFlags, ccw.flags.bits()),
        "flags_raw": ccw.flags.bits(),
        "count": ccw.count,
        "cda": ccw.cda,
    })
}

/// ORB fields.
pub fn orb_fields(orb: &OrbRepr) -> Value {
    match orb {
        OrbRepr::Command(o) => json!({
            "mode": "command",
            "intparm": o.intparm,
            "key": o.key,
            "suspend": o.suspend,
            "streaming": o.streaming,
            "modification": o.modification,
            "synchronization": o.synchronization,
            "format": if o.format == CcwFormat::Format1 { 1 } else { 0 },
            "prefetch": o.prefetch,
            "initial_status": o.initial_status,
            "address_limit": o.address_limit,
            "suppress_suspended": o.suppress_suspended,
            "format2_idaw": o.format2_idaw,
            "idaw_2k": o.idaw_2k,
            "lpm": o.lpm,
            "ils": o.ils,
            "midaw": o.midaw,
            "css_priority": o.priorities.map(|p| p.css),
            "cu_priority": o.priorities.map(|p| p.cu),
            "cpa": o.cpa,
        }),
        OrbRepr::Transport(t) => json!({
            "mode": "transport",
            "intparm": t.intparm,
            "key": t.key,
            "lpm": t.lpm,
            "tcw": t.tcw,
            "css_priority": t.priorities.map(|p| p.css),
            "cu_priority": t.priorities.map(|p| p.cu),
        }),
    }
}

/// SCSW fields.
pub fn scsw_fields(s: &Scsw) -> Value {
    let c = s.ctrl;
    json!({
        "key": c.key(),
        "suspend": c.suspend(),
        "esw_format0": c.esw_format0(),
        "deferred_cc": c.deferred_cc(),
        "format1": c.format1(),
        "prefetch": c.prefetch(),
        "initial_status": c.initial_status(),
        "address_limit": c.address_limit(),
        "suppress_suspended": c.suppress_suspended(),
        "zero_cc": c.zero_cc(),
        "extended_control": c.extended_control(),
        "path_not_operational": c.path_not_operational(),
        "fc": set_names!(FunctionControl, c.fc().bits()),
        "ac": set_names!(ActivityControl, c.ac().bits()),
        "sc": set_names!(StatusControl, c.sc().bits()),
        "cpa": s.cpa.get(),
        "dstat": set_names!(DeviceStatus, s.dstat),
        "dstat_raw": s.dstat,
        "cstat": set_names!(SubchannelStatus, s.cstat),
        "cstat_raw": s.cstat,
        "count": s.count.get(),
        "final": s.is_final(),
        "solicited": s.is_solicited(),
    })
}

/// IRB fields.
pub fn irb_fields(irb: &Irb) -> Value {
    let erw = irb.esw.erw;
    json!({
        "scsw": scsw_fields(&irb.scsw),
        "esw": {
            "word0": irb.esw.word0.get(),
            "lpum": irb.esw.lpum(),
            "erw": {
                "raw": erw.into_bits().get(),
                "logging_only": erw.logging_only(),
                "extended_logout": erw.extended_logout(),
                "authorization_check": erw.authorization_check(),
                "path_verification": erw.path_verification(),
                "channel_path_timeout": erw.channel_path_timeout(),
                "failing_address_valid": erw.failing_address_valid(),
                "concurrent_sense": erw.concurrent_sense(),
                "secondary_ccw_valid": erw.secondary_ccw_valid(),
                "failing_address_64": erw.failing_address_64(),
                "scnt": erw.scnt(),
            },
            "failing_address": irb.esw.failing_address.get(),
            "secondary_ccw": irb.esw.secondary_ccw.get(),
        },
        "ecw": hex(&irb.ecw),
        "emw": hex(&irb.emw),
        "concurrent_sense": irb.concurrent_sense().map(hex),
    })
}

/// PMCW fields.
pub fn pmcw_fields(p: &Pmcw) -> Value {
    let f = p.flags;
    let ch = p.chars;
    json!({
        "intparm": p.intparm.get(),
        "qdio": f.qdio(),
        "isc": f.isc(),
        "enabled": f.enabled(),
        "limit_mode": f.limit_mode(),
        "mb_update": f.mb_update(),
        "dct_measurement": f.dct_measurement(),
        "multipath": f.multipath(),
        "timing": f.timing(),
        "dnv": f.dnv(),
        "devno": f.devno(),
        "lpm": p.lpm,
        "pnom": p.pnom,
        "lpum": p.lpum,
        "pim": p.pim,
        "mbi": p.mbi.get(),
        "pom": p.pom,
        "pam": p.pam,
        "chpids": p.chpid.to_vec(),
        "st": ch.st(),
        "mbfc": ch.mbfc(),
        "xmwme": ch.xmwme(),
        "concurrent_sense": ch.concurrent_sense(),
    })
}

/// SCHIB summary line.
pub fn schib_summary(s: &Schib) -> String {
    let f = s.pmcw.flags;
    format!(
        "SCHIB devno={} pim={:#04x} pam={:#04x} pom={:#04x} {} | {}",
        if f.dnv() {
            format!("{:04x}", f.devno())
        } else {
            "-".into()
        },
        s.pmcw.pim,
        s.pmcw.pam,
        s.pmcw.pom,
        if f.enabled() { "enabled" } else { "disabled" },
        s.scsw
    )
}

/// SCHIB fields.
pub fn schib_fields(s: &Schib) -> Value {
    json!({
        "pmcw": pmcw_fields(&s.pmcw),
        "scsw": scsw_fields(&s.scsw),
        "mba": s.mba.get(),
        "md": hex(&s.md),
    })
}

/// CRW fields.
pub fn crw_fields(c: &Crw) -> Value {
    json!({
        "solicited": c.solicited(),
        "overflow": c.overflow(),
        "chained": c.chained(),
        "rsc": c.rsc(),
        "ancillary": c.ancillary(),
        "erc": c.erc(),
        "rsid": c.rsid(),
    })
}

/// Writes `value` as indented `name: value` lines (what the text output shows).
pub fn write_fields(out: &mut String, value: &Value, indent: usize) {
    let pad = "  ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(_) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        write_fields(out, v, indent + 1);
                    }
                    Value::Array(items) if items.iter().any(|i| i.is_object()) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        for (i, item) in items.iter().enumerate() {
                            out.push_str(&format!("{pad}  [{i}]\n"));
                            write_fields(out, item, indent + 2);
                        }
                    }
                    _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(k, v))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar("", other))),
    }
}

/// Field names whose numbers read best in hex.
fn hexish(key: &str) -> bool {
    matches!(
        key,
        "cmd"
            | "cda"
            | "cpa"
            | "intparm"
            | "lpm"
            | "pnom"
            | "lpum"
            | "pim"
            | "pam"
            | "pom"
            | "devno"
            | "tcw"
            | "rsid"
            | "word0"
            | "raw"
            | "failing_address"
            | "secondary_ccw"
            | "mba"
            | "flags_raw"
            | "dstat_raw"
            | "cstat_raw"
            | "cu_type"
            | "dev_type"
            | "cu_model"
            | "dev_model"
            | "addr"
            | "buffer"
    )
}

fn scalar(key: &str, v: &Value) -> String {
    match v {
        Value::Number(n) if hexish(key) => match n.as_u64() {
            Some(u) => format!("{u:#x}"),
            None => n.to_string(),
        },
        Value::Array(items) => {
            if items.is_empty() {
                "-".into()
            } else {
                items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        Value::Number(n) if key == "chpids" => {
                            format!("{:02x}", n.as_u64().unwrap_or(0))
                        }
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(if key == "chpids" { " " } else { "|" })
            }
        }
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_name_parses_back() {
        for (b, n) in Block::ALL {
            assert_eq!(n.parse::<Block>().unwrap(), *b);
        }
        assert_eq!("Sense-ID".parse::<Block>().unwrap(), Block::SenseId);
        assert!("frob".parse::<Block>().is_err());
    }

    #[test]
    fn reference_vectors() {
        // §13.2 ORB.
        let d = decode(
            Block::Orb,
            &parse_hex("12345678 00C2FF00 00001000").unwrap(),
        )
        .unwrap();
        assert_eq!(d.fields["intparm"], 0x12345678);
        assert_eq!(d.fields["format2_idaw"], true);
        assert_eq!(d.fields["cpa"], 0x1000);
        // §13.3 SCSW after completion.
        let d = decode(
            Block::Scsw,
            &parse_hex("00804007 00001008 0C000000").unwrap(),
        )
        .unwrap();
        assert_eq!(d.fields["dstat"], json!(["CE", "DE"]));
        assert_eq!(d.fields["sc"], json!(["primary", "secondary", "pending"]));
        assert_eq!(d.fields["final"], true);
        // §13.4 CRW.
        let d = decode(Block::Crw, &parse_hex("03440005").unwrap()).unwrap();
        assert_eq!(d.fields["rsc"], 3);
        assert_eq!(d.fields["rsid"], 5);
        // Format-0 CCW of §13.1.
        let d = decode(Block::Ccw0, &parse_hex("E4012340 20000007").unwrap()).unwrap();
        assert_eq!(d.fields["cda"], 0x12340);
        assert_eq!(d.fields["flags"], json!(["SLI"]));
    }

    #[test]
    fn irb_and_schib_decode() {
        let mut irb = vec![0u8; 64];
        irb[..12].copy_from_slice(&parse_hex("00804017 00001010 0C200000").unwrap());
        let d = decode(Block::Irb, &irb).unwrap();
        assert_eq!(d.fields["scsw"]["cstat"], json!(["PGM"]));
        assert_eq!(
            d.fields["scsw"]["sc"],
            json!(["alert", "primary", "secondary", "pending"])
        );
        let mut schib = vec![0u8; 52];
        schib[4..8].copy_from_slice(&[0x00, 0x81, 0x00, 0x05]);
        schib[8..12].copy_from_slice(&[0x80, 0, 0, 0x80]);
        let d = decode(Block::Schib, &schib).unwrap();
        assert_eq!(d.fields["pmcw"]["devno"], 5);
        assert_eq!(d.fields["pmcw"]["enabled"], true);
        assert!(d.summary.starts_with("SCHIB devno=0005"), "{}", d.summary);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            decode(Block::Ccw, &[1, 2]),
            Err(DecodeFailure::Block(_))
        ));
        assert!(matches!(
            decode(Block::Crw, &[0; 5]),
            Err(DecodeFailure::TooLong { .. })
        ));
        assert!(
            decode(
                Block::Orb,
                &parse_hex("00000000 0000003E 00000000").unwrap()
            )
            .is_err()
        );
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("a").is_err());
        assert!(parse_hex("+f").is_err());
        assert!(parse_hex("-1").is_err());
    }

    #[test]
    fn text_fields() {
        let d = decode(Block::Crw, &parse_hex("03440005").unwrap()).unwrap();
        let mut s = String::new();
        write_fields(&mut s, &d.fields, 1);
        assert!(s.contains("  rsid: 0x5\n"), "{s}");
    }
}
