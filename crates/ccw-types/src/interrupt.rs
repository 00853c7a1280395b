// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The I/O-interruption code (lowcore 0xB8-0xC3, TEST PENDING INTERRUPTION's operand) and the
//! CR6 interruption-subclass mask (reference §11).

use core::fmt;

use bitfield_struct::bitfield;
use zerocopy::big_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::block::{reserved_zero, stored_block};
use crate::error::DecodeError;
use crate::schid::SubchannelId;

/// The interruption-identification word (lowcore 0xC0).
///
/// ```
/// use ccw_types::InterruptionId;
/// // Reference §13.5: an adapter interruption on ISC 3.
/// let id = InterruptionId::from_bytes([0x98, 0x00, 0x00, 0x00]);
/// assert!(id.adapter());
/// assert_eq!(id.isc(), 3);
/// assert_eq!(InterruptionId::new().with_adapter(true).with_isc(3), id);
/// assert_eq!(id.to_string(), "adapter isc=3");
/// ```
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct InterruptionId {
    /// A: adapter interruption (subchannel id and intparm are zero).
    pub adapter: bool,
    /// Bit 1 (Linux `directed_irq`; meaning unverified).
    pub directed: bool,
    /// Interruption subclass.
    #[bits(3)]
    pub isc: u8,
    /// Bits 5-16: reserved.
    #[bits(12)]
    pub reserved0: u16,
    /// Bits 17-19 (Linux `type`; meaning unverified).
    #[bits(3)]
    pub itype: u8,
    /// Bits 20-31: reserved.
    #[bits(12)]
    pub reserved1: u16,
}

stored_block!(InterruptionId, "interruption id", 4, validate);

impl InterruptionId {
    /// Rejects the reserved bits 5-16 and 20-31.
    pub fn validate(&self) -> Result<(), DecodeError> {
        reserved_zero("interruption id", "bits 5-16", u64::from(self.reserved0()))?;
        reserved_zero("interruption id", "bits 20-31", u64::from(self.reserved1()))
    }
}

/// `adapter isc=3` or `subchannel isc=3` (plus the unverified bits when set).
impl fmt::Display for InterruptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.adapter() {
            "adapter"
        } else {
            "subchannel"
        };
        write!(f, "{kind} isc={}", self.isc())?;
        if self.directed() {
            f.write_str(" directed")?;
        }
        if self.itype() != 0 {
            write!(f, " type={}", self.itype())?;
        }
        Ok(())
    }
}

/// The I/O-interruption code: subchannel-identification word, interruption parameter and
/// interruption-identification word (12 bytes).
///
/// ```
/// use ccw_types::{IoInterruptionCode, SubchannelId};
/// // Reference §13.5: ssid 0, subchannel 5, intparm 0x12345678, ISC 3.
/// let bytes = [0x00, 0x01, 0x00, 0x05, 0x12, 0x34, 0x56, 0x78, 0x18, 0x00, 0x00, 0x00];
/// let code = IoInterruptionCode::parse(&bytes)?;
/// assert_eq!(code.subchannel_id()?, SubchannelId::new(0, 0, 5));
/// assert_eq!((code.intparm.get(), code.id.isc()), (0x12345678, 3));
/// assert_eq!(code.to_string(), "I/O interruption 0.0.0005 intparm=0x12345678 isc=3");
/// assert_eq!(code.into_bytes(), bytes);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct IoInterruptionCode {
    /// Subchannel-identification word (zero for adapter interruptions).
    pub sid: U32,
    /// Interruption parameter.
    pub intparm: U32,
    /// Interruption-identification word.
    pub id: InterruptionId,
}

const _: () = assert!(size_of::<IoInterruptionCode>() == 12);

stored_block!(IoInterruptionCode, "interruption code", 12, validate);

impl IoInterruptionCode {
    /// The code for a subchannel interruption.
    pub fn subchannel(sch: SubchannelId, intparm: u32, isc: u8) -> Self {
        Self {
            sid: U32::new(sch.to_word()),
            intparm: U32::new(intparm),
            id: InterruptionId::new().with_isc(isc & 7),
        }
    }
    /// The subchannel the interruption is for (an error for adapter interruptions, whose
    /// subchannel-identification word is zero).
    pub fn subchannel_id(&self) -> Result<SubchannelId, DecodeError> {
        SubchannelId::from_word(self.sid.get())
    }
    /// Rejects reserved bits in the identification word and, for a subchannel interruption,
    /// an invalid subchannel-identification word; an adapter interruption must carry zero
    /// there.
    pub fn validate(&self) -> Result<(), DecodeError> {
        self.id.validate()?;
        if self.id.adapter() {
            reserved_zero("interruption code", "sid", u64::from(self.sid.get()))
        } else {
            self.subchannel_id().map(|_| ())
        }
    }
}

impl fmt::Debug for IoInterruptionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoInterruptionCode")
            .field("sid", &format_args!("{:#010x}", self.sid.get()))
            .field("intparm", &format_args!("{:#010x}", self.intparm.get()))
            .field("id", &self.id)
            .finish()
    }
}

impl fmt::Display for IoInterruptionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.id.adapter() {
            return write!(f, "adapter interruption isc={}", self.id.isc());
        }
        match self.subchannel_id() {
            Ok(id) => write!(f, "I/O interruption {id}")?,
            Err(_) => write!(f, "I/O interruption sid={:#010x}", self.sid.get())?,
        }
        write!(
            f,
            " intparm={:#010x} isc={}",
            self.intparm.get(),
            self.id.isc()
        )
    }
}

/// The CR6 bit enabling interruption subclass `isc` (0-7; masked): `0x8000_0000 >> isc`.
///
/// ```
/// // Reference §13.5: CR6 enabling ISC 3 only.
/// assert_eq!(ccw_types::cr6_isc_mask(3), 0x0000_0000_1000_0000);
/// ```
pub const fn cr6_isc_mask(isc: u8) -> u64 {
    0x8000_0000u64 >> (isc & 7)
}
