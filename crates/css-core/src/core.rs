// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The synchronous heart of the driver: one subchannel's state behind one lock.
//!
//! Every method takes the lock, applies one event of the pure table ([`crate::fsm`]), performs
//! the effects that are cheap and non-blocking (answering a request, forwarding an event,
//! releasing a finished program) and returns what the caller has to do with the backend,
//! *after* the lock is released. Nothing here is async, so no lock can be held across an
//! `.await`; the loom models (`src/loom_models.rs`) drive these methods directly.
//!
//! Exactly-once rules, all enforced under the lock:
//! - the request's answer (the [`Waiter`]) and its program live in `Inner`; whoever takes them
//!   out (completion, start failure, close, not-operational, remove) answers and drops the
//!   program, which releases its pins and control memory ([`HostProgram`]);
//! - every request gets a ticket (`seq`); continuations with a stale ticket change nothing,
//!   because whoever advanced `seq` already took the request's waiter and program.

use ccw_types::{Crw, Irb, Schib, SubchannelId};
use tokio::sync::{mpsc, oneshot};

use crate::backend::ConditionCode;
use crate::error::CssError;
use crate::fsm::{Action, AsyncOp, Errno, Event, IrqKind, Outcome, State, transition};
use crate::paths::{PathEvent, Paths};
use crate::program::HostProgram;
use crate::sync::{Mutex, MutexGuard, lock};

/// What a finished I/O returns: the final IRB with guest channel-program addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoCompletion {
    /// The interruption parameter of the guest's ORB.
    pub intparm: u32,
    /// The final IRB as the guest sees it (SCSW cpa mapped back to guest addresses).
    pub irb: Irb,
}

/// Something that happened on an open subchannel besides the completion of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubchannelEvent {
    /// Status that does not end the running program (intermediate status such as PCI) or
    /// that no program solicited; channel-program addresses are the guest's.
    Status(Irb),
    /// A channel report concerning this subchannel's paths (vfio-ccw's CRW region).
    ChannelReport(Crw),
    /// A subchannel report refreshed the SCHIB.
    SchibRefreshed(Schib),
    /// The device became not operational; outstanding requests were failed.
    NotOperational,
    /// The backend asks for the device back (vfio's request interrupt): close it.
    ReleaseRequested,
    /// The subchannel was removed from the channel subsystem.
    Removed,
}

/// The answer channel of one request.
pub(crate) type Waiter = oneshot::Sender<Result<IoCompletion, CssError>>;

/// What [`Core::take_if_pinned`] found.
pub(crate) enum UnmapCheck<P> {
    /// No program of this subchannel pins the range.
    NotPinned,
    /// A program that pins the range is being started: ask again when START returned.
    Starting,
    /// The running program pins the range: its request was taken out and CLEAR is due.
    /// `clears` is the count of clear interruptions before it ([`Core::clears`]).
    Pinned { teardown: Teardown<P>, clears: u64 },
}

/// The ticket of one I/O request: proves a continuation belongs to the current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) seq: u64,
    pub(crate) lpm: u8,
}

/// Work a close or remove must finish outside the lock.
pub(crate) struct Teardown<P> {
    /// Whether the subchannel was enabled (needs disable + quiesce).
    pub(crate) was_enabled: bool,
    pub(crate) program: Option<P>,
    pub(crate) waiter: Option<Waiter>,
}

impl<P> Teardown<P> {
    /// Releases the program (drops it) and then answers the request with `err`: whoever
    /// sees the answer finds the pins already given back.
    pub(crate) fn finish(self, err: impl FnOnce() -> CssError) {
        drop(self.program);
        if let Some(w) = self.waiter {
            let _ = w.send(Err(err()));
        }
    }
}

/// What [`Core::open_begin`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Claimed: the caller enables the subchannel and reports [`Core::opened`].
    Claimed,
    /// The event task is disabling the unowned subchannel: wait, then try again.
    Disabling,
}

/// One subchannel's state: private to this module, changed through the table ([`transition`])
/// and [`Core`]'s methods only.
struct Inner<P> {
    state: State,
    seq: u64,
    program: Option<P>,
    waiter: Option<Waiter>,
    intparm: u32,
    /// Final status that arrived while the request was still being started (`CpProcessing`).
    /// Boxed: it is rare (a race with START's own return), and the 96 bytes of an IRB inline
    /// would be paid by every registered subchannel (issue #14, P3: bytes per subchannel).
    deferred: Option<Box<Irb>>,
    /// Someone holds the subchannel open (or is opening/closing it).
    claimed: bool,
    /// Removed from the registry: every later event is dropped.
    removed: bool,
    /// The subchannel may be enabled. Unknown at registration (so `true`); cleared only when a
    /// disable of ours succeeded. Status for an unowned subchannel that is known to be disabled
    /// (the late interruption of a close's own halt or clear) needs no second disable.
    may_be_enabled: bool,
    /// The event task is disabling this unowned subchannel: an open waits until it is done, so
    /// that the late disable cannot land after the open's enable.
    disabling: bool,
    /// The SCHIB css-core last stored and the path masks (`lpm`, `opm`) derived from it.
    paths: Paths,
    events: Option<mpsc::UnboundedSender<SubchannelEvent>>,
    /// Interruptions that reported the clear function, so far.
    clears: u64,
}

/// One subchannel's synchronized state.
pub(crate) struct Core<P> {
    pub(crate) sch: SubchannelId,
    inner: Mutex<Inner<P>>,
}

impl<P> Inner<P> {
    fn apply(&mut self, sch: SubchannelId, event: Event) -> (Action, Outcome) {
        let tr = transition(self.state, event);
        if tr.next != self.state || tr.action != Action::None {
            tracing::debug!(%sch, from = ?self.state, to = ?tr.next, ?event, action = ?tr.action,
                outcome = ?tr.outcome, "transition");
        }
        self.state = tr.next;
        (tr.action, tr.outcome)
    }

    fn emit(&mut self, sch: SubchannelId, ev: SubchannelEvent) {
        match &self.events {
            Some(tx) if tx.send(ev.clone()).is_ok() => {}
            _ => tracing::trace!(%sch, ?ev, "event with no subscriber dropped"),
        }
    }
}

impl<P: HostProgram> Core<P> {
    pub(crate) fn new(sch: SubchannelId, schib: Schib) -> Self {
        let paths = Paths::new(schib);
        let state = if paths.device_valid() {
            State::Standby
        } else {
            State::NotOper
        };
        Self {
            sch,
            inner: Mutex::new(Inner {
                state,
                seq: 0,
                program: None,
                waiter: None,
                intparm: 0,
                deferred: None,
                claimed: false,
                removed: false,
                may_be_enabled: true,
                disabling: false,
                paths,
                events: None,
                clears: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<P>> {
        lock(&self.inner)
    }

    pub(crate) fn state(&self) -> State {
        self.lock().state
    }

    /// Takes the (single) event stream of this subchannel.
    pub(crate) fn subscribe(&self) -> mpsc::UnboundedReceiver<SubchannelEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().events = Some(tx);
        rx
    }

    pub(crate) fn emit(&self, ev: SubchannelEvent) {
        let mut g = self.lock();
        if g.removed {
            tracing::trace!(sch = %self.sch, ?ev, "event for removed subchannel dropped");
            return;
        }
        g.emit(self.sch, ev);
    }

    fn refused(&self, op: &'static str, state: State, errno: Errno) -> CssError {
        CssError::Refused {
            sch: self.sch,
            op,
            state,
            errno,
        }
    }

    // ---- open / close ----

    /// Claims the subchannel and applies `Open`; the caller then enables it. While the event
    /// task disables the unowned subchannel, nothing is claimed and the caller waits for
    /// [`Core::disable_end`] ([`Claim::Disabling`]).
    pub(crate) fn open_begin(&self) -> Result<Claim, CssError> {
        let mut g = self.lock();
        if g.removed {
            return Err(CssError::Unknown(self.sch));
        }
        if g.claimed {
            return Err(CssError::AlreadyOpen(self.sch));
        }
        if g.disabling {
            return Ok(Claim::Disabling);
        }
        if g.state == State::NotOper {
            // vfio-ccw's open_device refuses a not-operational device before the FSM.
            return Err(CssError::Gone(self.sch));
        }
        let state = g.state;
        match g.apply(self.sch, Event::Open) {
            (Action::Enable, Outcome::Ok) => {
                g.claimed = true;
                // From here the enable may take effect whatever it answers.
                g.may_be_enabled = true;
                Ok(Claim::Claimed)
            }
            (_, Outcome::Err(e)) => Err(self.refused("open", state, e)),
            (_, Outcome::Ok) => Err(self.refused("open", state, Errno::Invalid)),
        }
    }

    /// The enable's condition code (or failure, as `None`).
    pub(crate) fn opened(&self, cc: Option<ConditionCode>) -> Result<(), CssError> {
        let mut g = self.lock();
        let state = g.state;
        let Some(cc) = cc else {
            g.claimed = false;
            return Err(self.refused("enable", state, Errno::Io));
        };
        let (_, outcome) = g.apply(self.sch, Event::Opened(cc));
        match outcome {
            Outcome::Ok => Ok(()),
            Outcome::Err(errno) => {
                g.claimed = false;
                Err(CssError::Condition {
                    sch: self.sch,
                    op: "enable",
                    cc,
                    errno,
                })
            }
        }
    }

    /// Applies `Close`: takes the outstanding request out for the caller to finish after
    /// disabling. `claimed` stays set until [`Core::close_end`].
    pub(crate) fn close_begin(&self) -> Result<Teardown<P>, CssError> {
        let mut g = self.lock();
        if !g.claimed {
            return Err(CssError::NotOpen(self.sch));
        }
        let was_enabled = matches!(
            g.state,
            State::Idle | State::CpProcessing | State::CpPending
        );
        let (action, _) = g.apply(self.sch, Event::Close);
        Ok(self.take_request(&mut g, was_enabled && action == Action::Disable))
    }

    /// Ends a close: `disabled` says whether the quiesce left the subchannel disabled.
    pub(crate) fn close_end(&self, disabled: bool) {
        let mut g = self.lock();
        if disabled {
            g.may_be_enabled = false;
        }
        g.claimed = false;
        g.events = None;
    }

    fn take_request(&self, g: &mut Inner<P>, was_enabled: bool) -> Teardown<P> {
        g.seq = g.seq.wrapping_add(1);
        self.forward_deferred(g);
        Teardown {
            was_enabled,
            program: g.program.take(),
            waiter: g.waiter.take(),
        }
    }

    /// Applies `NotOper`: fails the outstanding request and releases its program at once
    /// (the device is gone, nothing can be quiesced).
    pub(crate) fn not_oper(&self) {
        let mut g = self.lock();
        if g.removed {
            return;
        }
        let (action, _) = g.apply(self.sch, Event::NotOper);
        if action == Action::Abort {
            let td = self.take_request(&mut g, false);
            g.emit(self.sch, SubchannelEvent::NotOperational);
            drop(g);
            td.finish(|| CssError::Gone(self.sch));
        }
    }

    /// Marks the subchannel removed. Events that take the lock after this are dropped; the
    /// caller quiesces (if enabled) and finishes the returned teardown.
    pub(crate) fn remove(&self) -> Teardown<P> {
        let mut g = self.lock();
        let was_enabled = g.claimed
            && matches!(
                g.state,
                State::Idle | State::CpProcessing | State::CpPending
            );
        if g.state != State::NotOper {
            g.apply(self.sch, Event::NotOper);
        }
        g.removed = true;
        let td = self.take_request(&mut g, was_enabled);
        g.emit(self.sch, SubchannelEvent::Removed);
        g.events = None;
        td
    }

    // ---- I/O ----

    /// Applies `IoRequest`. On success the caller owns the `CpProcessing` state until it
    /// reports [`Core::translate_failed`] or [`Core::install`] + [`Core::started`].
    pub(crate) fn io_request(&self, intparm: u32) -> Result<Ticket, CssError> {
        let mut g = self.lock();
        if g.removed {
            return Err(CssError::Gone(self.sch));
        }
        let state = g.state;
        match g.apply(self.sch, Event::IoRequest) {
            (Action::TranslateAndStart, Outcome::Ok) => {
                g.seq = g.seq.wrapping_add(1);
                g.intparm = intparm;
                g.deferred = None;
                Ok(Ticket {
                    seq: g.seq,
                    lpm: g.paths.lpm(),
                })
            }
            (_, Outcome::Err(e)) => Err(self.refused("start", state, e)),
            (_, Outcome::Ok) => Err(self.refused("start", state, Errno::Invalid)),
        }
    }

    /// Translation failed (or was refused before translating): back to `Idle`. Final status
    /// deferred meanwhile is forwarded: it cannot belong to the program that never started.
    pub(crate) fn translate_failed(&self, ticket: Ticket, errno: Errno) {
        let mut g = self.lock();
        if g.seq == ticket.seq {
            g.apply(self.sch, Event::TranslateFailed(errno));
            self.forward_deferred(&mut g);
        }
    }

    /// Final status deferred while a request was in `CpProcessing` whose start then did not
    /// happen (translation failed, START cc 1/2/3, close, not-operational, remove): it
    /// belongs to no program of ours, so it goes out as an event, as vfio-ccw forwards status
    /// in CP_PROCESSING. Never dropped.
    fn forward_deferred(&self, g: &mut Inner<P>) {
        if let Some(irb) = g.deferred.take() {
            tracing::debug!(sch = %self.sch, scsw = ?irb.scsw, "deferred status forwarded: the start did not happen");
            g.emit(self.sch, SubchannelEvent::Status(*irb));
        }
    }

    /// Hands the translated program and the answer channel to the core before START. If a
    /// close or not-operational overtook the request, both are handed back.
    pub(crate) fn install(
        &self,
        ticket: Ticket,
        program: P,
        waiter: Waiter,
    ) -> Result<(), (P, Waiter)> {
        let mut g = self.lock();
        if g.seq != ticket.seq || g.state != State::CpProcessing || g.removed {
            return Err((program, waiter));
        }
        g.program = Some(program);
        g.waiter = Some(waiter);
        Ok(())
    }

    /// START returned `cc` (`None`: the backend failed, reported as `err`).
    pub(crate) fn started(&self, ticket: Ticket, orb_lpm: u8, cc: Result<ConditionCode, CssError>) {
        let mut g = self.lock();
        if g.seq != ticket.seq {
            // Overtaken by close/not-oper/remove: they answered the request.
            return;
        }
        let (cc, backend_err) = match cc {
            Ok(cc) => (cc, None),
            // A backend failure ends the request like cc 3 without touching the path mask.
            Err(e) => (ConditionCode::Cc3, Some(e)),
        };
        let mut paths_left = false;
        if cc == ConditionCode::Cc3 && backend_err.is_none() {
            let used = if orb_lpm == 0 { ticket.lpm } else { orb_lpm };
            paths_left = g.paths.not_operational(used);
        }
        let (action, outcome) = g.apply(self.sch, Event::Started { cc, paths_left });
        match action {
            Action::AwaitInterrupt => {
                if let Some(irb) = g.deferred.take() {
                    tracing::debug!(sch = %self.sch, "final status overtook its start: completing");
                    // Replay the deferred interruption in CpPending: the table completes it.
                    let kind = IrqKind {
                        is_final: true,
                        solicited: true,
                    };
                    if g.apply(self.sch, Event::Interrupt(kind)).0 == Action::Complete {
                        self.complete(&mut g, *irb);
                    }
                }
            }
            Action::Release => {
                let td = self.take_request(&mut g, false);
                drop(g);
                let errno = match outcome {
                    Outcome::Err(e) => e,
                    Outcome::Ok => Errno::of_cc(cc),
                };
                let sch = self.sch;
                td.finish(move || {
                    backend_err.unwrap_or(CssError::Condition {
                        sch,
                        op: "start",
                        cc,
                        errno,
                    })
                });
            }
            _ => {}
        }
    }

    fn complete(&self, g: &mut MutexGuard<'_, Inner<P>>, mut irb: Irb) {
        let program = g.program.take();
        let waiter = g.waiter.take();
        if let Some(p) = program {
            p.update_scsw(&mut irb.scsw);
            // Released (dropped) before the answer goes out.
            drop(p);
        }
        let done = IoCompletion {
            intparm: g.intparm,
            irb,
        };
        match waiter {
            Some(w) => {
                if let Err(Ok(done)) = w.send(Ok(done)) {
                    tracing::debug!(sch = %self.sch, irb = ?done.irb.scsw, "completion for a dropped request");
                }
            }
            None => g.emit(self.sch, SubchannelEvent::Status(done.irb)),
        }
    }

    /// An I/O interruption. Returns `true` if the caller must disable the subchannel (status
    /// for a subchannel nobody owns) and then call [`Core::disable_end`]; opens wait until then.
    ///
    /// No disable is asked for while an open or close of the subchannel is under way (its owner
    /// enables or quiesces it: a disable issued from here could land after the owner's enable,
    /// outside any lock) nor once a disable of ours has succeeded (the late interruption of a
    /// close's own halt or clear).
    pub(crate) fn interrupt(&self, mut irb: Irb) -> bool {
        let mut g = self.lock();
        if g.removed {
            tracing::debug!(sch = %self.sch, scsw = ?irb.scsw, "interrupt for removed subchannel dropped");
            return false;
        }
        let kind = IrqKind {
            is_final: irb.scsw.is_final(),
            solicited: irb.scsw.is_solicited(),
        };
        if irb
            .scsw
            .ctrl
            .fc()
            .contains(ccw_types::FunctionControl::CLEAR)
        {
            g.clears = g.clears.wrapping_add(1);
        }
        let (action, _) = g.apply(self.sch, Event::Interrupt(kind));
        match action {
            Action::Complete => self.complete(&mut g, irb),
            Action::Defer => g.deferred = Some(Box::new(irb)),
            Action::Forward => {
                if kind.solicited {
                    if let Some(p) = &g.program {
                        p.update_scsw(&mut irb.scsw);
                    }
                }
                g.emit(self.sch, SubchannelEvent::Status(irb));
            }
            Action::DisableSubchannel => {
                if g.claimed && g.state == State::Standby {
                    tracing::debug!(sch = %self.sch, scsw = ?irb.scsw, "status while opening or closing: the owner disables");
                } else if !g.may_be_enabled {
                    tracing::debug!(sch = %self.sch, scsw = ?irb.scsw, "status for a disabled subchannel dropped");
                } else {
                    g.disabling = true;
                    return true;
                }
            }
            _ => {}
        }
        false
    }

    /// The event task's disable of an unowned subchannel ended; `disabled` says whether it
    /// left the subchannel disabled. Waiting opens may go on.
    pub(crate) fn disable_end(&self, disabled: bool) {
        let mut g = self.lock();
        g.disabling = false;
        if disabled {
            g.may_be_enabled = false;
        }
    }

    /// How many interruptions reported the clear function so far.
    pub(crate) fn clears(&self) -> u64 {
        self.lock().clears
    }

    /// The VMM unmaps `range`: if the running program pins part of it, takes its request out
    /// (the waiter and the program, which the caller releases only after the subchannel was
    /// cleared) and applies `AsyncRequest(Clear)`; the caller issues CLEAR SUBCHANNEL. The
    /// clear's final status then finds no request and goes out as a `Status` event.
    pub(crate) fn take_if_pinned(&self, range: ccw_translate::GuestRange) -> UnmapCheck<P> {
        let mut g = self.lock();
        if g.removed || !g.program.as_ref().is_some_and(|p| p.is_pinned(range)) {
            return UnmapCheck::NotPinned;
        }
        if g.state == State::CpProcessing {
            return UnmapCheck::Starting;
        }
        let clears = g.clears;
        let teardown = self.take_request(&mut g, false);
        match g.apply(self.sch, Event::AsyncRequest(AsyncOp::Clear)) {
            (Action::Issue(AsyncOp::Clear), Outcome::Ok) => {}
            (action, outcome) => {
                tracing::warn!(sch = %self.sch, state = ?g.state, ?action, ?outcome, "clear for unmap refused by the table");
            }
        }
        UnmapCheck::Pinned { teardown, clears }
    }

    /// Applies `AsyncRequest(op)`; on `Ok` the caller issues the instruction.
    pub(crate) fn async_request(&self, op: AsyncOp) -> Result<(), CssError> {
        let mut g = self.lock();
        let state = g.state;
        let name = match op {
            AsyncOp::Halt => "halt",
            AsyncOp::Clear => "clear",
        };
        match g.apply(self.sch, Event::AsyncRequest(op)) {
            (Action::Issue(_), Outcome::Ok) => Ok(()),
            (_, Outcome::Err(e)) => Err(self.refused(name, state, e)),
            (_, Outcome::Ok) => Err(self.refused(name, state, Errno::Invalid)),
        }
    }
}

impl<P: HostProgram> Core<P> {
    // ---- SCHIB and channel paths ----

    /// The SCHIB css-core last stored, with the current logical-path mask in its `lpm`.
    pub(crate) fn cached_schib(&self) -> Schib {
        self.lock().paths.schib()
    }

    /// The path masks `(lpm, opm)`, for the tests and the loom models.
    #[cfg(test)]
    pub(crate) fn masks(&self) -> (u8, u8) {
        let g = self.lock();
        (g.paths.lpm(), g.paths.opm())
    }

    /// The subchannel's owner stored `schib` (STORE SUBCHANNEL); the path masks stay.
    pub(crate) fn schib_stored(&self, schib: Schib) {
        self.lock().paths.store(schib);
    }

    /// A subchannel report's STORE SUBCHANNEL found the device valid with `schib`: the SCHIB
    /// and the path masks are set anew from it and [`SubchannelEvent::SchibRefreshed`] goes
    /// out. `false` (nothing changed) once the subchannel was removed.
    pub(crate) fn schib_refreshed(&self, schib: Schib) -> bool {
        let mut g = self.lock();
        if g.removed {
            return false;
        }
        g.paths.refresh(schib);
        tracing::debug!(sch = %self.sch, lpm = g.paths.lpm(), opm = g.paths.opm(), "schib refreshed");
        g.emit(self.sch, SubchannelEvent::SchibRefreshed(schib));
        true
    }

    /// Linux `vfio_ccw_chp_event` for one subchannel: applies `event` on channel path
    /// `chpid` to the path masks and forwards its channel report
    /// ([`SubchannelEvent::ChannelReport`]). Returns `true` when the running program was
    /// using the path the event takes away: the caller then ends it (cancel, halt, clear).
    /// A subchannel that does not use `chpid`, or was removed, is not touched.
    pub(crate) fn path_event(&self, chpid: u8, event: PathEvent) -> bool {
        let mut g = self.lock();
        if g.removed {
            return false;
        }
        let mask = g.paths.mask_of(chpid);
        if mask == 0 {
            return false;
        }
        let busy_on_path =
            g.paths.last_used_in(mask) && matches!(g.state, State::CpPending | State::CpProcessing);
        g.paths.apply(mask, event);
        tracing::debug!(sch = %self.sch, chpid, ?event, lpm = g.paths.lpm(), opm = g.paths.opm(), "path event");
        if let Some(crw) = event.report(chpid) {
            g.emit(self.sch, SubchannelEvent::ChannelReport(crw));
        }
        busy_on_path && event.ends_use()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
