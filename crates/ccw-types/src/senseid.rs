// SPDX-License-Identifier: Apache-2.0 OR MIT

//! SENSE ID data (command 0xE4) and command-information words (reference §9.1, §9.2).

use core::fmt;

use bitfield_struct::bitfield;
use zerocopy::big_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::block::{reserved_zero, stored_block};
use crate::error::{DecodeError, DecodeReason};

/// A command-information word: how to issue a device's extended commands.
///
/// ```
/// use ccw_types::{Ciw, CiwType};
/// // Reference §13.5: the RCD CIW.
/// let ciw = Ciw::parse(&[0x40, 0xFA, 0x01, 0x00])?;
/// assert_eq!((ciw.ciw_type(), ciw.cmd(), ciw.count()), (CiwType::ReadConfigurationData, 0xFA, 256));
/// assert_eq!(ciw.to_string(), "CIW RCD cmd=0xfa count=256");
/// assert_eq!(Ciw::entry(CiwType::ReadConfigurationData, 0xFA, 256), ciw);
/// // ET must be binary 01.
/// assert!(Ciw::parse(&[0x80, 0xFA, 0x01, 0x00]).is_err());
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[bitfield(u32, repr = U32, from = U32::new, into = U32::get, order = Msb)]
#[derive(PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Ciw {
    /// ET: entry type, must be binary 01.
    #[bits(2)]
    pub et: u8,
    /// Reserved.
    #[bits(2)]
    pub reserved: u8,
    /// CT: command type (see [`CiwType`]).
    #[bits(4)]
    pub ct: u8,
    /// Command code to use.
    #[bits(8)]
    pub cmd: u8,
    /// Byte count to use.
    #[bits(16)]
    pub count: u16,
}

/// What a CIW's command does (its CT field).
///
/// ```
/// use ccw_types::CiwType;
/// assert_eq!(CiwType::from_ct(2), CiwType::ReadNodeId);
/// assert_eq!(CiwType::Other(3).ct(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CiwType {
    /// CT 0: read configuration data.
    ReadConfigurationData,
    /// CT 1: set interface identifier.
    SetInterfaceId,
    /// CT 2: read node identifier.
    ReadNodeId,
    /// Any other CT (3 is emitted by Hercules for 2105/2107 but not named by Linux).
    Other(u8),
}

impl CiwType {
    /// The type for a CT value (masked to 4 bits).
    pub const fn from_ct(ct: u8) -> Self {
        match ct & 0xF {
            0 => CiwType::ReadConfigurationData,
            1 => CiwType::SetInterfaceId,
            2 => CiwType::ReadNodeId,
            other => CiwType::Other(other),
        }
    }
    /// The CT value.
    pub const fn ct(self) -> u8 {
        match self {
            CiwType::ReadConfigurationData => 0,
            CiwType::SetInterfaceId => 1,
            CiwType::ReadNodeId => 2,
            CiwType::Other(ct) => ct & 0xF,
        }
    }
}

impl fmt::Display for CiwType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CiwType::ReadConfigurationData => f.write_str("RCD"),
            CiwType::SetInterfaceId => f.write_str("SII"),
            CiwType::ReadNodeId => f.write_str("RNI"),
            CiwType::Other(ct) => write!(f, "CT{ct}"),
        }
    }
}

stored_block!(Ciw, "CIW", 4, validate);

impl Ciw {
    /// A well-formed CIW (ET = 01) of `ty` for command `cmd` with `count`.
    pub const fn entry(ty: CiwType, cmd: u8, count: u16) -> Self {
        Ciw::new()
            .with_et(1)
            .with_ct(ty.ct())
            .with_cmd(cmd)
            .with_count(count)
    }
    /// The command type.
    pub const fn ciw_type(&self) -> CiwType {
        CiwType::from_ct(self.ct())
    }
    /// Rejects an entry type other than 01 and set reserved bits.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.et() != 1 {
            return Err(DecodeError::new(
                "CIW",
                "entry type",
                DecodeReason::Invalid {
                    value: u64::from(self.et()),
                },
            ));
        }
        reserved_zero("CIW", "bits 2-3", u64::from(self.reserved()))
    }
}

impl fmt::Display for Ciw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CIW {} cmd={:#04x} count={}",
            self.ciw_type(),
            self.cmd(),
            self.count()
        )?;
        if self.et() != 1 || self.reserved() != 0 {
            write!(f, " (et={} reserved={})", self.et(), self.reserved())?;
        }
        Ok(())
    }
}

/// The first 8 bytes of SENSE ID data as stored.
///
/// ```
/// use ccw_types::SenseIdHeader;
/// // The real device (virtio-blk behind QEMU) answered `ff 38 32 02 00 ..`.
/// let h = SenseIdHeader::from_bytes([0xFF, 0x38, 0x32, 0x02, 0x00, 0x00, 0x00, 0x00]);
/// assert_eq!((h.marker, h.cu_type.get(), h.cu_model), (0xFF, 0x3832, 2));
/// assert_eq!(h.to_string(), "SENSE ID cu=3832/02 dev=0000/00");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct SenseIdHeader {
    /// Byte 0: 0xFF for the extended SENSE ID format.
    pub marker: u8,
    /// Control-unit type.
    pub cu_type: U16,
    /// Control-unit model.
    pub cu_model: u8,
    /// Device type.
    pub dev_type: U16,
    /// Device model.
    pub dev_model: u8,
    /// Byte 7: reserved.
    pub reserved: u8,
}

const _: () = assert!(size_of::<SenseIdHeader>() == 8 && size_of::<Ciw>() == 4);

stored_block!(SenseIdHeader, "SENSE ID", 8);

impl fmt::Display for SenseIdHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SENSE ID cu={:04x}/{:02x} dev={:04x}/{:02x}",
            self.cu_type.get(),
            self.cu_model,
            self.dev_type.get(),
            self.dev_model
        )
    }
}

/// Validated SENSE ID data with up to 62 CIWs, held in place (no allocation).
///
/// The CIW list ends at the data's end or at the first all-zero word; everything after that
/// word must be zero too.
///
/// ```
/// use ccw_types::{CiwType, SenseId};
/// // Reference §13.5: CU 3990-E9, device 3390-0A, three CIWs.
/// let bytes = [0xFF, 0x39, 0x90, 0xE9, 0x33, 0x90, 0x0A, 0x00,
///              0x40, 0xFA, 0x01, 0x00, 0x41, 0x27, 0x00, 0x04, 0x42, 0x3E, 0x00, 0x60];
/// let id = SenseId::parse(&bytes)?;
/// assert_eq!((id.cu_type, id.cu_model, id.dev_type, id.dev_model), (0x3990, 0xE9, 0x3390, 0x0A));
/// assert_eq!(id.ciws().len(), 3);
/// assert_eq!(id.ciw(CiwType::ReadConfigurationData).map(|c| c.cmd()), Some(0xFA));
/// assert_eq!(id.to_string(),
///     "SENSE ID cu=3990/e9 dev=3390/0a ciws=RCD:0xfa/256,SII:0x27/4,RNI:0x3e/96");
/// let mut out = [0u8; 20];
/// assert_eq!(id.emit(&mut out)?, 20);
/// assert_eq!(out, bytes);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SenseId {
    /// Control-unit type (e.g. 0x3990; virtio 0x3832).
    pub cu_type: u16,
    /// Control-unit model.
    pub cu_model: u8,
    /// Device type (e.g. 0x3390).
    pub dev_type: u16,
    /// Device model.
    pub dev_model: u8,
    ciws: [Ciw; SenseId::MAX_CIWS],
    n_ciws: u8,
}

impl SenseId {
    /// Basic SENSE ID length (no CIWs).
    pub const BASIC_LEN: usize = 7;
    /// The longest SENSE ID data (8 + 62 CIWs).
    pub const MAX_LEN: usize = 256;
    /// How many CIWs fit.
    pub const MAX_CIWS: usize = (Self::MAX_LEN - 8) / 4;

    /// SENSE ID data without CIWs.
    pub const fn new(cu_type: u16, cu_model: u8, dev_type: u16, dev_model: u8) -> Self {
        Self {
            cu_type,
            cu_model,
            dev_type,
            dev_model,
            ciws: [Ciw::new(); Self::MAX_CIWS],
            n_ciws: 0,
        }
    }

    /// Appends a CIW; fails when it is not well formed or all 62 places are taken.
    pub fn push_ciw(&mut self, ciw: Ciw) -> Result<(), DecodeError> {
        ciw.validate()?;
        let n = usize::from(self.n_ciws);
        let Some(slot) = self.ciws.get_mut(n) else {
            return Err(DecodeError::new(
                "SENSE ID",
                "CIW count",
                DecodeReason::OutOfRange {
                    value: n as u64 + 1,
                    max: Self::MAX_CIWS as u64,
                },
            ));
        };
        *slot = ciw;
        self.n_ciws += 1;
        Ok(())
    }

    /// `self` with `ciw` appended (see [`SenseId::push_ciw`]).
    pub fn with_ciw(mut self, ciw: Ciw) -> Result<Self, DecodeError> {
        self.push_ciw(ciw)?;
        Ok(self)
    }

    /// The CIWs, in order.
    pub fn ciws(&self) -> &[Ciw] {
        &self.ciws[..usize::from(self.n_ciws)]
    }

    /// The first CIW of type `ty` (as Linux's `ccw_device_get_ciw` looks them up).
    pub fn ciw(&self, ty: CiwType) -> Option<Ciw> {
        self.ciws().iter().copied().find(|c| c.ciw_type() == ty)
    }

    /// Decodes the bytes a device transferred for SENSE ID (count minus residual): at least
    /// the 7 basic bytes, byte 0 must be 0xFF, byte 7 (if present) zero, then whole CIWs.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < Self::BASIC_LEN {
            return Err(DecodeError::too_short(
                "SENSE ID",
                Self::BASIC_LEN,
                bytes.len(),
            ));
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(DecodeError::new(
                "SENSE ID",
                "length",
                DecodeReason::OutOfRange {
                    value: bytes.len() as u64,
                    max: Self::MAX_LEN as u64,
                },
            ));
        }
        let mut head = [0u8; 8];
        let n = bytes.len().min(8);
        head[..n].copy_from_slice(&bytes[..n]);
        let h = SenseIdHeader::from_bytes(head);
        if h.marker != 0xFF {
            return Err(DecodeError::new(
                "SENSE ID",
                "byte 0",
                DecodeReason::Invalid {
                    value: u64::from(h.marker),
                },
            ));
        }
        reserved_zero("SENSE ID", "byte 7", u64::from(h.reserved))?;
        let mut id = Self::new(h.cu_type.get(), h.cu_model, h.dev_type.get(), h.dev_model);
        let rest = bytes.get(8..).unwrap_or(&[]);
        let mut ended = false;
        for word in rest.chunks(4) {
            let mut w = [0u8; 4];
            w[..word.len()].copy_from_slice(word);
            if w == [0; 4] {
                ended = true;
                continue;
            }
            if ended {
                return Err(DecodeError::new(
                    "SENSE ID",
                    "after CIW list",
                    DecodeReason::Reserved {
                        bits: u64::from(u32::from_be_bytes(w)),
                    },
                ));
            }
            if word.len() < 4 {
                return Err(DecodeError::new(
                    "SENSE ID",
                    "CIW",
                    DecodeReason::TooShort {
                        needed: 4,
                        got: word.len(),
                    },
                ));
            }
            id.push_ciw(Ciw::from_bytes(w))?;
        }
        Ok(id)
    }

    /// Bytes [`SenseId::emit`] needs: 7 without CIWs, else 8 + 4 per CIW.
    pub fn encoded_len(&self) -> usize {
        if self.n_ciws == 0 {
            Self::BASIC_LEN
        } else {
            8 + 4 * usize::from(self.n_ciws)
        }
    }

    /// Writes the data into `out` (zero-filling the rest of `out`, as a device leaves unused
    /// bytes of the SENSE ID area) and returns [`SenseId::encoded_len`].
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, DecodeError> {
        let len = self.encoded_len();
        if out.len() < len {
            return Err(DecodeError::too_short("SENSE ID", len, out.len()));
        }
        out.fill(0);
        let head = SenseIdHeader {
            marker: 0xFF,
            cu_type: U16::new(self.cu_type),
            cu_model: self.cu_model,
            dev_type: U16::new(self.dev_type),
            dev_model: self.dev_model,
            reserved: 0,
        }
        .into_bytes();
        let n = out.len().min(8);
        out[..n].copy_from_slice(&head[..n]);
        for (slot, ciw) in out[n..].chunks_exact_mut(4).zip(self.ciws()) {
            slot.copy_from_slice(&ciw.into_bytes());
        }
        Ok(len)
    }
}

impl fmt::Debug for SenseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenseId")
            .field("cu_type", &format_args!("{:#06x}", self.cu_type))
            .field("cu_model", &format_args!("{:#04x}", self.cu_model))
            .field("dev_type", &format_args!("{:#06x}", self.dev_type))
            .field("dev_model", &format_args!("{:#04x}", self.dev_model))
            .field("ciws", &self.ciws())
            .finish()
    }
}

/// `SENSE ID cu=3990/e9 dev=3390/0a ciws=RCD:0xfa/256,...`.
impl fmt::Display for SenseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SENSE ID cu={:04x}/{:02x} dev={:04x}/{:02x}",
            self.cu_type, self.cu_model, self.dev_type, self.dev_model
        )?;
        for (i, c) in self.ciws().iter().enumerate() {
            f.write_str(if i == 0 { " ciws=" } else { "," })?;
            write!(f, "{}:{:#04x}/{}", c.ciw_type(), c.cmd(), c.count())?;
        }
        Ok(())
    }
}
