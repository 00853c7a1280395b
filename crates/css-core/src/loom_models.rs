// SPDX-License-Identifier: Apache-2.0 OR MIT

//! loom models of the driver's locking (`cargo xtask loom`, which runs
//! `RUSTFLAGS="--cfg loom" cargo test -p css-core --release --lib loom_models`).
//!
//! Each model drives the synchronous driver core ([`crate::core::Core`]) and the registry
//! ([`crate::registry::Registry`]) from several threads exactly as the async layer does (the
//! backend calls between two core calls are where the async layer yields, so loom explores
//! every interleaving of them), and checks an invariant over every interleaving.

use std::sync::atomic::Ordering;

use ccw_types::{CommandOrb, Orb, Scsw, SubchannelId};
use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::thread;
use tokio::sync::oneshot;

use crate::backend::ConditionCode;
use crate::core::{Core, IoCompletion, SubchannelEvent};
use crate::error::CssError;
use crate::fsm::{AsyncOp, State};
use crate::paths::PathEvent;
use crate::program::HostProgram;
use crate::registry::Registry;
use crate::sync::Arc;
use crate::test_support::{CHPID, final_irb, schib};

const SCH: SubchannelId = SubchannelId::new(0, 0, 5);

/// A program that counts its releases (drops).
struct Counted(Arc<AtomicUsize>);

impl HostProgram for Counted {
    fn host_orb(&self) -> Orb {
        CommandOrb::new(0x1234, 0x1000).emit()
    }
    fn update_scsw(&self, _scsw: &mut Scsw) {}
    fn is_pinned(&self, _range: ccw_translate::GuestRange) -> bool {
        false
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn open_core() -> Core<Counted> {
    let core = Core::new(SCH, schib());
    core.open_begin().expect("open");
    core.opened(Some(ConditionCode::Cc0)).expect("enable");
    core
}

type Rx = oneshot::Receiver<Result<IoCompletion, CssError>>;

/// Counts the answers a request got: 1 if `direct` (the submit returned an error itself) or
/// if the receiver holds exactly one value.
fn answers(direct: bool, rx: Option<Rx>) -> usize {
    let mut n = usize::from(direct);
    if let Some(mut rx) = rx {
        if rx.try_recv().is_ok() {
            n += 1;
        }
    }
    n
}

/// The submit path: io_request, translate (elided), install, START at the backend, started.
/// Returns (answered directly, receiver).
fn submit(
    core: &Core<Counted>,
    released: &Arc<AtomicUsize>,
    at_backend: &AtomicBool,
) -> (bool, Option<Rx>) {
    let Ok(ticket) = core.io_request(0x1234) else {
        return (true, None);
    };
    let (tx, rx) = oneshot::channel();
    if core.install(ticket, Counted(released.clone()), tx).is_err() {
        // Handed back and dropped: released.
        return (true, None);
    }
    // backend.start(): from here the device may interrupt.
    at_backend.store(true, Ordering::SeqCst);
    core.started(ticket, 0, Ok(ConditionCode::Cc0));
    (false, Some(rx))
}

/// An open subchannel with one request started at the backend: the core, the release
/// counter of its program and the request's answer.
fn in_flight() -> (Arc<Core<Counted>>, Arc<AtomicUsize>, Rx) {
    let core = Arc::new(open_core());
    let released = Arc::new(AtomicUsize::new(0));
    let at_backend = AtomicBool::new(false);
    let (_, rx) = submit(&core, &released, &at_backend);
    (core, released, rx.expect("started"))
}

/// The device presents the running program's final status, on a thread of its own.
fn final_status_thread(core: &Arc<Core<Counted>>) -> thread::JoinHandle<()> {
    let core = core.clone();
    thread::spawn(move || {
        core.interrupt(final_irb(0));
    })
}

/// io vs interrupt vs close.
///
/// Invariant: the request gets exactly one answer (its own error, the completion, or the
/// close's error), the program is released exactly once if it was ever installed, and the
/// subchannel ends in `Standby` with nothing left inside.
#[test]
fn io_vs_interrupt_vs_close() {
    loom::model(|| {
        let core = Arc::new(open_core());
        let released = Arc::new(AtomicUsize::new(0));
        let at_backend = Arc::new(AtomicBool::new(false));

        let submitter = {
            let (core, released, at_backend) = (core.clone(), released.clone(), at_backend.clone());
            thread::spawn(move || submit(&core, &released, &at_backend))
        };
        let irq = {
            let (core, at_backend) = (core.clone(), at_backend.clone());
            thread::spawn(move || {
                // The device can only present final status for a program it was given.
                if at_backend.load(Ordering::SeqCst) {
                    core.interrupt(final_irb(0));
                }
            })
        };
        let td = core.close_begin().expect("close");
        td.finish(|| CssError::Closed(SCH));
        core.close_end(true);

        let (direct, rx) = submitter.join().expect("submitter");
        irq.join().expect("irq");
        let installed = rx.is_some() || released.load(Ordering::SeqCst) > 0;
        assert_eq!(answers(direct, rx), 1, "exactly one answer");
        assert_eq!(
            released.load(Ordering::SeqCst),
            usize::from(installed),
            "released once"
        );
        assert_eq!(core.state(), State::Standby);
    });
}

/// CRW / subchannel event vs remove.
///
/// Invariant: an event is either delivered before `Removed` (in the subscriber's order) or
/// dropped; nothing is delivered after `Removed`; the in-flight request gets exactly one
/// answer (completion or `Gone`) and its program is released exactly once; the registry
/// no longer holds the subchannel.
#[test]
fn report_vs_remove() {
    loom::model(|| {
        let registry = Arc::new(Registry::new());
        let released = Arc::new(AtomicUsize::new(0));
        registry.insert_missing([(SCH, ())], |_, ()| open_core());
        let entry = registry.get(SCH).expect("registered");
        let mut events = entry.subscribe();
        // An I/O is in flight.
        let at_backend = AtomicBool::new(false);
        let (direct, rx) = submit(&entry, &released, &at_backend);
        assert!(!direct);

        let router = {
            let registry = registry.clone();
            thread::spawn(move || {
                // The event task: a subchannel report, then the program's final status.
                if let Some(e) = registry.get(SCH) {
                    e.emit(SubchannelEvent::SchibRefreshed(schib()));
                }
                if let Some(e) = registry.get(SCH) {
                    e.interrupt(final_irb(0));
                }
            })
        };
        let td = entry.remove();
        td.finish(|| CssError::Gone(SCH));
        registry.remove_if(SCH, &entry);
        router.join().expect("router");

        assert!(registry.get(SCH).is_none());
        let mut seen = Vec::new();
        while let Ok(ev) = events.try_recv() {
            seen.push(ev);
        }
        assert_eq!(seen.last(), Some(&SubchannelEvent::Removed), "{seen:?}");
        assert_eq!(
            seen.iter()
                .filter(|e| **e == SubchannelEvent::Removed)
                .count(),
            1
        );
        assert_eq!(answers(false, rx), 1, "exactly one answer");
        assert_eq!(released.load(Ordering::SeqCst), 1, "released once");
    });
}

/// halt vs final interrupt.
///
/// Invariant: whichever comes first, the halt request is accepted (the table allows
/// HALT in `CpPending` and in `Idle`) unless the second request below already moved the
/// subchannel to `CpProcessing` (then EAGAIN, as vfio-ccw answers), the program completes exactly once with exactly one
/// release, a second submit racing them is refused with EBUSY or runs after the completion,
/// and the subchannel ends `Idle` or `CpPending` (the second program running).
#[test]
fn halt_vs_final_interrupt() {
    loom::model(|| {
        let (core, released, rx) = in_flight();

        let halter = {
            let core = core.clone();
            thread::spawn(move || core.async_request(AsyncOp::Halt).map_err(|e| e.errno()))
        };
        let irq = final_status_thread(&core);
        let second = core.io_request(0x5678);
        let halted = halter.join().expect("halter");
        irq.join().expect("irq");
        // Refused only when the second request was being processed (EAGAIN).
        if let Err(errno) = halted {
            assert_eq!(errno, crate::fsm::Errno::Again.raw());
            assert!(second.is_ok());
        }

        assert_eq!(answers(false, Some(rx)), 1, "exactly one completion");
        assert_eq!(released.load(Ordering::SeqCst), 1, "released once");
        match second {
            Ok(_) => assert_eq!(core.state(), State::CpProcessing),
            Err(e) => {
                assert_eq!(e.errno(), crate::fsm::Errno::Busy.raw(), "{e}");
                assert_eq!(core.state(), State::Idle);
            }
        }
    });
}

/// close vs remove (vs the program's final status).
///
/// Invariant: whichever of close, removal and completion gets the request first answers it,
/// exactly once, and its program is released exactly once; after both finish the
/// subchannel is removed (`NotOper`, no owner) and a late close is refused.
#[test]
fn close_vs_remove() {
    loom::model(|| {
        let (core, released, rx) = in_flight();

        let closer = {
            let core = core.clone();
            thread::spawn(move || {
                if let Ok(td) = core.close_begin() {
                    td.finish(|| CssError::Closed(SCH));
                    core.close_end(true);
                }
            })
        };
        let irq = final_status_thread(&core);
        let td = core.remove();
        td.finish(|| CssError::Gone(SCH));
        closer.join().expect("closer");
        irq.join().expect("irq");

        assert_eq!(answers(false, Some(rx)), 1, "exactly one answer");
        assert_eq!(released.load(Ordering::SeqCst), 1, "released once");
        assert_eq!(core.state(), State::NotOper);
        assert!(core.io_request(1).is_err());
    });
}

/// Status for a subchannel nobody owns (the event task disables it) racing with an open
/// (which enables it). The backend calls are modelled as writes of the device's enabled bit
/// between the core calls that bracket them.
///
/// Invariant: the disable never lands after the open's enable: once the open finished, the
/// subchannel it reports open (IDLE) is enabled.
#[test]
fn stray_status_vs_open() {
    loom::model(|| {
        let core = Arc::new(Core::<Counted>::new(SCH, schib()));
        let device_enabled = Arc::new(AtomicBool::new(false));

        let events = {
            let (core, device_enabled) = (core.clone(), device_enabled.clone());
            thread::spawn(move || {
                if core.interrupt(final_irb(0)) {
                    device_enabled.store(false, Ordering::SeqCst);
                    core.disable_end(true);
                }
            })
        };
        // The open: waits while the disable is under way (the async layer awaits a Notify).
        loop {
            match core.open_begin().expect("open") {
                crate::core::Claim::Claimed => break,
                crate::core::Claim::Disabling => thread::yield_now(),
            }
        }
        device_enabled.store(true, Ordering::SeqCst);
        core.opened(Some(ConditionCode::Cc0)).expect("enable");
        events.join().expect("event task");

        assert_eq!(core.state(), State::Idle);
        assert!(
            device_enabled.load(Ordering::SeqCst),
            "an open subchannel was left disabled"
        );
    });
}

/// A channel-path event (the operator varies off the path the program runs on) racing the
/// program's final status and a close: the path event is [`Core::path_event`], the code
/// that moved out of the async layer.
///
/// Invariant: the request gets exactly one answer and its program one release whatever the
/// order; the vary always lands in both masks (the subchannel is not removed); the path event
/// asks to end the program only while one runs (then the answer is the completion or the
/// close's error, never a second one); the subchannel ends `Standby`.
#[test]
fn path_event_vs_completion_vs_close() {
    loom::model(|| {
        let (core, released, rx) = in_flight();

        let path = {
            let core = core.clone();
            thread::spawn(move || core.path_event(CHPID, PathEvent::VaryOff))
        };
        let irq = final_status_thread(&core);
        let td = core.close_begin().expect("close");
        td.finish(|| CssError::Closed(SCH));
        core.close_end(true);
        let ended = path.join().expect("path event");
        irq.join().expect("irq");

        let mut rx = rx;
        let answer = rx.try_recv().expect("answered");
        assert!(rx.try_recv().is_err(), "exactly one answer");
        assert_eq!(released.load(Ordering::SeqCst), 1, "released once");
        if ended {
            // It saw the program running: whoever took the request out answered it.
            assert!(matches!(answer, Ok(_) | Err(CssError::Closed(_))));
        }
        assert_eq!(core.masks(), (0, 0), "varied off in lpm and opm");
        assert_eq!(core.state(), State::Standby);
    });
}

/// Path events and a subchannel report's SCHIB refresh racing a start that ends with cc 3
/// (which narrows `lpm` by the paths it tried, from the ticket taken before).
///
/// Invariant: `lpm` stays inside `opm` in every order (no path is logically available that is
/// not operational); the request is answered once (cc 3: not operational) and released once;
/// the report reaches the subscriber exactly once (nothing removes the subchannel).
#[test]
fn path_events_and_refresh_vs_cc3_start() {
    loom::model(|| {
        let core = Arc::new(open_core());
        let mut events = core.subscribe();
        let released = Arc::new(AtomicUsize::new(0));

        let starter = {
            let (core, released) = (core.clone(), released.clone());
            thread::spawn(move || {
                let ticket = core.io_request(1).expect("idle");
                let (tx, rx) = oneshot::channel();
                if core.install(ticket, Counted(released), tx).is_err() {
                    return None;
                }
                core.started(ticket, 0, Ok(ConditionCode::Cc3));
                Some(rx)
            })
        };
        let paths = {
            let core = core.clone();
            thread::spawn(move || {
                core.path_event(CHPID, PathEvent::VaryOff);
                core.path_event(CHPID, PathEvent::Online);
            })
        };
        assert!(core.schib_refreshed(schib()));
        let rx = starter.join().expect("starter");
        paths.join().expect("paths");

        let (lpm, opm) = core.masks();
        assert_eq!(lpm & !opm, 0, "lpm {lpm:#x} outside opm {opm:#x}");
        let mut rx = rx.expect("installed: nothing closed it");
        assert!(matches!(
            rx.try_recv(),
            Ok(Err(CssError::Condition {
                cc: ConditionCode::Cc3,
                ..
            }))
        ));
        assert_eq!(released.load(Ordering::SeqCst), 1, "released once");
        let mut reports = 0;
        while let Ok(ev) = events.try_recv() {
            match ev {
                SubchannelEvent::ChannelReport(_) => reports += 1,
                SubchannelEvent::SchibRefreshed(_) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(reports, 1, "the online report, once");
        assert_eq!(core.state(), State::Idle);
    });
}
