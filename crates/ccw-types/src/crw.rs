// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The channel-report word (reference §6).

use core::fmt;

use bitfield_struct::bitfield;
use zerocopy::big_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{DecodeError, take};

/// Reporting-source codes.
pub mod rsc {
    /// Channel monitor.
    pub const MONITOR: u8 = 0x2;
    /// Subchannel.
    pub const SUBCHANNEL: u8 = 0x3;
    /// Channel path.
    pub const CHANNEL_PATH: u8 = 0x4;
    /// Configuration-alert facility.
    pub const CONFIG_ALERT: u8 = 0x9;
    /// Channel subsystem.
    pub const CSS: u8 = 0xB;
}

/// Error-recovery codes.
pub mod erc {
    /// Event information pending.
    pub const EVENT: u8 = 0x00;
    /// Available.
    pub const AVAILABLE: u8 = 0x01;
    /// Initialized.
    pub const INIT: u8 = 0x02;
    /// Temporary error.
    pub const TERROR: u8 = 0x03;
    /// Installed parameters initialized.
    pub const IPI: u8 = 0x04;
    /// Terminal.
    pub const TERM: u8 = 0x05;
    /// Permanent error, facility not initialized.
    pub const PERRN: u8 = 0x06;
    /// Permanent error, facility initialized.
    pub const PERRI: u8 = 0x07;
    /// Installed parameters modified.
    pub const PMOD: u8 = 0x08;
    /// Installed parameters restored.
    pub const IPR: u8 = 0x0A;
}

/// A channel-report word (4 bytes, big-endian).
///
/// ```
/// use ccw_types::{Crw, crw::{erc, rsc}};
/// // Reference §13.4: subchannel 0x0005, installed parameters modified.
/// let crw = Crw::from_bytes([0x03, 0x08, 0x00, 0x05]);
/// assert_eq!((crw.rsc(), crw.erc(), crw.rsid()), (rsc::SUBCHANNEL, erc::PMOD, 5));
/// assert_eq!(crw.to_string(), "CRW rsc=subchannel erc=pmod rsid=0x0005");
/// ```
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Crw {
    /// Reserved.
    pub reserved0: bool,
    /// S: solicited.
    pub solicited: bool,
    /// R: overflow (reports were lost before this one).
    pub overflow: bool,
    /// C: chained (more CRWs belong to this report).
    pub chained: bool,
    /// Reporting-source code.
    #[bits(4)]
    pub rsc: u8,
    /// A: ancillary report.
    pub ancillary: bool,
    /// Reserved.
    pub reserved1: bool,
    /// Error-recovery code.
    #[bits(6)]
    pub erc: u8,
    /// Reporting-source id.
    #[bits(16)]
    pub rsid: u16,
}

const _: () = assert!(size_of::<Crw>() == 4);

impl Crw {
    /// Size in bytes.
    pub const LEN: usize = 4;

    /// The CRW stored in `bytes`.
    pub fn from_bytes(bytes: [u8; 4]) -> Self {
        zerocopy::transmute!(bytes)
    }
    /// Reads a CRW from the start of `bytes`.
    pub fn read_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        take::<4>("CRW", bytes).map(Self::from_bytes)
    }
    /// The 4 bytes as stored.
    pub fn into_bytes(self) -> [u8; 4] {
        zerocopy::transmute!(self)
    }
    /// Whether this is the all-zero word STCRW stores when no report is pending.
    pub fn is_empty(&self) -> bool {
        self.into_bits().get() == 0
    }
}

fn rsc_name(rsc: u8) -> Option<&'static str> {
    Some(match rsc {
        rsc::MONITOR => "monitor",
        rsc::SUBCHANNEL => "subchannel",
        rsc::CHANNEL_PATH => "chpid",
        rsc::CONFIG_ALERT => "config-alert",
        rsc::CSS => "css",
        _ => return None,
    })
}

fn erc_name(erc: u8) -> Option<&'static str> {
    Some(match erc {
        erc::EVENT => "event",
        erc::AVAILABLE => "available",
        erc::INIT => "init",
        erc::TERROR => "temp-error",
        erc::IPI => "ipi",
        erc::TERM => "terminal",
        erc::PERRN => "perm-error-noinit",
        erc::PERRI => "perm-error-init",
        erc::PMOD => "pmod",
        erc::IPR => "ipr",
        _ => return None,
    })
}

impl fmt::Display for Crw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CRW rsc=")?;
        match rsc_name(self.rsc()) {
            Some(n) => f.write_str(n)?,
            None => write!(f, "{:#x}", self.rsc())?,
        }
        f.write_str(" erc=")?;
        match erc_name(self.erc()) {
            Some(n) => f.write_str(n)?,
            None => write!(f, "{:#x}", self.erc())?,
        }
        write!(f, " rsid={:#06x}", self.rsid())?;
        for (set, s) in [
            (self.solicited(), " solicited"),
            (self.overflow(), " overflow"),
            (self.chained(), " chained"),
            (self.ancillary(), " ancillary"),
        ] {
            if set {
                f.write_str(s)?;
            }
        }
        Ok(())
    }
}
