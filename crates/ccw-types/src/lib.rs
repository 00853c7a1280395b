// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Architected s390 channel-I/O blocks, big-endian on the wire, decoded for humans.
//!
//! Every block has two levels, as smoltcp's wire module:
//! - the **stored form** ([`Ccw1`], [`Orb`], [`Scsw`], [`Irb`], [`Schib`], [`Crw`], [`Midaw`],
//!   [`IoRegion`], ...): a `#[repr(C)]` struct of big-endian fields (zerocopy + bitfield-struct)
//!   with exactly the architected size. `read_from(&[u8])` checks only the length, its accessors
//!   never panic, and `from_bytes(b).into_bytes() == b` for every `b`;
//! - the **validated level**, which rejects reserved bits and undefined values with a
//!   [`DecodeError`] naming the block and the field: a separate representation where the
//!   meaning differs from the layout ([`CcwRepr`], [`OrbRepr`], [`MidawRepr`], [`SenseId`],
//!   [`BasicSense`], [`SubchannelId`]), otherwise `parse` on the stored form itself
//!   ([`Scsw::parse`], [`Irb::parse`], [`Schib::parse`], ...). Whatever validates re-encodes to
//!   the same bytes.
//!
//! `Display` prints a line a person reads; `Debug` shows every field.
//!
//! The vfio-ccw regions ([`region`]) mix byte orders: architected blocks big-endian, the
//! kernel's `ret_code`/`command` host-native-endian.
//!
//! ```
//! use ccw_types::{CcwFormat, CcwRepr, Irb};
//! let ccw = CcwRepr::parse([0xE4, 0x20, 0x01, 0x00, 0x00, 0x00, 0x20, 0x00], CcwFormat::Format1)?;
//! assert_eq!(ccw.to_string(), "CCW cmd=0xe4 flags=SLI count=256 cda=0x00002000");
//! let mut irb = [0u8; 96];
//! irb[..12].copy_from_slice(&[0x00, 0x80, 0x40, 0x07, 0x00, 0x00, 0x10, 0x08, 0x0C, 0, 0, 0]);
//! let irb = Irb::read_from(&irb)?;
//! assert_eq!(irb.scsw.to_string(),
//!     "SCSW fctl=start actl=- stctl=primary|secondary|pending dstat=CE|DE cstat=- cpa=0x00001008 count=0");
//! # Ok::<(), ccw_types::DecodeError>(())
//! ```
//!
//! The crate is `no_std`, allocates nothing and contains no `unsafe`. Bit layouts follow the
//! project's reference digest (`s390-io-reference.md`), whose section numbers the item docs
//! cite.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

/// The README's example, compiled and run as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod answer;
mod block;
pub mod ccw;
pub mod crw;
pub mod eckd;
mod emw;
mod error;
mod flags;
mod idaw;
mod interrupt;
mod irb;
mod kind;
mod measure;
mod midaw;
mod orb;
pub mod region;
mod schib;
mod schid;
mod scsw;
mod sense;
mod senseid;

pub use answer::{ConditionCode, Errno, GuestAnswer};
pub use ccw::{Ccw0, Ccw1, CcwFlags, CcwFormat, CcwRepr, CommandClass};
pub use crw::{Crw, CrwChain, CrwReport};
pub use emw::Emw;
pub use error::{DecodeError, DecodeReason};
pub use idaw::IdawFormat;
pub use interrupt::{InterruptionId, IoInterruptionCode, cr6_isc_mask};
pub use irb::{Erw, Esw, EswFormat, Irb, SubchannelLogout};
pub use kind::ErrorKind;
pub use measure::{MeasurementBlock0, MeasurementBlock1, MeasurementFormat};
pub use midaw::{Midaw, MidawFlags, MidawRepr};
pub use orb::{CommandOrb, Orb, OrbControl, OrbPriorities, OrbRepr, TransportOrb};
pub use region::{CmdRegion, CrwRegion, IoRegion, SchibRegion};
pub use schib::{Pmcw, PmcwChars, PmcwFlags, Schib};
pub use schid::{DeviceId, SubchannelId, SubchannelIdWord};
pub use scsw::{
    ActivityControl, DeviceStatus, FunctionControl, Scsw, ScswControl, StatusControl,
    SubchannelStatus, TmScsw, TmScswControl,
};
pub use sense::{BasicSense, EckdSenseByte1, EckdSenseByte2, SenseByte0};
pub use senseid::{Ciw, CiwType, SenseId, SenseIdHeader};
