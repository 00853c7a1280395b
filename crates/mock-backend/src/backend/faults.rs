// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The faults injected where a start function begins: at START SUBCHANNEL (cc 3, cc 2, an
//! attention racing the start) and when the channel begins the program (device not
//! operational, path loss, unit check). Delivery and channel-report faults are in `delivery`;
//! the policy deciding them is [`crate::FaultPolicy`].

use std::sync::Arc;

use ccw_types::{Crw, DeviceStatus, crw};
use css_core::ConditionCode;
use tracing::debug;

use super::{Inner, Sch, SchInner, lock};
use crate::device::SenseData;
use crate::fault::{Fault, Point};
use crate::instr::{self, Ending};

fn chpid_of(st: &crate::instr::SchState, path: u8) -> u8 {
    let slot = path.leading_zeros() as usize;
    st.schib.pmcw.chpid.get(slot).copied().unwrap_or(0)
}

impl Inner {
    /// The fault injected at START SUBCHANNEL, if any: the condition code the instruction
    /// returns instead of starting.
    pub(super) fn start_fault(
        self: &Arc<Self>,
        s: &Arc<Sch>,
        g: &mut SchInner,
    ) -> Option<ConditionCode> {
        let fault = if self.faults_on {
            let mut f = lock(&self.faults);
            f.note_start(s.id);
            f.decide(s.id, Point::Start)
        } else {
            None
        };
        match fault {
            Some(Fault::StartNotOperational) => {
                lock(&self.faults).disarm(s.id);
                Some(ConditionCode::Cc3)
            }
            Some(Fault::StartBusy) => {
                lock(&self.faults).disarm(s.id);
                Some(ConditionCode::Cc2)
            }
            Some(Fault::StartStatusPending)
                if !g.st.status_pending()
                    && g.st.schib.scsw.ctrl.fc().is_empty()
                    && g.st.schib.pmcw.flags.enabled() =>
            {
                lock(&self.faults).disarm(s.id);
                instr::unsolicited(&mut g.st, DeviceStatus::ATTENTION);
                // The attention interruption races with the start: it is delivered after the
                // instruction returns.
                g.delayed_delivery = true;
                let (inner, sch2) = (Arc::clone(self), Arc::clone(s));
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    let mut g = lock(&sch2.state);
                    g.delayed_delivery = false;
                    inner.deliver_now(&sch2, &mut g, false);
                });
                Some(ConditionCode::Cc1)
            }
            _ => None,
        }
    }

    /// The fault injected when the channel begins a started program on `path`, if any: it
    /// ended the start function (status pending and delivered) and the worker yields.
    pub(super) fn begin_fault(
        self: &Arc<Self>,
        sch: &Arc<Sch>,
        s: &mut SchInner,
        path: u8,
    ) -> bool {
        let fault = self.decide(sch.id, Point::Execute);
        match fault {
            Some(Fault::NotOperationalDuringIo) => {
                debug!(sch = %sch.id, "fault: device not operational during I/O");
                instr::begin_start(&mut s.st, path);
                s.channel.take_program();
                instr::deferred_cc(&mut s.st, 3, 0);
                let c = Crw::new()
                    .with_rsc(crw::rsc::SUBCHANNEL)
                    .with_erc(crw::erc::TERROR)
                    .with_rsid(sch.id.sch_no);
                self.report(c, sch.id);
                self.deliver(sch, s);
                true
            }
            Some(Fault::PathLoss) => {
                let chpid = chpid_of(&s.st, path);
                debug!(sch = %sch.id, chpid, "fault: channel path lost");
                instr::begin_start(&mut s.st, path);
                s.channel.take_program();
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
                true
            }
            Some(Fault::UnitCheck { sense }) => {
                debug!(sch = %sch.id, "fault: unit check");
                instr::begin_start(&mut s.st, path);
                let cpa = s
                    .channel
                    .take_program()
                    .map(|p| p.current_cpa())
                    .unwrap_or(0);
                let mut forced = SenseData::default();
                forced.bytes[..4].copy_from_slice(&sense);
                let cs = s.st.schib.pmcw.chars.concurrent_sense();
                if !cs {
                    s.channel.inject_sense(forced);
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
                true
            }
            _ => false,
        }
    }
}
