// SPDX-License-Identifier: Apache-2.0 OR MIT

//! css-core's error type.

use ccw_types::{SubchannelId, SubchannelStatus};

use crate::backend::{BackendError, BackendErrorKind, ConditionCode};
use crate::fsm::{Errno, State};

/// What kind of failure a [`CssError`] is: the kind every ccw-rs error shares
/// ([`ccw_types::ErrorKind`]), under the name css-core's users know.
pub type CssErrorKind = ccw_types::ErrorKind;

/// A failure of a css-core operation. [`CssError::kind`] for branching, [`CssError::errno`]
/// for the vfio-ccw errno the same failure has.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CssError {
    /// The state machine refused the request.
    #[error("{sch}: {op} refused in state {state:?}: {errno}")]
    Refused {
        /// The subchannel.
        sch: SubchannelId,
        /// The request.
        op: &'static str,
        /// The state it found.
        state: State,
        /// vfio-ccw's answer.
        errno: Errno,
    },
    /// An I/O instruction returned a condition code other than 0.
    #[error("{sch}: {op} returned cc {}: {errno}", cc.value())]
    Condition {
        /// The subchannel.
        sch: SubchannelId,
        /// The instruction.
        op: &'static str,
        /// Its condition code.
        cc: ConditionCode,
        /// vfio-ccw's answer.
        errno: Errno,
    },
    /// The channel program could not be translated.
    #[error("{sch}: channel program rejected: {source}")]
    Translate {
        /// The subchannel.
        sch: SubchannelId,
        /// vfio-ccw's errno for it.
        errno: Errno,
        /// The translator's classification of it.
        kind: CssErrorKind,
        /// What a real channel subsystem would have presented instead (program check, ...).
        program_check: Option<SubchannelStatus>,
        /// The translator's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No subchannel with this id is registered.
    #[error("{0}: no such subchannel")]
    Unknown(SubchannelId),
    /// The subchannel is already open.
    #[error("{0}: already open")]
    AlreadyOpen(SubchannelId),
    /// The subchannel is not open.
    #[error("{0}: not open")]
    NotOpen(SubchannelId),
    /// The request was answered by a close that overtook it.
    #[error("{0}: closed while the request was outstanding")]
    Closed(SubchannelId),
    /// The device went away (not operational, removed).
    #[error("{0}: device not operational")]
    Gone(SubchannelId),
    /// Quiescing did not finish in time.
    #[error("{sch}: {op} did not finish after {tries} tries")]
    Timeout {
        /// The subchannel.
        sch: SubchannelId,
        /// What was being waited for.
        op: &'static str,
        /// How many attempts were made.
        tries: u32,
    },
    /// The transport-mode ORB is not supported (as in vfio-ccw).
    #[error("{0}: transport-mode ORBs are not supported")]
    TransportMode(SubchannelId),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl CssError {
    /// The kind, for branching.
    pub fn kind(&self) -> CssErrorKind {
        match self {
            CssError::Refused { errno, .. } | CssError::Condition { errno, .. } => match errno {
                Errno::Busy => CssErrorKind::Busy,
                Errno::Again => CssErrorKind::Again,
                Errno::Io => CssErrorKind::NotOpen,
                Errno::NoDevice => CssErrorKind::NoDevice,
                Errno::Access => CssErrorKind::NoPath,
                Errno::NotSupported => CssErrorKind::Unsupported,
                Errno::Invalid => CssErrorKind::InvalidArgument,
                Errno::Fault => CssErrorKind::GuestFault,
                Errno::NoMemory => CssErrorKind::Limit,
            },
            CssError::Translate { kind, .. } => *kind,
            CssError::Unknown(_) | CssError::Gone(_) => CssErrorKind::NoDevice,
            CssError::AlreadyOpen(_) => CssErrorKind::AlreadyOpen,
            CssError::NotOpen(_) => CssErrorKind::NotOpen,
            CssError::Closed(_) => CssErrorKind::Closed,
            CssError::Timeout { .. } => CssErrorKind::Timeout,
            CssError::TransportMode(_) => CssErrorKind::Unsupported,
            CssError::Backend(e) => e.kind,
        }
    }

    /// The errno vfio-ccw would have answered the same request with (positive).
    pub fn errno(&self) -> i32 {
        match self {
            CssError::Refused { errno, .. } | CssError::Condition { errno, .. } => errno.raw(),
            CssError::Translate { errno, .. } => errno.raw(),
            CssError::Unknown(_) | CssError::Gone(_) | CssError::Closed(_) => Errno::NoDevice.raw(),
            CssError::AlreadyOpen(_) => Errno::Busy.raw(),
            CssError::NotOpen(_) => Errno::Io.raw(),
            CssError::Timeout { .. } => Errno::Busy.raw(),
            CssError::TransportMode(_) => Errno::NotSupported.raw(),
            CssError::Backend(e) => e.errno.unwrap_or(match e.kind {
                BackendErrorKind::Unsupported => Errno::NotSupported.raw(),
                BackendErrorKind::NoDevice => Errno::NoDevice.raw(),
                BackendErrorKind::Again => Errno::Again.raw(),
                BackendErrorKind::InvalidArgument => Errno::Invalid.raw(),
                BackendErrorKind::PermissionDenied => Errno::Access.raw(),
                _ => Errno::Io.raw(),
            }),
        }
    }

    /// For a rejected channel program: the status a real channel subsystem would present.
    pub fn program_check(&self) -> Option<SubchannelStatus> {
        match self {
            CssError::Translate { program_check, .. } => *program_check,
            _ => None,
        }
    }
}
