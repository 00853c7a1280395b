// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Why a channel program could not be translated, with what vfio-ccw and a real channel
//! subsystem would have said about it.

use ccw_types::{DecodeError, SubchannelStatus};

use crate::mapper::MapError;

/// A guest control block or address the translator works with, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Block {
    /// A channel-command word (its address is the ORB's cpa, a TIC target or a chained CCW).
    Ccw,
    /// An indirect-data-address list (the address in an IDA CCW).
    Idal,
    /// One indirect-data-address word.
    Idaw,
    /// The data area a CCW (or one of its IDAWs) designates.
    Data,
}

impl core::fmt::Display for Block {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Block::Ccw => "CCW",
            Block::Idal => "IDAL",
            Block::Idaw => "IDAW",
            Block::Data => "data area",
        })
    }
}

/// A feature of the channel-subsystem architecture the translator does not handle (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unsupported {
    /// A transport-mode ORB (B = 1, a TCW program). vfio-ccw rejects it too.
    TransportMode,
    /// A CCW with the MIDA flag (modified IDAW list). vfio-ccw does not translate MIDAW lists.
    Midaw {
        /// Whether the ORB allowed MIDAWs (D = 1). Without it a real channel subsystem
        /// program-checks.
        orb_allows: bool,
    },
}

impl core::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Unsupported::TransportMode => f.write_str("transport-mode ORB"),
            Unsupported::Midaw { .. } => f.write_str("MIDA flag (MIDAW list)"),
        }
    }
}

/// Which mapper operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapOp {
    /// [`Mapper::pin`](crate::Mapper::pin) of a data range.
    Pin,
    /// [`Mapper::alloc_control`](crate::Mapper::alloc_control).
    AllocControl,
    /// [`Mapper::write_control`](crate::Mapper::write_control).
    WriteControl,
}

/// What exactly is wrong: the rich reason behind a [`TranslateError`].
///
/// Each variant knows the errno vfio-ccw returns for it ([`TranslateError::errno`]) and the
/// subchannel status a real channel subsystem would report ([`TranslateError::program_check`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateErrorKind {
    /// Something the translator does not support (vfio-ccw: `EOPNOTSUPP`).
    #[error("unsupported: {0}")]
    Unsupported(Unsupported),
    /// The ORB itself is malformed (reserved bits, cpa bit 0): START SUBCHANNEL would take an
    /// operand exception (vfio-ccw: `EINVAL`).
    #[error("invalid ORB: {0}")]
    InvalidOrb(DecodeError),
    /// A guest control block could not be read: it is not backed by guest memory
    /// (vfio-ccw: `EFAULT`; a real CSS: program check).
    #[error("cannot read {what} at {addr:#x} (+{len:#x}) from guest memory")]
    GuestFault {
        /// What was being read.
        what: Block,
        /// Guest address of the first byte.
        addr: u64,
        /// Number of bytes.
        len: usize,
    },
    /// A CCW, IDAL or IDAW address is not aligned as the architecture requires (a real CSS:
    /// program check; vfio-ccw leaves it to the hardware, we reject it with `EINVAL`).
    #[error("{what} address {addr:#x} is not {align}-byte aligned")]
    Misaligned {
        /// What the address designates.
        what: Block,
        /// The address.
        addr: u64,
        /// The alignment required.
        align: u64,
    },
    /// An address does not fit the addressing mode (24-bit for format-0 CCWs, 31-bit for
    /// format-1 CCWs and format-1 IDAWs, or the range wraps): program check / `EINVAL`.
    #[error("{what} range {addr:#x} (+{len:#x}) exceeds the addressing limit {max:#x}")]
    AddressRange {
        /// What the address designates.
        what: Block,
        /// First address.
        addr: u64,
        /// Length of the range (0 for a single address).
        len: u64,
        /// The highest address allowed.
        max: u64,
    },
    /// An IDAW has reserved bits set (format-1 IDAW bit 0): program check / `EINVAL`.
    #[error("IDAW {idaw:#x} has reserved bits set")]
    IdawReserved {
        /// The IDAW as read.
        idaw: u64,
    },
    /// A command code of the invalid class (`xxxx0000`, or format-1 `xxxx1000` other than
    /// TIC): program check / `EINVAL`.
    #[error("invalid command code {cmd:#04x}")]
    InvalidCommand {
        /// The command code.
        cmd: u8,
    },
    /// A format-0 CCW other than a TIC with count 0: program check / `EINVAL` (after
    /// conversion to format 1 it would silently become valid).
    #[error("format-0 CCW with count 0")]
    ZeroCountFormat0,
    /// A chain segment has more CCWs than the limit (vfio-ccw: `EINVAL`; a real CSS has no
    /// such limit).
    #[error("chain segment longer than {limit} CCWs")]
    SegmentTooLong {
        /// The largest number of CCWs a segment may hold.
        limit: usize,
    },
    /// The program needs more chain segments (TIC targets) than the limit (vfio-ccw:
    /// `ENOMEM`; a real CSS has no such limit).
    #[error("more than {limit} chain segments")]
    TooManySegments {
        /// The largest number of segments.
        limit: usize,
    },
    /// The program needs more IDAWs (pinned pieces) than the limit (`ENOMEM`).
    #[error("more than {limit} IDAWs")]
    TooManyIdaws {
        /// The largest number of IDAWs.
        limit: usize,
    },
    /// The backend's mapper refused.
    #[error("mapper {op:?} failed: {error}")]
    Map {
        /// Which operation.
        op: MapOp,
        /// The mapper's error.
        error: MapError,
    },
    /// The mapper broke its contract (a device address that is misaligned for an IDAW or a
    /// control area beyond 2 GiB): `EINVAL`, a backend bug rather than a guest error.
    #[error("mapper contract violated: {0}")]
    MapperContract(&'static str),
}

/// A small, data-free classification of [`TranslateErrorKind`] for generic code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`TranslateErrorKind::Unsupported`].
    Unsupported,
    /// The guest's program or ORB is invalid (a real CSS would refuse it too).
    InvalidProgram,
    /// Guest memory could not be read.
    GuestFault,
    /// A configured limit was exceeded.
    Limit,
    /// The mapper failed or misbehaved.
    Mapper,
}

/// A channel program that cannot be translated: which CCW, where, and why.
///
/// ```
/// use ccw_translate::{TranslateError, TranslateErrorKind, ErrorKind};
/// let e = TranslateError {
///     ccw_index: Some(3),
///     guest_addr: Some(0x1018),
///     kind: TranslateErrorKind::InvalidCommand { cmd: 0x10 },
/// };
/// assert_eq!(e.kind(), ErrorKind::InvalidProgram);
/// assert_eq!(e.errno(), libc::EINVAL);
/// assert!(e.program_check().is_some());
/// assert_eq!(e.to_string(), "CCW #3 at 0x1018: invalid command code 0x10");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    /// Position of the failing CCW in the program (0 = the CCW at the ORB's cpa; segments
    /// reached through TICs follow in the order they were discovered).
    pub ccw_index: Option<usize>,
    /// Guest address of the failing CCW (the ORB's cpa for errors before the first CCW).
    pub guest_addr: Option<u64>,
    /// The reason.
    pub kind: TranslateErrorKind,
}

impl core::fmt::Display for TranslateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match (self.ccw_index, self.guest_addr) {
            (Some(i), Some(a)) => write!(f, "CCW #{i} at {a:#x}: ")?,
            (Some(i), None) => write!(f, "CCW #{i}: ")?,
            (None, Some(a)) => write!(f, "channel program at {a:#x}: ")?,
            (None, None) => {}
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for TranslateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            TranslateErrorKind::Map { error, .. } => Some(error),
            TranslateErrorKind::InvalidOrb(e) => Some(e),
            _ => None,
        }
    }
}

impl TranslateError {
    /// An error without a CCW position.
    pub const fn new(kind: TranslateErrorKind) -> Self {
        Self {
            ccw_index: None,
            guest_addr: None,
            kind,
        }
    }

    /// The data-free class of this error.
    pub fn kind(&self) -> ErrorKind {
        use TranslateErrorKind as K;
        match &self.kind {
            K::Unsupported(_) => ErrorKind::Unsupported,
            K::InvalidOrb(_)
            | K::Misaligned { .. }
            | K::AddressRange { .. }
            | K::IdawReserved { .. }
            | K::InvalidCommand { .. }
            | K::ZeroCountFormat0 => ErrorKind::InvalidProgram,
            K::GuestFault { .. } => ErrorKind::GuestFault,
            K::SegmentTooLong { .. } | K::TooManySegments { .. } | K::TooManyIdaws { .. } => {
                ErrorKind::Limit
            }
            K::Map { .. } | K::MapperContract(_) => ErrorKind::Mapper,
        }
    }

    /// The errno Linux vfio-ccw returns from the I/O region write for this program.
    ///
    /// For checks vfio-ccw leaves to the hardware (alignment, invalid commands, IDAW bits),
    /// `EINVAL`: ccw-rs refuses such programs before starting them; [`Self::program_check`]
    /// tells what the hardware would have reported instead.
    pub fn errno(&self) -> i32 {
        use TranslateErrorKind as K;
        match &self.kind {
            K::Unsupported(_) => libc::EOPNOTSUPP,
            K::GuestFault { .. } => libc::EFAULT,
            K::TooManySegments { .. } | K::TooManyIdaws { .. } => libc::ENOMEM,
            K::Map { error, .. } => match error {
                MapError::Exhausted(_) => libc::ENOMEM,
                MapError::Os { errno, .. } => *errno,
                _ => libc::EINVAL,
            },
            K::InvalidOrb(_)
            | K::Misaligned { .. }
            | K::AddressRange { .. }
            | K::IdawReserved { .. }
            | K::InvalidCommand { .. }
            | K::ZeroCountFormat0
            | K::SegmentTooLong { .. }
            | K::MapperContract(_) => libc::EINVAL,
        }
    }

    /// The subchannel status a real channel subsystem would report when it reached the
    /// failing CCW (with the SCSW cpa at that CCW + 8), or `None` when a real CSS would have
    /// run the program (implementation limits, unsupported features it has, mapper failures)
    /// or refused it with an operand exception (an invalid ORB).
    pub fn program_check(&self) -> Option<SubchannelStatus> {
        use TranslateErrorKind as K;
        match &self.kind {
            K::GuestFault { .. }
            | K::Misaligned { .. }
            | K::AddressRange { .. }
            | K::IdawReserved { .. }
            | K::InvalidCommand { .. }
            | K::ZeroCountFormat0
            | K::Unsupported(Unsupported::Midaw { orb_allows: false }) => {
                Some(SubchannelStatus::PROGRAM_CHECK)
            }
            K::Map {
                op: MapOp::Pin,
                error: MapError::NotMapped(_),
            } => Some(SubchannelStatus::PROGRAM_CHECK),
            _ => None,
        }
    }

    pub(crate) fn at(mut self, index: usize, addr: u64) -> Self {
        self.ccw_index = Some(index);
        self.guest_addr = Some(addr);
        self
    }
}

impl From<TranslateErrorKind> for TranslateError {
    fn from(kind: TranslateErrorKind) -> Self {
        Self::new(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapper::GuestRange;
    use TranslateErrorKind as K;

    /// The errno / program-check / class table, one row per kind.
    #[test]
    fn every_kind_has_errno_check_and_class() {
        let pgm = Some(SubchannelStatus::PROGRAM_CHECK);
        let decode = DecodeError::new("ORB", "cpa", ccw_types::DecodeReason::Reserved { bits: 1 });
        let rows: Vec<(K, i32, Option<SubchannelStatus>, ErrorKind)> = vec![
            (
                K::Unsupported(Unsupported::TransportMode),
                libc::EOPNOTSUPP,
                None,
                ErrorKind::Unsupported,
            ),
            (
                K::Unsupported(Unsupported::Midaw { orb_allows: false }),
                libc::EOPNOTSUPP,
                pgm,
                ErrorKind::Unsupported,
            ),
            (
                K::Unsupported(Unsupported::Midaw { orb_allows: true }),
                libc::EOPNOTSUPP,
                None,
                ErrorKind::Unsupported,
            ),
            (
                K::InvalidOrb(decode),
                libc::EINVAL,
                None,
                ErrorKind::InvalidProgram,
            ),
            (
                K::GuestFault {
                    what: Block::Ccw,
                    addr: 0,
                    len: 8,
                },
                libc::EFAULT,
                pgm,
                ErrorKind::GuestFault,
            ),
            (
                K::Misaligned {
                    what: Block::Idal,
                    addr: 4,
                    align: 8,
                },
                libc::EINVAL,
                pgm,
                ErrorKind::InvalidProgram,
            ),
            (
                K::AddressRange {
                    what: Block::Data,
                    addr: 0,
                    len: 1,
                    max: 0,
                },
                libc::EINVAL,
                pgm,
                ErrorKind::InvalidProgram,
            ),
            (
                K::IdawReserved { idaw: 0x8000_0000 },
                libc::EINVAL,
                pgm,
                ErrorKind::InvalidProgram,
            ),
            (
                K::InvalidCommand { cmd: 0 },
                libc::EINVAL,
                pgm,
                ErrorKind::InvalidProgram,
            ),
            (
                K::ZeroCountFormat0,
                libc::EINVAL,
                pgm,
                ErrorKind::InvalidProgram,
            ),
            (
                K::SegmentTooLong { limit: 255 },
                libc::EINVAL,
                None,
                ErrorKind::Limit,
            ),
            (
                K::TooManySegments { limit: 16 },
                libc::ENOMEM,
                None,
                ErrorKind::Limit,
            ),
            (
                K::TooManyIdaws { limit: 1 },
                libc::ENOMEM,
                None,
                ErrorKind::Limit,
            ),
            (
                K::Map {
                    op: MapOp::Pin,
                    error: MapError::NotMapped(GuestRange::new(0, 1)),
                },
                libc::EINVAL,
                pgm,
                ErrorKind::Mapper,
            ),
            (
                K::Map {
                    op: MapOp::Pin,
                    error: MapError::Exhausted("x"),
                },
                libc::ENOMEM,
                None,
                ErrorKind::Mapper,
            ),
            (
                K::Map {
                    op: MapOp::AllocControl,
                    error: MapError::Invalid("x"),
                },
                libc::EINVAL,
                None,
                ErrorKind::Mapper,
            ),
            (
                K::Map {
                    op: MapOp::WriteControl,
                    error: MapError::Os {
                        op: "w",
                        errno: libc::EIO,
                    },
                },
                libc::EIO,
                None,
                ErrorKind::Mapper,
            ),
            (
                K::MapperContract("x"),
                libc::EINVAL,
                None,
                ErrorKind::Mapper,
            ),
        ];
        for (kind, errno, check, class) in rows {
            let e = TranslateError::from(kind.clone()).at(2, 0x1010);
            assert_eq!(e.errno(), errno, "{kind:?}");
            assert_eq!(e.program_check(), check, "{kind:?}");
            assert_eq!(e.kind(), class, "{kind:?}");
            assert!(e.to_string().starts_with("CCW #2 at 0x1010: "), "{e}");
        }
    }

    #[test]
    fn display_without_position() {
        let e = TranslateError::new(K::Unsupported(Unsupported::TransportMode));
        assert_eq!(e.to_string(), "unsupported: transport-mode ORB");
        assert!(std::error::Error::source(&e).is_none());
    }
}
