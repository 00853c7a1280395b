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

/// How many events a backend's queue holds by default ([`event_channel`]).
pub const EVENT_QUEUE_CAPACITY: usize = 1024;

/// A bounded event queue for a backend: the sending half stays with the backend, the
/// receiving half is what [`Backend::take_events`] hands out.
///
/// Memory stays bounded however fast events come, and nothing is lost silently:
/// - **interruptions** are never dropped: a backend takes a slot ([`EventSender::try_reserve`],
///   [`EventSender::reserve`], [`EventSender::send`]) *before* it takes the status from the
///   subchannel, so while the queue is full the subchannel stays status pending, as a real
///   subchannel stays status pending until TEST SUBCHANNEL takes its status (and START gets
///   cc 1 meanwhile);
/// - **channel reports** never wait ([`EventSender::report`]): the first one that finds the
///   queue full is held back and delivered once the queue has drained; if more come before
///   that, the held one is replaced by the newest, which then carries the overflow bit R
///   (reference §6.1: "reports were lost before this one"), and
///   [`EventReceiver::lost_reports`] counts the ones lost. A consumer that sees R re-reads
///   every subchannel (as Linux's `css_schedule_eval_all`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use css_core::backend::{BackendEvent, event_channel};
/// use ccw_types::Crw;
/// let (tx, mut rx) = event_channel(1);
/// for rsid in 1..=3 {
///     tx.report(Crw::new().with_rsc(3).with_rsid(rsid));
/// }
/// let first = rx.recv().await;
/// assert!(matches!(first, Some(BackendEvent::ChannelReport(c)) if c.rsid() == 1 && !c.overflow()));
/// // Report 2 was lost; report 3 says so with R.
/// let last = rx.recv().await;
/// assert!(matches!(last, Some(BackendEvent::ChannelReport(c)) if c.rsid() == 3 && c.overflow()));
/// assert_eq!(rx.lost_reports(), 1);
/// # }
/// ```
pub fn event_channel(capacity: usize) -> (EventSender, EventReceiver) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
    let overflow = Arc::new(Overflow::default());
    (
        EventSender {
            tx,
            overflow: overflow.clone(),
        },
        EventReceiver { rx, overflow },
    )
}

#[derive(Debug, Default)]
struct Overflow {
    state: std::sync::Mutex<OverflowState>,
}

#[derive(Debug, Default)]
struct OverflowState {
    /// The report held back because the queue was full (R set if others were lost).
    pending: Option<Crw>,
    /// Reports lost so far.
    lost: u64,
    /// The receiver waiting on an empty queue: woken when a report is held back. (The queue
    /// can be full while empty: slots reserved and not yet used count against it.)
    waiter: Option<std::task::Waker>,
}

impl Overflow {
    fn lock(&self) -> std::sync::MutexGuard<'_, OverflowState> {
        ccw_translate::sync::lock(&self.state)
    }
}

impl OverflowState {
    /// Holds `crw` back and hands out the waiting receiver's waker, to wake once the lock is
    /// released.
    fn hold(&mut self, crw: Crw) -> Option<std::task::Waker> {
        self.pending = Some(crw);
        self.waiter.take()
    }
}

/// The backend's half of an [`event_channel`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventSender {
    tx: tokio::sync::mpsc::Sender<BackendEvent>,
    overflow: Arc<Overflow>,
}

/// A reserved slot of the event queue: sending through it cannot fail or wait.
#[derive(Debug)]
pub struct EventPermit(tokio::sync::mpsc::OwnedPermit<BackendEvent>);

impl EventPermit {
    /// Queues `ev` in the reserved slot.
    pub fn send(self, ev: BackendEvent) {
        self.0.send(ev);
    }
}

impl EventSender {
    /// Queues `ev`, waiting while the queue is full (backpressure). Fails (returning it)
    /// only when the receiver is gone.
    pub async fn send(&self, ev: BackendEvent) -> Result<(), BackendEvent> {
        self.tx.send(ev).await.map_err(|e| e.0)
    }

    /// A slot if the queue has room now. A backend takes it before it takes status from a
    /// subchannel; `None` (full, or nobody listens) leaves the status pending.
    pub fn try_reserve(&self) -> Option<EventPermit> {
        self.tx.clone().try_reserve_owned().ok().map(EventPermit)
    }

    /// Waits for a slot; `None` when the receiver is gone.
    pub async fn reserve(&self) -> Option<EventPermit> {
        self.tx.clone().reserve_owned().await.ok().map(EventPermit)
    }

    /// Queues a channel report without waiting; when the queue is full the report is held
    /// back, and a later one replaces it with the overflow bit set (see [`event_channel`]).
    pub fn report(&self, crw: Crw) {
        use tokio::sync::mpsc::error::TrySendError;
        let mut st = self.overflow.lock();
        // A held-back report goes first, so reports stay in order.
        if let Some(held) = st.pending.take() {
            match self.tx.try_send(BackendEvent::ChannelReport(held)) {
                Ok(()) => {}
                Err(TrySendError::Closed(_)) => return,
                Err(TrySendError::Full(_)) => {
                    st.lost += 1;
                    tracing::warn!(lost = %held, lost_total = st.lost, "event queue full: channel report lost");
                    let mut crw = crw;
                    crw.set_overflow(true);
                    let waiter = st.hold(crw);
                    drop(st);
                    if let Some(w) = waiter {
                        w.wake();
                    }
                    return;
                }
            }
        }
        match self.tx.try_send(BackendEvent::ChannelReport(crw)) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => {
                tracing::debug!(%crw, "event queue full: channel report held back");
                let waiter = st.hold(crw);
                drop(st);
                if let Some(w) = waiter {
                    w.wake();
                }
            }
        }
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The receiving end of a backend's event stream. There is exactly one per backend.
#[derive(Debug)]
pub struct EventReceiver {
    rx: tokio::sync::mpsc::Receiver<BackendEvent>,
    overflow: Arc<Overflow>,
}

impl EventReceiver {
    /// The next event; `None` once the backend is gone and everything was received.
    pub async fn recv(&mut self) -> Option<BackendEvent> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`EventReceiver::recv`] as a poll function: the queue first, then (once it is empty)
    /// a held-back report; with neither, `cx` is woken by the next event or held-back report.
    fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<BackendEvent>> {
        use std::task::Poll;
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(ev)) => return Poll::Ready(Some(ev)),
            Poll::Ready(None) => return Poll::Ready(self.held().map(BackendEvent::ChannelReport)),
            // Out of the task's cooperative budget with events queued: it is woken again.
            Poll::Pending if !self.rx.is_empty() => return Poll::Pending,
            Poll::Pending => {}
        }
        // Under the lock a report is held back with: either it is here now, or the sender
        // that holds one back finds this waker.
        let mut st = self.overflow.lock();
        if let Some(crw) = st.pending.take() {
            return Poll::Ready(Some(BackendEvent::ChannelReport(crw)));
        }
        if !st.waiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            st.waiter = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The next event if one is ready (a held-back channel report once the queue is empty).
    pub fn try_recv(&mut self) -> Result<BackendEvent, tokio::sync::mpsc::error::TryRecvError> {
        self.rx.try_recv().or_else(|e| match self.held() {
            Some(crw) => Ok(BackendEvent::ChannelReport(crw)),
            None => Err(e),
        })
    }

    /// How many channel reports were lost because the queue was full.
    pub fn lost_reports(&self) -> u64 {
        self.overflow.lock().lost
    }

    fn held(&self) -> Option<Crw> {
        self.overflow.lock().pending.take()
    }
}

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
