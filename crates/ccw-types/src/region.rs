// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The vfio-ccw device regions (`include/uapi/linux/vfio_ccw.h`, reference §12.1) as
//! zerocopy structs, to be read from and written to the region's file offset.
//!
//! **Byte order.** The architected blocks inside the regions (ORB, SCSW, IRB, SCHIB, CRW) are
//! big-endian s390 format, like everywhere else in this crate. The kernel's own fields
//! (`ret_code`, `command`, the CRW region's `pad`) are plain `__u32`: **host-native-endian**,
//! typed here as [`zerocopy::native_endian::U32`]. On s390x both are big-endian; a simulated
//! region on a little-endian host keeps the same distinction.

use core::fmt;

use zerocopy::native_endian::U32 as NeU32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::block::stored_block;
use crate::crw::Crw;
use crate::error::{DecodeError, DecodeReason};
use crate::irb::Irb;
use crate::orb::{Orb, OrbRepr};
use crate::schib::Schib;
use crate::scsw::Scsw;

/// The I/O region (index 0, 124 bytes): the guest ORB and an SCSW whose function control
/// says start go in; the IRB and a return code come back.
///
/// ```
/// use ccw_types::{CommandOrb, FunctionControl, IoRegion, Scsw};
/// let mut region = IoRegion::new();
/// region.set_orb(&CommandOrb::new(1, 0x1000).emit())?;
/// let mut scsw = Scsw::default();
/// scsw.ctrl.set_fc(FunctionControl::START);
/// region.scsw_area = scsw.into_bytes();
/// let bytes = region.into_bytes();
/// assert_eq!(&bytes[4..8], &[0x00, 0xC2, 0xFF, 0x00]);   // ORB word 1 as the guest test used
/// assert_eq!(&bytes[12..16], &[0x00, 0x00, 0x40, 0x00]); // SCSW word 0 = 0x00004000
/// let back = IoRegion::parse(&bytes)?;
/// assert_eq!(back.ret_code(), 0);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct IoRegion {
    /// The ORB's first 12 bytes (no extension), big-endian.
    pub orb_area: [u8; 12],
    /// SCSW (function control start), big-endian.
    pub scsw_area: [u8; 12],
    /// The IRB of the completed I/O, big-endian (Linux copies 64 bytes; the rest is zero).
    pub irb_area: [u8; 96],
    /// 0 or a negative errno written by the kernel; host-native-endian.
    pub ret_code: NeU32,
}

/// The asynchronous command region (8 bytes): HSCH or CSCH.
///
/// ```
/// use ccw_types::CmdRegion;
/// let region = CmdRegion::command(CmdRegion::HSCH);
/// assert_eq!(region.command.get(), 1);
/// assert_eq!(CmdRegion::parse(&region.into_bytes())?.command.get(), CmdRegion::HSCH);
/// // Anything else is what the kernel answers -EINVAL for.
/// assert!(CmdRegion::parse(&CmdRegion::command(4).into_bytes()).is_err());
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct CmdRegion {
    /// [`CmdRegion::HSCH`] or [`CmdRegion::CSCH`]; host-native-endian.
    pub command: NeU32,
    /// 0 or a negative errno written by the kernel; host-native-endian.
    pub ret_code: NeU32,
}

/// The SCHIB region (52 bytes, read-only): each read performs STORE SUBCHANNEL.
///
/// ```
/// use ccw_types::SchibRegion;
/// // The real device's schib region began `00 d3 00 00 18 81 00 05`.
/// let mut bytes = [0u8; 52];
/// bytes[..8].copy_from_slice(&[0x00, 0xd3, 0x00, 0x00, 0x18, 0x81, 0x00, 0x05]);
/// let region = SchibRegion::parse(&bytes)?;
/// assert_eq!(region.schib_area.pmcw.flags.devno(), 5);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct SchibRegion {
    /// The SCHIB, big-endian.
    pub schib_area: Schib,
}

/// The CRW region (8 bytes, read-only): each read returns and consumes one pending CRW
/// (all zero when none is pending).
///
/// ```
/// use ccw_types::CrwRegion;
/// let region = CrwRegion::parse(&[0x03, 0x04, 0x00, 0x05, 0, 0, 0, 0])?;
/// assert_eq!(region.crw.rsid(), 5);
/// assert_eq!(region.to_string(), "crw region: CRW rsc=subchannel erc=ipi rsid=0x0005");
/// assert_eq!(CrwRegion::default().to_string(), "crw region: none pending");
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct CrwRegion {
    /// The CRW, big-endian.
    pub crw: Crw,
    /// Padding; host-native-endian.
    pub pad: NeU32,
}

const _: () = assert!(
    size_of::<IoRegion>() == 124
        && size_of::<CmdRegion>() == 8
        && size_of::<SchibRegion>() == 52
        && size_of::<CrwRegion>() == 8
);

stored_block!(IoRegion, "io region", 124, validate);
stored_block!(CmdRegion, "cmd region", 8, validate);
stored_block!(SchibRegion, "schib region", 52, validate);
stored_block!(CrwRegion, "crw region", 8, validate);

impl Default for IoRegion {
    fn default() -> Self {
        zerocopy::FromZeros::new_zeroed()
    }
}

impl IoRegion {
    /// An all-zero region.
    pub fn new() -> Self {
        Self::default()
    }
    /// The ORB area as an ORB (words 3-7 zero).
    pub fn orb(&self) -> Orb {
        let mut b = [0u8; 32];
        b[..12].copy_from_slice(&self.orb_area);
        Orb::from_bytes(b)
    }
    /// Stores `orb`'s first 12 bytes; fails for an extended ORB (X = 1), which the 12-byte
    /// area cannot carry.
    pub fn set_orb(&mut self, orb: &Orb) -> Result<(), DecodeError> {
        if orb.ctrl.extension() {
            return Err(DecodeError::new(
                "io region",
                "orb_area",
                DecodeReason::Invalid { value: 1 },
            ));
        }
        self.orb_area = orb.short_bytes();
        Ok(())
    }
    /// The SCSW area.
    pub fn scsw(&self) -> Scsw {
        Scsw::from_bytes(self.scsw_area)
    }
    /// The IRB area.
    pub fn irb(&self) -> Irb {
        Irb::from_bytes(self.irb_area)
    }
    /// The kernel's return code as a signed value (0 or a negative errno).
    pub fn ret_code(&self) -> i32 {
        self.ret_code.get() as i32
    }
    /// Checks that the ORB area is a valid 12-byte ORB (X = 0) and the SCSW area has no
    /// reserved bit set. The IRB area is not checked: it is what the device stored (see
    /// [`Irb::parse`] for why a strict check can fail on QEMU's IRBs).
    pub fn validate(&self) -> Result<(), DecodeError> {
        OrbRepr::parse(&self.orb_area)?;
        self.scsw().validate()
    }
}

impl fmt::Debug for IoRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoRegion")
            .field("orb_area", &self.orb())
            .field("scsw_area", &self.scsw())
            .field("irb_area", &self.irb())
            .field("ret_code", &self.ret_code())
            .finish()
    }
}

/// `io region: <ORB> | <SCSW> | <IRB> ret=<code>`; an undecodable ORB prints raw.
impl fmt::Display for IoRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "io region: {} | {} | {} ret={}",
            self.orb(),
            self.scsw(),
            self.irb(),
            self.ret_code()
        )
    }
}

impl CmdRegion {
    /// `VFIO_CCW_ASYNC_CMD_HSCH`: halt subchannel.
    pub const HSCH: u32 = 1 << 0;
    /// `VFIO_CCW_ASYNC_CMD_CSCH`: clear subchannel.
    pub const CSCH: u32 = 1 << 1;

    /// A region asking for `command`, return code zero.
    pub fn command(command: u32) -> Self {
        Self {
            command: NeU32::new(command),
            ret_code: NeU32::new(0),
        }
    }
    /// The kernel's return code as a signed value (0 or a negative errno).
    pub fn ret_code(&self) -> i32 {
        self.ret_code.get() as i32
    }
    /// Rejects a command other than HSCH or CSCH (the kernel answers `-EINVAL`).
    pub fn validate(&self) -> Result<(), DecodeError> {
        match self.command.get() {
            Self::HSCH | Self::CSCH => Ok(()),
            other => Err(DecodeError::new(
                "cmd region",
                "command",
                DecodeReason::Invalid {
                    value: u64::from(other),
                },
            )),
        }
    }
}

impl fmt::Display for CmdRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cmd region: ")?;
        match self.command.get() {
            Self::HSCH => f.write_str("HSCH")?,
            Self::CSCH => f.write_str("CSCH")?,
            other => write!(f, "command={other:#x}")?,
        }
        write!(f, " ret={}", self.ret_code())
    }
}

impl SchibRegion {
    /// Validates the SCHIB ([`Schib::validate`]).
    pub fn validate(&self) -> Result<(), DecodeError> {
        self.schib_area.validate()
    }
}

impl fmt::Display for SchibRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "schib region: {}", self.schib_area)
    }
}

impl CrwRegion {
    /// Validates the CRW ([`Crw::validate`]); the padding is not checked.
    pub fn validate(&self) -> Result<(), DecodeError> {
        self.crw.validate()
    }
    /// The pending CRW, `None` when the region read all zero.
    pub fn pending(&self) -> Option<Crw> {
        (!self.crw.is_empty()).then_some(self.crw)
    }
}

impl fmt::Display for CrwRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pending() {
            Some(crw) => write!(f, "crw region: {crw}"),
            None => f.write_str("crw region: none pending"),
        }
    }
}
