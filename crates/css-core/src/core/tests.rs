// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Unit tests of [`super::Core`]: the exactly-once rules, deferred status, the disable race,
//! the path logic, driven directly (no runtime, no backend).

use std::sync::atomic::{AtomicUsize, Ordering};

use ccw_types::{ActivityControl, FunctionControl, Scsw};

use super::*;
use crate::sync::Arc;
use crate::test_support::{final_irb, schib};

type Rx = oneshot::Receiver<Result<IoCompletion, CssError>>;

/// An open subchannel and the release counter of its programs.
fn open_core() -> (Core<P>, Arc<AtomicUsize>) {
    let core = Core::new(SubchannelId::new(0, 0, 0), schib());
    open(&core);
    (core, Arc::new(AtomicUsize::new(0)))
}

/// io_request + install of a counted program.
fn begin(core: &Core<P>, rel: &Arc<AtomicUsize>, intparm: u32) -> (Ticket, Rx) {
    let t = core.io_request(intparm).unwrap();
    let (tx, rx) = oneshot::channel();
    assert!(core.install(t, P(rel.clone()), tx).is_ok());
    (t, rx)
}

/// A program that counts its releases (drops).
struct P(Arc<AtomicUsize>);
impl HostProgram for P {
    fn host_orb(&self) -> ccw_types::Orb {
        ccw_types::CommandOrb::new(0, 0x1000).emit()
    }
    fn update_scsw(&self, scsw: &mut Scsw) {
        scsw.cpa = (scsw.cpa.get() - 0x1000).into();
    }
    fn is_pinned(&self, range: ccw_translate::GuestRange) -> bool {
        range.overlaps(&ccw_translate::GuestRange::new(0x2000, 0x1000))
    }
}
impl Drop for P {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn open(core: &Core<P>) {
    core.open_begin().unwrap();
    core.opened(Some(ConditionCode::Cc0)).unwrap();
    assert_eq!(core.state(), State::Idle);
}

#[test]
fn io_completes_once_and_maps_cpa() {
    let (core, rel) = open_core();
    let (t, mut rx) = begin(&core, &rel, 7);
    core.started(t, 0, Ok(ConditionCode::Cc0));
    assert_eq!(core.state(), State::CpPending);
    assert!(!core.interrupt(final_irb(0x1010)));
    let done = rx.try_recv().unwrap().unwrap();
    assert_eq!((done.intparm, done.irb.scsw.cpa.get()), (7, 0x10));
    assert_eq!(rel.load(Ordering::SeqCst), 1);
    assert_eq!(core.state(), State::Idle);
    // A second final interrupt is forwarded, not completed again.
    let mut ev = core.subscribe();
    core.interrupt(final_irb(0x1010));
    assert!(matches!(ev.try_recv(), Ok(SubchannelEvent::Status(_))));
    assert_eq!(rel.load(Ordering::SeqCst), 1);
}

#[test]
fn early_final_status_is_deferred_until_started() {
    let (core, rel) = open_core();
    let (t, mut rx) = begin(&core, &rel, 1);
    core.interrupt(final_irb(0x1008));
    assert!(rx.try_recv().is_err());
    core.started(t, 0, Ok(ConditionCode::Cc0));
    assert!(rx.try_recv().unwrap().is_ok());
    assert_eq!(rel.load(Ordering::SeqCst), 1);
    assert_eq!(core.state(), State::Idle);
}

/// Issue #15 item 3: final status that arrived while the request was being translated
/// is delivered as an event when translation fails or START is refused, never dropped.
#[test]
fn deferred_status_is_forwarded_when_the_start_does_not_happen() {
    for cc in [
        None,
        Some(ConditionCode::Cc1),
        Some(ConditionCode::Cc2),
        Some(ConditionCode::Cc3),
    ] {
        let (core, rel) = open_core();
        let mut ev = core.subscribe();
        let t = core.io_request(9).unwrap();
        assert!(!core.interrupt(final_irb(0x2008)));
        assert!(ev.try_recv().is_err(), "deferred, not yet forwarded");
        let mut rx = None;
        match cc {
            None => core.translate_failed(t, Errno::Fault),
            Some(cc) => {
                let (tx, r) = oneshot::channel();
                assert!(core.install(t, P(rel.clone()), tx).is_ok());
                core.started(t, 0, Ok(cc));
                rx = Some(r);
            }
        }
        match ev.try_recv() {
            Ok(SubchannelEvent::Status(irb)) => {
                assert_eq!(irb.scsw.cpa.get(), 0x2008, "{cc:?}: not remapped")
            }
            other => panic!("{cc:?}: {other:?}"),
        }
        assert!(ev.try_recv().is_err(), "{cc:?}: exactly once");
        if let Some(mut rx) = rx {
            assert!(matches!(
                rx.try_recv().unwrap(),
                Err(CssError::Condition { .. })
            ));
            assert_eq!(rel.load(Ordering::SeqCst), 1);
        }
        assert_eq!(core.state(), State::Idle);
    }
}

#[test]
fn deferred_status_is_forwarded_on_close() {
    let (core, rel) = open_core();
    let mut ev = core.subscribe();
    let (_t, mut rx) = begin(&core, &rel, 1);
    core.interrupt(final_irb(0x1008));
    let td = core.close_begin().unwrap();
    assert!(matches!(ev.try_recv(), Ok(SubchannelEvent::Status(_))));
    td.finish(|| CssError::Closed(core.sch));
    assert!(matches!(rx.try_recv().unwrap(), Err(CssError::Closed(_))));
    assert_eq!(rel.load(Ordering::SeqCst), 1);
}

#[test]
fn cc3_narrows_paths_then_enodev() {
    let rel = Arc::new(AtomicUsize::new(0));
    let mut s = schib();
    s.pmcw.pam = 0xC0;
    let core = Core::new(SubchannelId::new(0, 0, 0), s);
    open(&core);
    for (lpm, want) in [(0x80, Errno::Access), (0x40, Errno::NoDevice)] {
        let (t, mut rx) = begin(&core, &rel, 1);
        core.started(t, lpm, Ok(ConditionCode::Cc3));
        let e = rx.try_recv().unwrap().unwrap_err();
        assert!(
            matches!(e, CssError::Condition { errno, .. } if errno == want),
            "{e}"
        );
    }
    assert_eq!(rel.load(Ordering::SeqCst), 2);
}

#[test]
fn close_takes_request_and_stale_start_is_ignored() {
    let (core, rel) = open_core();
    let (t, mut rx) = begin(&core, &rel, 1);
    let td = core.close_begin().unwrap();
    assert!(td.was_enabled);
    core.started(t, 0, Ok(ConditionCode::Cc0));
    assert_eq!(core.state(), State::Standby);
    td.finish(|| CssError::Closed(core.sch));
    core.close_end(true);
    assert!(matches!(rx.try_recv().unwrap(), Err(CssError::Closed(_))));
    assert_eq!(rel.load(Ordering::SeqCst), 1);
    // Disabled-irq cell: status on a subchannel our close disabled needs no second
    // disable (it is the late interruption of the close's own halt or clear).
    assert!(!core.interrupt(final_irb(0)));
}

#[test]
fn status_while_closing_leaves_the_disable_to_the_closer() {
    let (core, _) = open_core();
    let td = core.close_begin().unwrap();
    td.finish(|| CssError::Closed(core.sch));
    // The close's quiesce is under way: the closer disables.
    assert!(!core.interrupt(final_irb(0)));
    // Its quiesce failed: later status asks for a disable.
    core.close_end(false);
    assert!(core.interrupt(final_irb(0)));
}

#[test]
fn an_open_waits_while_unowned_status_is_disabled() {
    let core: Core<P> = Core::new(SubchannelId::new(0, 0, 0), schib());
    // Never opened, enablement unknown: status for it asks for a disable.
    assert!(core.interrupt(final_irb(0)));
    assert_eq!(core.open_begin().unwrap(), Claim::Disabling);
    assert_eq!(core.state(), State::Standby);
    core.disable_end(true);
    assert_eq!(core.open_begin().unwrap(), Claim::Claimed);
    // Opening (claimed, STANDBY): the opener's enable decides, no disable from here.
    assert!(!core.interrupt(final_irb(0)));
    core.opened(Some(ConditionCode::Cc0)).unwrap();
    assert_eq!(core.state(), State::Idle);
}

#[test]
fn a_failed_event_task_disable_keeps_asking() {
    let core: Core<P> = Core::new(SubchannelId::new(0, 0, 0), schib());
    assert!(core.interrupt(final_irb(0)));
    core.disable_end(false);
    assert!(core.interrupt(final_irb(0)));
    core.disable_end(true);
    assert!(!core.interrupt(final_irb(0)));
}

/// The path logic moved here from the async layer: masks, the report forwarded, the
/// verdict on the running program; untouched when the path is not the subchannel's or it
/// was removed.
#[test]
fn path_events_update_masks_report_and_judge_the_running_program() {
    use crate::test_support::CHPID;
    let (core, rel) = open_core();
    let mut ev = core.subscribe();
    assert!(
        !core.path_event(CHPID + 1, PathEvent::VaryOff),
        "not its path"
    );
    assert_eq!(core.masks(), (0x80, 0x80));
    assert!(!core.path_event(CHPID, PathEvent::Offline), "nothing runs");
    assert!(
        matches!(ev.try_recv(), Ok(SubchannelEvent::ChannelReport(c)) if c.rsid() == u16::from(CHPID))
    );
    let (t, _rx) = begin(&core, &rel, 1);
    core.started(t, 0, Ok(ConditionCode::Cc0));
    assert!(
        !core.path_event(CHPID, PathEvent::Online),
        "online ends nothing"
    );
    assert!(
        core.path_event(CHPID, PathEvent::VaryOff),
        "the running program's path"
    );
    assert_eq!(core.masks(), (0, 0));
    assert!(matches!(
        ev.try_recv(),
        Ok(SubchannelEvent::ChannelReport(_))
    ));
    assert!(ev.try_recv().is_err(), "a vary queues no report");
    let mut s = schib();
    s.pmcw.pom = 0x7F;
    assert!(core.schib_refreshed(s));
    assert_eq!(
        core.masks(),
        (0, 0),
        "path 0x80 not operational in the new SCHIB"
    );
    assert!(matches!(
        ev.try_recv(),
        Ok(SubchannelEvent::SchibRefreshed(_))
    ));
    core.schib_stored(schib());
    assert_eq!(core.masks(), (0, 0), "the owner's STSCH keeps the masks");
    assert_eq!(core.cached_schib().pmcw.pom, 0xFF);
    core.remove().finish(|| CssError::Gone(core.sch));
    assert!(!core.path_event(CHPID, PathEvent::VaryOn));
    assert!(!core.schib_refreshed(schib()));
    assert_eq!(core.masks(), (0, 0), "a removed subchannel is not touched");
}

#[test]
fn halt_status_without_program_is_forwarded() {
    let (core, _) = open_core();
    let mut ev = core.subscribe();
    core.async_request(AsyncOp::Halt).unwrap();
    let mut irb = final_irb(0);
    irb.scsw.ctrl = irb
        .scsw
        .ctrl
        .with_fc(FunctionControl::HALT)
        .with_ac(ActivityControl::from_bits(0));
    core.interrupt(irb);
    assert!(matches!(ev.try_recv(), Ok(SubchannelEvent::Status(_))));
    assert_eq!(core.state(), State::Idle);
}
