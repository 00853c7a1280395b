// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The [`Backend`] trait: what css-core needs from a channel subsystem, real or simulated.
//!
//! A backend executes *host* channel programs (already translated by ccw-translate into its
//! device address space) on subchannels, and reports everything that happens afterwards on
//! one event stream: I/O interruptions with the IRB as TEST SUBCHANNEL stored it, channel
//! reports, and requests to release a device. Condition codes are returned as the
//! instructions set them; errors that are not a condition code are [`BackendError`]s.

use std::sync::Arc;

use async_trait::async_trait;
use ccw_translate::Mapper;
use ccw_types::{Crw, Irb, Orb, Schib, SubchannelId};

pub use ccw_types::ConditionCode;

/// Something a backend reports asynchronously.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendEvent {
    /// An I/O interruption for `sch`; `irb` is what TEST SUBCHANNEL stored (host addresses).
    Interrupt {
        /// The subchannel.
        sch: SubchannelId,
        /// The interruption-response block.
        irb: Irb,
    },
    /// A channel report (what STORE CHANNEL REPORT WORD returned).
    ChannelReport(Crw),
    /// The owner of the device asks for it back (vfio's request interrupt): release it.
    ReleaseRequest {
        /// The subchannel.
        sch: SubchannelId,
    },
}

/// The receiving end of a backend's event stream. There is exactly one per backend.
pub type EventReceiver = tokio::sync::mpsc::UnboundedReceiver<BackendEvent>;

/// What kind of failure a [`BackendError`] is: the kind every ccw-rs error shares
/// ([`ccw_types::ErrorKind`]), under the name backends have always used. A backend uses
/// `Unsupported`, `NoDevice`, `PermissionDenied`, `Again`, `InvalidArgument`, `Closed` and `Io`.
pub type BackendErrorKind = ccw_types::ErrorKind;

/// A backend failure that is not a condition code: names the operation and the subchannel,
/// and keeps the errno when there was one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}{}: {kind:?}{}{}", sch.map(|s| format!(" on {s}")).unwrap_or_default(),
    errno.map(|e| format!(" (errno {e})")).unwrap_or_default(),
    if detail.is_empty() { String::new() } else { format!(": {detail}") })]
pub struct BackendError {
    /// The kind, for branching.
    pub kind: BackendErrorKind,
    /// The operation that failed, e.g. `"start"` or `"VFIO_DEVICE_GET_INFO"`.
    pub op: &'static str,
    /// The subchannel, when the operation had one.
    pub sch: Option<SubchannelId>,
    /// The OS error number, when the failure came from the OS.
    pub errno: Option<i32>,
    /// More context for a person.
    pub detail: String,
}

impl BackendError {
    /// An error of `kind` for `op`.
    pub fn new(kind: BackendErrorKind, op: &'static str) -> Self {
        Self {
            kind,
            op,
            sch: None,
            errno: None,
            detail: String::new(),
        }
    }
    /// `op` is not supported by this backend.
    pub fn unsupported(op: &'static str) -> Self {
        Self::new(BackendErrorKind::Unsupported, op)
    }
    /// Adds the subchannel.
    pub fn on(mut self, sch: SubchannelId) -> Self {
        self.sch = Some(sch);
        self
    }
    /// Adds an errno.
    pub fn with_errno(mut self, errno: i32) -> Self {
        self.errno = Some(errno);
        self
    }
    /// Adds a detail for a person.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// A channel subsystem css-core can drive: real (vfio-ccw) or simulated.
///
/// All methods take the subchannel they act on; a backend may serve one subchannel (a vfio
/// mdev) or many (the simulator). Methods never block the async runtime.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The subchannels this backend offers, with their current SCHIB.
    async fn probe(&self) -> Result<Vec<(SubchannelId, Schib)>, BackendError>;

    /// Enables the subchannel for I/O (MODIFY SUBCHANNEL with E = 1), using `intparm`.
    async fn enable(&self, sch: SubchannelId, intparm: u32) -> Result<ConditionCode, BackendError>;

    /// Disables the subchannel (E = 0). cc 1/2 when status is pending or a function is active.
    async fn disable(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError>;

    /// START SUBCHANNEL with a host ORB whose program lives in this backend's device space.
    async fn start(&self, sch: SubchannelId, orb: &Orb) -> Result<ConditionCode, BackendError>;

    /// HALT SUBCHANNEL.
    async fn halt(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError>;

    /// CLEAR SUBCHANNEL.
    async fn clear(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError>;

    /// CANCEL SUBCHANNEL; backends without it return [`BackendErrorKind::Unsupported`].
    async fn cancel(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        Err(BackendError::unsupported("cancel").on(sch))
    }

    /// RESUME SUBCHANNEL; backends without it return [`BackendErrorKind::Unsupported`].
    async fn resume(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        Err(BackendError::unsupported("resume").on(sch))
    }

    /// STORE SUBCHANNEL.
    async fn store_schib(&self, sch: SubchannelId) -> Result<Schib, BackendError>;

    /// The device address space of `sch`, for ccw-translate.
    fn mapper(&self, sch: SubchannelId) -> Result<Arc<dyn Mapper>, BackendError>;

    /// Takes the event stream. The first call succeeds; later calls fail with
    /// [`BackendErrorKind::Closed`].
    fn take_events(&self) -> Result<EventReceiver, BackendError>;
}
