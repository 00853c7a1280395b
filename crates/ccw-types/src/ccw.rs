// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Channel-command words: format 0 and format 1 (reference §1).
//!
//! Two levels, as smoltcp's wire module: [`Ccw1`] and [`Ccw0`] are the 8 bytes as stored,
//! with accessors that cannot fail; [`CcwRepr`] is the validated, format-independent meaning.

use core::fmt;

use zerocopy::big_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{DecodeError, DecodeReason, take};
use crate::flags::flag_set;

flag_set! {
    /// The CCW flag byte (byte 1 of format 1, byte 4 of format 0).
    ///
    /// ```
    /// use ccw_types::CcwFlags;
    /// let f = CcwFlags::CC | CcwFlags::SLI;
    /// assert_eq!(f.bits(), 0x60);
    /// assert_eq!(f.to_string(), "CC|SLI");
    /// ```
    pub struct CcwFlags: 8 bits {
        /// Chain data: the next CCW continues this command with a new address and count.
        const CD = 0x80, "CD";
        /// Chain command: on normal ending, fetch and execute the next CCW.
        const CC = 0x40, "CC";
        /// Suppress the incorrect-length indication.
        const SLI = 0x20, "SLI";
        /// Skip: suppress transfer to storage (read, read backward, sense only).
        const SKIP = 0x10, "SKIP";
        /// Program-controlled interruption when this CCW becomes current.
        const PCI = 0x08, "PCI";
        /// The data address designates an IDAW list.
        const IDA = 0x04, "IDA";
        /// Suspend before executing this CCW (needs ORB S).
        const S = 0x02, "S";
        /// The data address designates a MIDAW list (needs ORB D).
        const MIDA = 0x01, "MIDA";
    }
}

/// Which CCW format a channel program uses (ORB bit F).
///
/// ```
/// use ccw_types::CcwFormat;
/// assert_eq!(CcwFormat::Format1.to_string(), "fmt-1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CcwFormat {
    /// Format 0: 24-bit data address.
    Format0,
    /// Format 1: 31-bit data address.
    Format1,
}

impl fmt::Display for CcwFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CcwFormat::Format0 => "fmt-0",
            CcwFormat::Format1 => "fmt-1",
        })
    }
}

/// The class of a command code, from its low-order bits (reference §1.4).
///
/// ```
/// use ccw_types::{CcwFormat, CommandClass};
/// let class = CommandClass::of(0x02, CcwFormat::Format1);
/// assert_eq!(class, CommandClass::Read);
/// assert!(class.is_input() && class.honours_skip());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandClass {
    /// `xxxx0000` (and format-1 `xxxx1000` other than 0x08): invalid, a program check.
    Invalid,
    /// `xxxxxx01`: storage to device.
    Write,
    /// `xxxxxx10`: device to storage.
    Read,
    /// `xxxxxx11`: control (0x03 is no-operation).
    Control,
    /// `xxxx0100`: sense (device to storage).
    Sense,
    /// `xxxx1100`: read backward (device to storage, descending addresses).
    ReadBackward,
    /// Transfer in channel: 0x08 in format 1, any `xxxx1000` in format 0.
    Tic,
}

impl CommandClass {
    /// Classifies `cmd` for a program of `format`.
    ///
    /// ```
    /// use ccw_types::{CcwFormat, CommandClass};
    /// assert_eq!(CommandClass::of(0xE4, CcwFormat::Format1), CommandClass::Sense);
    /// assert_eq!(CommandClass::of(0x18, CcwFormat::Format1), CommandClass::Invalid);
    /// assert_eq!(CommandClass::of(0x18, CcwFormat::Format0), CommandClass::Tic);
    /// ```
    pub const fn of(cmd: u8, format: CcwFormat) -> Self {
        match cmd & 0x0F {
            0x00 => CommandClass::Invalid,
            0x04 => CommandClass::Sense,
            0x0C => CommandClass::ReadBackward,
            0x08 => match format {
                CcwFormat::Format0 => CommandClass::Tic,
                CcwFormat::Format1 if cmd == 0x08 => CommandClass::Tic,
                CcwFormat::Format1 => CommandClass::Invalid,
            },
            _ => match cmd & 0x03 {
                0x01 => CommandClass::Write,
                0x02 => CommandClass::Read,
                _ => CommandClass::Control,
            },
        }
    }

    /// Whether data flows from the device into storage (read, read backward, sense).
    pub const fn is_input(self) -> bool {
        matches!(
            self,
            CommandClass::Read | CommandClass::ReadBackward | CommandClass::Sense
        )
    }

    /// Whether the SKIP flag suppresses the transfer for this class.
    pub const fn honours_skip(self) -> bool {
        self.is_input()
    }
}

/// Well-known command codes (reference §9.3).
pub mod cmd {
    /// Basic write.
    pub const WRITE: u8 = 0x01;
    /// Basic read.
    pub const READ: u8 = 0x02;
    /// Control no-operation.
    pub const NOP: u8 = 0x03;
    /// Basic sense.
    pub const SENSE: u8 = 0x04;
    /// Transfer in channel.
    pub const TIC: u8 = 0x08;
    /// Read backward.
    pub const READ_BACKWARD: u8 = 0x0C;
    /// Sense ID.
    pub const SENSE_ID: u8 = 0xE4;
    /// Read configuration data.
    pub const RCD: u8 = 0xFA;
}

/// A format-1 CCW as stored: command, flags, count, 31-bit data address.
///
/// ```
/// use ccw_types::Ccw1;
/// // Reference §13.1: SENSE ID, SLI, count 7, data at 0x12340.
/// let ccw = Ccw1::from_bytes([0xE4, 0x20, 0x00, 0x07, 0x00, 0x01, 0x23, 0x40]);
/// assert_eq!((ccw.cmd, ccw.count.get(), ccw.cda.get()), (0xE4, 7, 0x12340));
/// assert_eq!(ccw.to_string(), "CCW1 cmd=0xe4 flags=SLI count=7 cda=0x00012340");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Ccw1 {
    /// Command code.
    pub cmd: u8,
    /// Flag byte (see [`CcwFlags`]).
    pub flags: u8,
    /// Byte count.
    pub count: U16,
    /// Data address word (bit 0 must be zero).
    pub cda: U32,
}

/// A format-0 CCW as stored: command, 24-bit data address, flags, reserved byte, count.
///
/// ```
/// use ccw_types::Ccw0;
/// // Reference §13.1 in format 0.
/// let ccw = Ccw0::from_bytes([0xE4, 0x01, 0x23, 0x40, 0x20, 0x00, 0x00, 0x07]);
/// assert_eq!((ccw.cmd, ccw.data_address(), ccw.count.get()), (0xE4, 0x12340, 7));
/// assert_eq!(ccw.to_string(), "CCW0 cmd=0xe4 cda=0x012340 flags=SLI count=7");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Ccw0 {
    /// Command code.
    pub cmd: u8,
    /// 24-bit data address.
    pub cda: [u8; 3],
    /// Flag byte (see [`CcwFlags`]).
    pub flags: u8,
    /// Reserved (ignored by the channel subsystem).
    pub reserved: u8,
    /// Byte count.
    pub count: U16,
}

const _: () = assert!(size_of::<Ccw1>() == 8 && size_of::<Ccw0>() == 8);

macro_rules! ccw_bytes {
    ($t:ty) => {
        impl $t {
            /// The CCW stored in `bytes`.
            pub fn from_bytes(bytes: [u8; 8]) -> Self {
                zerocopy::transmute!(bytes)
            }
            /// The 8 bytes as stored.
            pub fn into_bytes(self) -> [u8; 8] {
                zerocopy::transmute!(self)
            }
            /// The CCW at the start of `bytes`, or an error if fewer than 8 bytes are given.
            pub fn read_from(bytes: &[u8]) -> Result<Self, DecodeError> {
                take::<8>("CCW", bytes).map(Self::from_bytes)
            }
            /// The flag byte as a set.
            pub fn flag_set(&self) -> CcwFlags {
                CcwFlags::from_bits(self.flags)
            }
        }
    };
}
ccw_bytes!(Ccw1);
ccw_bytes!(Ccw0);

impl Ccw0 {
    /// The 24-bit data address.
    pub fn data_address(&self) -> u32 {
        u32::from_be_bytes([0, self.cda[0], self.cda[1], self.cda[2]])
    }
}

impl fmt::Debug for Ccw1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ccw1")
            .field("cmd", &format_args!("{:#04x}", self.cmd))
            .field("flags", &self.flag_set())
            .field("count", &self.count.get())
            .field("cda", &format_args!("{:#010x}", self.cda.get()))
            .finish()
    }
}

impl fmt::Debug for Ccw0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ccw0")
            .field("cmd", &format_args!("{:#04x}", self.cmd))
            .field("cda", &format_args!("{:#08x}", self.data_address()))
            .field("flags", &self.flag_set())
            .field("reserved", &self.reserved)
            .field("count", &self.count.get())
            .finish()
    }
}

impl fmt::Display for Ccw1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CCW1 cmd={:#04x} flags={} count={} cda={:#010x}",
            self.cmd,
            self.flag_set(),
            self.count.get(),
            self.cda.get()
        )
    }
}

impl fmt::Display for Ccw0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CCW0 cmd={:#04x} cda={:#08x} flags={} count={}",
            self.cmd,
            self.data_address(),
            self.flag_set(),
            self.count.get()
        )?;
        if self.reserved != 0 {
            write!(f, " reserved={:#04x}", self.reserved)?;
        }
        Ok(())
    }
}

/// A validated CCW, independent of its format.
///
/// ```
/// use ccw_types::{CcwFlags, CcwFormat, CcwRepr};
/// let bytes = [0xE4, 0x20, 0x00, 0x07, 0x00, 0x01, 0x23, 0x40];
/// let ccw = CcwRepr::parse(bytes, CcwFormat::Format1)?;
/// assert_eq!(ccw, CcwRepr { cmd: 0xE4, flags: CcwFlags::SLI, count: 7, cda: 0x12340 });
/// // The same CCW in format 0 (reference §13.1).
/// assert_eq!(ccw.emit(CcwFormat::Format0)?, [0xE4, 0x01, 0x23, 0x40, 0x20, 0x00, 0x00, 0x07]);
/// assert_eq!(ccw.to_string(), "CCW cmd=0xe4 flags=SLI count=7 cda=0x00012340");
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CcwRepr {
    /// Command code.
    pub cmd: u8,
    /// Flags.
    pub flags: CcwFlags,
    /// Byte count.
    pub count: u16,
    /// Data address (31-bit for format 1, 24-bit for format 0). For a TIC, the next CCW.
    pub cda: u32,
}

impl CcwRepr {
    /// Decodes 8 stored bytes as a CCW of `format`.
    ///
    /// Format 1 rejects a data address with bit 0 set; format 0 ignores its reserved byte
    /// (as the channel subsystem does).
    pub fn parse(bytes: [u8; 8], format: CcwFormat) -> Result<Self, DecodeError> {
        match format {
            CcwFormat::Format1 => {
                let raw = Ccw1::from_bytes(bytes);
                let cda = raw.cda.get();
                if cda & 0x8000_0000 != 0 {
                    return Err(DecodeError::new(
                        "CCW",
                        "data address",
                        DecodeReason::Reserved { bits: 1 },
                    ));
                }
                Ok(Self {
                    cmd: raw.cmd,
                    flags: raw.flag_set(),
                    count: raw.count.get(),
                    cda,
                })
            }
            CcwFormat::Format0 => {
                let raw = Ccw0::from_bytes(bytes);
                Ok(Self {
                    cmd: raw.cmd,
                    flags: raw.flag_set(),
                    count: raw.count.get(),
                    cda: raw.data_address(),
                })
            }
        }
    }

    /// Encodes the CCW in `format`; fails if the address does not fit the format.
    pub fn emit(&self, format: CcwFormat) -> Result<[u8; 8], DecodeError> {
        match format {
            CcwFormat::Format1 => {
                if self.cda > 0x7FFF_FFFF {
                    return Err(DecodeError::new(
                        "CCW",
                        "data address",
                        DecodeReason::OutOfRange {
                            value: self.cda as u64,
                            max: 0x7FFF_FFFF,
                        },
                    ));
                }
                Ok(Ccw1 {
                    cmd: self.cmd,
                    flags: self.flags.bits(),
                    count: U16::new(self.count),
                    cda: U32::new(self.cda),
                }
                .into_bytes())
            }
            CcwFormat::Format0 => {
                if self.cda > 0x00FF_FFFF {
                    return Err(DecodeError::new(
                        "CCW",
                        "data address",
                        DecodeReason::OutOfRange {
                            value: self.cda as u64,
                            max: 0x00FF_FFFF,
                        },
                    ));
                }
                let a = self.cda.to_be_bytes();
                Ok(Ccw0 {
                    cmd: self.cmd,
                    cda: [a[1], a[2], a[3]],
                    flags: self.flags.bits(),
                    reserved: 0,
                    count: U16::new(self.count),
                }
                .into_bytes())
            }
        }
    }

    /// The command class in a program of `format`.
    pub const fn class(&self, format: CcwFormat) -> CommandClass {
        CommandClass::of(self.cmd, format)
    }

    /// Whether this is a transfer in channel in a program of `format`.
    pub const fn is_tic(&self, format: CcwFormat) -> bool {
        matches!(self.class(format), CommandClass::Tic)
    }
}

impl fmt::Display for CcwRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CCW cmd={:#04x} flags={} count={} cda={:#010x}",
            self.cmd, self.flags, self.count, self.cda
        )
    }
}
