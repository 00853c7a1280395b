// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The channel-program text format: its syntax tree and parser.
//!
//! The format is documented in `docs/program-format.md`; in short, one CCW per line:
//!
//! ```text
//! # comment
//! orb format=1 lpm=0x80 intparm=0xc0ffee
//! again:  read    cc sli count=80
//!         write   data="hello"
//!         tic     again
//! ```
//!
//! [`Program::parse`] never panics and never reads files by itself: data files
//! (`data=file("blob.bin")`) are read through the loader the caller passes, so the parser can
//! be fuzzed and tested without a file system.
//!
//! ```
//! use ccwctl::program::Program;
//! let p = Program::parse("sense-id sli count=7\n", "inline", &mut ccwctl::program::no_files)?;
//! assert_eq!(p.ccws.len(), 1);
//! assert_eq!(p.ccws[0].cmd, 0xE4);
//! # Ok::<(), ccwctl::program::ProgramError>(())
//! ```

use std::path::Path;

use ccw_types::{CcwFlags, CcwFormat, CommandClass, CommandOrb, OrbPriorities};

use crate::lexer::{Lexer, Tok, Token};
pub use crate::program_error::{MAX_CCWS, Pos, ProgramError, Reason};

/// Where a CCW's data address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// No data area: count 0, or a TIC (whose address is its target).
    None,
    /// A buffer of `count` bytes the assembler places in guest memory, starting with `init`
    /// (the rest zero), at `at` if given.
    Buffer {
        /// Initial contents (at most `count` bytes).
        init: Vec<u8>,
        /// A fixed guest address for the buffer.
        at: Option<u64>,
    },
    /// A raw data address written into the CCW as is (`cda=`); nothing is allocated.
    Raw(u32),
}

/// One CCW line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcwLine {
    /// Where the line starts (its command).
    pub pos: Pos,
    /// Labels naming this CCW.
    pub labels: Vec<String>,
    /// Command code.
    pub cmd: u8,
    /// Flags.
    pub flags: CcwFlags,
    /// Byte count.
    pub count: u16,
    /// The data area.
    pub data: Data,
    /// For a TIC: the index of the target CCW.
    pub tic_target: Option<usize>,
}

/// A parsed channel program: ORB options and CCWs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The ORB to start it with; `cpa` is filled in by the assembler.
    pub orb: CommandOrb,
    /// Where the CCWs go in guest memory, if the file fixes it (`orb cpa=`).
    pub cpa: Option<u32>,
    /// The CCWs in order.
    pub ccws: Vec<CcwLine>,
}

/// A file loader that refuses every file (for parsing untrusted text, tests and fuzzing).
pub fn no_files(path: &Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!("file data is disabled here ({})", path.display()),
    ))
}

/// A named command: mnemonic, code, and the count used when a line gives neither count nor data.
struct Mnemonic {
    name: &'static str,
    code: u8,
    default_count: Option<u16>,
}

const fn m(name: &'static str, code: u8, default_count: Option<u16>) -> Mnemonic {
    Mnemonic {
        name,
        code,
        default_count,
    }
}

/// Commands known by name (reference §9.3). Any other code is written as a number.
const MNEMONICS: &[Mnemonic] = &[
    m("write", 0x01, None),
    m("read", 0x02, None),
    m("nop", 0x03, Some(0)),
    m("sense", 0x04, Some(32)),
    m("tic", 0x08, Some(0)),
    m("read-backward", 0x0C, None),
    m("sense-pgid", 0x34, Some(12)),
    m("rdc", 0x64, Some(64)),
    m("release", 0x94, Some(32)),
    m("set-pgid", 0xAF, Some(12)),
    m("reserve", 0xB4, Some(32)),
    m("sense-id", 0xE4, Some(256)),
    m("rcd", 0xFA, Some(256)),
    // virtio-ccw (device specific; reference §9.3).
    m("virtio-write-feat", 0x11, None),
    m("virtio-read-feat", 0x12, Some(8)),
    m("virtio-set-vq", 0x13, None),
    m("virtio-write-conf", 0x21, None),
    m("virtio-read-conf", 0x22, None),
    m("virtio-write-status", 0x31, Some(1)),
    m("virtio-read-vq-conf", 0x32, Some(4)),
    m("virtio-reset", 0x33, Some(0)),
    m("virtio-set-ind", 0x43, Some(8)),
    m("virtio-set-conf-ind", 0x53, Some(8)),
    // ECKD DASD.
    m("eckd-read-data", 0x06, None),
    m("eckd-write-data", 0x05, None),
    m("eckd-seek", 0x07, Some(6)),
    m("eckd-read-count", 0x92, Some(8)),
    m("eckd-read-ckd", 0x1E, None),
    m("eckd-search-id-eq", 0x31, Some(5)),
    m("eckd-define-extent", 0x63, Some(16)),
    m("eckd-locate-record", 0x47, Some(16)),
    m("eckd-read-track", 0xDE, None),
];

/// The device-independent mnemonic of `code`, if it has one. Device-specific names
/// (`virtio-*`, `eckd-*`) are accepted in program files but never used for display, since
/// their codes mean other things on other devices.
///
/// ```
/// assert_eq!(ccwctl::program::command_name(0xE4), Some("sense-id"));
/// assert_eq!(ccwctl::program::command_name(0x31), None);
/// ```
pub fn command_name(code: u8) -> Option<&'static str> {
    MNEMONICS
        .iter()
        .find(|m| m.code == code && !m.name.starts_with("virtio-") && !m.name.starts_with("eckd-"))
        .map(|m| m.name)
}

/// Every command name the format knows, with its code.
pub fn command_names() -> impl Iterator<Item = (&'static str, u8)> {
    MNEMONICS.iter().map(|m| (m.name, m.code))
}

const FLAGS: &[(&str, CcwFlags)] = &[
    ("cd", CcwFlags::CD),
    ("cc", CcwFlags::CC),
    ("sli", CcwFlags::SLI),
    ("skip", CcwFlags::SKIP),
    ("pci", CcwFlags::PCI),
    ("ida", CcwFlags::IDA),
    ("s", CcwFlags::S),
    ("suspend", CcwFlags::S),
    ("mida", CcwFlags::MIDA),
];

const OPERANDS: &[&str] = &["count", "data", "at", "cda", "flags", "to", "orb"];

fn flag(name: &str) -> Option<CcwFlags> {
    let lower = name.to_ascii_lowercase();
    FLAGS.iter().find(|(n, _)| *n == lower).map(|&(_, f)| f)
}

fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    flag(&lower).is_some() || OPERANDS.contains(&lower.as_str())
}

struct Parser<'a, 'l> {
    toks: Vec<Token>,
    i: usize,
    loader: &'l mut dyn FnMut(&Path) -> std::io::Result<Vec<u8>>,
    base: &'a Path,
}

/// A TIC target waiting for its label to be defined.
struct PendingTic {
    ccw: usize,
    label: String,
    pos: Pos,
}

impl Program {
    /// Parses `src`; `file` names it in errors; `loader` reads `data=file("...")` paths
    /// (pass [`no_files`] to forbid them). Relative paths are given to the loader as written.
    pub fn parse(
        src: &str,
        file: &str,
        loader: &mut dyn FnMut(&Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<Self, ProgramError> {
        Self::parse_in(src, Path::new(""), loader).map_err(|mut e| {
            e.file = file.to_string();
            e
        })
    }

    /// Reads and parses the program file at `path`; data files are resolved relative to the
    /// program file's directory.
    pub fn from_file(path: &Path) -> Result<Self, ProgramError> {
        let name = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| ProgramError {
            file: name.clone(),
            pos: Pos { line: 1, column: 1 },
            reason: Reason::File {
                path: name.clone(),
                error: e.to_string(),
            },
        })?;
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut loader = |p: &Path| std::fs::read(p);
        Self::parse_in(&src, &base, &mut loader).map_err(|mut e| {
            e.file = name.clone();
            e
        })
    }

    fn parse_in(
        src: &str,
        base: &Path,
        loader: &mut dyn FnMut(&Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<Self, ProgramError> {
        let toks = Lexer::new(src).tokenize()?;
        let mut p = Parser {
            toks,
            i: 0,
            loader,
            base,
        };
        p.program()
    }

    /// The CCW format of the program (ORB F).
    pub fn format(&self) -> CcwFormat {
        self.orb.format
    }
}

impl Parser<'_, '_> {
    fn peek(&self) -> &Token {
        // `tokenize` always ends with a Newline, and `bump` never moves past it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn peek2(&self) -> Option<&Tok> {
        self.toks.get(self.i + 1).map(|t| &t.kind)
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn at_end(&self) -> bool {
        self.i >= self.toks.len() - 1
    }

    fn expected<T>(&self, expected: &'static str) -> Result<T, ProgramError> {
        let t = self.peek();
        Err(ProgramError::at(
            t.pos,
            Reason::Expected {
                expected,
                found: t.kind.describe(),
            },
        ))
    }

    fn expect(&mut self, kind: Tok, what: &'static str) -> Result<(), ProgramError> {
        if self.peek().kind == kind {
            self.bump();
            Ok(())
        } else {
            self.expected(what)
        }
    }

    fn int(&mut self, what: &'static str, max: u64) -> Result<u64, ProgramError> {
        let t = self.peek().clone();
        match t.kind {
            Tok::Int(v) if v <= max => {
                self.bump();
                Ok(v)
            }
            Tok::Int(value) => Err(ProgramError::at(
                t.pos,
                Reason::OutOfRange { what, value, max },
            )),
            _ => self.expected("a number"),
        }
    }

    fn value_after_equals(&mut self, what: &'static str, max: u64) -> Result<u64, ProgramError> {
        self.expect(Tok::Equals, "`=`")?;
        self.int(what, max)
    }

    fn program(&mut self) -> Result<Program, ProgramError> {
        let mut orb = CommandOrb::new(0x0CC0_0CC0, 0);
        let mut cpa = None;
        let mut seen_orb = false;
        let mut ccws: Vec<CcwLine> = Vec::new();
        let mut labels: Vec<(String, usize)> = Vec::new();
        let mut pending_labels: Vec<(String, Pos)> = Vec::new();
        let mut tics: Vec<PendingTic> = Vec::new();

        while !self.at_end() {
            // Labels: `name:` (several allowed, on their own lines or before a statement).
            while let (Tok::Ident(name), Some(Tok::Colon)) = (&self.peek().kind, self.peek2()) {
                let name = name.clone();
                let pos = self.bump().pos;
                self.bump();
                if is_reserved(&name) {
                    return Err(ProgramError::at(pos, Reason::ReservedLabel(name)));
                }
                if labels.iter().any(|(n, _)| *n == name)
                    || pending_labels.iter().any(|(n, _)| *n == name)
                {
                    return Err(ProgramError::at(pos, Reason::DuplicateLabel(name)));
                }
                pending_labels.push((name, pos));
            }
            let t = self.peek().clone();
            match &t.kind {
                Tok::Newline => {
                    self.bump();
                    continue;
                }
                Tok::Ident(w) if w.eq_ignore_ascii_case("orb") => {
                    if seen_orb {
                        return Err(ProgramError::at(t.pos, Reason::DuplicateOrb));
                    }
                    if let Some((name, pos)) = pending_labels.first() {
                        return Err(ProgramError::at(*pos, Reason::DanglingLabel(name.clone())));
                    }
                    seen_orb = true;
                    self.bump();
                    cpa = self.orb_options(&mut orb)?;
                }
                Tok::Ident(_) | Tok::Int(_) => {
                    if ccws.len() >= MAX_CCWS {
                        return Err(ProgramError::at(t.pos, Reason::TooManyCcws));
                    }
                    let index = ccws.len();
                    let (mut line, tic) = self.ccw_line()?;
                    for (name, _) in pending_labels.drain(..) {
                        labels.push((name.clone(), index));
                        line.labels.push(name);
                    }
                    if let Some((label, pos)) = tic {
                        tics.push(PendingTic {
                            ccw: index,
                            label,
                            pos,
                        });
                    }
                    ccws.push(line);
                }
                _ => return self.expected("a command, `orb`, or a label"),
            }
            if self.peek().kind != Tok::Newline {
                return self.expected("end of line");
            }
            self.bump();
        }
        if let Some((name, pos)) = pending_labels.into_iter().next() {
            return Err(ProgramError::at(pos, Reason::DanglingLabel(name)));
        }
        if ccws.is_empty() {
            return Err(ProgramError::at(Pos { line: 1, column: 1 }, Reason::Empty));
        }
        for tic in tics {
            let Some(&(_, target)) = labels.iter().find(|(n, _)| *n == tic.label) else {
                return Err(ProgramError::at(tic.pos, Reason::UnknownLabel(tic.label)));
            };
            ccws[tic.ccw].tic_target = Some(target);
        }
        Ok(Program { orb, cpa, ccws })
    }

    /// `orb` options up to the end of the line. Returns the `cpa=` option.
    fn orb_options(&mut self, orb: &mut CommandOrb) -> Result<Option<u32>, ProgramError> {
        let mut cpa = None;
        let mut prio = OrbPriorities::default();
        let mut has_prio = false;
        loop {
            let t = self.peek().clone();
            let name = match &t.kind {
                Tok::Newline => break,
                Tok::Comma => {
                    self.bump();
                    continue;
                }
                Tok::Ident(n) => n.to_ascii_lowercase(),
                _ => return self.expected("an orb option"),
            };
            self.bump();
            let yes = !name.starts_with("no-");
            let base = name.strip_prefix("no-").unwrap_or(&name);
            match base {
                "format" => {
                    orb.format = match self.value_after_equals("format", 1)? {
                        0 => CcwFormat::Format0,
                        _ => CcwFormat::Format1,
                    }
                }
                "key" => orb.key = self.value_after_equals("key", 15)? as u8,
                "lpm" => orb.lpm = self.value_after_equals("lpm", 0xFF)? as u8,
                "intparm" => orb.intparm = self.value_after_equals("intparm", 0xFFFF_FFFF)? as u32,
                "cpa" => {
                    self.expect(Tok::Equals, "`=`")?;
                    let pos = self.peek().pos;
                    let v = self.int("cpa", 0x7FFF_FFFF)?;
                    if v % 8 != 0 {
                        return Err(ProgramError::at(
                            pos,
                            Reason::Expected {
                                expected: "a doubleword-aligned cpa",
                                found: format!("{v:#x}"),
                            },
                        ));
                    }
                    cpa = Some(v as u32);
                }
                "css-priority" => {
                    prio.css = self.value_after_equals("css-priority", 0xFF)? as u8;
                    has_prio = true;
                }
                "cu-priority" => {
                    prio.cu = self.value_after_equals("cu-priority", 0xFF)? as u8;
                    has_prio = true;
                }
                "idaw" => {
                    self.expect(Tok::Equals, "`=`")?;
                    let v = self.peek().clone();
                    let (h, t2k) = match &v.kind {
                        Tok::Ident(s) => match s.to_ascii_lowercase().as_str() {
                            "format1" | "fmt1" => (false, false),
                            "format2" | "fmt2" | "format2-4k" | "fmt2-4k" => (true, false),
                            "format2-2k" | "fmt2-2k" => (true, true),
                            _ => return self.expected("format1, format2-4k or format2-2k"),
                        },
                        _ => return self.expected("format1, format2-4k or format2-2k"),
                    };
                    self.bump();
                    orb.format2_idaw = h;
                    orb.idaw_2k = t2k;
                }
                "suspend" => orb.suspend = yes,
                "streaming" => orb.streaming = yes,
                "modification" => orb.modification = yes,
                "synchronization" => orb.synchronization = yes,
                "prefetch" => orb.prefetch = yes,
                "initial-status" => orb.initial_status = yes,
                "address-limit" => orb.address_limit = yes,
                "suppress-suspended" => orb.suppress_suspended = yes,
                "ils" => orb.ils = yes,
                "midaw" => orb.midaw = yes,
                _ => return Err(ProgramError::at(t.pos, Reason::UnknownOrbOption(name))),
            }
        }
        if has_prio {
            orb.priorities = Some(prio);
        }
        Ok(cpa)
    }

    /// One CCW line; returns it and, for a TIC, the target label and its position.
    fn ccw_line(&mut self) -> Result<(CcwLine, Option<(String, Pos)>), ProgramError> {
        let t = self.bump();
        let (cmd, default_count) = match &t.kind {
            Tok::Int(v) if *v <= 0xFF => (*v as u8, None),
            Tok::Int(v) => {
                return Err(ProgramError::at(
                    t.pos,
                    Reason::OutOfRange {
                        what: "command code",
                        value: *v,
                        max: 0xFF,
                    },
                ));
            }
            Tok::Ident(name) => {
                let lower = name.to_ascii_lowercase();
                match MNEMONICS.iter().find(|m| m.name == lower) {
                    Some(m) => (m.code, m.default_count),
                    None => {
                        return Err(ProgramError::at(
                            t.pos,
                            Reason::UnknownCommand(name.clone()),
                        ));
                    }
                }
            }
            _ => return self.expected("a command"),
        };
        let is_tic = cmd == ccw_types::ccw::cmd::TIC;
        let mut flags = CcwFlags::NONE;
        let mut count: Option<u16> = None;
        let mut init: Option<Vec<u8>> = None;
        let mut at: Option<u64> = None;
        let mut cda: Option<u32> = None;
        let mut target: Option<(String, Pos)> = None;
        let mut raw_flags = false;
        loop {
            let t = self.peek().clone();
            let word = match &t.kind {
                Tok::Newline => break,
                Tok::Comma => {
                    self.bump();
                    continue;
                }
                Tok::Ident(w) => w.clone(),
                _ => return self.expected("a flag or an operand"),
            };
            self.bump();
            let lower = word.to_ascii_lowercase();
            if let Some(f) = flag(&lower) {
                flags |= f;
                continue;
            }
            let dup = |set: bool, what: &'static str| {
                if set {
                    Err(ProgramError::at(t.pos, Reason::Duplicate(what)))
                } else {
                    Ok(())
                }
            };
            match lower.as_str() {
                "count" => {
                    dup(count.is_some(), "count")?;
                    count = Some(self.value_after_equals("count", 0xFFFF)? as u16);
                }
                "flags" => {
                    dup(raw_flags, "flags")?;
                    raw_flags = true;
                    flags |= CcwFlags::from_bits(self.value_after_equals("flags", 0xFF)? as u8);
                }
                "at" => {
                    dup(at.is_some(), "at")?;
                    at = Some(self.value_after_equals("at", u64::MAX)?);
                }
                "cda" => {
                    dup(cda.is_some(), "cda")?;
                    cda = Some(self.value_after_equals("cda", 0xFFFF_FFFF)? as u32);
                }
                "data" => {
                    dup(init.is_some(), "data")?;
                    self.expect(Tok::Equals, "`=`")?;
                    init = Some(self.data_value()?);
                }
                "to" if is_tic => {
                    dup(target.is_some(), "to")?;
                    self.expect(Tok::Equals, "`=`")?;
                    let l = self.peek().clone();
                    match l.kind {
                        Tok::Ident(name) => {
                            self.bump();
                            target = Some((name, l.pos));
                        }
                        _ => return self.expected("a label"),
                    }
                }
                _ if is_tic && target.is_none() => target = Some((word, t.pos)),
                _ => return Err(ProgramError::at(t.pos, Reason::UnknownOperand(word))),
            }
        }
        let data = if is_tic {
            if init.is_some() || at.is_some() {
                return Err(ProgramError::at(t.pos, Reason::TicWithData));
            }
            match (&target, cda) {
                (None, None) => return Err(ProgramError::at(t.pos, Reason::TicWithoutTarget)),
                (Some((_, pos)), Some(_)) => {
                    return Err(ProgramError::at(*pos, Reason::Duplicate("tic target")));
                }
                (_, Some(a)) => Data::Raw(a),
                (Some(_), None) => Data::None,
            }
        } else if let Some(a) = cda {
            if init.is_some() || at.is_some() {
                return Err(ProgramError::at(t.pos, Reason::CdaWithBuffer));
            }
            Data::Raw(a)
        } else {
            Data::None
        };
        let count = match (count, &init) {
            (Some(c), Some(d)) if d.len() > usize::from(c) => {
                return Err(ProgramError::at(
                    t.pos,
                    Reason::DataLongerThanCount {
                        count: c,
                        data: d.len(),
                    },
                ));
            }
            (Some(c), _) => c,
            (None, Some(d)) => u16::try_from(d.len()).map_err(|_| {
                ProgramError::at(
                    t.pos,
                    Reason::OutOfRange {
                        what: "data length",
                        value: d.len() as u64,
                        max: 0xFFFF,
                    },
                )
            })?,
            (None, None) if is_tic || cda.is_some() => 0,
            (None, None) => {
                default_count.ok_or(ProgramError::at(t.pos, Reason::MissingCount(cmd)))?
            }
        };
        let data = match data {
            Data::None if !is_tic && (count > 0 || init.is_some() || at.is_some()) => {
                Data::Buffer {
                    init: init.unwrap_or_default(),
                    at,
                }
            }
            other => other,
        };
        Ok((
            CcwLine {
                pos: t.pos,
                labels: Vec::new(),
                cmd,
                flags,
                count,
                data,
                tic_target: None,
            },
            target,
        ))
    }

    /// A data value: `x"..."`, `"text"`, `file("path")`, `fill(byte, length)`.
    fn data_value(&mut self) -> Result<Vec<u8>, ProgramError> {
        let t = self.peek().clone();
        match t.kind {
            Tok::Hex(b) | Tok::Str(b) => {
                self.bump();
                Ok(b)
            }
            Tok::Ident(f) if f.eq_ignore_ascii_case("file") => {
                self.bump();
                self.expect(Tok::LParen, "`(`")?;
                let p = self.peek().clone();
                let Tok::Str(path) = p.kind else {
                    return self.expected("a quoted path");
                };
                self.bump();
                self.expect(Tok::RParen, "`)`")?;
                let path = String::from_utf8_lossy(&path).into_owned();
                let full = self.base.join(&path);
                let bytes = (self.loader)(&full).map_err(|e| {
                    ProgramError::at(
                        p.pos,
                        Reason::File {
                            path: path.clone(),
                            error: e.to_string(),
                        },
                    )
                })?;
                if bytes.len() > 0xFFFF {
                    return Err(ProgramError::at(
                        p.pos,
                        Reason::OutOfRange {
                            what: "file length",
                            value: bytes.len() as u64,
                            max: 0xFFFF,
                        },
                    ));
                }
                Ok(bytes)
            }
            Tok::Ident(f) if f.eq_ignore_ascii_case("fill") => {
                self.bump();
                self.expect(Tok::LParen, "`(`")?;
                let byte = self.int("fill byte", 0xFF)? as u8;
                self.expect(Tok::Comma, "`,`")?;
                let n = self.int("fill length", 0xFFFF)? as usize;
                self.expect(Tok::RParen, "`)`")?;
                Ok(vec![byte; n])
            }
            _ => self.expected("x\"hex\", \"text\", file(\"path\") or fill(byte, length)"),
        }
    }
}

impl CcwLine {
    /// The command class in a program of `format`.
    pub fn class(&self, format: CcwFormat) -> CommandClass {
        CommandClass::of(self.cmd, format)
    }

    /// The mnemonic or hex code, for display.
    pub fn command_text(&self) -> String {
        match command_name(self.cmd) {
            Some(n) => n.to_string(),
            None => format!("{:#04x}", self.cmd),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Program, ProgramError> {
        Program::parse(src, "t.ccw", &mut no_files)
    }

    fn err(src: &str) -> String {
        parse(src).unwrap_err().to_string()
    }

    #[test]
    fn a_full_program() {
        let p = parse(
            "# demo\n\
             orb format=1 lpm=0x80 intparm=0x1234 idaw=format2-2k suspend no-prefetch cpa=0x2000\n\
             top: read cc sli count=80\n\
             write cc, data=\"hi\" at=0x9000\n\
             0x27 cc count=4 data=x\"01 02\"\n\
             nop cc\n\
             tic top\n",
        )
        .unwrap();
        assert_eq!(p.orb.lpm, 0x80);
        assert_eq!(p.orb.intparm, 0x1234);
        assert!(p.orb.format2_idaw && p.orb.idaw_2k && p.orb.suspend && !p.orb.prefetch);
        assert_eq!(p.cpa, Some(0x2000));
        assert_eq!(p.ccws.len(), 5);
        assert_eq!(p.ccws[0].labels, vec!["top".to_string()]);
        assert_eq!(p.ccws[0].flags, CcwFlags::CC | CcwFlags::SLI);
        assert_eq!(p.ccws[0].count, 80);
        assert_eq!(
            p.ccws[1].data,
            Data::Buffer {
                init: b"hi".to_vec(),
                at: Some(0x9000)
            }
        );
        assert_eq!(p.ccws[1].count, 2);
        assert_eq!((p.ccws[2].cmd, p.ccws[2].count), (0x27, 4));
        assert_eq!((p.ccws[3].count, &p.ccws[3].data), (0, &Data::None));
        assert_eq!(p.ccws[4].tic_target, Some(0));
    }

    #[test]
    fn defaults_and_raw_forms() {
        let p =
            parse("sense-id\nsense sli\n0x02 cda=0x1000 count=4\ntic cda=0x10\nl: nop\n").unwrap();
        assert_eq!(p.ccws[0].count, 256);
        assert_eq!(p.ccws[1].count, 32);
        assert_eq!(p.ccws[2].data, Data::Raw(0x1000));
        assert_eq!(p.ccws[3].data, Data::Raw(0x10));
        assert_eq!(p.orb, CommandOrb::new(0x0CC0_0CC0, 0));
    }

    #[test]
    fn forward_tic_and_label_lines() {
        let p = parse("tic to=end\nnop\nend:\n  nop\n").unwrap();
        assert_eq!(p.ccws[0].tic_target, Some(2));
        assert_eq!(p.ccws[2].labels, vec!["end".to_string()]);
    }

    #[test]
    fn fill_data() {
        let p = parse("write data=fill(0x40, 3) count=5\n").unwrap();
        assert_eq!(
            p.ccws[0].data,
            Data::Buffer {
                init: vec![0x40; 3],
                at: None
            }
        );
        assert_eq!(p.ccws[0].count, 5);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        assert_eq!(
            err("read count=8\n  frob\n"),
            "t.ccw:2:3: unknown command `frob` (give other command codes as numbers, e.g. 0x27)"
        );
        assert_eq!(
            err("read count=70000\n"),
            "t.ccw:1:12: count 0x11170 out of range (max 0xffff)"
        );
        assert_eq!(
            err("read\n"),
            "t.ccw:1:1: `count=` is required for command 0x02 (or give `data=`)"
        );
        assert_eq!(err("tic nowhere\n"), "t.ccw:1:5: no label `nowhere`");
        assert_eq!(
            err("a: nop\na: nop\n"),
            "t.ccw:2:1: label `a` defined twice"
        );
        assert_eq!(
            err("nop\nz:\n"),
            "t.ccw:2:1: label `z` is not followed by a CCW"
        );
        assert_eq!(err("# nothing\n"), "t.ccw:1:1: the program has no CCW");
        assert_eq!(
            err("orb\norb\nnop\n"),
            "t.ccw:2:1: only one `orb` line is allowed"
        );
        assert_eq!(
            err("orb bogus\nnop\n"),
            "t.ccw:1:5: unknown orb option `bogus`"
        );
        assert_eq!(
            err("write count=1 data=\"ab\"\n"),
            "t.ccw:1:1: data is 2 bytes but count=1"
        );
        assert_eq!(
            err("read count=1 count=2\n"),
            "t.ccw:1:14: `count` given twice"
        );
        assert_eq!(
            err("read count=\n"),
            "t.ccw:1:12: expected a number, found end of line"
        );
        assert_eq!(
            err("read count=1 :\n"),
            "t.ccw:1:14: expected a flag or an operand, found `:`"
        );
        assert_eq!(err("cc: nop\n"), "t.ccw:1:1: label `cc` is a reserved word");
        assert_eq!(
            err("tic\n"),
            "t.ccw:1:1: tic needs a target label (or `cda=`)"
        );
        assert_eq!(
            err("0x100\n"),
            "t.ccw:1:1: command code 0x100 out of range (max 0xff)"
        );
        assert_eq!(
            err("read cda=4 data=\"x\"\n"),
            "t.ccw:1:1: `cda=` gives a raw address: it excludes `data=` and `at=`"
        );
        assert!(err("write data=file(\"x.bin\")\n").starts_with("t.ccw:1:17: cannot read `x.bin`"));
        assert_eq!(
            err("orb cpa=0x1001\nnop\n"),
            "t.ccw:1:9: expected a doubleword-aligned cpa, found 0x1001"
        );
    }

    #[test]
    fn file_data_goes_through_the_loader() {
        let mut loader = |p: &Path| {
            assert_eq!(p, Path::new("blob.bin"));
            Ok(vec![1, 2, 3])
        };
        let p = Program::parse("write data=file(\"blob.bin\")\n", "f", &mut loader).unwrap();
        assert_eq!(p.ccws[0].count, 3);
    }

    #[test]
    fn too_many_ccws_is_an_error_not_a_hog() {
        let src = "nop\n".repeat(MAX_CCWS + 1);
        assert!(matches!(
            parse(&src).unwrap_err().reason,
            Reason::TooManyCcws
        ));
    }

    mod roundtrip {
        use super::*;
        use proptest::prelude::*;

        /// One generated CCW: a TIC to another index, or a command with flags, count, data.
        #[derive(Debug, Clone)]
        enum Gen {
            Tic(usize),
            Ccw {
                cmd: u8,
                flags: u8,
                count: u16,
                data: Option<Vec<u8>>,
            },
        }

        fn gen_ccw() -> impl Strategy<Value = Gen> {
            prop_oneof![
                (0usize..64).prop_map(Gen::Tic),
                (
                    any::<u8>().prop_filter("not a TIC", |c| *c != 0x08),
                    any::<u8>(),
                    0u16..300,
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
                )
                    .prop_map(|(cmd, flags, count, data)| {
                        let count = data.as_ref().map_or(count, |d| count.max(d.len() as u16));
                        Gen::Ccw {
                            cmd,
                            flags,
                            count,
                            data,
                        }
                    }),
            ]
        }

        proptest! {
            #![proptest_config(ccw_testkit::proptest_config(128))]
            /// What the documented syntax says is what the parser builds, for any commands,
            /// flags, counts, data and TIC targets.
            #[test]
            fn rendered_programs_parse_back(ccws in proptest::collection::vec(gen_ccw(), 1..24)) {
                let n = ccws.len();
                let mut src = String::from("orb lpm=0x80\n");
                for (i, g) in ccws.iter().enumerate() {
                    match g {
                        Gen::Tic(t) => src.push_str(&format!("l{i}: tic l{}\n", t % n)),
                        Gen::Ccw { cmd, flags, count, data } => {
                            src.push_str(&format!("l{i}: {cmd:#04x} flags={flags:#x}, count={count}"));
                            if let Some(d) = data {
                                let hex: String = d.iter().map(|b| format!("{b:02x} ")).collect();
                                src.push_str(&format!(" data=x\"{hex}\""));
                            }
                            src.push_str("  # comment\n");
                        }
                    }
                }
                let p = Program::parse(&src, "gen", &mut no_files).unwrap();
                prop_assert_eq!(p.orb.lpm, 0x80);
                prop_assert_eq!(p.ccws.len(), n);
                for (i, (g, c)) in ccws.iter().zip(&p.ccws).enumerate() {
                    prop_assert_eq!(&c.labels, &vec![format!("l{i}")]);
                    match g {
                        Gen::Tic(t) => {
                            prop_assert_eq!(c.cmd, 0x08);
                            prop_assert_eq!(c.tic_target, Some(t % n));
                        }
                        Gen::Ccw { cmd, flags, count, data } => {
                            prop_assert_eq!((c.cmd, c.flags.bits(), c.count), (*cmd, *flags, *count));
                            match (&c.data, data) {
                                (Data::Buffer { init, at: None }, Some(d)) => prop_assert_eq!(init, d),
                                (Data::Buffer { init, at: None }, None) => prop_assert!(init.is_empty() && *count > 0),
                                (Data::None, None) => prop_assert_eq!(*count, 0),
                                (other, _) => prop_assert!(false, "unexpected data {:?}", other),
                            }
                        }
                    }
                }
            }
        }
    }
}
