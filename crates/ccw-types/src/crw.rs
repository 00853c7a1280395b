// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The channel-report word (reference §6).

use core::fmt;

use bitfield_struct::bitfield;
use zerocopy::big_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::block::{reserved_zero, stored_block};
use crate::error::{DecodeError, DecodeReason};
use crate::schid::SubchannelId;

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

/// A channel-report word (4 bytes, big-endian). For chained reports see [`CrwReport`] and
/// [`CrwChain`].
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

stored_block!(Crw, "CRW", 4, validate);

impl Crw {
    /// Whether this is the all-zero word STCRW stores when no report is pending.
    pub fn is_empty(&self) -> bool {
        self.into_bits().get() == 0
    }

    /// Rejects the reserved bits 0 and 9.
    pub fn validate(&self) -> Result<(), DecodeError> {
        reserved_zero("CRW", "bit 0", self.reserved0() as u64)?;
        reserved_zero("CRW", "bit 9", self.reserved1() as u64)
    }

    /// A CRW with `rsc`, `erc` and `rsid` and every flag clear (`rsc` and `erc` are masked to
    /// their 4 and 6 bits).
    ///
    /// ```
    /// use ccw_types::{Crw, crw::{erc, rsc}};
    /// assert_eq!(Crw::report(rsc::SUBCHANNEL, erc::IPI, 5).into_bytes(), [0x03, 0x04, 0x00, 0x05]);
    /// ```
    pub const fn report(rsc: u8, erc: u8, rsid: u16) -> Self {
        Crw::new()
            .with_rsc(rsc & 0xF)
            .with_erc(erc & 0x3F)
            .with_rsid(rsid)
    }

    /// The CSSID of the second CRW of a chained subchannel report: `rsid >> 8`
    /// (reference §6.4, current Linux and QEMU).
    pub const fn chained_cssid(&self) -> u8 {
        (self.rsid() >> 8) as u8
    }

    /// The SSID of the second CRW of a chained subchannel report: `(rsid >> 4) & 3`
    /// (reference §6.4; Hercules and old Linux used `rsid >> 8`, treated as legacy).
    pub const fn chained_ssid(&self) -> u8 {
        ((self.rsid() >> 4) & 3) as u8
    }
}

/// One channel report: a CRW alone, or a CRW chained to its continuation (C = 1 on the
/// first). The CSS chains subchannel reports when the multiple-subchannel-set or
/// multiple-CSS facility is enabled; the second CRW carries the CSSID and SSID.
///
/// ```
/// use ccw_types::{Crw, CrwReport, SubchannelId, crw::erc};
/// // Reference §13.4: subchannel 0.1.0005, installed parameters modified, chained.
/// let report = CrwReport::subchannel(erc::PMOD, SubchannelId::new(0, 1, 5), true);
/// assert_eq!(report.first.into_bytes(), [0x13, 0x08, 0x00, 0x05]);
/// assert_eq!(report.second.unwrap().into_bytes(), [0x03, 0x08, 0x00, 0x10]);
/// assert_eq!(report.subchannel_id(), Some(SubchannelId::new(0, 1, 5)));
/// assert_eq!(report.to_string(), "CRW rsc=subchannel erc=pmod rsid=0x0005 chained + rsid=0x0010 (0.1.0005)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CrwReport {
    /// The first CRW (C = 1 when `second` is present).
    pub first: Crw,
    /// The continuation CRW of a chained report.
    pub second: Option<Crw>,
}

impl CrwReport {
    /// The report for subchannel `sch` with `erc`; `chained` adds the second CRW carrying
    /// CSSID and SSID (what the CSS does when MSS or MCSS-E is enabled).
    pub const fn subchannel(erc: u8, sch: SubchannelId, chained: bool) -> Self {
        let first = Crw::report(rsc::SUBCHANNEL, erc, sch.sch_no);
        if chained {
            let rsid = ((sch.cssid as u16) << 8) | (((sch.ssid & 3) as u16) << 4);
            Self {
                first: first.with_chained(true),
                second: Some(Crw::report(rsc::SUBCHANNEL, erc, rsid)),
            }
        } else {
            Self {
                first,
                second: None,
            }
        }
    }

    /// The subchannel a subchannel report (RSC 3) is about: the number from the first CRW,
    /// CSSID and SSID from the second (0 and 0 when not chained). `None` for other sources.
    pub const fn subchannel_id(&self) -> Option<SubchannelId> {
        if self.first.rsc() != rsc::SUBCHANNEL {
            return None;
        }
        let (cssid, ssid) = match self.second {
            Some(c) => (c.chained_cssid(), c.chained_ssid()),
            None => (0, 0),
        };
        Some(SubchannelId::new(cssid, ssid, self.first.rsid()))
    }
}

impl fmt::Display for CrwReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.first.fmt(f)?;
        if let Some(c) = self.second {
            write!(f, " + rsid={:#06x}", c.rsid())?;
        }
        if let (Some(id), Some(_)) = (self.subchannel_id(), self.second) {
            write!(f, " ({id})")?;
        }
        Ok(())
    }
}

/// Assembles [`CrwReport`]s from CRWs in the order STCRW (or vfio-ccw's CRW region) returns
/// them; holds at most one pending CRW, allocates nothing.
///
/// ```
/// use ccw_types::{Crw, CrwChain, SubchannelId};
/// let mut chain = CrwChain::new();
/// assert_eq!(chain.push(Crw::from_bytes([0x13, 0x08, 0x00, 0x05]))?, None);
/// let report = chain.push(Crw::from_bytes([0x03, 0x08, 0x00, 0x10]))?.unwrap();
/// assert_eq!(report.subchannel_id(), Some(SubchannelId::new(0, 1, 5)));
/// // An unchained CRW is a report on its own.
/// assert!(chain.push(Crw::from_bytes([0x03, 0x04, 0x00, 0x05]))?.is_some());
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrwChain {
    pending: Option<Crw>,
}

impl CrwChain {
    /// An empty assembler.
    pub const fn new() -> Self {
        Self { pending: None }
    }

    /// Feeds the next CRW. Returns the completed report, `None` while a chain is open.
    ///
    /// Fails (and drops the open chain) on a chain longer than two CRWs or whose
    /// continuation has a different reporting source; empty (all-zero) CRWs are ignored.
    /// The overflow flag is kept on whichever CRW carried it.
    pub fn push(&mut self, crw: Crw) -> Result<Option<CrwReport>, DecodeError> {
        if crw.is_empty() {
            return Ok(None);
        }
        match self.pending.take() {
            None if crw.chained() => {
                self.pending = Some(crw);
                Ok(None)
            }
            None => Ok(Some(CrwReport {
                first: crw,
                second: None,
            })),
            Some(first) if crw.chained() => Err(DecodeError::new(
                "CRW",
                "chain",
                DecodeReason::Invalid {
                    value: u64::from(first.into_bits().get()),
                },
            )),
            Some(first) if first.rsc() != crw.rsc() => Err(DecodeError::new(
                "CRW",
                "chained rsc",
                DecodeReason::Invalid {
                    value: u64::from(crw.rsc()),
                },
            )),
            Some(first) => Ok(Some(CrwReport {
                first,
                second: Some(crw),
            })),
        }
    }

    /// Whether a chained CRW is waiting for its continuation.
    pub const fn is_pending(&self) -> bool {
        self.pending.is_some()
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
