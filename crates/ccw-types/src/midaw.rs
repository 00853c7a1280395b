// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Modified indirect-data-address words (reference §8.4): 16 bytes, quadword aligned.

use core::fmt;

use zerocopy::big_endian::{U16, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::block::{reserved_zero, stored_block};
use crate::error::{DecodeError, DecodeReason};
use crate::flags::flag_set;

flag_set! {
    /// MIDAW flags (byte 5). Bits 0x1F are reserved.
    ///
    /// ```
    /// use ccw_types::MidawFlags;
    /// assert_eq!((MidawFlags::LAST | MidawFlags::SKIP).to_string(), "last|skip");
    /// ```
    pub struct MidawFlags: 8 bits {
        /// Last MIDAW of the list.
        const LAST = 0x80, "last";
        /// Skip: no data transfer for this piece.
        const SKIP = 0x40, "skip";
        /// Data-transfer interruption.
        const DTI = 0x20, "dti";
    }
}

/// A MIDAW as stored: 5 reserved bytes, flags, count, 64-bit data address.
///
/// ```
/// use ccw_types::Midaw;
/// // Reference §13.5: last, count 0x200, address 0x1_2345_6000.
/// let m = Midaw::from_bytes([0, 0, 0, 0, 0, 0x80, 0x02, 0x00, 0, 0, 0, 0x01, 0x23, 0x45, 0x60, 0x00]);
/// assert_eq!((m.count.get(), m.addr.get()), (0x200, 0x1_2345_6000));
/// assert_eq!(m.to_string(), "MIDAW flags=last count=512 addr=0x123456000");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Midaw {
    /// Bytes 0-4: reserved, must be zero.
    pub reserved: [u8; 5],
    /// Byte 5: flags (see [`MidawFlags`]).
    pub flags: u8,
    /// Byte count.
    pub count: U16,
    /// 64-bit data address.
    pub addr: U64,
}

const _: () = assert!(size_of::<Midaw>() == 16);

stored_block!(Midaw, "MIDAW", 16, validate);

impl Midaw {
    /// Rejects what a channel subsystem rejects with a program check on the MIDAW alone:
    /// non-zero reserved bytes 0-4, reserved flag bits, a zero count.
    pub fn validate(&self) -> Result<(), DecodeError> {
        MidawRepr::from_midaw(self).map(|_| ())
    }
    /// The flag byte as a set (reserved bits dropped).
    pub fn flag_set(&self) -> MidawFlags {
        MidawFlags::from_bits(self.flags)
    }
}

impl fmt::Debug for Midaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Midaw")
            .field("reserved", &self.reserved)
            .field("flags", &format_args!("{:#04x}", self.flags))
            .field("count", &self.count.get())
            .field("addr", &format_args!("{:#x}", self.addr.get()))
            .finish()
    }
}

impl fmt::Display for Midaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MIDAW flags={} count={} addr={:#x}",
            self.flag_set(),
            self.count.get(),
            self.addr.get()
        )?;
        let reserved = self.flags & 0x1F != 0 || self.reserved != [0; 5];
        if reserved {
            f.write_str(" (reserved bits set)")?;
        }
        Ok(())
    }
}

/// A validated MIDAW.
///
/// ```
/// use ccw_types::{MidawFlags, MidawRepr};
/// let bytes = [0, 0, 0, 0, 0, 0x80, 0x02, 0x00, 0, 0, 0, 0x01, 0x23, 0x45, 0x60, 0x00];
/// let m = MidawRepr::parse(&bytes)?;
/// assert_eq!(m, MidawRepr { flags: MidawFlags::LAST, count: 0x200, addr: 0x1_2345_6000 });
/// assert!(!m.crosses_page());
/// assert_eq!(m.emit().into_bytes(), bytes);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MidawRepr {
    /// Flags (last, skip, DTI).
    pub flags: MidawFlags,
    /// Byte count (never zero).
    pub count: u16,
    /// Data address.
    pub addr: u64,
}

impl MidawRepr {
    /// Decodes and validates a MIDAW from the start of `bytes` (see [`Midaw::validate`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_midaw(&Midaw::read_from(bytes)?)
    }

    /// Validates a stored MIDAW.
    pub fn from_midaw(m: &Midaw) -> Result<Self, DecodeError> {
        let reserved = m
            .reserved
            .iter()
            .fold(0u64, |a, &b| (a << 8) | u64::from(b));
        reserved_zero("MIDAW", "reserved bytes", reserved)?;
        reserved_zero("MIDAW", "flags", u64::from(m.flags & 0x1F))?;
        if m.count.get() == 0 {
            return Err(DecodeError::new(
                "MIDAW",
                "count",
                DecodeReason::Invalid { value: 0 },
            ));
        }
        Ok(Self {
            flags: m.flag_set(),
            count: m.count.get(),
            addr: m.addr.get(),
        })
    }

    /// The stored form.
    pub fn emit(&self) -> Midaw {
        Midaw {
            reserved: [0; 5],
            flags: self.flags.bits(),
            count: U16::new(self.count),
            addr: U64::new(self.addr),
        }
    }

    /// Whether the data area crosses a 4 KiB boundary, which the architecture forbids unless
    /// the skip flag is set (for read backward the area ends at `addr` and runs downward; see
    /// [`MidawRepr::crosses_page_backward`]).
    pub const fn crosses_page(&self) -> bool {
        let last = self
            .addr
            .wrapping_add((self.count as u64).saturating_sub(1));
        (self.addr ^ last) & !0xFFF != 0 || last < self.addr
    }

    /// Whether a read-backward data area (`addr` is its highest byte) goes below the start of
    /// its 4 KiB page.
    pub const fn crosses_page_backward(&self) -> bool {
        (self.addr & 0xFFF) + 1 < self.count as u64
    }
}

impl fmt::Display for MidawRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.emit().fmt(f)
    }
}
