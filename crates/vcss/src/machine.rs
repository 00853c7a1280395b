// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A machine described in a file: the channel paths and devices of a simulated channel
//! subsystem, one per line, as a Hercules configuration lists its devices.
//!
//! ```text
//! # channel paths: CHPID and channel-path type (SCPD descriptor byte 2)
//! chpid 00 type=32                 # virtual (virtio) path
//! chpid 40 type=1b                 # a FICON path
//!
//! # devices: device number, type, options; subchannels 0.0.0000, 0.0.0001, ... in file order
//! 0005 virtio-blk-ccw chpids=00 sectors=131072
//! 0006 test           chpids=00 bytes=65536
//! 0190 3390           chpids=40,41 image=volume.img ro
//! ```
//!
//! [`Machine::parse`] turns the text into a validated [`Machine`] or a [`MachineError`] that
//! names `file:line` and the problem ([`MachineErrorKind`]). The format is the project's own
//! rather than TOML: a device is one line, as in Hercules, so every error (including the ones
//! only the whole file reveals, such as a duplicate device number) points at exactly one line,
//! and the crate needs no parser dependency. The format is documented in
//! `docs/machine-format.md`.
//!
//! vcss only describes the machine; the simulator (mock-backend's `machine` module) builds
//! the devices from the description.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Device types the format knows.
pub const DEVICE_TYPES: [&str; 3] = ["virtio-blk-ccw", "test", "3390"];

/// Default disk size of a virtio-blk-ccw device: 131072 sectors of 512 bytes (64 MiB), as the
/// built-in default machine has it.
pub const DEFAULT_SECTORS: u64 = 131_072;
/// Default buffer size of a test device (64 KiB), as the built-in default machine has it.
pub const DEFAULT_TEST_BYTES: usize = 64 * 1024;

/// A channel path of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChpidDesc {
    /// The channel-path id.
    pub chpid: u8,
    /// The channel-path type (0x32 virtual, as QEMU's virtio paths; a host type otherwise).
    pub ty: u8,
    /// The line that declared it.
    pub line: usize,
}

/// What a device line describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceKind {
    /// A virtio-blk-ccw device whose disk has `sectors` 512-byte sectors.
    VirtioBlk {
        /// Disk size in 512-byte sectors.
        sectors: u64,
    },
    /// The generic test device with a buffer of `bytes`.
    Test {
        /// Buffer size.
        bytes: usize,
    },
    /// An ECKD 3390 on a CKD image file.
    Dasd3390 {
        /// The image (relative paths in the file are resolved against the file's directory).
        image: PathBuf,
        /// Open the image read-only.
        read_only: bool,
    },
}

impl DeviceKind {
    /// The type's name in the file.
    pub fn name(&self) -> &'static str {
        match self {
            Self::VirtioBlk { .. } => "virtio-blk-ccw",
            Self::Test { .. } => "test",
            Self::Dasd3390 { .. } => "3390",
        }
    }
}

/// A device of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDesc {
    /// The subchannel number (0.0.`sch_no`): devices are numbered in file order from 0.
    pub sch_no: u16,
    /// The device number.
    pub devno: u16,
    /// The device.
    pub kind: DeviceKind,
    /// The CHPIDs of its paths, slot 0 first (PIM = one bit per entry, from bit 0).
    pub chpids: Vec<u8>,
    /// The line that described it.
    pub line: usize,
}

impl DeviceDesc {
    /// The path-installed mask: one bit per CHPID, slot 0 = 0x80.
    pub fn pim(&self) -> u8 {
        (0..self.chpids.len()).fold(0u8, |m, i| m | (0x80 >> i))
    }
}

/// A machine: channel paths and devices, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The file it came from (or the name given to [`Machine::parse`]).
    pub source: PathBuf,
    /// The channel paths by CHPID.
    pub chpids: BTreeMap<u8, ChpidDesc>,
    /// The devices, in subchannel order.
    pub devices: Vec<DeviceDesc>,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MachineErrorKind {
    /// The file could not be read.
    #[error("cannot read the machine file: {0}")]
    Read(String),
    /// A line that is neither a `chpid` line nor a device line.
    #[error("{0}")]
    Syntax(String),
    /// The device number is not 1-4 hex digits (or a bus id `0.0.xxxx`).
    #[error("bad device number `{0}`: expected 1-4 hex digits or a bus id 0.0.xxxx")]
    BadDevno(String),
    /// A device type the format does not know.
    #[error("unknown device type `{0}` (known: virtio-blk-ccw, test, 3390)")]
    UnknownType(String),
    /// The device number was already used.
    #[error("duplicate device number {devno:04x} (first on line {first_line})")]
    DuplicateDevno {
        /// The device number.
        devno: u16,
        /// Where it was first used.
        first_line: usize,
    },
    /// A CHPID that is malformed, undeclared, declared twice, repeated on a device, or one too
    /// many (a subchannel has at most 8 paths).
    #[error("bad chpid `{chpid}`: {reason}")]
    BadChpid {
        /// The CHPID as written.
        chpid: String,
        /// What is wrong.
        reason: String,
    },
    /// An option the device type does not take.
    #[error("{ty} takes no option `{option}`")]
    UnknownOption {
        /// The device type.
        ty: &'static str,
        /// The option.
        option: String,
    },
    /// An option given twice.
    #[error("option `{0}` given twice")]
    DuplicateOption(String),
    /// An option's value is malformed or out of range.
    #[error("bad value `{value}` for `{option}`: {reason}")]
    BadValue {
        /// The option.
        option: String,
        /// The value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A required option is missing.
    #[error("{ty} needs `{option}=`")]
    MissingOption {
        /// The device type.
        ty: &'static str,
        /// The option.
        option: &'static str,
    },
    /// The 3390's image file does not exist or is not a readable file.
    #[error("image {path}: {reason}")]
    MissingImage {
        /// The path as resolved.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
}

/// A machine file error: `file:line: problem` (line 0 when it concerns the whole file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MachineError {
    /// The file.
    pub file: PathBuf,
    /// The line (1-based; 0 = the whole file).
    pub line: usize,
    /// The problem.
    pub kind: MachineErrorKind,
}

impl fmt::Display for MachineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.kind)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.kind)
        }
    }
}

fn hex_u8(s: &str) -> Option<u8> {
    let t = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if t.is_empty() || t.len() > 2 {
        return None;
    }
    u8::from_str_radix(t, 16).ok()
}

fn parse_devno(s: &str) -> Option<u16> {
    let t = s.strip_prefix("0.0.").unwrap_or(s);
    if t.is_empty() || t.len() > 4 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(t, 16).ok()
}

fn parse_decimal<T: std::str::FromStr>(option: &str, value: &str) -> Result<T, MachineErrorKind> {
    value
        .replace('_', "")
        .parse::<T>()
        .map_err(|_| MachineErrorKind::BadValue {
            option: option.into(),
            value: value.into(),
            reason: "expected a decimal number".into(),
        })
}

/// Splits `key=value` words; bare words are flags (`value` None).
fn options(words: &[&str]) -> Result<Vec<(String, Option<String>)>, MachineErrorKind> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for w in words {
        let (k, v) = match w.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (w.to_ascii_lowercase(), None),
        };
        if out.iter().any(|(o, _)| *o == k) {
            return Err(MachineErrorKind::DuplicateOption(k));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn value<'a>(option: &str, v: &'a Option<String>) -> Result<&'a str, MachineErrorKind> {
    match v.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(MachineErrorKind::BadValue {
            option: option.into(),
            value: String::new(),
            reason: format!("`{option}` needs a value (`{option}=...`)"),
        }),
    }
}

impl Machine {
    /// Reads and parses the machine file `path`.
    pub fn from_file(path: &Path) -> Result<Self, MachineError> {
        let text = std::fs::read_to_string(path).map_err(|e| MachineError {
            file: path.to_path_buf(),
            line: 0,
            kind: MachineErrorKind::Read(e.to_string()),
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text`, which came from `file`: errors name it, and relative image paths are
    /// resolved against its directory.
    pub fn parse(text: &str, file: &Path) -> Result<Self, MachineError> {
        let base = file.parent().unwrap_or(Path::new(""));
        let err = |line: usize, kind| MachineError {
            file: file.to_path_buf(),
            line,
            kind,
        };
        let mut chpids: BTreeMap<u8, ChpidDesc> = BTreeMap::new();
        // Device lines are checked for CHPIDs once every `chpid` line is known, so a path may
        // be declared after the devices that use it.
        let mut pending: Vec<(usize, u16, DeviceKind, Vec<String>)> = Vec::new();
        let mut devnos: BTreeMap<u16, usize> = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or("");
            let words: Vec<&str> = content.split_whitespace().collect();
            let Some(&first) = words.first() else {
                continue;
            };
            if first.eq_ignore_ascii_case("chpid") {
                let c = Self::chpid_line(&words, line, &chpids).map_err(|k| err(line, k))?;
                chpids.insert(c.chpid, c);
                continue;
            }
            let devno = parse_devno(first)
                .ok_or_else(|| err(line, MachineErrorKind::BadDevno(first.to_string())))?;
            let Some(&ty) = words.get(1) else {
                return Err(err(
                    line,
                    MachineErrorKind::Syntax(format!(
                        "device {devno:04x} has no type (expected `DEVNO TYPE options`)"
                    )),
                ));
            };
            if let Some(&first_line) = devnos.get(&devno) {
                return Err(err(
                    line,
                    MachineErrorKind::DuplicateDevno { devno, first_line },
                ));
            }
            let (kind, paths) =
                Self::device_options(ty, &words[2..], base).map_err(|k| err(line, k))?;
            devnos.insert(devno, line);
            pending.push((line, devno, kind, paths));
        }
        let mut devices = Vec::with_capacity(pending.len());
        // Device numbers are unique, so there are at most 65536 devices: every one gets a
        // subchannel number.
        for ((line, devno, kind, paths), sch_no) in pending.into_iter().zip(0..=u16::MAX) {
            let mut list: Vec<u8> = Vec::new();
            for p in &paths {
                let bad = |reason: String| {
                    err(
                        line,
                        MachineErrorKind::BadChpid {
                            chpid: p.clone(),
                            reason,
                        },
                    )
                };
                let c = hex_u8(p).ok_or_else(|| bad("expected two hex digits".into()))?;
                if !chpids.contains_key(&c) {
                    return Err(bad("not declared (add a line `chpid XX type=YY`)".into()));
                }
                if list.contains(&c) {
                    return Err(bad("given twice for this device".into()));
                }
                if list.len() == 8 {
                    return Err(bad("a subchannel has at most 8 paths".into()));
                }
                list.push(c);
            }
            devices.push(DeviceDesc {
                sch_no,
                devno,
                kind,
                chpids: list,
                line,
            });
        }
        Ok(Self {
            source: file.to_path_buf(),
            chpids,
            devices,
        })
    }

    fn chpid_line(
        words: &[&str],
        line: usize,
        known: &BTreeMap<u8, ChpidDesc>,
    ) -> Result<ChpidDesc, MachineErrorKind> {
        let Some(&id) = words.get(1) else {
            return Err(MachineErrorKind::Syntax(
                "expected `chpid XX type=YY`".into(),
            ));
        };
        let bad = |reason: &str| MachineErrorKind::BadChpid {
            chpid: id.to_string(),
            reason: reason.into(),
        };
        let chpid = hex_u8(id).ok_or_else(|| bad("expected two hex digits"))?;
        if let Some(c) = known.get(&chpid) {
            return Err(bad(&format!("declared twice (first on line {})", c.line)));
        }
        let mut ty = None;
        for (k, v) in options(&words[2..])? {
            match k.as_str() {
                "type" => {
                    let v = value("type", &v)?;
                    ty = Some(hex_u8(v).ok_or_else(|| MachineErrorKind::BadValue {
                        option: "type".into(),
                        value: v.into(),
                        reason: "expected a channel-path type as two hex digits".into(),
                    })?);
                }
                _ => {
                    return Err(MachineErrorKind::UnknownOption {
                        ty: "chpid",
                        option: k,
                    });
                }
            }
        }
        let ty = ty.ok_or(MachineErrorKind::MissingOption {
            ty: "chpid",
            option: "type",
        })?;
        Ok(ChpidDesc { chpid, ty, line })
    }

    fn device_options(
        ty: &str,
        words: &[&str],
        base: &Path,
    ) -> Result<(DeviceKind, Vec<String>), MachineErrorKind> {
        let ty_name: &'static str = match ty.to_ascii_lowercase().as_str() {
            "virtio-blk-ccw" => DEVICE_TYPES[0],
            "test" => DEVICE_TYPES[1],
            "3390" => DEVICE_TYPES[2],
            _ => return Err(MachineErrorKind::UnknownType(ty.to_string())),
        };
        let mut paths = None;
        let mut sectors = None;
        let mut bytes = None;
        let mut image = None;
        let mut read_only = false;
        for (k, v) in options(words)? {
            match (ty_name, k.as_str()) {
                (_, "chpids") => {
                    let v = value("chpids", &v)?;
                    paths = Some(v.split(',').map(str::to_string).collect::<Vec<_>>());
                }
                ("virtio-blk-ccw", "sectors") => {
                    let n: u64 = parse_decimal("sectors", value("sectors", &v)?)?;
                    if n == 0 {
                        return Err(MachineErrorKind::BadValue {
                            option: "sectors".into(),
                            value: "0".into(),
                            reason: "a disk has at least one sector".into(),
                        });
                    }
                    sectors = Some(n);
                }
                ("test", "bytes") => {
                    let n: usize = parse_decimal("bytes", value("bytes", &v)?)?;
                    if n == 0 || n > 16 << 20 {
                        return Err(MachineErrorKind::BadValue {
                            option: "bytes".into(),
                            value: n.to_string(),
                            reason: "the buffer is 1 byte to 16 MiB".into(),
                        });
                    }
                    bytes = Some(n);
                }
                ("3390", "image") => image = Some(value("image", &v)?.to_string()),
                ("3390", "ro") if v.is_none() => read_only = true,
                _ => {
                    return Err(MachineErrorKind::UnknownOption {
                        ty: ty_name,
                        option: k,
                    });
                }
            }
        }
        let paths = paths.ok_or(MachineErrorKind::MissingOption {
            ty: ty_name,
            option: "chpids",
        })?;
        let kind = match ty_name {
            "virtio-blk-ccw" => DeviceKind::VirtioBlk {
                sectors: sectors.unwrap_or(DEFAULT_SECTORS),
            },
            "test" => DeviceKind::Test {
                bytes: bytes.unwrap_or(DEFAULT_TEST_BYTES),
            },
            _ => {
                let image = image.ok_or(MachineErrorKind::MissingOption {
                    ty: "3390",
                    option: "image",
                })?;
                let path = base.join(&image);
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => {}
                    Ok(_) => {
                        return Err(MachineErrorKind::MissingImage {
                            path,
                            reason: "not a file".into(),
                        });
                    }
                    Err(e) => {
                        return Err(MachineErrorKind::MissingImage {
                            path,
                            reason: e.to_string(),
                        });
                    }
                }
                DeviceKind::Dasd3390 {
                    image: path,
                    read_only,
                }
            }
        };
        Ok((kind, paths))
    }

    /// The device with number `devno`.
    pub fn device(&self, devno: u16) -> Option<&DeviceDesc> {
        self.devices.iter().find(|d| d.devno == devno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Machine, MachineError> {
        Machine::parse(text, Path::new("m.machine"))
    }

    fn kind(text: &str) -> (usize, MachineErrorKind) {
        let e = parse(text).unwrap_err();
        assert_eq!(e.file, Path::new("m.machine"));
        (e.line, e.kind)
    }

    #[test]
    fn the_default_machine_parses_into_its_devices() {
        let m = parse(
            "# the built-in default\n\
             chpid 00 type=32\n\
             \n\
             0005 virtio-blk-ccw chpids=00   # the disk\n\
             0.0.0006 TEST chpids=00 bytes=4096\n",
        )
        .unwrap();
        assert_eq!(m.chpids.len(), 1);
        assert_eq!(m.chpids[&0].ty, 0x32);
        assert_eq!(m.devices.len(), 2);
        let d = &m.devices[0];
        assert_eq!((d.sch_no, d.devno, d.line), (0, 5, 4));
        assert_eq!(d.kind, DeviceKind::VirtioBlk { sectors: 131_072 });
        assert_eq!(d.pim(), 0x80);
        let t = &m.devices[1];
        assert_eq!((t.sch_no, t.devno), (1, 6));
        assert_eq!(t.kind, DeviceKind::Test { bytes: 4096 });
        assert_eq!(m.device(6), Some(t));
    }

    #[test]
    fn a_3390_resolves_its_image_against_the_file_and_takes_several_paths() {
        let dir = std::env::temp_dir().join(format!("vcss-machine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("vol.img"), b"x").unwrap();
        let file = dir.join("m.machine");
        std::fs::write(
            &file,
            "0190 3390 chpids=40,41 image=vol.img ro\nchpid 40 type=1b\nchpid 41 type=1b\n",
        )
        .unwrap();
        let m = Machine::from_file(&file).unwrap();
        let d = &m.devices[0];
        assert_eq!(
            d.kind,
            DeviceKind::Dasd3390 {
                image: dir.join("vol.img"),
                read_only: true
            }
        );
        assert_eq!(d.chpids, [0x40, 0x41]);
        assert_eq!(d.pim(), 0xC0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unreadable_file_is_a_whole_file_error() {
        let e = Machine::from_file(Path::new("/nonexistent/m.machine")).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(matches!(e.kind, MachineErrorKind::Read(_)));
        assert!(
            e.to_string()
                .starts_with("/nonexistent/m.machine: cannot read")
        );
    }

    #[test]
    fn unknown_type() {
        let (line, k) = kind("chpid 00 type=32\n0005 3380 chpids=00\n");
        assert_eq!(line, 2);
        assert_eq!(k, MachineErrorKind::UnknownType("3380".into()));
    }

    #[test]
    fn duplicate_devno_names_both_lines() {
        let e = parse("chpid 00 type=32\n0005 test chpids=00\n\n0.0.0005 test chpids=00\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.machine:4: duplicate device number 0005 (first on line 2)"
        );
    }

    #[test]
    fn missing_image_and_missing_image_option() {
        let (line, k) = kind("chpid 00 type=32\n0190 3390 chpids=00 image=/nonexistent.img\n");
        assert_eq!(line, 2);
        let MachineErrorKind::MissingImage { path, .. } = k else {
            panic!("{k:?}")
        };
        assert_eq!(path, Path::new("/nonexistent.img"));
        let (_, k) = kind("chpid 00 type=32\n0190 3390 chpids=00\n");
        assert_eq!(
            k,
            MachineErrorKind::MissingOption {
                ty: "3390",
                option: "image"
            }
        );
        let (_, k) = kind("chpid 00 type=32\n0190 3390 chpids=00 image=/\n");
        assert!(
            matches!(k, MachineErrorKind::MissingImage { reason, .. } if reason == "not a file")
        );
    }

    #[test]
    fn bad_chpids() {
        let reason = |text: &str| match kind(text) {
            (_, MachineErrorKind::BadChpid { reason, .. }) => reason,
            (_, k) => panic!("{k:?}"),
        };
        assert_eq!(reason("chpid 1g type=32\n"), "expected two hex digits");
        assert_eq!(reason("chpid 100 type=32\n"), "expected two hex digits");
        assert!(reason("chpid 00 type=32\nchpid 00 type=1b\n").contains("first on line 1"));
        assert!(reason("0005 test chpids=40\n").starts_with("not declared"));
        assert_eq!(
            reason("chpid 00 type=32\n0005 test chpids=00,00\n"),
            "given twice for this device"
        );
        assert_eq!(
            reason("chpid 00 type=32\n0005 test chpids=00,zz\n"),
            "expected two hex digits"
        );
        let mut nine = String::new();
        for c in 0..9 {
            nine.push_str(&format!("chpid {c:02x} type=32\n"));
        }
        nine.push_str("0005 test chpids=00,01,02,03,04,05,06,07,08\n");
        assert_eq!(reason(&nine), "a subchannel has at most 8 paths");
    }

    #[test]
    fn bad_devno_and_syntax() {
        assert_eq!(
            kind("12345 test chpids=00\n"),
            (1, MachineErrorKind::BadDevno("12345".into()))
        );
        assert_eq!(
            kind("0.1.0005 test chpids=00\n"),
            (1, MachineErrorKind::BadDevno("0.1.0005".into()))
        );
        assert!(matches!(kind("0005\n"), (1, MachineErrorKind::Syntax(_))));
        assert!(matches!(kind("chpid\n"), (1, MachineErrorKind::Syntax(_))));
    }

    #[test]
    fn options_unknown_duplicate_missing_and_bad() {
        assert_eq!(
            kind("chpid 00 type=32\n0005 virtio-blk-ccw chpids=00 bytes=4\n").1,
            MachineErrorKind::UnknownOption {
                ty: "virtio-blk-ccw",
                option: "bytes".into()
            }
        );
        assert_eq!(
            kind("chpid 00 type=32\n0005 test chpids=00 ro\n").1,
            MachineErrorKind::UnknownOption {
                ty: "test",
                option: "ro".into()
            }
        );
        assert_eq!(
            kind("chpid 00 type=32 speed=1\n").1,
            MachineErrorKind::UnknownOption {
                ty: "chpid",
                option: "speed".into()
            }
        );
        assert_eq!(
            kind("chpid 00 type=32\n0005 test chpids=00 chpids=00\n").1,
            MachineErrorKind::DuplicateOption("chpids".into())
        );
        assert_eq!(
            kind("chpid 00 type=32\n0005 test\n").1,
            MachineErrorKind::MissingOption {
                ty: "test",
                option: "chpids"
            }
        );
        assert_eq!(
            kind("chpid 00\n").1,
            MachineErrorKind::MissingOption {
                ty: "chpid",
                option: "type"
            }
        );
        for bad in [
            "chpid 00 type=zz\n",
            "chpid 00 type\n",
            "chpid 00 type=32\n0005 virtio-blk-ccw chpids=00 sectors=0\n",
            "chpid 00 type=32\n0005 virtio-blk-ccw chpids=00 sectors=lots\n",
            "chpid 00 type=32\n0005 test chpids=00 bytes=0\n",
            "chpid 00 type=32\n0005 test chpids=\n",
        ] {
            assert!(
                matches!(kind(bad).1, MachineErrorKind::BadValue { .. }),
                "{bad}"
            );
        }
    }
}
