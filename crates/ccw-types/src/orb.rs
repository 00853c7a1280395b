// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The operation-request block, the operand of START SUBCHANNEL (reference §2).

use core::fmt;

use bitfield_struct::bitfield;
use zerocopy::big_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::block::write_names;
use crate::ccw::CcwFormat;
use crate::error::{DecodeError, DecodeReason};

/// ORB word 1 (bytes 4-7), command mode. In transport mode only key, B, LPM and X apply.
///
/// ```
/// use ccw_types::OrbControl;
/// // Reference §13.2 / the real device: F, P, H (C64), LPM 0xFF = 0x00C2FF00.
/// let c = OrbControl::new().with_format1(true).with_prefetch(true).with_format2_idaw(true).with_lpm(0xFF);
/// assert_eq!(c.into_bits().get(), 0x00C2_FF00);
/// ```
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct OrbControl {
    /// Storage-access key.
    #[bits(4)]
    pub key: u8,
    /// S: suspend control.
    pub suspend: bool,
    /// C: streaming mode (FICON).
    pub streaming: bool,
    /// M: modification control (FICON).
    pub modification: bool,
    /// Y: synchronization control (FICON).
    pub synchronization: bool,
    /// F: format-1 CCWs.
    pub format1: bool,
    /// P: prefetch allowed.
    pub prefetch: bool,
    /// I: initial-status interruption.
    pub initial_status: bool,
    /// A: address-limit checking.
    pub address_limit: bool,
    /// U: suppress the suspended interruption.
    pub suppress_suspended: bool,
    /// B: transport mode (TCW program).
    pub transport: bool,
    /// H: format-2 IDAWs (Linux `c64`).
    pub format2_idaw: bool,
    /// T: 2 KiB format-2 IDAWs (Linux `i2k`).
    pub idaw_2k: bool,
    /// Logical-path mask.
    #[bits(8)]
    pub lpm: u8,
    /// L: incorrect-length-suppression mode.
    pub ils: bool,
    /// D: MIDAW control.
    pub midaw: bool,
    /// Reserved, must be zero.
    #[bits(5)]
    pub reserved: u8,
    /// X: ORB extension (words 3-7 present).
    pub extension: bool,
}

/// The ORB as stored: 32 bytes (words 3-7 meaningful only when X is set).
///
/// ```
/// use ccw_types::Orb;
/// // Reference §13.2: intparm 0x12345678, F + P + H, LPM 0xFF, CPA 0x1000.
/// let orb = Orb::read_from(&[0x12, 0x34, 0x56, 0x78, 0x00, 0xC2, 0xFF, 0x00, 0x00, 0x00, 0x10, 0x00])?;
/// assert!(orb.ctrl.format1() && orb.ctrl.prefetch() && orb.ctrl.format2_idaw());
/// assert_eq!(orb.ctrl.lpm(), 0xFF);
/// assert_eq!(orb.cpa.get(), 0x1000);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Orb {
    /// Interruption parameter.
    pub intparm: U32,
    /// Control word.
    pub ctrl: OrbControl,
    /// Channel-program address (command mode) or TCW address (transport mode).
    pub cpa: U32,
    /// Word 3 (priorities) and reserved words 4-7.
    pub ext: [u8; 20],
}

const _: () = assert!(size_of::<Orb>() == 32);

impl Orb {
    /// Size of an ORB without the extension.
    pub const SHORT_LEN: usize = 12;
    /// Size of an extended ORB.
    pub const LEN: usize = 32;

    /// Reads an ORB from `bytes`: 12 bytes suffice when X is 0 (the rest is taken as zero),
    /// 32 are needed when X is 1.
    pub fn read_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::SHORT_LEN {
            return Err(DecodeError::too_short("ORB", Self::SHORT_LEN, bytes.len()));
        }
        let mut buf = [0u8; 32];
        let n = bytes.len().min(Self::LEN);
        buf[..n].copy_from_slice(&bytes[..n]);
        let orb: Orb = zerocopy::transmute!(buf);
        if orb.ctrl.extension() && bytes.len() < Self::LEN {
            return Err(DecodeError::too_short("ORB", Self::LEN, bytes.len()));
        }
        if !orb.ctrl.extension() {
            // Words 3-7 are not part of a non-extended ORB.
            return Ok(Orb {
                ext: [0; 20],
                ..orb
            });
        }
        Ok(orb)
    }

    /// The ORB stored in `bytes`, all 32 kept as they are (even words 3-7 with X = 0).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        zerocopy::transmute!(bytes)
    }

    /// The 32 bytes as stored.
    pub fn into_bytes(self) -> [u8; 32] {
        zerocopy::transmute!(self)
    }

    /// The first 12 bytes (what vfio-ccw's `orb_area` carries).
    pub fn short_bytes(&self) -> [u8; 12] {
        let b = self.into_bytes();
        let mut out = [0u8; 12];
        out.copy_from_slice(&b[..12]);
        out
    }
}

impl fmt::Debug for Orb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orb")
            .field("intparm", &format_args!("{:#010x}", self.intparm.get()))
            .field("ctrl", &self.ctrl)
            .field("cpa", &format_args!("{:#010x}", self.cpa.get()))
            .field("ext", &self.ext)
            .finish()
    }
}

/// Prints the validated ORB ([`OrbRepr`]'s line), or the raw words and why they do not
/// validate.
///
/// ```
/// use ccw_types::Orb;
/// let orb = Orb::read_from(&[0x12, 0x34, 0x56, 0x78, 0x00, 0xC2, 0xFF, 0x00, 0x00, 0x00, 0x10, 0x00])?;
/// assert_eq!(orb.to_string(), "ORB intparm=0x12345678 key=0 fmt-1 lpm=0xff cpa=0x00001000 ctl=P|H");
/// let bad = Orb::read_from(&[0, 0, 0, 0, 0x00, 0x80, 0xFF, 0x02, 0, 0, 0x10, 0])?;
/// assert_eq!(bad.to_string(),
///     "ORB intparm=0x00000000 ctrl=0x0080ff02 cpa=0x00001000 (invalid: ORB control word: reserved bits set (0x1))");
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
impl fmt::Display for Orb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match OrbRepr::from_orb(self) {
            Ok(repr) => repr.fmt(f),
            Err(e) => write!(
                f,
                "ORB intparm={:#010x} ctrl={:#010x} cpa={:#010x} (invalid: {e})",
                self.intparm.get(),
                self.ctrl.into_bits().get(),
                self.cpa.get()
            ),
        }
    }
}

/// ORB extension (word 3) priorities.
///
/// ```
/// use ccw_types::{CommandOrb, OrbPriorities};
/// let orb = CommandOrb { priorities: Some(OrbPriorities { css: 1, cu: 2 }), ..CommandOrb::new(0, 0x1000) };
/// let bytes = orb.emit().into_bytes();
/// assert_eq!((bytes[7] & 1, bytes[12], bytes[14]), (1, 1, 2)); // X set, priorities in word 3
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OrbPriorities {
    /// Channel-subsystem priority (byte 12).
    pub css: u8,
    /// Control-unit priority (byte 14).
    pub cu: u8,
}

/// A validated command-mode ORB.
///
/// ```
/// use ccw_types::{CcwFormat, CommandOrb, OrbRepr};
/// let bytes = [0x12, 0x34, 0x56, 0x78, 0x00, 0xC2, 0xFF, 0x00, 0x00, 0x00, 0x10, 0x00];
/// let OrbRepr::Command(orb) = OrbRepr::parse(&bytes)? else { unreachable!() };
/// assert_eq!(orb.format, CcwFormat::Format1);
/// assert_eq!((orb.intparm, orb.lpm, orb.cpa), (0x12345678, 0xFF, 0x1000));
/// assert_eq!(&orb.emit().into_bytes()[..12], &bytes);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandOrb {
    /// Interruption parameter.
    pub intparm: u32,
    /// Storage-access key.
    pub key: u8,
    /// S: suspend control.
    pub suspend: bool,
    /// C: streaming mode.
    pub streaming: bool,
    /// M: modification control.
    pub modification: bool,
    /// Y: synchronization control.
    pub synchronization: bool,
    /// F: the CCW format of the program.
    pub format: CcwFormat,
    /// P: prefetch allowed.
    pub prefetch: bool,
    /// I: initial-status interruption.
    pub initial_status: bool,
    /// A: address-limit checking.
    pub address_limit: bool,
    /// U: suppress the suspended interruption.
    pub suppress_suspended: bool,
    /// H: format-2 IDAWs.
    pub format2_idaw: bool,
    /// T: 2 KiB format-2 IDAWs.
    pub idaw_2k: bool,
    /// Logical-path mask.
    pub lpm: u8,
    /// L: incorrect-length-suppression mode.
    pub ils: bool,
    /// D: MIDAW control.
    pub midaw: bool,
    /// Priorities, when the ORB is extended (X).
    pub priorities: Option<OrbPriorities>,
    /// Channel-program address (31-bit).
    pub cpa: u32,
}

/// A transport-mode ORB (B = 1), recognized but not executed by ccw-rs.
///
/// ```
/// use ccw_types::{OrbRepr, TransportOrb};
/// let bytes = [0, 0, 0, 7, 0x00, 0x04, 0x80, 0x00, 0x00, 0x02, 0x00, 0x00];
/// let OrbRepr::Transport(t) = OrbRepr::parse(&bytes)? else { unreachable!() };
/// assert_eq!(t, TransportOrb { intparm: 7, key: 0, lpm: 0x80, tcw: 0x20000, priorities: None });
/// assert_eq!(t.to_string(), "ORB transport-mode intparm=0x00000007 key=0 lpm=0x80 tcw=0x00020000");
/// assert_eq!(t.emit().short_bytes(), bytes);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransportOrb {
    /// Interruption parameter.
    pub intparm: u32,
    /// Storage-access key.
    pub key: u8,
    /// Logical-path mask.
    pub lpm: u8,
    /// Address of the transport-control word.
    pub tcw: u32,
    /// Priorities, when the ORB is extended (X).
    pub priorities: Option<OrbPriorities>,
}

/// A validated ORB of either channel-program type, told apart by bit B.
///
/// ```
/// use ccw_types::OrbRepr;
/// let orb = OrbRepr::parse(&[0x12, 0x34, 0x56, 0x78, 0x00, 0xC2, 0xFF, 0x00, 0x00, 0x00, 0x10, 0x00])?;
/// assert!(matches!(orb, OrbRepr::Command(_)));
/// // Reserved bits 26-30 set: what SSCH rejects with an operand exception.
/// let err = OrbRepr::parse(&[0, 0, 0, 0, 0x00, 0x80, 0xFF, 0x3E, 0, 0, 0x10, 0]).unwrap_err();
/// assert_eq!((err.block, err.field), ("ORB", "control word"));
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrbRepr {
    /// Command mode (CCW program).
    Command(CommandOrb),
    /// Transport mode (TCW program, B = 1).
    Transport(TransportOrb),
}

fn priorities(orb: &Orb) -> Result<Option<OrbPriorities>, DecodeError> {
    if !orb.ctrl.extension() {
        return Ok(None);
    }
    let e = &orb.ext;
    // Bytes 13 and 15 of word 3 and words 4-7 are reserved.
    if e[1] != 0 || e[3] != 0 || e[4..].iter().any(|&b| b != 0) {
        return Err(DecodeError::new(
            "ORB",
            "extension",
            DecodeReason::Reserved { bits: 0 },
        ));
    }
    Ok(Some(OrbPriorities {
        css: e[0],
        cu: e[2],
    }))
}

impl OrbRepr {
    /// Validates an ORB from 12 (X = 0) or 32 bytes.
    ///
    /// Rejects what START SUBCHANNEL rejects with an operand exception: reserved bits 26-30 of
    /// word 1, CPA bit 0, reserved extension bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_orb(&Orb::read_from(bytes)?)
    }

    /// Validates a stored ORB.
    pub fn from_orb(orb: &Orb) -> Result<Self, DecodeError> {
        let c = orb.ctrl;
        let cpa = orb.cpa.get();
        let prio = priorities(orb)?;
        if c.transport() {
            let reserved = c.into_bits().get() & 0x0FFB_00FE;
            if reserved != 0 {
                return Err(DecodeError::new(
                    "ORB",
                    "control word",
                    DecodeReason::Reserved {
                        bits: reserved as u64,
                    },
                ));
            }
            return Ok(OrbRepr::Transport(TransportOrb {
                intparm: orb.intparm.get(),
                key: c.key(),
                lpm: c.lpm(),
                tcw: cpa,
                priorities: prio,
            }));
        }
        if c.reserved() != 0 {
            return Err(DecodeError::new(
                "ORB",
                "control word",
                DecodeReason::Reserved {
                    bits: c.reserved() as u64,
                },
            ));
        }
        if cpa & 0x8000_0000 != 0 {
            return Err(DecodeError::new(
                "ORB",
                "cpa",
                DecodeReason::Reserved { bits: 1 },
            ));
        }
        Ok(OrbRepr::Command(CommandOrb {
            intparm: orb.intparm.get(),
            key: c.key(),
            suspend: c.suspend(),
            streaming: c.streaming(),
            modification: c.modification(),
            synchronization: c.synchronization(),
            format: if c.format1() {
                CcwFormat::Format1
            } else {
                CcwFormat::Format0
            },
            prefetch: c.prefetch(),
            initial_status: c.initial_status(),
            address_limit: c.address_limit(),
            suppress_suspended: c.suppress_suspended(),
            format2_idaw: c.format2_idaw(),
            idaw_2k: c.idaw_2k(),
            lpm: c.lpm(),
            ils: c.ils(),
            midaw: c.midaw(),
            priorities: prio,
            cpa,
        }))
    }

    /// Encodes the ORB (32 bytes; X is set when priorities are present).
    pub fn emit(&self) -> Orb {
        match self {
            OrbRepr::Command(o) => o.emit(),
            OrbRepr::Transport(t) => t.emit(),
        }
    }
}

impl TransportOrb {
    /// Encodes the ORB (X is set when priorities are present).
    pub fn emit(&self) -> Orb {
        let ctrl = OrbControl::new()
            .with_key(self.key & 0xF)
            .with_transport(true)
            .with_lpm(self.lpm)
            .with_extension(self.priorities.is_some());
        with_priorities(
            Orb {
                intparm: U32::new(self.intparm),
                ctrl,
                cpa: U32::new(self.tcw),
                ext: [0; 20],
            },
            self.priorities,
        )
    }
}

impl fmt::Display for TransportOrb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ORB transport-mode intparm={:#010x} key={} lpm={:#04x} tcw={:#010x}",
            self.intparm, self.key, self.lpm, self.tcw
        )?;
        if let Some(p) = self.priorities {
            write!(f, " prio=css:{},cu:{}", p.css, p.cu)?;
        }
        Ok(())
    }
}

fn with_priorities(mut orb: Orb, prio: Option<OrbPriorities>) -> Orb {
    if let Some(p) = prio {
        orb.ext[0] = p.css;
        orb.ext[2] = p.cu;
    }
    orb
}

impl CommandOrb {
    /// A plain format-1 ORB for `cpa`: prefetch allowed, format-2 IDAWs with 4 KiB blocks,
    /// all paths, no other controls. What Linux builds for an ordinary start.
    pub const fn new(intparm: u32, cpa: u32) -> Self {
        Self {
            intparm,
            key: 0,
            suspend: false,
            streaming: false,
            modification: false,
            synchronization: false,
            format: CcwFormat::Format1,
            prefetch: true,
            initial_status: false,
            address_limit: false,
            suppress_suspended: false,
            format2_idaw: true,
            idaw_2k: false,
            lpm: 0xFF,
            ils: false,
            midaw: false,
            priorities: None,
            cpa,
        }
    }

    /// Encodes the ORB (X is set when priorities are present).
    pub fn emit(&self) -> Orb {
        let ctrl = OrbControl::new()
            .with_key(self.key & 0xF)
            .with_suspend(self.suspend)
            .with_streaming(self.streaming)
            .with_modification(self.modification)
            .with_synchronization(self.synchronization)
            .with_format1(self.format == CcwFormat::Format1)
            .with_prefetch(self.prefetch)
            .with_initial_status(self.initial_status)
            .with_address_limit(self.address_limit)
            .with_suppress_suspended(self.suppress_suspended)
            .with_format2_idaw(self.format2_idaw)
            .with_idaw_2k(self.idaw_2k)
            .with_lpm(self.lpm)
            .with_ils(self.ils)
            .with_midaw(self.midaw)
            .with_extension(self.priorities.is_some());
        with_priorities(
            Orb {
                intparm: U32::new(self.intparm),
                ctrl,
                cpa: U32::new(self.cpa),
                ext: [0; 20],
            },
            self.priorities,
        )
    }

    /// The IDAW format and block size this ORB selects for IDA CCWs (reference §8.1).
    pub const fn idaw_format(&self) -> crate::IdawFormat {
        crate::IdawFormat::from_orb_bits(self.format2_idaw, self.idaw_2k)
    }
}

impl fmt::Display for CommandOrb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ORB intparm={:#010x} key={} {} lpm={:#04x} cpa={:#010x}",
            self.intparm, self.key, self.format, self.lpm, self.cpa
        )?;
        let flags = [
            (self.suspend, "S"),
            (self.streaming, "C"),
            (self.modification, "M"),
            (self.synchronization, "Y"),
            (self.prefetch, "P"),
            (self.initial_status, "I"),
            (self.address_limit, "A"),
            (self.suppress_suspended, "U"),
            (self.format2_idaw, "H"),
            (self.idaw_2k, "T"),
            (self.ils, "L"),
            (self.midaw, "D"),
        ];
        f.write_str(" ctl=")?;
        write_names(f, &flags)?;
        if let Some(p) = self.priorities {
            write!(f, " prio=css:{},cu:{}", p.css, p.cu)?;
        }
        Ok(())
    }
}

impl fmt::Display for OrbRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrbRepr::Command(o) => o.fmt(f),
            OrbRepr::Transport(t) => t.fmt(f),
        }
    }
}
