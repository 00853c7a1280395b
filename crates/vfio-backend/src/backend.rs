// SPDX-License-Identifier: Apache-2.0 OR MIT

//! [`VfioBackend`]: css-core's [`Backend`] over one vfio-ccw mediated device.

use std::sync::{Arc, Mutex};

use ccw_translate::sync::lock;
use std::task::{Context, Poll};

use async_trait::async_trait;
use ccw_translate::Mapper;
use ccw_types::{
    FunctionControl, Irb, Orb, Schib, Scsw, ScswControl, StatusControl, SubchannelId,
    SubchannelStatus,
};
use css_core::{
    Backend, BackendError, BackendErrorKind, BackendEvent, ConditionCode, EventReceiver,
};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use vm_memory::GuestMemoryBackend;
use vmm_sys_util::eventfd::EventFd;
use zerocopy::FromZeros;

use crate::device::{ApiChoice, VfioDevice};
use crate::error::{RegionOutcome, error, region_outcome};
use crate::mapper::{DEFAULT_CONTROL_IOVA, DEFAULT_CONTROL_LEN, VfioMapper};
use crate::uapi::{self, IoRegion};

/// How often a region write answered with `EAGAIN` is retried before giving up.
const MAX_RETRIES: usize = 256;
/// At most this many channel reports are drained per CRW interrupt (the kernel re-signals
/// when more are queued).
const MAX_CRWS_PER_WAKE: usize = 64;

/// Options for [`VfioBackend::open_with_options`].
#[derive(Debug, Clone)]
pub struct VfioOptions {
    /// Which VFIO API to use.
    pub api: ApiChoice,
    /// IOVA of the control-memory window (page aligned, ending at or below 2 GiB).
    pub control_iova: u64,
    /// Size of the control-memory window (the last 2 KiB are kept as the kernel's read-ahead).
    pub control_len: usize,
}

impl Default for VfioOptions {
    fn default() -> Self {
        Self {
            api: ApiChoice::Auto,
            control_iova: DEFAULT_CONTROL_IOVA,
            control_len: DEFAULT_CONTROL_LEN,
        }
    }
}

/// The local view of the subchannel. vfio-ccw keeps the subchannel enabled while the mdev is
/// open; enable/disable gate this backend's use of it, and `busy` (a start, halt or clear
/// accepted whose final status has not arrived) makes disable answer cc 2 like MODIFY
/// SUBCHANNEL does, so css-core quiesces with halt/clear before it releases a program.
#[derive(Debug, Default)]
pub(crate) struct SchState {
    enabled: bool,
    intparm: u32,
    busy: bool,
}

/// css-core's [`Backend`] over one vfio-ccw mediated device (one subchannel).
///
/// Needs a tokio runtime (its interrupts are eventfds on [`AsyncFd`]). Dropping it stops the
/// interrupt task; the device is torn down (interrupts disarmed, DMA unmapped, every fd
/// closed) when the last mapper handed out by [`Backend::mapper`] is gone too. Use
/// [`VfioBackend::shutdown`] to wait for that.
///
/// ```no_run
/// use css_core::{Backend, BackendEvent};
/// use vfio_backend::VfioBackend;
/// # async fn run() -> Result<(), css_core::BackendError> {
/// let backend = VfioBackend::open("6dfd3ec5-e8b3-4e18-a6fe-57bc9eceb920")?;
/// let mut events = backend.take_events()?;
/// for (sch, schib) in backend.probe().await? {
///     println!("{sch}: devno {:04x}", schib.pmcw.flags.devno());
/// }
/// # Ok(()) }
/// ```
pub struct VfioBackend {
    device: Arc<VfioDevice>,
    mapper: Arc<VfioMapper>,
    state: Arc<Mutex<SchState>>,
    events: Mutex<Option<EventReceiver>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for VfioBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioBackend")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// The SCSW vfio-ccw expects in the io region for a start: function control = start.
pub fn start_scsw() -> Scsw {
    Scsw {
        ctrl: ScswControl::new().with_fc(FunctionControl::START),
        ..Scsw::default()
    }
}

/// The io region contents that start `orb`: its first 12 bytes and an SCSW saying start.
///
/// vfio-ccw's ORB area has no room for the ORB extension (word 3 priorities and beyond), so
/// the X bit is cleared and any priorities are dropped, as vfio-ccw itself cannot pass them.
pub fn start_request(orb: &Orb) -> IoRegion {
    let mut orb = *orb;
    orb.ctrl.set_extension(false);
    let mut r = IoRegion::new_zeroed();
    r.orb_area = orb.short_bytes();
    r.scsw_area = start_scsw().into_bytes();
    r
}

/// The IRB reported when the io region cannot be read after an interruption: status pending
/// with alert status and a channel-control check, which is what QEMU presents to its guest
/// for the same failure. The I/O still ends with exactly one interruption.
pub fn channel_control_check_irb() -> Irb {
    let mut irb = Irb::default();
    irb.scsw.ctrl = ScswControl::new()
        .with_fc(FunctionControl::START)
        .with_sc(StatusControl::ALERT | StatusControl::PENDING);
    irb.scsw.cstat = SubchannelStatus::CHANNEL_CONTROL_CHECK.bits();
    irb
}

impl VfioBackend {
    /// Opens the mdev `name` (UUID or sysfs directory) with default options. Must be called
    /// inside a tokio runtime.
    pub fn open(name: &str) -> Result<Self, BackendError> {
        Self::open_with_options(name, &VfioOptions::default())
    }

    /// Opens the mdev `name` with `options`. Must be called inside a tokio runtime.
    pub fn open_with_options(name: &str, options: &VfioOptions) -> Result<Self, BackendError> {
        let device = VfioDevice::open(name, options.api)?;
        Self::from_device(device, options)
    }

    /// Builds the backend on an open device: maps control memory, connects the io, crw and
    /// req interrupts, and starts the interrupt task. Must be called inside a tokio runtime.
    ///
    /// The device may be shared (a tool that also uses it directly); the backend connects
    /// its own eventfds, replacing any trigger set before.
    pub fn from_device(
        device: impl Into<Arc<VfioDevice>>,
        options: &VfioOptions,
    ) -> Result<Self, BackendError> {
        let device = device.into();
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(error(
                BackendErrorKind::InvalidArgument,
                "VfioBackend::from_device",
                "must be called inside a tokio runtime (interrupts are tokio AsyncFds)",
            ));
        }
        let mapper = Arc::new(VfioMapper::new(
            device.clone(),
            options.control_iova,
            options.control_len,
        )?);
        let (tx, rx) = unbounded_channel();
        let armed = (|| {
            let io = arm(&device, uapi::VFIO_CCW_IO_IRQ_INDEX)?.ok_or_else(|| {
                error(
                    BackendErrorKind::Unsupported,
                    "arm io irq",
                    "no io interrupt",
                )
            })?;
            let crw = if device.regions().crw.is_some() {
                arm(&device, uapi::VFIO_CCW_CRW_IRQ_INDEX)?
            } else {
                None
            };
            let req = arm(&device, uapi::VFIO_CCW_REQ_IRQ_INDEX)?;
            Ok::<_, BackendError>((io, crw, req))
        })();
        let (io, crw, req) = match armed {
            Ok(fds) => fds,
            Err(e) => {
                // A shared device outlives this failure: leave no trigger connected.
                for index in 0..uapi::VFIO_CCW_NUM_IRQS {
                    if device.irq(index).is_some() {
                        let _ = device.set_irq(index, None);
                    }
                }
                return Err(e);
            }
        };
        let span =
            tracing::debug_span!("vfio-ccw", sch = %device.subchannel(), uuid = device.uuid());
        let state = Arc::new(Mutex::new(SchState::default()));
        let task = tokio::spawn(tracing::Instrument::instrument(
            interrupt_task(device.clone(), state.clone(), tx, io, crw, req),
            span,
        ));
        Ok(Self {
            device,
            mapper,
            state,
            events: Mutex::new(Some(rx)),
            task: Mutex::new(Some(task)),
        })
    }

    /// The underlying device.
    pub fn device(&self) -> &Arc<VfioDevice> {
        &self.device
    }

    /// The subchannel this backend serves.
    pub fn subchannel(&self) -> SubchannelId {
        self.device.subchannel()
    }

    /// The concrete mapper (also available as `Arc<dyn Mapper>` through [`Backend::mapper`]).
    pub fn vfio_mapper(&self) -> &Arc<VfioMapper> {
        &self.mapper
    }

    /// Maps guest memory for channel programs: IOVA = guest physical address (see
    /// [`VfioMapper::attach_memory`]).
    pub fn attach_memory<M>(&self, mem: Arc<M>) -> Result<(), BackendError>
    where
        M: GuestMemoryBackend + Send + Sync + 'static,
    {
        self.mapper.attach_memory(mem)
    }

    /// `VFIO_DEVICE_RESET`: vfio-ccw disables and re-enables the subchannel, which ends
    /// whatever was in progress without an interruption.
    pub fn reset(&self) -> Result<(), BackendError> {
        self.device.reset()?;
        lock(&self.state).busy = false;
        Ok(())
    }

    /// Stops the interrupt task and waits until it has released the device.
    pub async fn shutdown(self) {
        let task = lock(&self.task).take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
    }

    fn check_sch(&self, sch: SubchannelId) -> bool {
        sch == self.device.subchannel()
    }

    /// Whether `sch` is this backend's subchannel and enabled (else instructions give cc 3).
    fn usable(&self, sch: SubchannelId) -> bool {
        self.check_sch(sch) && lock(&self.state).enabled
    }

    /// HALT or CLEAR through the async command region.
    async fn async_cmd(
        &self,
        sch: SubchannelId,
        op: &'static str,
        command: u32,
    ) -> Result<ConditionCode, BackendError> {
        if !self.usable(sch) {
            return Ok(ConditionCode::Cc3);
        }
        self.region_write(sch, op, || self.device.async_cmd(command))
            .await
    }

    /// Writes a region until it is not busy; maps the answer to a condition code.
    ///
    /// The subchannel counts as busy from just before the write (an interruption may arrive
    /// before the write returns) until its final status arrives; a write that does not start
    /// anything restores the previous value.
    async fn region_write(
        &self,
        sch: SubchannelId,
        op: &'static str,
        write: impl FnMut() -> Result<(), BackendError>,
    ) -> Result<ConditionCode, BackendError> {
        let was_busy = std::mem::replace(&mut lock(&self.state).busy, true);
        let r = self.region_write_retrying(sch, op, write).await;
        if !matches!(r, Ok(ConditionCode::Cc0)) {
            lock(&self.state).busy = was_busy;
        }
        r
    }

    async fn region_write_retrying(
        &self,
        sch: SubchannelId,
        op: &'static str,
        mut write: impl FnMut() -> Result<(), BackendError>,
    ) -> Result<ConditionCode, BackendError> {
        for _ in 0..MAX_RETRIES {
            let Err(e) = write() else {
                return Ok(ConditionCode::Cc0);
            };
            let Some(errno) = e.errno else {
                return Err(e.on(sch));
            };
            match region_outcome(errno) {
                RegionOutcome::Cc(cc) => {
                    tracing::debug!(%sch, op, errno, cc = cc.value(), "region write answered a condition code");
                    return Ok(cc);
                }
                RegionOutcome::Retry => tokio::task::yield_now().await,
                RegionOutcome::Fail => return Err(e.on(sch)),
            }
        }
        Err(error(
            BackendErrorKind::Again,
            op,
            format!("region still busy after {MAX_RETRIES} attempts"),
        )
        .on(sch)
        .with_errno(libc::EAGAIN))
    }
}

/// Connects a fresh non-blocking eventfd to interrupt `index`, if the device has it.
fn arm(device: &VfioDevice, index: u32) -> Result<Option<AsyncFd<EventFd>>, BackendError> {
    if device.irq(index).is_none() {
        return Ok(None);
    }
    let efd = device.eventfd(true)?;
    let afd = crate::sys::async_eventfd(efd).map_err(|e| {
        error(BackendErrorKind::Io, "AsyncFd::new", e.to_string())
            .with_errno(e.raw_os_error().unwrap_or(libc::EIO))
    })?;
    device.set_irq(index, Some(afd.get_ref()))?;
    Ok(Some(afd))
}

/// Polls `fd` once: `Ready` when it fired (its counter is consumed), registering the waker
/// otherwise. Uses the AsyncFd's reader slot, so polling it again and again costs no
/// allocation or list operation (this is the per-I/O path).
fn poll_fired(fd: &AsyncFd<EventFd>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
    loop {
        let mut guard = match fd.poll_read_ready(cx) {
            Poll::Ready(Ok(g)) => g,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        match guard.try_io(|f| f.get_ref().read()) {
            Ok(Ok(_)) => {
                // The read reset the counter to zero: the fd is not readable any more.
                // (Readiness that arrived after this guard was taken is kept by tokio.)
                guard.clear_ready();
                return Poll::Ready(Ok(()));
            }
            Ok(Err(e)) => return Poll::Ready(Err(e)),
            Err(_would_block) => continue,
        }
    }
}

/// Which interrupt fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fired {
    Io,
    Crw,
    Req,
}

/// Waits for the next interrupt; the io interrupt is looked at first.
async fn next_fired(
    io: &AsyncFd<EventFd>,
    crw: Option<&AsyncFd<EventFd>>,
    req: Option<&AsyncFd<EventFd>>,
) -> (Fired, std::io::Result<()>) {
    std::future::poll_fn(|cx| {
        let fds = [(Fired::Io, Some(io)), (Fired::Crw, crw), (Fired::Req, req)];
        for (which, fd) in fds {
            if let Some(fd) = fd {
                if let Poll::Ready(r) = poll_fired(fd, cx) {
                    return Poll::Ready((which, r));
                }
            }
        }
        Poll::Pending
    })
    .await
}

/// Reads what an interruption of each kind left and reports it.
pub(crate) fn on_io(
    device: &VfioDevice,
    state: &Mutex<SchState>,
    tx: &UnboundedSender<BackendEvent>,
) {
    let sch = device.subchannel();
    let irb = match device.read_io().and_then(|r| {
        Irb::read_from(&r.irb_area)
            .map_err(|e| error(BackendErrorKind::Io, "decode IRB", e.to_string()))
    }) {
        Ok(irb) => irb,
        Err(e) => {
            tracing::warn!(%sch, %e, "io interruption without a readable IRB: channel-control check");
            channel_control_check_irb()
        }
    };
    tracing::debug!(%sch, scsw = %irb.scsw, "io interruption");
    if irb.scsw.is_final() {
        // Before the event goes out, so whoever reacts to it finds the subchannel idle.
        lock(state).busy = false;
    }
    let _ = tx.send(BackendEvent::Interrupt { sch, irb });
}

pub(crate) fn on_crw(device: &VfioDevice, tx: &UnboundedSender<BackendEvent>) {
    for _ in 0..MAX_CRWS_PER_WAKE {
        match device.read_crw() {
            Ok(Some(crw)) => {
                tracing::debug!(%crw, "channel report");
                let _ = tx.send(BackendEvent::ChannelReport(crw));
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(%e, "reading the crw region failed");
                return;
            }
        }
    }
}

async fn interrupt_task(
    device: Arc<VfioDevice>,
    state: Arc<Mutex<SchState>>,
    tx: UnboundedSender<BackendEvent>,
    io: AsyncFd<EventFd>,
    crw: Option<AsyncFd<EventFd>>,
    req: Option<AsyncFd<EventFd>>,
) {
    let sch = device.subchannel();
    loop {
        match next_fired(&io, crw.as_ref(), req.as_ref()).await {
            (Fired::Io, Ok(())) => on_io(&device, &state, &tx),
            (Fired::Crw, Ok(())) => on_crw(&device, &tx),
            (Fired::Req, Ok(())) => {
                tracing::debug!(%sch, "release request");
                let _ = tx.send(BackendEvent::ReleaseRequest { sch });
            }
            (which, Err(e)) => {
                tracing::error!(%sch, ?which, %e, "eventfd failed; interrupt task ends");
                return;
            }
        }
    }
}

impl Drop for VfioBackend {
    fn drop(&mut self) {
        if let Some(t) = lock(&self.task).take() {
            t.abort();
        }
    }
}

#[async_trait]
impl Backend for VfioBackend {
    async fn probe(&self) -> Result<Vec<(SubchannelId, Schib)>, BackendError> {
        let sch = self.device.subchannel();
        let schib = self.device.read_schib().map_err(|e| e.on(sch))?;
        Ok(vec![(sch, schib)])
    }

    async fn enable(&self, sch: SubchannelId, intparm: u32) -> Result<ConditionCode, BackendError> {
        if !self.check_sch(sch) {
            return Ok(ConditionCode::Cc3);
        }
        let mut st = lock(&self.state);
        st.enabled = true;
        st.intparm = intparm;
        tracing::debug!(%sch, intparm, "enabled");
        Ok(ConditionCode::Cc0)
    }

    async fn disable(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        if !self.check_sch(sch) {
            return Ok(ConditionCode::Cc3);
        }
        let mut st = lock(&self.state);
        if st.busy {
            tracing::debug!(%sch, "disable while a function is in progress: cc 2");
            return Ok(ConditionCode::Cc2);
        }
        st.enabled = false;
        tracing::debug!(%sch, "disabled");
        Ok(ConditionCode::Cc0)
    }

    async fn start(&self, sch: SubchannelId, orb: &Orb) -> Result<ConditionCode, BackendError> {
        if !self.usable(sch) {
            return Ok(ConditionCode::Cc3);
        }
        let req = start_request(orb);
        self.region_write(sch, "start", || self.device.write_io(&req))
            .await
    }

    async fn halt(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        self.async_cmd(sch, "halt", uapi::VFIO_CCW_ASYNC_CMD_HSCH)
            .await
    }

    async fn clear(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        self.async_cmd(sch, "clear", uapi::VFIO_CCW_ASYNC_CMD_CSCH)
            .await
    }

    async fn store_schib(&self, sch: SubchannelId) -> Result<Schib, BackendError> {
        if !self.check_sch(sch) {
            return Err(BackendError::new(BackendErrorKind::NoDevice, "store_schib").on(sch));
        }
        self.device.read_schib().map_err(|e| e.on(sch))
    }

    fn mapper(&self, sch: SubchannelId) -> Result<Arc<dyn Mapper>, BackendError> {
        if !self.check_sch(sch) {
            return Err(BackendError::new(BackendErrorKind::NoDevice, "mapper").on(sch));
        }
        Ok(self.mapper.clone())
    }

    fn take_events(&self) -> Result<EventReceiver, BackendError> {
        lock(&self.events)
            .take()
            .ok_or_else(|| BackendError::new(BackendErrorKind::Closed, "take_events"))
    }
}
