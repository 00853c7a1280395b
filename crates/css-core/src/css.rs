// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The channel-subsystem object ([`Css`]) and the handle of an open subchannel
//! ([`Subchannel`]): the asynchronous half of the driver.
//!
//! Every method follows the same shape: apply an event under the subchannel's lock
//! ([`crate::core`]), release the lock, call the backend, apply the result as another event.

use std::fmt;
use std::time::Duration;

use ccw_translate::{GuestRange, Mapper};
use ccw_types::{Crw, CrwChain, Irb, Orb, Schib, SubchannelId, crw};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;
use vm_memory::GuestMemory;

use crate::backend::{Backend, BackendErrorKind, BackendEvent, ConditionCode, EventReceiver};
use crate::core::{Claim, Core, IoCompletion, SubchannelEvent, UnmapCheck};
use crate::error::CssError;
use crate::fsm::{AsyncOp, Errno, State};
use crate::paths::PathEvent;
use crate::program::{HostProgram, Translate, TranslateFailure};
use crate::registry::Registry;
use crate::sync::{Mutex, lock};
use std::sync::Arc;

/// Tunables of a [`Css`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CssConfig {
    /// How many disable attempts close and remove make before giving up (vfio-ccw retries
    /// cancel/halt/clear up to 255 times; an attempt that issued a halt or clear waits for
    /// its interruption, one whose cancel succeeded retries the disable at once).
    pub quiesce_retries: u32,
    /// How long a quiesce attempt that issued a halt or clear waits for the interruption
    /// that ends it (vfio-ccw: 3 s).
    pub quiesce_wait: Duration,
}

impl Default for CssConfig {
    fn default() -> Self {
        Self {
            quiesce_retries: 8,
            quiesce_wait: Duration::from_secs(3),
        }
    }
}

/// One registered subchannel.
struct Entry<T: Translate> {
    core: Core<T::Program>,
    /// Signalled (`notify_waiters`) on every interruption, for quiesce and unmap, and when the
    /// event task's disable of the unowned subchannel ended, for opens that found it under
    /// way (one `Notify` for both: every waiter re-checks its condition, and a registered
    /// subchannel costs one less). Waiters enable their `Notified` before issuing what they
    /// wait for, so no wakeup is lost and no stale one is kept.
    irq: Notify,
    /// What a submit translates with, behind one lock (one per I/O).
    io: Mutex<IoTools<T>>,
}

/// The translator and the mapper of one subchannel.
struct IoTools<T> {
    /// Created on first use: most registered subchannels never run a program.
    translator: Option<Box<T>>,
    /// Set by open.
    mapper: Option<Arc<dyn Mapper>>,
}

struct Shared<B: ?Sized, T: Translate> {
    backend: Arc<B>,
    registry: Registry<Entry<T>>,
    reports: Mutex<Vec<mpsc::UnboundedSender<Crw>>>,
    config: CssConfig,
    /// Assembles chained subchannel reports (the first CRW waits for its second half).
    chain: Mutex<CrwChain>,
}

/// The channel subsystem: a registry of subchannels over one [`Backend`], routing the
/// backend's interruptions and channel reports to them.
///
/// `T` is the channel-program translator (ccw-translate's by default).
pub struct Css<B: Backend + ?Sized, T: Translate = ccw_translate::Translator> {
    shared: Arc<Shared<B, T>>,
    task: Option<JoinHandle<()>>,
}

/// An open subchannel: submit channel programs, halt, clear, read the SCHIB, receive events.
///
/// Dropping the handle does not close the subchannel (closing is asynchronous): call
/// [`Subchannel::close`] or [`Css::close`]. A dropped `submit` future does not lose the
/// program: it is still released on final status (or by close/remove).
pub struct Subchannel<B: Backend + ?Sized, T: Translate = ccw_translate::Translator> {
    entry: Arc<Entry<T>>,
    shared: Arc<Shared<B, T>>,
    span: tracing::Span,
}

impl<B: Backend + ?Sized, T: Translate> fmt::Debug for Subchannel<B, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subchannel")
            .field("sch", &self.entry.core.sch)
            .field("state", &self.entry.core.state())
            .finish()
    }
}

impl<B: Backend + ?Sized, T: Translate> fmt::Debug for Css<B, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Css")
            .field("subchannels", &self.shared.registry.len())
            .finish()
    }
}

impl<B: Backend + ?Sized, T: Translate> Drop for Css<B, T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl<B: Backend + ?Sized, T: Translate> Css<B, T> {
    /// Takes the backend's event stream and spawns the task that routes it. Must be called
    /// inside a tokio runtime.
    pub fn new(backend: Arc<B>) -> Result<Self, CssError> {
        Self::with_config(backend, CssConfig::default())
    }

    /// [`Css::new`] with explicit tunables.
    pub fn with_config(backend: Arc<B>, config: CssConfig) -> Result<Self, CssError> {
        let events = backend.take_events()?;
        let shared = Arc::new(Shared {
            backend,
            registry: Registry::new(),
            reports: Mutex::new(Vec::new()),
            config,
            chain: Mutex::new(CrwChain::new()),
        });
        let task = tokio::spawn(event_loop(Arc::downgrade(&shared), events));
        Ok(Self {
            shared,
            task: Some(task),
        })
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<B> {
        &self.shared.backend
    }

    /// Asks the backend for its subchannels and registers the new ones (in `Standby`, or
    /// `NotOper` when the device number is not valid). QDIO subchannels are skipped, as
    /// vfio-ccw's probe refuses them. Returns every usable subchannel id.
    pub async fn probe(&self) -> Result<Vec<SubchannelId>, CssError> {
        let mut list = self.shared.backend.probe().await?;
        list.retain(|(sch, schib)| {
            let qdio = schib.pmcw.flags.qdio();
            if qdio {
                tracing::info!(%sch, "QDIO subchannel skipped (not supported, as in vfio-ccw)");
            }
            !qdio
        });
        let ids = list.iter().map(|(sch, _)| *sch).collect::<Vec<_>>();
        let added = self
            .shared
            .registry
            .insert_missing(list, |sch, schib| Entry {
                core: Core::new(sch, schib),
                irq: Notify::new(),
                io: Mutex::new(IoTools {
                    translator: None,
                    mapper: None,
                }),
            });
        tracing::debug!(found = ids.len(), added, "probe");
        Ok(ids)
    }

    /// How many subchannels are registered.
    pub fn len(&self) -> usize {
        self.shared.registry.len()
    }

    /// Whether no subchannel is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state of a registered subchannel.
    pub fn state(&self, sch: SubchannelId) -> Result<State, CssError> {
        Ok(self.shared.entry(sch)?.core.state())
    }

    /// The SCHIB css-core last stored for `sch` (with its current path masks in `lpm`).
    pub fn cached_schib(&self, sch: SubchannelId) -> Result<Schib, CssError> {
        Ok(self.shared.entry(sch)?.core.cached_schib())
    }

    /// Opens (enables) a registered subchannel. One owner at a time.
    pub async fn open(&self, sch: SubchannelId) -> Result<Subchannel<B, T>, CssError> {
        let entry = self.shared.entry(sch)?;
        let span = tracing::debug_span!("subchannel", %sch);
        async {
            self.shared.claim_for_open(&entry).await?;
            let mapper = match self.shared.backend.mapper(sch) {
                Ok(m) => m,
                Err(e) => {
                    let _ = entry.core.opened(None);
                    return Err(CssError::from(e));
                }
            };
            lock(&entry.io).mapper = Some(mapper);
            match self.shared.backend.enable(sch, sch.to_word()).await {
                Ok(cc) => entry.core.opened(Some(cc))?,
                Err(e) => {
                    let _ = entry.core.opened(None);
                    return Err(CssError::from(e));
                }
            }
            Ok::<(), CssError>(())
        }
        .instrument(span.clone())
        .await?;
        Ok(Subchannel {
            entry,
            shared: self.shared.clone(),
            span,
        })
    }

    /// Closes `sch`: fails its outstanding request, disables it (quiescing with cancel, halt,
    /// clear when busy) and releases the program.
    pub async fn close(&self, sch: SubchannelId) -> Result<(), CssError> {
        let entry = self.shared.entry(sch)?;
        self.shared.close_entry(&entry).await
    }

    /// Removes `sch` from the channel subsystem: outstanding requests fail with
    /// [`CssError::Gone`], an enabled subchannel is quiesced, later events are dropped.
    pub async fn remove(&self, sch: SubchannelId) -> Result<(), CssError> {
        let entry = self.shared.entry(sch)?;
        self.shared.remove_entry(&entry).await
    }

    /// Every channel report the backend delivers, as it arrives.
    pub fn subscribe_reports(&self) -> mpsc::UnboundedReceiver<Crw> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.shared.reports).push(tx);
        rx
    }

    /// Processes one channel report now (what the event task does for each CRW the backend
    /// delivers): subchannel reports refresh the SCHIB, channel-path reports update path
    /// masks and are forwarded to the affected subchannels.
    pub async fn process_report(&self, crw: Crw) {
        self.shared.process_report(crw).await;
    }

    /// The VMM is about to unmap the guest range `range` (a DMA-unmap notification): every
    /// subchannel whose running channel program pinned part of it is cleared (CLEAR
    /// SUBCHANNEL, waiting up to `quiesce_wait` for the clear's interruption), its request is
    /// answered with [`CssError::Unmapped`] and its program released (pins and control
    /// memory back) before this returns, as vfio-ccw resets such a device. Programs that do
    /// not touch the range run on. Returns the subchannels cleared; an error (the first) when
    /// a clear failed or did not finish in time, in which case the request was still
    /// answered and the program released.
    ///
    /// The VMM keeps new programs away from the range while it is being unmapped (a start
    /// that translates after this call pins what is mapped then).
    pub async fn unmap_guest_range(
        &self,
        range: GuestRange,
    ) -> Result<Vec<SubchannelId>, CssError> {
        let mut cleared = Vec::new();
        let mut first_err = None;
        for entry in self.shared.registry.all() {
            match self.shared.unmap_entry(&entry, range).await {
                Ok(false) => {}
                Ok(true) => cleared.push(entry.core.sch),
                Err(e) => {
                    cleared.push(entry.core.sch);
                    first_err.get_or_insert(e);
                }
            }
        }
        tracing::debug!(%range, cleared = cleared.len(), "guest range unmapped");
        match first_err {
            Some(e) => Err(e),
            None => Ok(cleared),
        }
    }

    /// An operator varied channel path `chpid` on or off.
    pub async fn vary_path(&self, chpid: u8, on: bool) {
        let ev = if on {
            PathEvent::VaryOn
        } else {
            PathEvent::VaryOff
        };
        self.shared.path_event(chpid, ev).await;
    }

    /// Applies a channel-path event to every subchannel using `chpid`.
    pub async fn path_event(&self, chpid: u8, event: PathEvent) {
        self.shared.path_event(chpid, event).await;
    }
}

async fn event_loop<B: Backend + ?Sized, T: Translate>(
    shared: std::sync::Weak<Shared<B, T>>,
    mut events: EventReceiver,
) {
    while let Some(ev) = events.recv().await {
        let Some(sh) = shared.upgrade() else { break };
        sh.handle(ev).await;
    }
    tracing::debug!("backend event stream ended");
}

impl<B: Backend + ?Sized, T: Translate> Shared<B, T> {
    fn entry(&self, sch: SubchannelId) -> Result<Arc<Entry<T>>, CssError> {
        self.registry.get(sch).ok_or(CssError::Unknown(sch))
    }

    async fn handle(&self, ev: BackendEvent) {
        match ev {
            BackendEvent::Interrupt { sch, irb } => self.interrupt(sch, irb).await,
            BackendEvent::ChannelReport(crw) => self.process_report(crw).await,
            BackendEvent::ReleaseRequest { sch } => match self.registry.get(sch) {
                Some(e) => e.core.emit(SubchannelEvent::ReleaseRequested),
                None => tracing::debug!(%sch, "release request for unknown subchannel dropped"),
            },
        }
    }

    async fn interrupt(&self, sch: SubchannelId, irb: Irb) {
        let Some(entry) = self.registry.get(sch) else {
            tracing::debug!(%sch, scsw = ?irb.scsw, "interrupt for unknown subchannel dropped");
            return;
        };
        let disable = entry.core.interrupt(irb);
        entry.irq.notify_waiters();
        if disable {
            let disabled = match self.backend.disable(sch).await {
                Ok(cc) => {
                    tracing::debug!(%sch, cc = cc.value(), "disabled unowned subchannel");
                    matches!(cc, ConditionCode::Cc0 | ConditionCode::Cc3)
                }
                Err(e) => {
                    tracing::warn!(%sch, error = %e, "disabling unowned subchannel failed");
                    e.kind == BackendErrorKind::NoDevice
                }
            };
            entry.core.disable_end(disabled);
            entry.irq.notify_waiters();
        }
    }

    /// Claims `entry` for an open, first waiting (bounded) while the event task disables it.
    async fn claim_for_open(&self, entry: &Entry<T>) -> Result<(), CssError> {
        let deadline = tokio::time::Instant::now() + self.config.quiesce_wait;
        loop {
            let settled = entry.irq.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            match entry.core.open_begin()? {
                Claim::Claimed => return Ok(()),
                Claim::Disabling => {
                    if tokio::time::timeout_at(deadline, settled).await.is_err() {
                        return Err(CssError::Timeout {
                            sch: entry.core.sch,
                            op: "open (waiting for the disable of status nobody owned)",
                            tries: 1,
                        });
                    }
                }
            }
        }
    }

    /// Waits until `done()` holds, waking on every interruption of `entry`; `false` when
    /// `deadline` passed first.
    async fn wait_irq_until(
        entry: &Entry<T>,
        deadline: tokio::time::Instant,
        mut done: impl FnMut() -> bool,
    ) -> bool {
        loop {
            let irq = entry.irq.notified();
            tokio::pin!(irq);
            irq.as_mut().enable();
            if done() {
                return true;
            }
            if tokio::time::timeout_at(deadline, irq).await.is_err() {
                return done();
            }
        }
    }

    async fn process_report(&self, c: Crw) {
        {
            let mut subs = lock(&self.reports);
            subs.retain(|tx| tx.send(c).is_ok());
        }
        if c.overflow() {
            // Reports were lost before this one (R): any subchannel may have changed, so
            // every one is re-read, as Linux's css_schedule_eval_all.
            tracing::warn!(%c, "channel reports were lost: re-reading every subchannel");
            for entry in self.registry.all() {
                self.subchannel_event(entry.core.sch).await;
            }
        }
        match c.rsc() {
            crw::rsc::SUBCHANNEL => {
                let report = lock(&self.chain).push(c);
                let sch = match report {
                    Ok(Some(report)) => report.subchannel_id(),
                    Ok(None) => return, // the first half of a chain: wait for the second
                    Err(e) => {
                        tracing::warn!(%c, error = %e, "malformed chained subchannel report dropped");
                        return;
                    }
                };
                let Some(sch) = sch else { return };
                self.subchannel_event(sch).await;
            }
            crw::rsc::CHANNEL_PATH => {
                let chpid = (c.rsid() & 0xFF) as u8;
                match PathEvent::of_erc(c.erc()) {
                    Some(ev) => self.path_event(chpid, ev).await,
                    None => tracing::debug!(chpid, erc = c.erc(), "channel-path report ignored"),
                }
            }
            rsc => tracing::debug!(
                rsc,
                erc = c.erc(),
                rsid = c.rsid(),
                "channel report not for css-core"
            ),
        }
    }

    /// Linux `sch_event`: refresh the SCHIB; not operational when it cannot be stored or the
    /// device is no longer valid; gone (removed) when the subchannel no longer exists.
    async fn subchannel_event(&self, sch: SubchannelId) {
        let Some(entry) = self.registry.get(sch) else {
            tracing::debug!(%sch, "report for unregistered subchannel (probe to register it)");
            return;
        };
        match self.backend.store_schib(sch).await {
            Ok(schib) if schib.pmcw.flags.dnv() => {
                entry.core.schib_refreshed(schib);
            }
            Ok(_) => {
                tracing::info!(%sch, "device no longer valid: not operational");
                entry.core.not_oper();
            }
            Err(e) if e.kind == BackendErrorKind::NoDevice => {
                tracing::info!(%sch, "subchannel gone: removing");
                entry.core.not_oper();
                if let Err(e) = self.remove_entry(&entry).await {
                    tracing::warn!(%sch, error = %e, "removing the gone subchannel failed");
                }
            }
            Err(e) => {
                tracing::warn!(%sch, error = %e, "schib refresh failed: not operational");
                entry.core.not_oper();
            }
        }
    }

    /// Linux `vfio_ccw_chp_event` over every subchannel: each one's [`Core::path_event`]
    /// updates its masks and forwards the report; a running program that was using the path
    /// taken away is ended (`cio_cancel_halt_clear`).
    async fn path_event(&self, chpid: u8, event: PathEvent) {
        for entry in self.registry.all() {
            if entry.core.path_event(chpid, event) {
                self.cancel_halt_clear(entry.core.sch, 0).await;
            }
        }
    }

    /// [`Css::unmap_guest_range`] for one subchannel: `Ok(true)` when it was cleared.
    async fn unmap_entry(&self, entry: &Entry<T>, range: GuestRange) -> Result<bool, CssError> {
        let sch = entry.core.sch;
        let (teardown, clears) = loop {
            match entry.core.take_if_pinned(range) {
                UnmapCheck::NotPinned => return Ok(false),
                // START is on its way to the backend: its answer comes promptly.
                UnmapCheck::Starting => tokio::task::yield_now().await,
                UnmapCheck::Pinned { teardown, clears } => break (teardown, clears),
            }
        };
        tracing::info!(%sch, %range, "guest range unmapped under the running program: clearing");
        // The program's pins stay until the channel has stopped using them.
        let res = match self.backend.clear(sch).await {
            Ok(ConditionCode::Cc0) => {
                let deadline = tokio::time::Instant::now() + self.config.quiesce_wait;
                if Self::wait_irq_until(entry, deadline, || entry.core.clears() != clears).await {
                    Ok(())
                } else {
                    Err(CssError::Timeout {
                        sch,
                        op: "clear for unmap",
                        tries: 1,
                    })
                }
            }
            // cc 3: not operational, nothing runs on it any more.
            Ok(cc) => {
                tracing::info!(%sch, cc = cc.value(), "clear for unmap: subchannel not operational");
                entry.core.not_oper();
                Ok(())
            }
            Err(e) => Err(CssError::from(e)),
        };
        if let Err(e) = &res {
            tracing::warn!(%sch, error = %e, "clear for unmap failed; releasing the program anyway");
        }
        teardown.finish(|| CssError::Unmapped { sch, range });
        res.map(|()| true)
    }

    /// One step of Linux's `cio_cancel_halt_clear`: cancel first, then halt, then clear.
    /// Returns whether a halt or clear was accepted, so that an interruption will end it: only
    /// then is there something to wait for (a successful cancel leaves the subchannel idle
    /// with no interruption, as `vfio_ccw_sch_quiesce` knows).
    async fn cancel_halt_clear(&self, sch: SubchannelId, attempt: u32) -> bool {
        if attempt == 0 {
            match self.backend.cancel(sch).await {
                Ok(ConditionCode::Cc0) => return false,
                Ok(_) => {}
                Err(e) if e.kind == BackendErrorKind::Unsupported => {}
                Err(e) => tracing::debug!(%sch, error = %e, "cancel failed"),
            }
        }
        if attempt <= 1 {
            match self.backend.halt(sch).await {
                Ok(ConditionCode::Cc0) => return true,
                Ok(cc) => tracing::debug!(%sch, cc = cc.value(), "halt refused"),
                Err(e) => tracing::debug!(%sch, error = %e, "halt failed"),
            }
        }
        match self.backend.clear(sch).await {
            Ok(cc) => {
                tracing::debug!(%sch, cc = cc.value(), "clear");
                cc == ConditionCode::Cc0
            }
            Err(e) => {
                tracing::debug!(%sch, error = %e, "clear failed");
                false
            }
        }
    }

    /// Disables `sch`, escalating cancel -> halt -> clear while it is busy; bounded. Waits
    /// (up to `quiesce_wait`) only for the interruption of an accepted halt or clear.
    async fn quiesce(&self, entry: &Entry<T>) -> Result<(), CssError> {
        let sch = entry.core.sch;
        let tries = self.config.quiesce_retries.max(1);
        for attempt in 0..tries {
            match self.backend.disable(sch).await {
                Ok(ConditionCode::Cc0) | Ok(ConditionCode::Cc3) => return Ok(()),
                Ok(cc) => {
                    tracing::debug!(%sch, cc = cc.value(), attempt, "disable busy: quiescing")
                }
                Err(e) if e.kind == BackendErrorKind::NoDevice => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            // Enabled before the halt or clear is issued: its interruption cannot slip by.
            let irq = entry.irq.notified();
            tokio::pin!(irq);
            irq.as_mut().enable();
            if self.cancel_halt_clear(sch, attempt).await {
                let _ = tokio::time::timeout(self.config.quiesce_wait, irq).await;
            }
        }
        Err(CssError::Timeout {
            sch,
            op: "quiesce",
            tries,
        })
    }

    async fn close_entry(&self, entry: &Entry<T>) -> Result<(), CssError> {
        let sch = entry.core.sch;
        let td = entry.core.close_begin()?;
        let td_was_enabled = td.was_enabled;
        let res = if td.was_enabled {
            self.quiesce(entry).await
        } else {
            Ok(())
        };
        if let Err(e) = &res {
            tracing::warn!(%sch, error = %e, "close: quiesce failed; releasing anyway");
        }
        td.finish(|| CssError::Closed(sch));
        // A close that never enabled (NOT_OPER, STANDBY) has nothing to say about it.
        entry.core.close_end(td_was_enabled && res.is_ok());
        tracing::debug!(%sch, "closed");
        res
    }

    async fn remove_entry(&self, entry: &Arc<Entry<T>>) -> Result<(), CssError> {
        let sch = entry.core.sch;
        // Mark removed first (events after this are dropped), quiesce while the entry is
        // still routable (so halt/clear interruptions wake us), then unregister.
        let td = entry.core.remove();
        let res = if td.was_enabled {
            self.quiesce(entry).await
        } else {
            Ok(())
        };
        td.finish(|| CssError::Gone(sch));
        self.registry.remove_if(sch, entry);
        tracing::debug!(%sch, "removed");
        res
    }
}

impl<B: Backend + ?Sized, T: Translate> Subchannel<B, T> {
    /// The subchannel id.
    pub fn id(&self) -> SubchannelId {
        self.entry.core.sch
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.entry.core.state()
    }

    /// Events of this subchannel: intermediate and unsolicited status, channel reports,
    /// release requests. One receiver at a time: a new call replaces the previous one.
    pub fn events(&self) -> mpsc::UnboundedReceiver<SubchannelEvent> {
        self.entry.core.subscribe()
    }

    /// Starts the guest channel program `orb` (command mode) found in `mem` and waits for its
    /// final status.
    ///
    /// Errors: [`CssError::Refused`] (EBUSY while a program runs, EAGAIN while one is being
    /// started, EIO when not open), [`CssError::Translate`] for a program that cannot be
    /// translated, [`CssError::Condition`] for START cc 1/2/3, [`CssError::Closed`] or
    /// [`CssError::Gone`] when a close or removal overtook the request.
    pub async fn submit<M: GuestMemory + ?Sized>(
        &self,
        orb: &Orb,
        mem: &M,
    ) -> Result<IoCompletion, CssError> {
        let intparm = orb.intparm.get();
        let span = tracing::debug_span!(parent: &self.span, "io", sch = %self.id(), intparm = format_args!("{intparm:#x}"));
        let rx = {
            let _enter = span.enter();
            self.prepare(orb, mem)?
        };
        let (rx, ticket, host_orb) = rx;
        let sch = self.id();
        async move {
            let cc = if host_orb.ctrl.lpm() & ticket.lpm == 0 {
                // No path the ORB allows is logically available (every one varied off): as
                // Linux's ccw_device_start (`lpm &= sch->lpm`, nothing left: no start), the
                // start finds no path to select and ends as cc 3 (EACCES while other paths
                // remain, else ENODEV). Answered here, because a backend may fill in its own
                // mask (vfio-ccw replaces LPM 0 with the kernel's sch->lpm).
                Ok(ConditionCode::Cc3)
            } else {
                self.shared
                    .backend
                    .start(sch, &host_orb)
                    .await
                    .map_err(CssError::from)
            };
            self.entry.core.started(ticket, host_orb.ctrl.lpm(), cc);
            match rx.await {
                Ok(r) => r,
                // The waiter is always answered before it is dropped; be defensive.
                Err(_) => Err(CssError::Closed(sch)),
            }
        }
        .instrument(span)
        .await
    }

    /// The synchronous first half of `submit`: state check, translation, installation.
    #[allow(clippy::type_complexity)]
    fn prepare<M: GuestMemory + ?Sized>(
        &self,
        orb: &Orb,
        mem: &M,
    ) -> Result<
        (
            oneshot::Receiver<Result<IoCompletion, CssError>>,
            crate::core::Ticket,
            Orb,
        ),
        CssError,
    > {
        let sch = self.id();
        let core = &self.entry.core;
        let ticket = core.io_request(orb.intparm.get())?;
        if orb.ctrl.transport() {
            core.translate_failed(ticket, Errno::NotSupported);
            return Err(CssError::TransportMode(sch));
        }
        let translated = {
            let mut io = lock(&self.entry.io);
            let Some(mapper) = io.mapper.clone() else {
                drop(io);
                core.translate_failed(ticket, Errno::Io);
                return Err(CssError::NotOpen(sch));
            };
            let tr = io.translator.get_or_insert_with(|| Box::new(T::create()));
            tr.translate(orb, mem, mapper, ticket.lpm)
        };
        let program = match translated {
            Ok(p) => p,
            Err(e) => {
                let errno = e.errno();
                core.translate_failed(ticket, errno);
                tracing::debug!(%sch, error = %e, "translation failed");
                return Err(CssError::Translate {
                    sch,
                    errno,
                    kind: e.kind(),
                    program_check: e.program_check(),
                    source: Box::new(e),
                });
            }
        };
        let host_orb = program.host_orb();
        let (tx, rx) = oneshot::channel();
        if core.install(ticket, program, tx).is_err() {
            // Overtaken by a close, not-operational or removal: the program is dropped
            // (released) here, unstarted.
            return Err(CssError::Closed(sch));
        }
        Ok((rx, ticket, host_orb))
    }

    async fn async_op(&self, op: AsyncOp) -> Result<(), CssError> {
        let sch = self.id();
        self.entry.core.async_request(op)?;
        let (name, cc) = match op {
            AsyncOp::Halt => ("halt", self.shared.backend.halt(sch).await?),
            AsyncOp::Clear => ("clear", self.shared.backend.clear(sch).await?),
        };
        tracing::debug!(parent: &self.span, %sch, op = name, cc = cc.value(), "async request");
        match cc {
            ConditionCode::Cc0 => Ok(()),
            cc => Err(CssError::Condition {
                sch,
                op: name,
                cc,
                errno: Errno::of_cc(cc),
            }),
        }
    }

    /// HALT SUBCHANNEL. The running program (if any) ends with the halt's final status,
    /// which resolves its `submit`; without one the status arrives as an event.
    pub async fn halt(&self) -> Result<(), CssError> {
        self.async_op(AsyncOp::Halt).await
    }

    /// CLEAR SUBCHANNEL, like [`Subchannel::halt`].
    pub async fn clear(&self) -> Result<(), CssError> {
        self.async_op(AsyncOp::Clear).await
    }

    /// STORE SUBCHANNEL: refreshes and returns the SCHIB.
    pub async fn schib(&self) -> Result<Schib, CssError> {
        let schib = self.shared.backend.store_schib(self.id()).await?;
        self.entry.core.schib_stored(schib);
        Ok(schib)
    }

    /// Closes the subchannel (see [`Css::close`]).
    pub async fn close(self) -> Result<(), CssError> {
        self.shared.close_entry(&self.entry).await
    }
}
