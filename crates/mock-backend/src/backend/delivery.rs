// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Interruption delivery and channel reports, with the fault decisions applied where they
//! happen (delayed, duplicate and spurious interruptions; lost channel reports). The
//! faults injected at START and at the start of a program are in `faults`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ccw_types::{Crw, DeviceStatus, SubchannelId};
use css_core::{BackendEvent, ConditionCode};
use tracing::{debug, trace};

use super::{Inner, Sch, SchInner, lock};
use crate::fault::{Fault, Point};
use crate::instr;

impl Inner {
    /// A fault decision; free when the policy can inject nothing.
    pub(super) fn decide(&self, sch: SubchannelId, point: Point) -> Option<Fault> {
        if !self.faults_on {
            return None;
        }
        lock(&self.faults).decide(sch, point)
    }

    /// Queues a channel report, applying CRW-overflow faults.
    pub(super) fn report(&self, mut c: Crw, sch: SubchannelId) {
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
    pub(super) fn deliver(self: &Arc<Self>, sch: &Arc<Sch>, s: &mut SchInner) {
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
    pub(super) fn deliver_now(self: &Arc<Self>, sch: &Arc<Sch>, s: &mut SchInner, twice: bool) {
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
}
