// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The commands of `ccwctl`, written once for every backend of a [`Target`] (css-core's `Css`
//! plus guest memory): each returns a report that
//! serializes to the documented JSON and renders as text.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use ccw_types::{
    CcwFlags, DeviceStatus, Irb, OrbRepr, Schib, StatusControl, SubchannelId, SubchannelStatus,
};
use serde::Serialize;
use serde_json::Value;

use crate::assemble::Assembled;
use crate::decode::{self, hex};
use crate::program::{Program, ProgramError};
use crate::senseid::{SenseIdView, SenseView};
use css_core::Backend;

use crate::target::{Controls, Target, TargetError, WatchEvent};

/// Why a command failed: each variant prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program file is malformed (`file:line:column: reason`).
    #[error("{0}")]
    Program(#[from] ProgramError),
    /// The channel subsystem failed.
    #[error("{0}")]
    Target(#[from] TargetError),
    /// `decode` input is malformed.
    #[error("{0}")]
    Decode(#[from] decode::DecodeFailure),
    /// `decode` was given a block name it does not know.
    #[error("{0}")]
    UnknownBlock(#[from] decode::UnknownBlock),
    /// The command line is inconsistent.
    #[error("{0}")]
    Usage(String),
    /// The machine file is malformed (`file:line: reason`).
    #[cfg(feature = "sim")]
    #[error("{0}")]
    Machine(#[from] vcss::machine::MachineError),
    /// The bus id does not parse.
    #[error("bad bus id `{0}` (expected c.s.nnnn, e.g. 0.0.0000)")]
    BadBusId(String),
    /// No subchannel or device has this bus id.
    #[error("no subchannel or device {0} (see `ccwctl list`)")]
    UnknownBusId(String),
    /// The device answered SENSE ID with something that is not SENSE ID data.
    #[error("{0}")]
    Device(String),
}

impl CommandError {
    /// The process exit code for this error: 1 for failures, 2 for usage errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::BadBusId(_)
            | CommandError::Usage(_)
            | CommandError::Decode(_)
            | CommandError::UnknownBlock(_) => 2,
            _ => 1,
        }
    }
}

/// Resolves a bus id: a subchannel id (`0.0.0000`, or `sch:0.0.0000`), or else a device
/// bus id matched against the devices' numbers (`dev:0.0.0005`, or plain when no subchannel
/// has that id).
pub async fn resolve<B: Backend>(
    target: &Target<B>,
    busid: &str,
) -> Result<SubchannelId, CommandError> {
    let (only, text) = if let Some(t) = busid.strip_prefix("sch:") {
        (Some(true), t)
    } else if let Some(t) = busid.strip_prefix("dev:") {
        (Some(false), t)
    } else {
        (None, busid)
    };
    let id: SubchannelId = text
        .parse()
        .map_err(|_| CommandError::BadBusId(busid.to_string()))?;
    let all = target.probe().await?;
    if only != Some(false) && all.iter().any(|(s, _)| *s == id) {
        return Ok(id);
    }
    if only != Some(true) {
        if let Some((s, _)) = all.iter().find(|(s, schib)| {
            schib.pmcw.flags.dnv()
                && schib.pmcw.flags.devno() == id.sch_no
                && s.cssid == id.cssid
                && s.ssid == id.ssid
        }) {
            return Ok(*s);
        }
    }
    Err(CommandError::UnknownBusId(busid.to_string()))
}

/// A command's result: JSON for `--json`, text otherwise.
pub trait Report: Serialize {
    /// The text rendering.
    fn text(&self) -> String;
}

// ---------------------------------------------------------------------------------------
// decode

/// `ccwctl decode` output.
#[derive(Debug, Serialize)]
pub struct DecodeReport {
    /// The decoded block.
    #[serde(flatten)]
    pub decoded: decode::Decoded,
    /// The input bytes, hex.
    pub bytes: String,
}

impl Report for DecodeReport {
    fn text(&self) -> String {
        let mut s = format!("{}\n", self.decoded.summary);
        decode::write_fields(&mut s, &self.decoded.fields, 1);
        s
    }
}

/// Decodes `hex_text` as `block`.
pub fn decode_cmd(block: &str, hex_text: &str) -> Result<DecodeReport, CommandError> {
    let block: decode::Block = block.parse()?;
    let bytes = decode::parse_hex(hex_text)?;
    Ok(DecodeReport {
        decoded: decode::decode(block, &bytes)?,
        bytes: hex(&bytes),
    })
}

// ---------------------------------------------------------------------------------------
// run

/// One CCW of a run, with where it was placed.
#[derive(Debug, Serialize)]
pub struct CcwReport {
    /// Index in the program.
    pub index: usize,
    /// Line in the program file.
    pub line: u32,
    /// Labels on it.
    pub labels: Vec<String>,
    /// Guest address of the CCW.
    pub addr: u32,
    /// Mnemonic or hex code.
    pub command: String,
    /// The CCW as written (see `decode ccw`).
    pub ccw: Value,
    /// The data buffer's guest address, if one was allocated.
    pub buffer: Option<u64>,
}

/// Data read into an input CCW's buffer.
#[derive(Debug, Serialize)]
pub struct DataReport {
    /// The CCW's index.
    pub ccw: usize,
    /// Guest address of the buffer.
    pub addr: u64,
    /// Bytes shown (the last CCW's are trimmed by the residual count).
    pub len: usize,
    /// The bytes, hex.
    pub hex: String,
    /// A decoding, when the command's data has a known shape (SENSE ID, sense).
    pub decoded: Option<String>,
}

/// `ccwctl run` output.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// `"simulated"` or `"vfio"`.
    pub backend: &'static str,
    /// The subchannel.
    pub subchannel: String,
    /// The program file.
    pub program: String,
    /// The ORB used (see `decode orb`).
    pub orb: Value,
    /// The CCWs as placed.
    pub ccws: Vec<CcwReport>,
    /// Intermediate status seen while running (see `decode irb`).
    pub intermediate: Vec<Value>,
    /// The final IRB (see `decode irb`).
    pub irb: Value,
    /// The final IRB's one-line summary.
    pub irb_summary: String,
    /// Index of the CCW the SCSW's cpa designates (last executed, or the failing one).
    pub last_ccw: Option<usize>,
    /// The SCSW residual count of that CCW.
    pub residual: u16,
    /// Bytes transferred by that CCW (count − residual), when it is one of the program's.
    pub transferred: Option<u32>,
    /// `"ok"` (CE|DE only, no subchannel status) or `"exception"`.
    pub outcome: &'static str,
    /// Data read by the executed input CCWs.
    pub data: Vec<DataReport>,
    /// Start to final status, microseconds.
    pub elapsed_us: u64,
}

/// A classic hex dump; repeated lines collapse into one `*` line, as hexdump(1) does.
fn hexdump(out: &mut String, base: u64, bytes: &[u8], indent: &str) {
    hexdump_with(out, base, bytes, indent, |b| b);
}

/// [`hexdump`] with the text column mapped through `text` (e.g. EBCDIC to ASCII) first.
pub(crate) fn hexdump_with(
    out: &mut String,
    base: u64,
    bytes: &[u8],
    indent: &str,
    text: fn(u8) -> u8,
) {
    let mut prev: Option<&[u8]> = None;
    let mut starred = false;
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let last = (i + 1) * 16 >= bytes.len();
        if prev == Some(chunk) && chunk.len() == 16 && !last {
            if !starred {
                let _ = writeln!(out, "{indent}*");
                starred = true;
            }
            continue;
        }
        starred = false;
        prev = Some(chunk);
        let _ = write!(out, "{indent}{:08x}  ", base + 16 * i as u64);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if j == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        for &b in chunk {
            let b = text(b);
            out.push(if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            });
        }
        out.push_str("|\n");
    }
}

impl Report for RunReport {
    fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} on {} ({} channel subsystem)",
            self.program, self.subchannel, self.backend
        );
        let orb_line = self
            .orb
            .get("summary")
            .and_then(Value::as_str)
            .unwrap_or("");
        let _ = writeln!(s, "  {orb_line}");
        for c in &self.ccws {
            let marker = if Some(c.index) == self.last_ccw {
                ">"
            } else {
                " "
            };
            let labels = if c.labels.is_empty() {
                String::new()
            } else {
                format!("{}: ", c.labels.join(": "))
            };
            let _ = writeln!(
                s,
                "{marker} {:>3} {:#010x}  {labels}{} (line {})",
                c.index,
                c.addr,
                c.ccw.get("summary").and_then(Value::as_str).unwrap_or(""),
                c.line
            );
        }
        for i in &self.intermediate {
            let _ = writeln!(
                s,
                "intermediate: {}",
                i.get("summary").and_then(Value::as_str).unwrap_or("")
            );
        }
        let _ = writeln!(s, "status: {} ({})", self.irb_summary, self.outcome);
        let checked = self
            .irb
            .pointer("/scsw/cstat")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|x| x == "PGM" || x == "PROT"));
        match (self.last_ccw, self.transferred) {
            (Some(i), _) if checked => {
                let line = self.ccws.get(i).map_or(0, |c| c.line);
                let _ = writeln!(
                    s,
                    "  channel-program check at CCW {i} (line {line}); the SCSW's CCW address is 8 past it"
                );
            }
            (Some(i), Some(t)) => {
                let c = self.ccws.get(i);
                let _ = writeln!(
                    s,
                    "  ended at CCW {i} (line {}): residual count {} of {}, {t} bytes transferred",
                    c.map_or(0, |c| c.line),
                    self.residual,
                    c.and_then(|c| c.ccw.get("count"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "  the SCSW designates no CCW of this program; residual count {}",
                    self.residual
                );
            }
        }
        if let Some(sense) = self.irb.get("concurrent_sense").and_then(Value::as_str) {
            let _ = writeln!(s, "  concurrent sense: {sense}");
        }
        for d in &self.data {
            let _ = writeln!(
                s,
                "data of CCW {} at {:#x}, {} bytes:",
                d.ccw, d.addr, d.len
            );
            let bytes: Vec<u8> = decode::parse_hex(&d.hex).unwrap_or_default();
            hexdump(&mut s, d.addr, &bytes, "  ");
            if let Some(dec) = &d.decoded {
                let _ = writeln!(s, "  = {dec}");
            }
        }
        let _ = writeln!(s, "time: {} µs", self.elapsed_us);
        s
    }
}

fn with_summary(summary: String, fields: Value) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("summary".into(), Value::String(summary));
    if let Value::Object(f) = fields {
        map.extend(f);
    }
    Value::Object(map)
}

fn irb_value(irb: &Irb) -> Value {
    with_summary(irb.to_string(), decode::irb_fields(irb))
}

/// Whether the final status is a clean CE|DE with no subchannel status.
pub fn is_clean(irb: &Irb) -> bool {
    let d = irb.scsw.device_status();
    irb.scsw.subchannel_status() == SubchannelStatus::NONE
        && d == (DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END)
        && !irb.scsw.ctrl.sc().contains(StatusControl::ALERT)
}

/// Runs the program parsed from `path` on `busid`.
pub async fn run_cmd<B: Backend>(
    target: &Target<B>,
    busid: &str,
    program: &Program,
    path: &Path,
    timeout: Duration,
) -> Result<RunReport, CommandError> {
    let sch = resolve(target, busid).await?;
    run_program(target, sch, program, &path.display().to_string(), timeout).await
}

/// Assembles and runs an already parsed program.
pub async fn run_program<B: Backend>(
    target: &Target<B>,
    sch: SubchannelId,
    program: &Program,
    name: &str,
    timeout: Duration,
) -> Result<RunReport, CommandError> {
    let span = tracing::debug_span!("run", %sch, program = name);
    let _enter = span.enter();
    let asm = Assembled::in_memory(program, target.memory().clone())?;
    for (i, p) in asm.placed.iter().enumerate() {
        tracing::debug!(index = i, addr = format_args!("{:#x}", p.addr), ccw = %p.ccw, buffer = ?p.buffer, "placed");
    }
    drop(_enter);
    let done =
        tracing::Instrument::instrument(target.run(sch, &asm.orb, timeout), span.clone()).await?;
    tracing::debug!(parent: &span, irb = %done.irb, elapsed_us = done.elapsed.as_micros() as u64, "final status");
    let irb = done.irb;
    let cpa = irb.scsw.cpa.get();
    let last = cpa.checked_sub(8).and_then(|a| asm.index_of(a));
    let residual = irb.scsw.count.get();
    let transferred =
        last.map(|i| u32::from(asm.placed[i].ccw.count).saturating_sub(residual.into()));
    let program_check = irb
        .scsw
        .subchannel_status()
        .intersects(SubchannelStatus::PROGRAM_CHECK | SubchannelStatus::PROTECTION_CHECK);

    let mut data = Vec::new();
    if let Some(last) = last {
        for (i, p) in asm.placed.iter().enumerate().take(last + 1) {
            let class = p.ccw.class(asm.format);
            let Some((addr, count)) = p.buffer else {
                continue;
            };
            if !class.is_input() || p.ccw.flags.contains(CcwFlags::SKIP) {
                continue;
            }
            // The failing CCW of a program check transferred nothing.
            if i == last && program_check {
                continue;
            }
            let len = if i == last {
                usize::from(count.saturating_sub(residual))
            } else {
                usize::from(count)
            };
            let bytes = asm.read(addr, len).unwrap_or_default();
            let decoded = match p.ccw.cmd {
                ccw_types::ccw::cmd::SENSE_ID if !bytes.is_empty() => Some(
                    SenseIdView::parse(&bytes)
                        .map_or_else(|e| format!("not SENSE ID data: {e}"), |d| d.summary),
                ),
                ccw_types::ccw::cmd::SENSE if !bytes.is_empty() => {
                    SenseView::parse(&bytes).ok().map(|d| d.summary)
                }
                _ => None,
            };
            data.push(DataReport {
                ccw: i,
                addr,
                len,
                hex: hex(&bytes),
                decoded,
            });
        }
    }
    let orb = OrbRepr::from_orb(&asm.orb).map_or_else(
        |e| Value::String(e.to_string()),
        |o| with_summary(o.to_string(), decode::orb_fields(&o)),
    );
    let ccws = program
        .ccws
        .iter()
        .zip(&asm.placed)
        .enumerate()
        .map(|(i, (line, p))| CcwReport {
            index: i,
            line: line.pos.line,
            labels: line.labels.clone(),
            addr: p.addr,
            command: line.command_text(),
            ccw: with_summary(
                decode::ccw_summary(&p.ccw),
                decode::ccw_fields(&p.ccw, asm.format),
            ),
            buffer: p.buffer.map(|b| b.0),
        })
        .collect();
    Ok(RunReport {
        backend: target.name(),
        subchannel: sch.to_string(),
        program: name.to_string(),
        orb,
        ccws,
        intermediate: done.intermediate.iter().map(irb_value).collect(),
        irb: irb_value(&irb),
        irb_summary: irb.scsw.to_string(),
        last_ccw: last,
        residual,
        transferred,
        outcome: if is_clean(&irb) { "ok" } else { "exception" },
        data,
        elapsed_us: u64::try_from(done.elapsed.as_micros()).unwrap_or(u64::MAX),
    })
}

// ---------------------------------------------------------------------------------------
// sense-id

/// `ccwctl sense-id` output.
#[derive(Debug, Serialize)]
pub struct SenseIdReport {
    /// The subchannel.
    pub subchannel: String,
    /// The decoded data.
    #[serde(flatten)]
    pub id: SenseIdView,
    /// The raw bytes, hex.
    pub bytes: String,
    /// The final IRB's summary.
    pub irb_summary: String,
    /// Start to final status, microseconds.
    pub elapsed_us: u64,
}

impl Report for SenseIdReport {
    fn text(&self) -> String {
        let mut s = format!(
            "{}: control unit {:04x} model {:02x}, device {:04x} model {:02x}\n",
            self.subchannel, self.id.cu_type, self.id.cu_model, self.id.dev_type, self.id.dev_model
        );
        if self.id.ciws.is_empty() {
            s.push_str("  no CIWs (basic SENSE ID)\n");
        }
        for c in &self.id.ciws {
            let _ = writeln!(
                s,
                "  CIW {}: command {:#04x} count {}",
                c.kind, c.command, c.count
            );
        }
        let trimmed = self.bytes.trim_end_matches('0');
        // Keep whole bytes.
        let keep = trimmed.len().div_ceil(2) * 2;
        let zeros = (self.bytes.len() - keep) / 2;
        if zeros > 0 {
            let _ = writeln!(
                s,
                "  raw: {} (then {zeros} zero bytes)",
                &self.bytes[..keep]
            );
        } else {
            let _ = writeln!(s, "  raw: {}", self.bytes);
        }
        let _ = writeln!(s, "  {}", self.irb_summary);
        s
    }
}

/// The SENSE ID program ccwctl runs (one format-1 CCW, SLI, 256 bytes).
pub const SENSE_ID_PROGRAM: &str = "sense-id sli count=256\n";

/// Runs SENSE ID on `sch`.
pub async fn sense_id_of<B: Backend>(
    target: &Target<B>,
    sch: SubchannelId,
    timeout: Duration,
) -> Result<SenseIdReport, CommandError> {
    let program = Program::parse(SENSE_ID_PROGRAM, "sense-id", &mut crate::program::no_files)?;
    let run = run_program(target, sch, &program, "sense-id", timeout).await?;
    let Some(d) = run.data.first() else {
        return Err(CommandError::Device(format!(
            "{sch}: SENSE ID ended with {} and no data",
            run.irb_summary
        )));
    };
    let bytes = decode::parse_hex(&d.hex).unwrap_or_default();
    let id = SenseIdView::parse(&bytes)
        .map_err(|e| CommandError::Device(format!("{sch}: SENSE ID returned {}: {e}", d.hex)))?;
    Ok(SenseIdReport {
        subchannel: sch.to_string(),
        id,
        bytes: d.hex.clone(),
        irb_summary: run.irb_summary,
        elapsed_us: run.elapsed_us,
    })
}

/// `ccwctl sense-id <busid>`.
pub async fn sense_id_cmd<B: Backend>(
    target: &Target<B>,
    busid: &str,
    timeout: Duration,
) -> Result<SenseIdReport, CommandError> {
    let sch = resolve(target, busid).await?;
    sense_id_of(target, sch, timeout).await
}

// ---------------------------------------------------------------------------------------
// list

/// One subchannel in `ccwctl list`.
#[derive(Debug, Serialize)]
pub struct ListEntry {
    /// Subchannel id.
    pub subchannel: String,
    /// Device bus id, when a device is attached (DNV).
    pub device: Option<String>,
    /// Device number.
    pub devno: Option<u16>,
    /// Control-unit type/model (`3832/01`), from SENSE ID; `null` when it failed.
    pub cu: Option<String>,
    /// Device type/model.
    pub dev: Option<String>,
    /// Path-installed mask.
    pub pim: u8,
    /// Path-available mask.
    pub pam: u8,
    /// Path-operational mask.
    pub pom: u8,
    /// CHPIDs of the installed paths.
    pub chpids: Vec<String>,
    /// `enabled` or `disabled`, plus `status-pending` / `busy` when so.
    pub state: String,
    /// Why SENSE ID failed, when it did.
    pub error: Option<String>,
}

/// `ccwctl list` output.
#[derive(Debug, Serialize)]
pub struct ListReport {
    /// The backend.
    pub backend: &'static str,
    /// The subchannels.
    pub subchannels: Vec<ListEntry>,
    /// The machine file the simulator runs (`--machine`), when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineReport>,
}

/// The machine file part of `ccwctl list --machine FILE`.
#[derive(Debug, Serialize)]
pub struct MachineReport {
    /// The file.
    pub file: String,
    /// Its channel paths.
    pub chpids: Vec<ChpidReport>,
    /// Its devices: device bus id, type, and the image of a 3390.
    pub devices: Vec<MachineDevice>,
}

/// A channel path of a machine file.
#[derive(Debug, Serialize)]
pub struct ChpidReport {
    /// The CHPID, two hex digits.
    pub chpid: String,
    /// The channel-path type, two hex digits.
    pub r#type: String,
}

/// A device of a machine file.
#[derive(Debug, Serialize)]
pub struct MachineDevice {
    /// Its bus id (0.0.xxxx).
    pub device: String,
    /// The type as the file names it.
    pub r#type: &'static str,
    /// The image of a 3390.
    pub image: Option<String>,
}

#[cfg(feature = "sim")]
impl MachineReport {
    /// The report of `m`.
    pub fn of(m: &vcss::machine::Machine) -> Self {
        Self {
            file: m.source.display().to_string(),
            chpids: m
                .chpids
                .values()
                .map(|c| ChpidReport {
                    chpid: format!("{:02x}", c.chpid),
                    r#type: format!("{:02x}", c.ty),
                })
                .collect(),
            devices: m
                .devices
                .iter()
                .map(|d| MachineDevice {
                    device: format!("0.0.{:04x}", d.devno),
                    r#type: d.kind.name(),
                    image: match &d.kind {
                        vcss::machine::DeviceKind::Dasd3390 { image, .. } => {
                            Some(image.display().to_string())
                        }
                        _ => None,
                    },
                })
                .collect(),
        }
    }
}

impl Report for ListReport {
    fn text(&self) -> String {
        let mut s = format!(
            "{:<10} {:<10} {:<8} {:<8} {:<4} {:<4} {:<4} {:<24} {}\n",
            "Subchan.", "Device", "CU Type", "DevType", "PIM", "PAM", "POM", "CHPIDs", "State"
        );
        for e in &self.subchannels {
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:<8} {:<8} {:<4} {:<4} {:<4} {:<24} {}{}",
                e.subchannel,
                e.device.as_deref().unwrap_or("-"),
                e.cu.as_deref().unwrap_or("-"),
                e.dev.as_deref().unwrap_or("-"),
                format!("{:02x}", e.pim),
                format!("{:02x}", e.pam),
                format!("{:02x}", e.pom),
                if e.chpids.is_empty() {
                    "-".to_string()
                } else {
                    e.chpids.join(" ")
                },
                e.state,
                e.error
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            );
        }
        if let Some(m) = &self.machine {
            let _ = writeln!(s, "\nmachine {}", m.file);
            let paths: Vec<String> = m
                .chpids
                .iter()
                .map(|c| format!("{} (type {})", c.chpid, c.r#type))
                .collect();
            let _ = writeln!(s, "  channel paths: {}", paths.join(", "));
            for d in &m.devices {
                let _ = writeln!(
                    s,
                    "  {} {}{}",
                    d.device,
                    d.r#type,
                    d.image
                        .as_ref()
                        .map(|i| format!(" image={i}"))
                        .unwrap_or_default()
                );
            }
        }
        s
    }
}

fn state_of(schib: &Schib) -> String {
    let mut st = if schib.pmcw.flags.enabled() {
        "enabled".to_string()
    } else {
        "disabled".to_string()
    };
    if schib.scsw.ctrl.sc().contains(StatusControl::PENDING) {
        st.push_str(",status-pending");
    }
    if !schib.scsw.ctrl.fc().is_empty() && !schib.scsw.ctrl.sc().contains(StatusControl::PENDING) {
        st.push_str(",busy");
    }
    st
}

/// `ccwctl list`: every subchannel, with SENSE ID run on each one that has a device.
pub async fn list_cmd<B: Backend>(
    target: &Target<B>,
    timeout: Duration,
) -> Result<ListReport, CommandError> {
    let mut all = target.probe().await?;
    all.sort_by_key(|(s, _)| *s);
    let mut out = Vec::new();
    for (sch, schib) in all {
        let p = &schib.pmcw;
        let dnv = p.flags.dnv();
        let (cu, dev, error) = if dnv {
            match sense_id_of(target, sch, timeout).await {
                Ok(r) => (
                    Some(format!("{:04x}/{:02x}", r.id.cu_type, r.id.cu_model)),
                    Some(format!("{:04x}/{:02x}", r.id.dev_type, r.id.dev_model)),
                    None,
                ),
                Err(e) => (None, None, Some(e.to_string())),
            }
        } else {
            (None, None, None)
        };
        let chpids = (0..8)
            .filter(|i| p.pim & (0x80 >> i) != 0)
            .map(|i| format!("{:02x}", p.chpid[i]))
            .collect();
        out.push(ListEntry {
            subchannel: sch.to_string(),
            device: dnv.then(|| {
                ccw_types::DeviceId::new(sch.cssid, sch.ssid, p.flags.devno()).to_string()
            }),
            devno: dnv.then(|| p.flags.devno()),
            cu,
            dev,
            pim: p.pim,
            pam: p.pam,
            pom: p.pom,
            chpids,
            state: state_of(&schib),
            error,
        });
    }
    Ok(ListReport {
        backend: target.name(),
        subchannels: out,
        machine: None,
    })
}

// ---------------------------------------------------------------------------------------
// watch

/// One line of `ccwctl watch` (with `--json`, one JSON object per line).
#[derive(Debug, Serialize)]
pub struct WatchLine {
    /// Milliseconds since the watch started.
    pub t_ms: u64,
    /// `"interrupt"`, `"crw"` or `"notice"`.
    pub event: &'static str,
    /// The subchannel, when there is one.
    pub subchannel: Option<String>,
    /// One-line summary.
    pub summary: String,
    /// The decoded block (IRB or CRW fields), when there is one.
    pub fields: Option<Value>,
}

impl Report for WatchLine {
    fn text(&self) -> String {
        format!(
            "{:>8.3}s  {:<9} {:<10} {}\n",
            self.t_ms as f64 / 1000.0,
            self.event,
            self.subchannel.as_deref().unwrap_or("-"),
            self.summary
        )
    }
}

/// Turns a [`WatchEvent`] into its line.
pub fn watch_line(t: Duration, ev: &WatchEvent) -> WatchLine {
    let t_ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
    match ev {
        WatchEvent::Interrupt { sch, irb } => WatchLine {
            t_ms,
            event: "interrupt",
            subchannel: Some(sch.to_string()),
            summary: format!(
                "{}{}",
                irb.scsw,
                if irb.scsw.is_solicited() {
                    ""
                } else {
                    " (unsolicited)"
                }
            ),
            fields: Some(decode::irb_fields(irb)),
        },
        WatchEvent::ChannelReport(crw) => WatchLine {
            t_ms,
            event: "crw",
            subchannel: None,
            summary: crw.to_string(),
            fields: Some(decode::crw_fields(crw)),
        },
        WatchEvent::Notice { sch, what } => WatchLine {
            t_ms,
            event: "notice",
            subchannel: sch.map(|s| s.to_string()),
            summary: what.clone(),
            fields: None,
        },
    }
}

/// What `watch` makes happen once it is listening (simulator only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inject {
    /// Vary the paths using this CHPID off and on again.
    pub path_event: Option<u8>,
    /// Unsolicited attention from the device with this bus id.
    pub attention: Option<String>,
}

/// Streams events for at most `duration` (or forever when `None`) or until `count` arrived,
/// calling `emit` for each; first makes happen what `inject` asks.
/// Returns how many events were shown.
pub async fn watch_cmd<B: Controls>(
    target: &Target<B>,
    duration: Option<Duration>,
    count: Option<usize>,
    inject: Inject,
    mut emit: impl FnMut(&WatchLine),
) -> Result<usize, CommandError> {
    let attention = match &inject.attention {
        Some(busid) => Some(resolve(target, busid).await?),
        None => None,
    };
    let mut rx = target.watch().await?;
    let start = tokio::time::Instant::now();
    // Inject while already receiving, so the time stamps show when things arrived.
    let injecting = async {
        if let Some(chpid) = inject.path_event {
            target.inject_path_event(chpid).await?;
        }
        if let Some(sch) = attention {
            target.inject_attention(sch).await?;
        }
        Ok::<(), TargetError>(())
    };
    let receiving = async {
        let mut seen = 0usize;
        let deadline = duration.map(|d| start + d);
        loop {
            if count.is_some_and(|c| seen >= c) {
                break;
            }
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                    Ok(ev) => ev,
                    Err(_) => break,
                },
                None => rx.recv().await,
            };
            let Some(ev) = next else { break };
            emit(&watch_line(start.elapsed(), &ev));
            seen += 1;
        }
        seen
    };
    let (injected, seen) = tokio::join!(injecting, receiving);
    injected?;
    Ok(seen)
}
