// SPDX-License-Identifier: Apache-2.0 OR MIT

//! What the commands need from a channel subsystem, whichever backend serves it.
//!
//! [`Subsystem`] is the seam between ccwctl's commands and css-core: the commands (list,
//! sense-id, run, watch) are written once against it, and each backend (the built-in
//! simulator, vfio-ccw) provides it through css-core's `Css`/`Subchannel` API. Tests can plug
//! in their own.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ccw_types::{Crw, Irb, Orb, Schib, SubchannelId};
use vm_memory::GuestMemoryMmap;

/// What kind of failure a [`TargetError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetErrorKind {
    /// No such subchannel or device.
    NoDevice,
    /// The device went away.
    Gone,
    /// The caller lacks permission (vfio group/device files).
    PermissionDenied,
    /// The backend is not part of this build, or cannot do this.
    Unavailable,
    /// The subchannel is busy or has status pending.
    Busy,
    /// The channel program was refused before it started (translation).
    Rejected,
    /// No final status in time.
    Timeout,
    /// Anything else the backend reported.
    Other,
}

/// A failure of the channel subsystem behind a command: one line for a person, plus a kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    /// For branching.
    pub kind: TargetErrorKind,
    /// What happened, one line.
    pub message: String,
}

impl TargetError {
    /// An error of `kind`.
    pub fn new(kind: TargetErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The kind.
    pub fn kind(&self) -> TargetErrorKind {
        self.kind
    }
}

/// The outcome of one started channel program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The final IRB, guest addresses.
    pub irb: Irb,
    /// Intermediate status seen while the program ran (PCI, initial status), in order.
    pub intermediate: Vec<Irb>,
    /// Time from start to final status.
    pub elapsed: Duration,
}

/// Something `watch` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// An interruption (solicited or not) on a subchannel.
    Interrupt {
        /// The subchannel.
        sch: SubchannelId,
        /// What TEST SUBCHANNEL stored.
        irb: Irb,
    },
    /// A channel report.
    ChannelReport(Crw),
    /// Anything else the subsystem says (device gone, release request, ...).
    Notice {
        /// The subchannel, when there is one.
        sch: Option<SubchannelId>,
        /// What happened.
        what: String,
    },
}

/// A channel subsystem the commands can drive.
pub trait Subsystem {
    /// A short name for the output (`"simulated"`, `"vfio"`).
    fn name(&self) -> &'static str;

    /// Every subchannel with its current SCHIB.
    fn probe(&self) -> impl Future<Output = Result<Vec<(SubchannelId, Schib)>, TargetError>>;

    /// The guest memory programs run from (the backend maps it once, as a VMM maps guest RAM).
    fn memory(&self) -> &Arc<GuestMemoryMmap>;

    /// Starts the guest program `orb` (found in [`Subsystem::memory`]) on `sch` and waits for
    /// its final status, at most `timeout`.
    fn run(
        &self,
        sch: SubchannelId,
        orb: &Orb,
        timeout: Duration,
    ) -> impl Future<Output = Result<Completion, TargetError>>;

    /// Starts delivering interruptions and channel reports of every subchannel to the
    /// returned receiver.
    fn watch(
        &self,
    ) -> impl Future<Output = Result<tokio::sync::mpsc::UnboundedReceiver<WatchEvent>, TargetError>>;

    /// Makes something happen that `watch` can see (the simulator: a path event on `chpid`).
    /// Backends that cannot return [`TargetErrorKind::Unavailable`].
    fn inject_path_event(&self, chpid: u8) -> impl Future<Output = Result<(), TargetError>>;

    /// Makes the device on `sch` present unsolicited attention status (the simulator).
    /// Backends that cannot return [`TargetErrorKind::Unavailable`].
    fn inject_attention(&self, sch: SubchannelId) -> impl Future<Output = Result<(), TargetError>>;
}
