// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The worker: one task per subchannel runs its asynchronous functions (start, resume,
//! halt, clear), executing the channel program a command at a time so that a halt or clear
//! issued while a program runs acts between two commands.
//!
//! The task is spawned by the subchannel's first function and then stays, waiting between
//! functions on the waker it leaves in the subchannel's state: a START costs a wakeup, not a task spawn (an allocation,
//! the runtime's task list) per I/O. It holds the backend only weakly while it waits, so a
//! dropped backend ends it (`Inner`'s `Drop` wakes it), and if its runtime shuts down first
//! the subchannel forgets it ([`Worker::None`]) and the next function spawns a new one.
//!
//! Between the steps of one function the worker yields to the runtime only where another
//! task may need to act: between two commands of a program (a halt or clear), after
//! status that does not end the function (intermediate status, PCI), and after a halt or
//! clear. It goes straight from accepting a start to its first command, and from the
//! status that ends a function to its idle state: each yield is a trip through the
//! runtime's driver (a park with `epoll_wait` and the timer wheel's clock reads, issue 14).
//! So a short program can end before a halt another task issues right after START is
//! acted on (the halt then finds the subchannel idle), as on a channel that is fast.

use std::sync::{Arc, Weak};

use ccw_types::DeviceStatus;
use std::time::Duration;

use tracing::{Instrument, debug};

use super::{Inner, Sch, SchInner, lock};
use crate::channel::Step;
use crate::instr::{self, Ending};

/// Whether a subchannel has a worker task, and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Worker {
    /// No task (none was needed yet, or its runtime shut down): the next function spawns one.
    None,
    /// The task waits for the next function (its waker in `SchInner::waker`).
    Idle,
    /// The task runs this subchannel's functions (or was woken to).
    Busy,
}

enum Next {
    Sleep(Duration),
    /// Let other tasks run first (a halt or clear between two commands).
    Yield,
    /// Go on at once: nothing another task could act on happened.
    Again,
    /// Nothing left to do: the worker is idle.
    Done,
}

/// Marks the subchannel's worker gone when its task ends or is dropped with its runtime.
struct Retire(Arc<Sch>);

impl Drop for Retire {
    fn drop(&mut self) {
        lock(&self.0.state).worker = Worker::None;
    }
}

/// The worker task of one subchannel: runs its functions whenever it is woken, until the
/// backend is gone.
async fn worker(inner: Weak<Inner>, sch: Arc<Sch>) {
    let retire = Retire(sch);
    let sch = &retire.0;
    loop {
        {
            let Some(inner) = inner.upgrade() else { return };
            inner.run(sch).await;
        }
        // Idle until a function is handed over (`Busy`) or the backend is gone. The waker is
        // left under the subchannel's lock, where `ensure_worker` and `Inner`'s `Drop` look.
        std::future::poll_fn(|cx| {
            let mut s = lock(&sch.state);
            if s.worker == Worker::Busy || inner.strong_count() == 0 {
                return std::task::Poll::Ready(());
            }
            if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                s.waker = Some(cx.waker().clone());
            }
            std::task::Poll::Pending
        })
        .await;
    }
}

fn leftmost(mask: u8) -> u8 {
    if mask == 0 {
        0
    } else {
        0x80 >> mask.leading_zeros()
    }
}

impl Inner {
    /// Has the subchannel's worker run its functions: wakes the idle task, or spawns one.
    pub(super) fn ensure_worker(self: &Arc<Self>, sch: &Arc<Sch>, s: &mut SchInner) {
        match s.worker {
            Worker::Busy => {}
            Worker::Idle => {
                s.worker = Worker::Busy;
                // No waker yet: the task has not reached its wait, and will find `Busy`.
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
            Worker::None => {
                s.worker = Worker::Busy;
                let span = tracing::debug_span!("mock_subchannel", sch = %sch.id);
                let (inner, sch) = (Arc::downgrade(self), Arc::clone(sch));
                tokio::spawn(worker(inner, sch).instrument(span));
            }
        }
    }

    /// Runs the subchannel's functions until none is left.
    async fn run(self: &Arc<Self>, sch: &Arc<Sch>) {
        loop {
            let next = {
                let mut s = lock(&sch.state);
                self.work(sch, &mut s)
            };
            match next {
                Next::Sleep(d) => tokio::time::sleep(d).await,
                Next::Yield => tokio::task::yield_now().await,
                Next::Again => {}
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
            s.channel.reset();
            s.waited = false;
            instr::clear_complete(&mut s.st);
            self.deliver(sch, s);
            return Next::Yield;
        }
        if ac.contains(Ac::HALT_PENDING) {
            debug!(sch = %sch.id, "halt function");
            let program = s.channel.take_program();
            // A halted program's changes the device kept in memory are made durable now;
            // when that fails the halt status carries the device's unit check.
            let lost = if program.is_some() {
                s.channel.end_chain()
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
        s.worker = Worker::Idle;
        Next::Done
    }

    fn begin(self: &Arc<Self>, sch: &Arc<Sch>, s: &mut SchInner, start: bool) -> Next {
        let paths = s.st.usable_paths();
        if paths == 0 {
            let p = &s.st.schib.pmcw;
            let pnom = p.lpm & p.pam & !p.pom;
            debug!(sch = %sch.id, pnom, "no operational path: deferred cc 3");
            s.channel.take_program();
            instr::deferred_cc(&mut s.st, 3, pnom);
            self.deliver(sch, s);
            return Next::Yield;
        }
        let path = leftmost(paths);
        if start && self.begin_fault(sch, s, path) {
            return Next::Yield;
        }
        instr::begin_start(&mut s.st, path);
        if start && s.st.orb.initial_status() {
            let cpa = s.channel.program().map(|p| p.current_cpa()).unwrap_or(0);
            instr::intermediate(&mut s.st, cpa, false, true);
            self.deliver(sch, s);
            return Next::Yield;
        }
        // Straight on to the first command.
        Next::Again
    }

    fn execute(self: &Arc<Self>, sch: &Arc<Sch>, s: &mut SchInner) -> Next {
        let cs = s.st.schib.pmcw.chars.concurrent_sense();
        // One command per slice: a halt or clear issued meanwhile acts at the next command.
        let Some(step) = s.channel.step(self.storage.as_ref(), cs) else {
            // Active without a program cannot happen; end the start function cleanly.
            instr::end_start(
                &mut s.st,
                &Ending {
                    cstat: ccw_types::SubchannelStatus::CHANNEL_CONTROL_CHECK,
                    ..Ending::default()
                },
            );
            self.deliver(sch, s);
            return Next::Yield;
        };
        match step {
            Step::Continue { pci: None } => Next::Yield,
            Step::Continue { pci: Some(cpa) } => {
                instr::intermediate(&mut s.st, cpa, true, false);
                self.deliver(sch, s);
                Next::Yield
            }
            Step::Suspend { cpa, pci } => {
                let lost = s.channel.end_chain();
                if !lost.is_empty() {
                    // The device could not make the program's changes durable: the
                    // program ends with that status instead of suspending.
                    debug!(sch = %sch.id, %lost, "device check at suspension: ending");
                    let executed = s.channel.take_program().map_or(cpa, |p| p.executed_cpa());
                    let ending = Ending {
                        dstat: DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END | lost,
                        cpa: executed,
                        sense: cs.then(|| s.channel.sense()),
                        ..Ending::default()
                    };
                    instr::end_start(&mut s.st, &ending);
                    self.deliver(sch, s);
                    return Next::Yield;
                }
                debug!(sch = %sch.id, cpa, "suspended");
                instr::suspend(&mut s.st, cpa, pci);
                self.deliver(sch, s);
                // The start function is suspended: nothing left to step.
                Next::Again
            }
            Step::End { mut ending, pci } => {
                let lost = s.channel.end_chain();
                if !lost.is_empty() {
                    debug!(sch = %sch.id, %lost, "device check at the end of the chain");
                    ending.dstat |= lost;
                    if ending.sense.is_none() {
                        ending.sense = cs.then(|| s.channel.sense());
                    }
                }
                if pci {
                    ending.cstat |= ccw_types::SubchannelStatus::PCI;
                }
                s.channel.take_program();
                instr::end_start(&mut s.st, &ending);
                debug!(sch = %sch.id, scsw = %s.st.schib.scsw, "start function ended");
                self.deliver(sch, s);
                // The function ended: on to idle (or a halt or clear issued meanwhile).
                Next::Again
            }
        }
    }
}
