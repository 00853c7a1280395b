// SPDX-License-Identifier: Apache-2.0 OR MIT

//! [`MockBackend`]: the simulated channel subsystem behind [`css_core::Backend`].
//!
//! Instructions apply the pure transitions of [`crate::instr`] under the subchannel's lock and
//! hand the asynchronous part (start, resume, halt, clear functions) to one worker task per busy
//! subchannel. The worker executes the channel program command by command, so a halt or clear
//! issued while a program runs is acted on between two commands. Whenever a subchannel becomes
//! status pending (and is enabled), the backend does what the kernel's interruption handler
//! does: TEST SUBCHANNEL, and the IRB goes out once on the event stream.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use ccw_translate::Mapper;
use ccw_types::{Crw, DeviceStatus, Orb, OrbRepr, Schib, SubchannelId, crw};
use css_core::{
    Backend, BackendError, BackendErrorKind, BackendEvent, ConditionCode, EventReceiver,
    EventSender,
};
use tracing::{Instrument, debug, trace};
use vm_memory::GuestMemoryMmap;

use crate::channel::{DEFAULT_MAX_CCWS, Program, Step};
use crate::device::{
    ChainContext, Command, DataStream, DeviceModel, DeviceOutcome, SenseData, SenseIdData,
};
use crate::devices::{TestDevice, VirtioBlkCcw};
use crate::fault::{Fault, FaultPolicy, Point};
use crate::instr::{self, Ending, OperandException, SchState};
use crate::storage::{DEFAULT_ARENA_SIZE, HostStorage, MappingStats};

/// Commands a worker executes before it yields to the runtime (and so to halt and clear):
/// one, so a halt or clear issued while a program runs acts at the next command.
const STEPS_PER_SLICE: usize = 1;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds a [`MockBackend`].
///
/// ```
/// use mock_backend::{MockBackend, devices::TestDevice};
/// use std::time::Duration;
/// let backend = MockBackend::builder()
///     .subchannel(0x0100, Box::new(TestDevice::new(4096)))
///     .latency(Duration::ZERO)
///     .build()?;
/// assert_eq!(backend.subchannel_ids().len(), 1);
/// # Ok::<(), css_core::BackendError>(())
/// ```
pub struct MockBuilder {
    /// Keyed by id, so adding is O(1) at the architecture's 262,144 subchannels (a later add
    /// of the same id replaces the earlier one).
    subchannels: HashMap<SubchannelId, (u16, Box<dyn DeviceModel>)>,
    /// The number [`MockBuilder::subchannel`] gives next: one past the highest added.
    next_sch_no: u16,
    latency: Duration,
    faults: FaultPolicy,
    guest: Option<GuestMemoryMmap>,
    arena_size: usize,
    require_pins: bool,
    max_ccws: u64,
    isc: u8,
    paths: u8,
    event_capacity: usize,
}

impl std::fmt::Debug for MockBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockBuilder")
            .field("subchannels", &self.subchannels.len())
            .field("latency", &self.latency)
            .field("faults", &self.faults)
            .field("arena_size", &self.arena_size)
            .finish_non_exhaustive()
    }
}

impl MockBuilder {
    /// Adds a subchannel with device number `devno` and `device`, numbered after the previous
    /// one (0.0.0000, 0.0.0001, ...).
    pub fn subchannel(self, devno: u16, device: Box<dyn DeviceModel>) -> Self {
        let next = self.next_sch_no;
        self.subchannel_at(SubchannelId::new(0, 0, next), devno, device)
    }

    /// Adds a subchannel with an explicit id.
    pub fn subchannel_at(
        mut self,
        sch: SubchannelId,
        devno: u16,
        device: Box<dyn DeviceModel>,
    ) -> Self {
        self.next_sch_no = self.next_sch_no.max(sch.sch_no.wrapping_add(1));
        self.subchannels.insert(sch, (devno, device));
        self
    }

    /// Time between START (or RESUME) SUBCHANNEL and the device starting; zero for benchmarks.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// The fault policy (default: none).
    pub fn faults(mut self, policy: FaultPolicy) -> Self {
        self.faults = policy;
        self
    }

    /// Attaches guest memory: the backend keeps a clone that shares the same mmap'd regions
    /// (zero-copy) and shows guest address `gpa` at device address [`crate::GUEST_BASE`]` + gpa`.
    /// Accepts `GuestMemoryMmap`, `&GuestMemoryMmap` or `Arc<GuestMemoryMmap>`.
    pub fn guest_memory(mut self, mem: impl Borrow<GuestMemoryMmap>) -> Self {
        self.guest = Some(mem.borrow().clone());
        self
    }

    /// Size of the control arena (default 8 MiB; at most [`crate::MAX_ARENA_SIZE`]).
    pub fn arena_size(mut self, bytes: usize) -> Self {
        self.arena_size = bytes;
        self
    }

    /// Whether the channel may touch only guest pages pinned through the mapper (default
    /// `true`: an access to an unpinned page is a channel-data check). Turn it off to run host
    /// programs whose data lives in guest memory without pinning it.
    pub fn require_pins(mut self, on: bool) -> Self {
        self.require_pins = on;
        self
    }

    /// Upper bound on the CCWs one program may execute before the channel ends it with a
    /// program check (default 2^20).
    pub fn max_ccws(mut self, n: u64) -> Self {
        self.max_ccws = n.max(1);
        self
    }

    /// Interruption subclass of every subchannel (default 3, as Linux's I/O subchannels).
    pub fn isc(mut self, isc: u8) -> Self {
        self.isc = isc & 7;
        self
    }

    /// Installed paths of every subchannel as a mask (default 0x80: one path, slot 0).
    pub fn paths(mut self, pim: u8) -> Self {
        self.paths = pim;
        self
    }

    /// How many events the backend's queue holds (default
    /// [`css_core::backend::EVENT_QUEUE_CAPACITY`]). While it is full, a subchannel's status
    /// stays pending (START gets cc 1) and channel reports overflow (R bit); see
    /// [`css_core::event_channel`].
    pub fn event_capacity(mut self, events: usize) -> Self {
        self.event_capacity = events.max(1);
        self
    }

    /// Builds the backend.
    pub fn build(self) -> Result<MockBackend, BackendError> {
        let storage =
            HostStorage::new(self.arena_size, self.guest, self.require_pins).map_err(|e| {
                BackendError::new(BackendErrorKind::Io, "build")
                    .with_detail(format!("cannot map the control arena: {e}"))
            })?;
        let mut subchannels = HashMap::new();
        let mut order = Vec::new();
        for (id, (devno, device)) in self.subchannels {
            let mut st = SchState::new(devno);
            let p = &mut st.schib.pmcw;
            p.flags.set_isc(self.isc);
            p.pim = self.paths;
            p.pam = self.paths;
            p.lpm = self.paths;
            for (slot, chpid) in p.chpid.iter_mut().enumerate() {
                *chpid = if self.paths & (0x80 >> slot) != 0 {
                    slot as u8
                } else {
                    0
                };
            }
            order.push(id);
            subchannels.insert(
                id,
                Arc::new(Sch {
                    id,
                    state: Mutex::new(SchInner {
                        st,
                        device,
                        program: None,
                        worker: false,
                        waited: false,
                        delayed_delivery: false,
                        forced_sense: None,
                    }),
                }),
            );
        }
        order.sort_by_key(|s| (s.cssid, s.ssid, s.sch_no));
        let (tx, rx) = css_core::event_channel(self.event_capacity);
        Ok(MockBackend {
            inner: Arc::new(Inner {
                storage: Arc::new(storage),
                subchannels,
                order,
                latency: self.latency,
                max_ccws: self.max_ccws,
                faults_on: !self.faults.is_disabled(),
                faults: Mutex::new(self.faults),
                events: tx,
                receiver: Mutex::new(Some(rx)),
                crw_overflow: AtomicBool::new(false),
            }),
        })
    }
}

/// The simulated channel subsystem. Cheap to clone (shared state).
///
/// ```
/// use mock_backend::MockBackend;
/// use vm_memory::{GuestAddress, GuestMemoryMmap};
/// let guest = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
/// let backend = MockBackend::default_subsystem(&guest)?;
/// let ids: Vec<String> = backend.subchannel_ids().iter().map(|s| s.to_string()).collect();
/// assert_eq!(ids, ["0.0.0000", "0.0.0001"]);
/// # Ok::<(), css_core::BackendError>(())
/// ```
#[derive(Clone)]
pub struct MockBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MockBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockBackend")
            .field("subchannels", &self.inner.order)
            .field("latency", &self.inner.latency)
            .finish_non_exhaustive()
    }
}

struct Inner {
    storage: Arc<HostStorage>,
    subchannels: HashMap<SubchannelId, Arc<Sch>>,
    order: Vec<SubchannelId>,
    latency: Duration,
    max_ccws: u64,
    faults: Mutex<FaultPolicy>,
    /// Whether the policy can inject anything (else no decision takes its lock).
    faults_on: bool,
    events: EventSender,
    receiver: Mutex<Option<EventReceiver>>,
    crw_overflow: AtomicBool,
}

struct Sch {
    id: SubchannelId,
    state: Mutex<SchInner>,
}

struct SchInner {
    st: SchState,
    device: Box<dyn DeviceModel>,
    program: Option<Program>,
    /// A worker task is running for this subchannel.
    worker: bool,
    /// The worker already waited the latency for the pending start/resume.
    waited: bool,
    /// A delayed delivery is scheduled: status stays pending until it runs.
    delayed_delivery: bool,
    /// Sense injected by a unit-check fault, returned before the device's own.
    forced_sense: Option<SenseData>,
}

/// The device as the channel sees it during a step: injected sense first.
struct WithForcedSense<'a> {
    dev: &'a mut dyn DeviceModel,
    forced: &'a mut Option<SenseData>,
}

impl DeviceModel for WithForcedSense<'_> {
    fn sense_id(&self) -> Option<SenseIdData> {
        self.dev.sense_id()
    }
    fn execute(
        &mut self,
        cmd: &Command,
        data: &mut dyn DataStream,
        ctx: &mut ChainContext,
    ) -> DeviceOutcome {
        self.dev.execute(cmd, data, ctx)
    }
    fn sense(&mut self) -> SenseData {
        self.forced.take().unwrap_or_else(|| self.dev.sense())
    }
    fn reset(&mut self) {
        *self.forced = None;
        self.dev.reset();
    }
    fn begin_chain(&mut self) {
        self.dev.begin_chain();
    }
    fn end_chain(&mut self) -> DeviceStatus {
        self.dev.end_chain()
    }
}

enum Next {
    Sleep(Duration),
    Yield,
    Done,
}

fn leftmost(mask: u8) -> u8 {
    if mask == 0 {
        0
    } else {
        0x80 >> mask.leading_zeros()
    }
}

fn chpid_of(st: &SchState, path: u8) -> u8 {
    let slot = path.leading_zeros() as usize;
    st.schib.pmcw.chpid.get(slot).copied().unwrap_or(0)
}

impl Inner {
    fn sch(&self, id: SubchannelId, op: &'static str) -> Result<&Arc<Sch>, BackendError> {
        self.subchannels.get(&id).ok_or_else(|| {
            BackendError::new(BackendErrorKind::NoDevice, op)
                .on(id)
                .with_detail("no such subchannel in the simulated channel subsystem")
        })
    }

    /// A fault decision; free when the policy can inject nothing.
    fn decide(&self, sch: SubchannelId, point: Point) -> Option<Fault> {
        if !self.faults_on {
            return None;
        }
        lock(&self.faults).decide(sch, point)
    }

    /// Queues a channel report, applying CRW-overflow faults.
    fn report(&self, mut c: Crw, sch: SubchannelId) {
        if let Some(Fault::CrwOverflow) = self.decide(sch, Point::Report) {
            debug!(%c, "fault: channel report lost (overflow)");
            self.crw_overflow.store(true, Ordering::SeqCst);
            return;
        }
        if self.crw_overflow.swap(false, Ordering::SeqCst) {
            c.set_overflow(true);
        }
        // Never waits: a full queue holds the report back or loses it with the R bit.
        self.events.report(c);
    }

    /// The interruption handler: TEST SUBCHANNEL and deliver, with delivery faults.
    fn deliver(self: &Arc<Self>, sch: &Arc<Sch>, s: &mut SchInner) {
        if !s.st.status_pending() || !s.st.schib.pmcw.flags.enabled() || s.delayed_delivery {
            return;
        }
        let fault = self.decide(sch.id, Point::Deliver);
        match fault {
            Some(Fault::DelayedInterrupt) => {
                s.delayed_delivery = true;
                let delay = lock(&self.faults).interrupt_delay();
                let (inner, sch) = (Arc::clone(self), Arc::clone(sch));
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let mut s = lock(&sch.state);
                    s.delayed_delivery = false;
                    inner.deliver_now(&sch, &mut s, false);
                });
            }
            Some(Fault::DuplicateInterrupt) => self.deliver_now(sch, s, true),
            Some(Fault::SpuriousInterrupt) => {
                self.deliver_now(sch, s, false);
                let idle = s.st.schib.scsw.ctrl.fc().is_empty();
                if idle && !s.st.status_pending() {
                    instr::unsolicited(&mut s.st, DeviceStatus::ATTENTION);
                    self.deliver_now(sch, s, false);
                }
            }
            _ => self.deliver_now(sch, s, false),
        }
    }

    /// TEST SUBCHANNEL and queue the interruption, if the event queue has room. While it is
    /// full the status stays pending in the subchannel (START gets cc 1, as on a real
    /// subchannel whose status nobody took) and one task per subchannel waits for room.
    fn deliver_now(self: &Arc<Self>, sch: &Arc<Sch>, s: &mut SchInner, twice: bool) {
        if !s.st.schib.pmcw.flags.enabled() || !s.st.status_pending() {
            return;
        }
        if s.st
            .schib
            .scsw
            .ctrl
            .ac()
            .contains(ccw_types::ActivityControl::CLEAR_PENDING)
        {
            // A delayed delivery coming due between CLEAR SUBCHANNEL and the clear function:
            // the clear function discards the pending status and interruption and makes its
            // own pending (reference §10.8), so nothing is delivered now (found by the
            // `channel` fuzz target).
            return;
        }
        let Some(slot) = self.events.try_reserve() else {
            if self.events.is_closed() {
                // Nobody listens any more: the status stays pending.
                return;
            }
            trace!(sch = %sch.id, "event queue full: status stays pending");
            s.delayed_delivery = true;
            let (inner, sch) = (Arc::clone(self), Arc::clone(sch));
            tokio::spawn(async move {
                let room = inner.events.reserve().await;
                let mut s = lock(&sch.state);
                s.delayed_delivery = false;
                if let Some(room) = room {
                    // Released again at once: deliver_now takes its own slot, under the lock.
                    drop(room);
                    inner.deliver_now(&sch, &mut s, twice);
                }
            });
            return;
        };
        let (cc, irb) = instr::tsch(&mut s.st);
        if cc != ConditionCode::Cc0 {
            return;
        }
        trace!(sch = %sch.id, scsw = %irb.scsw, "interruption");
        let ev = BackendEvent::Interrupt { sch: sch.id, irb };
        if twice {
            // The duplicate of a duplicate-interrupt fault goes only if there is room.
            if let Some(extra) = self.events.try_reserve() {
                extra.send(ev.clone());
            }
        }
        slot.send(ev);
    }

    fn ensure_worker(self: &Arc<Self>, sch: &Arc<Sch>, s: &mut SchInner) {
        if !s.worker {
            s.worker = true;
            let span = tracing::debug_span!("mock_subchannel", sch = %sch.id);
            let (inner, sch) = (Arc::clone(self), Arc::clone(sch));
            tokio::spawn(async move { inner.run(sch).await }.instrument(span));
        }
    }

    async fn run(self: Arc<Self>, sch: Arc<Sch>) {
        loop {
            let next = {
                let mut s = lock(&sch.state);
                self.work(&sch, &mut s)
            };
            match next {
                Next::Sleep(d) => tokio::time::sleep(d).await,
                Next::Yield => tokio::task::yield_now().await,
                Next::Done => return,
            }
        }
    }

    /// One slice of the asynchronous functions of a subchannel, under its lock.
    fn work(self: &Arc<Self>, sch: &Arc<Sch>, s: &mut SchInner) -> Next {
        use ccw_types::ActivityControl as Ac;
        let ac = s.st.schib.scsw.ctrl.ac();
        if ac.contains(Ac::CLEAR_PENDING) {
            debug!(sch = %sch.id, "clear function");
            s.program = None;
            s.forced_sense = None;
            s.device.reset();
            s.waited = false;
            instr::clear_complete(&mut s.st);
            self.deliver(sch, s);
            return Next::Yield;
        }
        if ac.contains(Ac::HALT_PENDING) {
            debug!(sch = %sch.id, "halt function");
            let program = s.program.take();
            // A halted program's changes the device kept in memory are made durable now;
            // when that fails the halt status carries the device's unit check.
            let lost = if program.is_some() {
                s.device.end_chain()
            } else {
                DeviceStatus::NONE
            };
            let cpa = program
                .map(|p| p.current_cpa())
                .unwrap_or(s.st.schib.scsw.cpa.get());
            s.waited = false;
            instr::halt_complete(&mut s.st, cpa);
            if !lost.is_empty() {
                instr::add_device_status(&mut s.st, lost);
            }
            self.deliver(sch, s);
            return Next::Yield;
        }
        if ac.intersects(Ac::START_PENDING | Ac::RESUME_PENDING) {
            if !self.latency.is_zero() && !s.waited {
                s.waited = true;
                return Next::Sleep(self.latency);
            }
            s.waited = false;
            return self.begin(sch, s, ac.contains(Ac::START_PENDING));
        }
        if ac.contains(Ac::SUBCHANNEL_ACTIVE) {
            return self.execute(sch, s);
        }
        s.worker = false;
        Next::Done
    }

    fn begin(self: &Arc<Self>, sch: &Arc<Sch>, s: &mut SchInner, start: bool) -> Next {
        let paths = s.st.usable_paths();
        if paths == 0 {
            let p = &s.st.schib.pmcw;
            let pnom = p.lpm & p.pam & !p.pom;
            debug!(sch = %sch.id, pnom, "no operational path: deferred cc 3");
            s.program = None;
            instr::deferred_cc(&mut s.st, 3, pnom);
            self.deliver(sch, s);
            return Next::Yield;
        }
        let path = leftmost(paths);
        let fault = if start {
            self.decide(sch.id, Point::Execute)
        } else {
            None
        };
        match fault {
            Some(Fault::NotOperationalDuringIo) => {
                debug!(sch = %sch.id, "fault: device not operational during I/O");
                instr::begin_start(&mut s.st, path);
                s.program = None;
                instr::deferred_cc(&mut s.st, 3, 0);
                let c = Crw::new()
                    .with_rsc(crw::rsc::SUBCHANNEL)
                    .with_erc(crw::erc::TERROR)
                    .with_rsid(sch.id.sch_no);
                self.report(c, sch.id);
                self.deliver(sch, s);
                return Next::Yield;
            }
            Some(Fault::PathLoss) => {
                let chpid = chpid_of(&s.st, path);
                debug!(sch = %sch.id, chpid, "fault: channel path lost");
                instr::begin_start(&mut s.st, path);
                s.program = None;
                s.st.schib.pmcw.pom &= !path;
                instr::deferred_cc(&mut s.st, 3, path);
                let lost = Crw::new()
                    .with_rsc(crw::rsc::CHANNEL_PATH)
                    .with_erc(crw::erc::PERRN)
                    .with_rsid(u16::from(chpid));
                self.report(lost, sch.id);
                self.deliver(sch, s);
                let after = lock(&self.faults).path_restore();
                let (inner, sch) = (Arc::clone(self), Arc::clone(sch));
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    lock(&sch.state).st.schib.pmcw.pom |= path;
                    let back = Crw::new()
                        .with_rsc(crw::rsc::CHANNEL_PATH)
                        .with_erc(crw::erc::INIT)
                        .with_rsid(u16::from(chpid));
                    inner.report(back, sch.id);
                });
                return Next::Yield;
            }
            Some(Fault::UnitCheck { sense }) => {
                debug!(sch = %sch.id, "fault: unit check");
                instr::begin_start(&mut s.st, path);
                let cpa = s.program.take().map(|p| p.current_cpa()).unwrap_or(0);
                let mut forced = SenseData::default();
                forced.bytes[..4].copy_from_slice(&sense);
                let cs = s.st.schib.pmcw.chars.concurrent_sense();
                if !cs {
                    s.forced_sense = Some(forced);
                }
                instr::end_start(
                    &mut s.st,
                    &Ending {
                        dstat: DeviceStatus::UNIT_CHECK,
                        cpa,
                        sense: cs.then_some(forced),
                        ..Ending::default()
                    },
                );
                self.deliver(sch, s);
                return Next::Yield;
            }
            _ => {}
        }
        instr::begin_start(&mut s.st, path);
        if start && s.st.orb.initial_status() {
            let cpa = s.program.as_ref().map(|p| p.current_cpa()).unwrap_or(0);
            instr::intermediate(&mut s.st, cpa, false, true);
            self.deliver(sch, s);
        }
        Next::Yield
    }

    fn execute(self: &Arc<Self>, sch: &Arc<Sch>, s: &mut SchInner) -> Next {
        let cs = s.st.schib.pmcw.chars.concurrent_sense();
        for _ in 0..STEPS_PER_SLICE {
            let SchInner {
                st,
                device,
                program,
                forced_sense,
                ..
            } = s;
            let Some(prog) = program.as_mut() else {
                // Active without a program cannot happen; end the start function cleanly.
                instr::end_start(
                    st,
                    &Ending {
                        cstat: ccw_types::SubchannelStatus::CHANNEL_CONTROL_CHECK,
                        ..Ending::default()
                    },
                );
                self.deliver(sch, s);
                return Next::Yield;
            };
            let mut dev = WithForcedSense {
                dev: device.as_mut(),
                forced: forced_sense,
            };
            match prog.step(&self.storage, &mut dev, cs) {
                Step::Continue { pci: None } => continue,
                Step::Continue { pci: Some(cpa) } => {
                    instr::intermediate(st, cpa, true, false);
                    self.deliver(sch, s);
                    return Next::Yield;
                }
                Step::Suspend { cpa, pci } => {
                    let lost = dev.end_chain();
                    if !lost.is_empty() {
                        // The device could not make the program's changes durable: the
                        // program ends with that status instead of suspending.
                        debug!(sch = %sch.id, %lost, "device check at suspension: ending");
                        let ending = Ending {
                            dstat: DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END | lost,
                            cpa: prog.executed_cpa(),
                            sense: cs.then(|| dev.sense()),
                            ..Ending::default()
                        };
                        *program = None;
                        instr::end_start(st, &ending);
                        self.deliver(sch, s);
                        return Next::Yield;
                    }
                    debug!(sch = %sch.id, cpa, "suspended");
                    instr::suspend(st, cpa, pci);
                    self.deliver(sch, s);
                    return Next::Yield;
                }
                Step::End { mut ending, pci } => {
                    let lost = dev.end_chain();
                    if !lost.is_empty() {
                        debug!(sch = %sch.id, %lost, "device check at the end of the chain");
                        ending.dstat |= lost;
                        if ending.sense.is_none() {
                            ending.sense = cs.then(|| dev.sense());
                        }
                    }
                    if pci {
                        ending.cstat |= ccw_types::SubchannelStatus::PCI;
                    }
                    *program = None;
                    instr::end_start(st, &ending);
                    debug!(sch = %sch.id, scsw = %st.schib.scsw, "start function ended");
                    self.deliver(sch, s);
                    return Next::Yield;
                }
            }
        }
        Next::Yield
    }
}

fn operand(op: &'static str, sch: SubchannelId, e: OperandException) -> BackendError {
    BackendError::new(BackendErrorKind::InvalidArgument, op)
        .on(sch)
        .with_detail(e.to_string())
}

impl MockBackend {
    /// A builder with no subchannels, zero latency, no faults, an 8 MiB arena.
    pub fn builder() -> MockBuilder {
        MockBuilder {
            subchannels: HashMap::new(),
            next_sch_no: 0,
            latency: Duration::ZERO,
            faults: FaultPolicy::none(),
            guest: None,
            arena_size: DEFAULT_ARENA_SIZE,
            require_pins: true,
            max_ccws: DEFAULT_MAX_CCWS,
            isc: 3,
            paths: 0x80,
            event_capacity: css_core::backend::EVENT_QUEUE_CAPACITY,
        }
    }

    /// The default simulated subsystem, as the emulated s390x guest had it:
    ///
    /// | subchannel | devno | device |
    /// |---|---|---|
    /// | 0.0.0000 | 0x0005 | virtio-blk-ccw control device, 64 MiB disk ([`VirtioBlkCcw`]) |
    /// | 0.0.0001 | 0x0006 | generic test device, 64 KiB buffer ([`TestDevice`]) |
    ///
    /// Both have ISC 3, one path (PIM 0x80, CHPID 0x00), concurrent sense, and are disabled
    /// until [`Backend::enable`]. Zero latency, no faults, `guest` attached zero-copy.
    pub fn default_subsystem(guest: impl Borrow<GuestMemoryMmap>) -> Result<Self, BackendError> {
        Self::builder()
            .subchannel(0x0005, Box::new(VirtioBlkCcw::new(131_072)))
            .subchannel(0x0006, Box::new(TestDevice::new(64 * 1024)))
            .guest_memory(guest)
            .build()
    }

    /// The subchannels, in ascending order.
    pub fn subchannel_ids(&self) -> Vec<SubchannelId> {
        self.inner.order.clone()
    }

    /// Outstanding pins and control areas (to assert that nothing leaked).
    pub fn mapping_stats(&self) -> MappingStats {
        self.inner.storage.stats()
    }

    /// The mapper of the whole simulated host storage (the same for every subchannel).
    pub fn storage_mapper(&self) -> Arc<dyn Mapper> {
        self.inner.storage.clone()
    }

    /// Attaches (or replaces) the guest memory, zero-copy.
    pub fn attach_guest_memory(&self, mem: impl Borrow<GuestMemoryMmap>) {
        self.inner.storage.attach_guest(mem.borrow().clone());
    }

    /// Sets the storage key (and fetch protection) of the 4 KiB page of device address `addr`.
    pub fn set_storage_key(&self, addr: u64, key: u8, fetch_protect: bool) {
        self.inner.storage.set_storage_key(addr, key, fetch_protect);
    }

    /// Reads simulated host storage (arena areas, attached guest memory) without any check but
    /// existence: a debugging and test aid, not a channel access.
    pub fn read_storage(&self, addr: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        self.inner.storage.peek(addr, buf).map_err(|_| {
            BackendError::new(BackendErrorKind::InvalidArgument, "read_storage").with_detail(
                format!("{:#x}+{:#x} is not simulated storage", addr, buf.len()),
            )
        })
    }

    /// Writes simulated host storage (see [`MockBackend::read_storage`]).
    pub fn write_storage(&self, addr: u64, bytes: &[u8]) -> Result<(), BackendError> {
        self.inner.storage.poke(addr, bytes).map_err(|_| {
            BackendError::new(BackendErrorKind::InvalidArgument, "write_storage").with_detail(
                format!("{:#x}+{:#x} is not simulated storage", addr, bytes.len()),
            )
        })
    }

    /// Runs `f` on the device of `sch` (for tests and tools that inspect device state; reach
    /// a concrete model with [`DeviceModel::as_any_mut`]).
    pub fn with_device<R>(
        &self,
        sch: SubchannelId,
        f: impl FnOnce(&mut dyn DeviceModel) -> R,
    ) -> Result<R, BackendError> {
        let s = self.inner.sch(sch, "with_device")?;
        let mut g = lock(&s.state);
        Ok(f(g.device.as_mut()))
    }

    /// MODIFY SUBCHANNEL with the program-modifiable fields of `schib`.
    pub async fn modify(
        &self,
        sch: SubchannelId,
        schib: &Schib,
    ) -> Result<ConditionCode, BackendError> {
        let s = self.inner.sch(sch, "modify")?;
        let mut g = lock(&s.state);
        let was_enabled = g.st.schib.pmcw.flags.enabled();
        let cc = instr::msch(&mut g.st, schib).map_err(|e| operand("modify", sch, e))?;
        if cc == ConditionCode::Cc0 {
            if !was_enabled && g.st.schib.pmcw.flags.enabled() {
                g.device.enabled();
            }
            self.inner.deliver(s, &mut g);
        }
        Ok(cc)
    }

    /// The device presents unsolicited status (e.g. attention) on an idle subchannel: it becomes
    /// status pending with alert status and the interruption is delivered. cc 1 if status was
    /// already pending, cc 2 if a function is in progress.
    pub fn unsolicited(
        &self,
        sch: SubchannelId,
        dstat: DeviceStatus,
    ) -> Result<ConditionCode, BackendError> {
        let s = self.inner.sch(sch, "unsolicited")?;
        let mut g = lock(&s.state);
        if !g.st.schib.pmcw.flags.enabled() {
            // A disabled subchannel does not become status pending.
            return Ok(ConditionCode::Cc3);
        }
        if g.st.status_pending() {
            return Ok(ConditionCode::Cc1);
        }
        if !g.st.schib.scsw.ctrl.fc().is_empty() {
            return Ok(ConditionCode::Cc2);
        }
        instr::unsolicited(&mut g.st, dstat);
        self.inner.deliver(s, &mut g);
        Ok(ConditionCode::Cc0)
    }

    /// Applies instruction `f` under the subchannel's lock; on cc 0 `then` hands the
    /// asynchronous part to the channel subsystem.
    fn instruction(
        &self,
        sch: SubchannelId,
        op: &'static str,
        f: fn(&mut SchState) -> ConditionCode,
        then: fn(&Arc<Inner>, &Arc<Sch>, &mut SchInner),
    ) -> Result<ConditionCode, BackendError> {
        let s = self.inner.sch(sch, op)?;
        let mut g = lock(&s.state);
        let cc = f(&mut g.st);
        debug!(%sch, op, cc = cc.value(), "instruction");
        if cc == ConditionCode::Cc0 {
            then(&self.inner, s, &mut g);
        }
        Ok(cc)
    }

    /// The owner of the device asks for it back: a [`BackendEvent::ReleaseRequest`] is queued
    /// (what vfio's request interrupt reports).
    pub fn request_release(&self, sch: SubchannelId) -> Result<(), BackendError> {
        self.inner.sch(sch, "request_release")?;
        let ev = BackendEvent::ReleaseRequest { sch };
        match self.inner.events.try_reserve() {
            Some(slot) => slot.send(ev),
            None => {
                // The queue is full: the request waits for room (it is never dropped).
                let tx = self.inner.events.clone();
                tokio::spawn(async move {
                    let _ = tx.send(ev).await;
                });
            }
        }
        Ok(())
    }

    /// Varies channel paths `mask` of `sch` off- or online: PAM changes and a channel-path
    /// report (ERC permanent error / initialized) is queued for each path.
    pub fn vary_paths(
        &self,
        sch: SubchannelId,
        mask: u8,
        online: bool,
    ) -> Result<(), BackendError> {
        let s = self.inner.sch(sch, "vary_paths")?;
        let mut g = lock(&s.state);
        let mut reports = Vec::new();
        for slot in 0..8 {
            let bit = 0x80u8 >> slot;
            if mask & bit == 0 || g.st.schib.pmcw.pim & bit == 0 {
                continue;
            }
            let p = &mut g.st.schib.pmcw;
            if online {
                p.pam |= bit;
            } else {
                p.pam &= !bit;
            }
            let erc = if online {
                crw::erc::INIT
            } else {
                crw::erc::PERRN
            };
            reports.push(
                Crw::new()
                    .with_rsc(crw::rsc::CHANNEL_PATH)
                    .with_erc(erc)
                    .with_rsid(u16::from(p.chpid[slot])),
            );
        }
        drop(g);
        for c in reports {
            self.inner.report(c, sch);
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for MockBackend {
    async fn probe(&self) -> Result<Vec<(SubchannelId, Schib)>, BackendError> {
        Ok(self
            .inner
            .order
            .iter()
            .filter_map(|id| {
                let s = self.inner.subchannels.get(id)?;
                Some((*id, instr::stsch(&lock(&s.state).st)))
            })
            .collect())
    }

    async fn enable(&self, sch: SubchannelId, intparm: u32) -> Result<ConditionCode, BackendError> {
        let s = self.inner.sch(sch, "enable")?;
        let mut schib = instr::stsch(&lock(&s.state).st);
        schib.pmcw.flags.set_enabled(true);
        schib.pmcw.intparm = zerocopy::big_endian::U32::new(intparm);
        self.modify(sch, &schib).await
    }

    async fn disable(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        let s = self.inner.sch(sch, "disable")?;
        let mut schib = instr::stsch(&lock(&s.state).st);
        schib.pmcw.flags.set_enabled(false);
        self.modify(sch, &schib).await
    }

    async fn start(&self, sch: SubchannelId, orb: &Orb) -> Result<ConditionCode, BackendError> {
        let s = self.inner.sch(sch, "start")?;
        let mut g = lock(&s.state);
        let fault = if self.inner.faults_on {
            let mut f = lock(&self.inner.faults);
            f.note_start(sch);
            f.decide(sch, Point::Start)
        } else {
            None
        };
        match fault {
            Some(Fault::StartNotOperational) => {
                lock(&self.inner.faults).disarm(sch);
                return Ok(ConditionCode::Cc3);
            }
            Some(Fault::StartBusy) => {
                lock(&self.inner.faults).disarm(sch);
                return Ok(ConditionCode::Cc2);
            }
            Some(Fault::StartStatusPending)
                if !g.st.status_pending()
                    && g.st.schib.scsw.ctrl.fc().is_empty()
                    && g.st.schib.pmcw.flags.enabled() =>
            {
                lock(&self.inner.faults).disarm(sch);
                instr::unsolicited(&mut g.st, DeviceStatus::ATTENTION);
                // The attention interruption races with the start: it is delivered after the
                // instruction returns.
                g.delayed_delivery = true;
                let (inner, sch2) = (Arc::clone(&self.inner), Arc::clone(s));
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    let mut g = lock(&sch2.state);
                    g.delayed_delivery = false;
                    inner.deliver_now(&sch2, &mut g, false);
                });
                return Ok(ConditionCode::Cc1);
            }
            _ => {}
        }
        let cc = instr::ssch(&mut g.st, orb).map_err(|e| operand("start", sch, e))?;
        debug!(%sch, cc = cc.value(), "start subchannel");
        if cc == ConditionCode::Cc0 {
            let OrbRepr::Command(cmd) = OrbRepr::from_orb(orb)
                .map_err(|e| operand("start", sch, OperandException::Operand(e)))?
            else {
                return Err(BackendError::unsupported("start").on(sch));
            };
            g.program = Some(Program::new(&cmd, self.inner.max_ccws));
            g.waited = false;
            self.inner.ensure_worker(s, &mut g);
        } else if self.inner.faults_on {
            lock(&self.inner.faults).disarm(sch);
        }
        Ok(cc)
    }

    async fn halt(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        self.instruction(sch, "halt", instr::hsch, |inner, s, g| {
            inner.ensure_worker(s, g)
        })
    }

    async fn clear(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        self.instruction(sch, "clear", instr::csch, |inner, s, g| {
            inner.ensure_worker(s, g)
        })
    }

    async fn cancel(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        // No interruption follows a successful cancel: only the program is dropped.
        self.instruction(sch, "cancel", instr::xsch, |_, _, g| {
            g.program = None;
            g.waited = false;
        })
    }

    async fn resume(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        self.instruction(sch, "resume", instr::rsch, |inner, s, g| {
            g.waited = false;
            inner.ensure_worker(s, g);
        })
    }

    async fn store_schib(&self, sch: SubchannelId) -> Result<Schib, BackendError> {
        let s = self.inner.sch(sch, "store_schib")?;
        Ok(instr::stsch(&lock(&s.state).st))
    }

    fn mapper(&self, sch: SubchannelId) -> Result<Arc<dyn Mapper>, BackendError> {
        self.inner.sch(sch, "mapper")?;
        Ok(self.inner.storage.clone())
    }

    fn take_events(&self) -> Result<EventReceiver, BackendError> {
        lock(&self.inner.receiver).take().ok_or_else(|| {
            BackendError::new(BackendErrorKind::Closed, "take_events")
                .with_detail("the event stream was already taken")
        })
    }
}
