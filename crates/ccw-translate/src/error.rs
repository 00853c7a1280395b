// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Why a channel program could not be translated, with what vfio-ccw and a real channel
//! subsystem would have said about it.

use ccw_types::{DecodeError, Errno, ErrorKind, SubchannelStatus};

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
    /// A CCW the channel would reach in two roles that need different host treatment: as a
    /// new command and as the data-chained continuation of another command (or of two
    /// commands of different classes), e.g. a TIC carrying data chaining into a CCW that
    /// command chaining also reaches. One host copy cannot serve both.
    AmbiguousDataChain,
}

impl core::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Unsupported::TransportMode => f.write_str("transport-mode ORB"),
            Unsupported::Midaw { .. } => f.write_str("MIDA flag (MIDAW list)"),
            Unsupported::AmbiguousDataChain => {
                f.write_str("CCW reached both as a new command and by data chaining")
            }
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
/// Each variant knows the errno vfio-ccw returns for it ([`TranslateError::errno`]), the
/// subchannel status a real channel subsystem would report ([`TranslateError::program_check`])
/// and its shared [`ErrorKind`] ([`TranslateError::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateReason {
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

/// A channel program that cannot be translated: which CCW, where, and why.
///
/// ```
/// use ccw_translate::{TranslateError, TranslateReason};
/// use ccw_types::{Errno, ErrorKind};
/// let e = TranslateError {
///     ccw_index: Some(3),
///     guest_addr: Some(0x1018),
///     reason: TranslateReason::InvalidCommand { cmd: 0x10 },
/// };
/// assert_eq!(e.kind(), ErrorKind::InvalidProgram);
/// assert_eq!(e.errno(), Errno::Invalid);
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
    pub reason: TranslateReason,
}

impl core::fmt::Display for TranslateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match (self.ccw_index, self.guest_addr) {
            (Some(i), Some(a)) => write!(f, "CCW #{i} at {a:#x}: ")?,
            (Some(i), None) => write!(f, "CCW #{i}: ")?,
            (None, Some(a)) => write!(f, "channel program at {a:#x}: ")?,
            (None, None) => {}
        }
        write!(f, "{}", self.reason)
    }
}

impl std::error::Error for TranslateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.reason {
            TranslateReason::Map { error, .. } => Some(error),
            TranslateReason::InvalidOrb(e) => Some(e),
            _ => None,
        }
    }
}

impl TranslateError {
    /// An error without a CCW position.
    pub const fn new(reason: TranslateReason) -> Self {
        Self {
            ccw_index: None,
            guest_addr: None,
            reason,
        }
    }

    /// The shared, data-free class of this error.
    pub fn kind(&self) -> ErrorKind {
        use TranslateReason as K;
        match &self.reason {
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
    ///
    /// A mapper's OS error answers with its own errno when vfio-ccw's set has it, and `EIO`
    /// otherwise (the exact value stays in the [`MapError::Os`] of [`Self::reason`]).
    pub fn errno(&self) -> Errno {
        use TranslateReason as K;
        match &self.reason {
            K::Unsupported(_) => Errno::NotSupported,
            K::GuestFault { .. } => Errno::Fault,
            K::TooManySegments { .. } | K::TooManyIdaws { .. } => Errno::NoMemory,
            K::Map { error, .. } => match error {
                MapError::Exhausted(_) => Errno::NoMemory,
                MapError::Os { errno, .. } => match Errno::from_raw(*errno) {
                    Some(e) => e,
                    None => Errno::Io,
                },
                _ => Errno::Invalid,
            },
            K::InvalidOrb(_)
            | K::Misaligned { .. }
            | K::AddressRange { .. }
            | K::IdawReserved { .. }
            | K::InvalidCommand { .. }
            | K::ZeroCountFormat0
            | K::SegmentTooLong { .. }
            | K::MapperContract(_) => Errno::Invalid,
        }
    }

    /// The subchannel status a real channel subsystem would report when it reached the
    /// failing CCW (with the SCSW cpa at that CCW + 8), or `None` when a real CSS would have
    /// run the program (implementation limits, unsupported features it has, mapper failures)
    /// or refused it with an operand exception (an invalid ORB).
    pub fn program_check(&self) -> Option<SubchannelStatus> {
        use TranslateReason as K;
        match &self.reason {
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

impl From<TranslateReason> for TranslateError {
    fn from(reason: TranslateReason) -> Self {
        Self::new(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapper::GuestRange;
    use TranslateReason as K;

    /// The errno / program-check / class table, one row per kind.
    #[test]
    fn every_kind_has_errno_check_and_class() {
        let pgm = Some(SubchannelStatus::PROGRAM_CHECK);
        let decode = DecodeError::new("ORB", "cpa", ccw_types::DecodeReason::Reserved { bits: 1 });
        let rows: Vec<(K, Errno, Option<SubchannelStatus>, ErrorKind)> = vec![
            (
                K::Unsupported(Unsupported::TransportMode),
                Errno::NotSupported,
                None,
                ErrorKind::Unsupported,
            ),
            (
                K::Unsupported(Unsupported::Midaw { orb_allows: false }),
                Errno::NotSupported,
                pgm,
                ErrorKind::Unsupported,
            ),
            (
                K::Unsupported(Unsupported::Midaw { orb_allows: true }),
                Errno::NotSupported,
                None,
                ErrorKind::Unsupported,
            ),
            (
                K::Unsupported(Unsupported::AmbiguousDataChain),
                Errno::NotSupported,
                None,
                ErrorKind::Unsupported,
            ),
            (
                K::InvalidOrb(decode),
                Errno::Invalid,
                None,
                ErrorKind::InvalidProgram,
            ),
            (
                K::GuestFault {
                    what: Block::Ccw,
                    addr: 0,
                    len: 8,
                },
                Errno::Fault,
                pgm,
                ErrorKind::GuestFault,
            ),
            (
                K::Misaligned {
                    what: Block::Idal,
                    addr: 4,
                    align: 8,
                },
                Errno::Invalid,
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
                Errno::Invalid,
                pgm,
                ErrorKind::InvalidProgram,
            ),
            (
                K::IdawReserved { idaw: 0x8000_0000 },
                Errno::Invalid,
                pgm,
                ErrorKind::InvalidProgram,
            ),
            (
                K::InvalidCommand { cmd: 0 },
                Errno::Invalid,
                pgm,
                ErrorKind::InvalidProgram,
            ),
            (
                K::ZeroCountFormat0,
                Errno::Invalid,
                pgm,
                ErrorKind::InvalidProgram,
            ),
            (
                K::SegmentTooLong { limit: 255 },
                Errno::Invalid,
                None,
                ErrorKind::Limit,
            ),
            (
                K::TooManySegments { limit: 16 },
                Errno::NoMemory,
                None,
                ErrorKind::Limit,
            ),
            (
                K::TooManyIdaws { limit: 1 },
                Errno::NoMemory,
                None,
                ErrorKind::Limit,
            ),
            (
                K::Map {
                    op: MapOp::Pin,
                    error: MapError::NotMapped(GuestRange::new(0, 1)),
                },
                Errno::Invalid,
                pgm,
                ErrorKind::Mapper,
            ),
            (
                K::Map {
                    op: MapOp::Pin,
                    error: MapError::Exhausted("x"),
                },
                Errno::NoMemory,
                None,
                ErrorKind::Mapper,
            ),
            (
                K::Map {
                    op: MapOp::AllocControl,
                    error: MapError::Invalid("x"),
                },
                Errno::Invalid,
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
                Errno::Io,
                None,
                ErrorKind::Mapper,
            ),
            (
                K::Map {
                    op: MapOp::Pin,
                    error: MapError::Os {
                        op: "p",
                        errno: libc::EFAULT,
                    },
                },
                Errno::Fault,
                None,
                ErrorKind::Mapper,
            ),
            // An OS errno outside vfio-ccw's set answers EIO.
            (
                K::Map {
                    op: MapOp::Pin,
                    error: MapError::Os {
                        op: "p",
                        errno: libc::EPERM,
                    },
                },
                Errno::Io,
                None,
                ErrorKind::Mapper,
            ),
            (
                K::MapperContract("x"),
                Errno::Invalid,
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
