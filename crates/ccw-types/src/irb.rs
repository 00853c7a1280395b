// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The interruption-response block: SCSW + ESW + ECW + EMW, 96 bytes (reference §4).

use core::fmt;

use bitfield_struct::bitfield;
use zerocopy::big_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::DecodeError;
use crate::scsw::Scsw;

/// The extended-report word (ESW word 1).
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Erw {
    /// Reserved.
    pub reserved0: bool,
    /// L: request logging only.
    pub logging_only: bool,
    /// E: extended-logout pending.
    pub extended_logout: bool,
    /// A: authorization check.
    pub authorization_check: bool,
    /// P: path-verification required.
    pub path_verification: bool,
    /// T: channel-path timeout.
    pub channel_path_timeout: bool,
    /// F: failing-storage address valid.
    pub failing_address_valid: bool,
    /// S: concurrent sense (the ECW holds `scnt` bytes of sense data).
    pub concurrent_sense: bool,
    /// C: secondary-CCW address valid.
    pub secondary_ccw_valid: bool,
    /// R: failing-storage-address format (1 = 64-bit).
    pub failing_address_64: bool,
    /// Sense count.
    #[bits(6)]
    pub scnt: u8,
    /// Reserved.
    #[bits(16)]
    pub reserved1: u16,
}

/// The extended-status word (20 bytes). Word 0 is the subchannel logout when SCSW L = 1
/// (format 0), else byte 1 is the last-path-used mask (formats 1-3).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct Esw {
    /// Word 0: subchannel logout (format 0) or LPUM in byte 1 (formats 1-3).
    pub word0: U32,
    /// Extended-report word.
    pub erw: Erw,
    /// Failing-storage address (format 0, valid when ERW F).
    pub failing_address: U64,
    /// Secondary CCW address (format 0, valid when ERW C).
    pub secondary_ccw: U32,
}

impl Esw {
    /// The last-path-used mask of a format 1-3 ESW (byte 1 of word 0).
    pub fn lpum(&self) -> u8 {
        (self.word0.get() >> 16) as u8
    }
}

impl fmt::Debug for Esw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Esw")
            .field("word0", &format_args!("{:#010x}", self.word0.get()))
            .field("erw", &self.erw)
            .field(
                "failing_address",
                &format_args!("{:#x}", self.failing_address.get()),
            )
            .field(
                "secondary_ccw",
                &format_args!("{:#010x}", self.secondary_ccw.get()),
            )
            .finish()
    }
}

/// The IRB as stored by TEST SUBCHANNEL (96 bytes; vfio-ccw's `irb_area`).
///
/// ```
/// use ccw_types::{DeviceStatus, Irb};
/// // The unknown-command answer of the real device (s390x-guest.md): unit check with
/// // concurrent sense, command reject.
/// let mut bytes = [0u8; 96];
/// bytes[..12].copy_from_slice(&[0x04, 0x82, 0x40, 0x17, 0, 0, 0, 0, 0x02, 0, 0, 0]);
/// bytes[12..20].copy_from_slice(&[0x00, 0x80, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00]);
/// bytes[32] = 0x80;
/// let irb = Irb::read_from(&bytes)?;
/// assert_eq!(irb.scsw.device_status(), DeviceStatus::UNIT_CHECK);
/// assert!(irb.scsw.ctrl.esw_format0() && irb.scsw.ctrl.extended_control());
/// assert_eq!(irb.ecw[0], 0x80);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Irb {
    /// Subchannel-status word.
    pub scsw: Scsw,
    /// Extended-status word.
    pub esw: Esw,
    /// Extended-control word (concurrent sense when ERW S).
    pub ecw: [u8; 32],
    /// Extended-measurement word.
    pub emw: [u8; 32],
}

const _: () = assert!(size_of::<Esw>() == 20 && size_of::<Irb>() == 96);

impl Default for Irb {
    fn default() -> Self {
        zerocopy::FromZeros::new_zeroed()
    }
}

impl Irb {
    /// Size in bytes.
    pub const LEN: usize = 96;
    /// What TEST SUBCHANNEL stores when no EMW is stored (and Linux's `struct irb`).
    pub const SHORT_LEN: usize = 64;

    /// Reads an IRB from 64 (no EMW; the rest is zero) or 96 bytes.
    pub fn read_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::SHORT_LEN {
            return Err(DecodeError::too_short("IRB", Self::SHORT_LEN, bytes.len()));
        }
        let mut buf = [0u8; 96];
        let n = bytes.len().min(Self::LEN);
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(zerocopy::transmute!(buf))
    }
    /// The 96 bytes as stored.
    pub fn into_bytes(self) -> [u8; 96] {
        zerocopy::transmute!(self)
    }

    /// The concurrent-sense bytes, when the ERW says they are present.
    pub fn concurrent_sense(&self) -> Option<&[u8]> {
        let erw = self.esw.erw;
        if erw.concurrent_sense() {
            let n = usize::from(erw.scnt()).min(self.ecw.len());
            Some(&self.ecw[..n])
        } else {
            None
        }
    }
}

impl fmt::Debug for Irb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Irb")
            .field("scsw", &self.scsw)
            .field("esw", &self.esw)
            .field("ecw", &self.ecw)
            .field("emw", &self.emw)
            .finish()
    }
}

impl fmt::Display for Irb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IRB {}", self.scsw)?;
        if let Some(sense) = self.concurrent_sense() {
            f.write_str(" sense=")?;
            for b in sense.iter().take(4) {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}
