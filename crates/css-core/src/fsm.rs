// SPDX-License-Identifier: Apache-2.0 OR MIT

//! vfio-ccw's subchannel state machine as a pure function.
//!
//! [`transition`] maps `(state, event)` to `(next state, action, outcome)` and does nothing
//! else: no locks, no I/O. The driver ([`crate::Subchannel`]) applies it under its lock and
//! then performs the [`Action`] outside the lock.
//!
//! The six events of vfio-ccw (`NOT_OPER`, `IO_REQ`, `ASYNC_REQ`, `INTERRUPT`, `OPEN`, `CLOSE`)
//! follow Linux's `vfio_ccw_jumptable` cell by cell:
//!
//! | state \ event   | NotOper | IoRequest        | AsyncRequest   | Interrupt      | Open          | Close          |
//! |-----------------|---------|------------------|----------------|----------------|---------------|----------------|
//! | `NotOper`       | nop     | EIO              | EIO            | disable        | nop           | nop            |
//! | `Standby`       | notoper | EIO              | EIO            | disable        | enable        | notoper        |
//! | `Idle`          | notoper | -> `CpProcessing` | halt/clear     | irq            | notoper       | -> `Standby`    |
//! | `CpProcessing`  | notoper | EAGAIN           | EAGAIN         | irq            | notoper       | -> `Standby`    |
//! | `CpPending`     | notoper | EBUSY            | halt/clear     | irq (final -> `Idle`) | notoper | -> `Standby` |
//!
//! Every cell, with the payload events below, is rendered into `docs/fsm.md` by
//! `cargo xtask docs` (a table and a Mermaid state diagram).
//!
//! vfio-ccw runs its multi-step actions (enable, translate + SSCH) inside one event handler.
//! Here the backend call happens outside the lock, so its result comes back as a second event:
//! [`Event::Opened`], [`Event::TranslateFailed`] and [`Event::Started`]. Those cells are part of
//! the table too (see [`transition`]), and so is one refinement of `irq`: a final solicited
//! interruption that overtakes the condition code of its own START (the backend answered
//! before `start` returned) is [`Action::Defer`]red until [`Event::Started`] arrives, instead
//! of being mistaken for unsolicited status as in vfio-ccw.

pub use ccw_types::{ConditionCode, Errno, GuestAnswer};

/// The state of a subchannel, as vfio-ccw names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// The device is not operational (gone, or an error made it unusable).
    NotOper,
    /// Known and operational, but not opened (disabled for I/O).
    Standby,
    /// Open and enabled, no channel program in flight.
    Idle,
    /// A request is being translated and started.
    CpProcessing,
    /// A channel program was started; its final status has not arrived.
    CpPending,
}

impl State {
    /// Every state, for exhaustive tests.
    pub const ALL: [State; 5] = [
        State::NotOper,
        State::Standby,
        State::Idle,
        State::CpProcessing,
        State::CpPending,
    ];
}

/// An asynchronous request (vfio-ccw's async command region).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsyncOp {
    /// HALT SUBCHANNEL.
    Halt,
    /// CLEAR SUBCHANNEL.
    Clear,
}

/// What kind of status an interruption carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IrqKind {
    /// No subchannel or device activity remains ([`ccw_types::Scsw::is_final`]).
    pub is_final: bool,
    /// The status belongs to a function the program started ([`ccw_types::Scsw::is_solicited`]).
    pub solicited: bool,
}

impl IrqKind {
    /// Every combination, for exhaustive tests.
    pub const ALL: [IrqKind; 4] = [
        IrqKind {
            is_final: false,
            solicited: false,
        },
        IrqKind {
            is_final: false,
            solicited: true,
        },
        IrqKind {
            is_final: true,
            solicited: false,
        },
        IrqKind {
            is_final: true,
            solicited: true,
        },
    ];
}

/// An input to the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The device became not operational (schib refresh failed or device not valid).
    NotOper,
    /// A START request (submit).
    IoRequest,
    /// A HALT or CLEAR request.
    AsyncRequest(AsyncOp),
    /// An I/O interruption arrived.
    Interrupt(IrqKind),
    /// The owner opens the subchannel.
    Open,
    /// The owner closes the subchannel.
    Close,
    /// The enable issued by [`Action::Enable`] returned this condition code.
    Opened(ConditionCode),
    /// Translating the program of an [`Event::IoRequest`] failed with this error.
    TranslateFailed(Errno),
    /// START SUBCHANNEL returned `cc`; `paths_left` tells, for cc 3, whether other paths of
    /// the logical-path mask remain (vfio-ccw: EACCES) or none do (ENODEV).
    Started {
        /// The condition code of START SUBCHANNEL.
        cc: ConditionCode,
        /// For cc 3: whether paths remain after removing the ORB's paths from the mask.
        paths_left: bool,
    },
}

/// What the driver must do after the transition, outside the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Nothing.
    None,
    /// `fsm_disabled_irq`: status for a subchannel nobody owns: disable it.
    DisableSubchannel,
    /// `fsm_notoper`: fail the outstanding request, release its program, stop serving.
    Abort,
    /// `fsm_io_request`: translate the channel program and start it.
    TranslateAndStart,
    /// `fsm_async_request`: issue HALT or CLEAR SUBCHANNEL.
    Issue(AsyncOp),
    /// `fsm_irq`, final solicited status of the running program: map the SCSW back to guest
    /// addresses, release the program, answer the request.
    Complete,
    /// `fsm_irq` otherwise: pass the status on as an event (intermediate, unsolicited, or
    /// the end of a halt/clear with no program).
    Forward,
    /// Final solicited status that overtook its START's condition code: hold it until
    /// [`Event::Started`].
    Defer,
    /// `fsm_open`: enable the subchannel.
    Enable,
    /// `fsm_close`: fail the outstanding request, disable the subchannel (quiescing it if it
    /// is busy), release the program.
    Disable,
    /// START was accepted: wait for the interruption (or complete a deferred one).
    AwaitInterrupt,
    /// START or translation failed: release the program (if any) and answer with the error.
    Release,
}

/// The result a request gets from a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Accepted (cc 0).
    Ok,
    /// Refused with this errno.
    Err(Errno),
}

impl Outcome {
    /// QEMU's view of this outcome.
    pub const fn guest_answer(self) -> GuestAnswer {
        match self {
            Outcome::Ok => GuestAnswer::Cc(ConditionCode::Cc0),
            Outcome::Err(e) => e.guest_answer(),
        }
    }
}

/// The result of [`transition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transition {
    /// The state after the event.
    pub next: State,
    /// What the driver does next, outside the lock.
    pub action: Action,
    /// The answer to the request that caused the event.
    pub outcome: Outcome,
}

const fn t(next: State, action: Action, outcome: Outcome) -> Transition {
    Transition {
        next,
        action,
        outcome,
    }
}

/// The transition table: pure, total, and cheap.
///
/// ```
/// use css_core::fsm::{transition, Action, Errno, Event, Outcome, State};
/// let tr = transition(State::CpPending, Event::IoRequest);
/// assert_eq!((tr.next, tr.action, tr.outcome), (State::CpPending, Action::None, Outcome::Err(Errno::Busy)));
/// let tr = transition(State::Idle, Event::IoRequest);
/// assert_eq!((tr.next, tr.action), (State::CpProcessing, Action::TranslateAndStart));
/// ```
pub const fn transition(state: State, event: Event) -> Transition {
    use Action as A;
    use Outcome::Ok as OK;
    use State as S;
    let notoper = t(S::NotOper, A::Abort, OK);
    match (state, event) {
        // --- NOT_OPER row ---
        (S::NotOper, Event::NotOper) => t(S::NotOper, A::None, OK),
        (S::NotOper, Event::IoRequest) => t(S::NotOper, A::None, Outcome::Err(Errno::Io)),
        (S::NotOper, Event::AsyncRequest(_)) => t(S::NotOper, A::None, Outcome::Err(Errno::Io)),
        (S::NotOper, Event::Interrupt(_)) => t(S::NotOper, A::DisableSubchannel, OK),
        (S::NotOper, Event::Open) => t(S::NotOper, A::None, OK),
        (S::NotOper, Event::Close) => t(S::NotOper, A::None, OK),
        // --- STANDBY row ---
        (S::Standby, Event::NotOper) => notoper,
        (S::Standby, Event::IoRequest) => t(S::Standby, A::None, Outcome::Err(Errno::Io)),
        (S::Standby, Event::AsyncRequest(_)) => t(S::Standby, A::None, Outcome::Err(Errno::Io)),
        (S::Standby, Event::Interrupt(_)) => t(S::Standby, A::DisableSubchannel, OK),
        (S::Standby, Event::Open) => t(S::Standby, A::Enable, OK),
        (S::Standby, Event::Close) => notoper,
        // --- IDLE row ---
        (S::Idle, Event::NotOper) => notoper,
        (S::Idle, Event::IoRequest) => t(S::CpProcessing, A::TranslateAndStart, OK),
        (S::Idle, Event::AsyncRequest(op)) => t(S::Idle, A::Issue(op), OK),
        (S::Idle, Event::Interrupt(_)) => t(S::Idle, A::Forward, OK),
        (S::Idle, Event::Open) => notoper,
        (S::Idle, Event::Close) => t(S::Standby, A::Disable, OK),
        // --- CP_PROCESSING row ---
        (S::CpProcessing, Event::NotOper) => notoper,
        (S::CpProcessing, Event::IoRequest) => {
            t(S::CpProcessing, A::None, Outcome::Err(Errno::Again))
        }
        (S::CpProcessing, Event::AsyncRequest(_)) => {
            t(S::CpProcessing, A::None, Outcome::Err(Errno::Again))
        }
        (S::CpProcessing, Event::Interrupt(k)) => {
            if k.is_final && k.solicited {
                t(S::CpProcessing, A::Defer, OK)
            } else {
                t(S::CpProcessing, A::Forward, OK)
            }
        }
        (S::CpProcessing, Event::Open) => notoper,
        (S::CpProcessing, Event::Close) => t(S::Standby, A::Disable, OK),
        // --- CP_PENDING row ---
        (S::CpPending, Event::NotOper) => notoper,
        (S::CpPending, Event::IoRequest) => t(S::CpPending, A::None, Outcome::Err(Errno::Busy)),
        (S::CpPending, Event::AsyncRequest(op)) => t(S::CpPending, A::Issue(op), OK),
        (S::CpPending, Event::Interrupt(k)) => {
            if k.is_final && k.solicited {
                t(S::Idle, A::Complete, OK)
            } else {
                t(S::CpPending, A::Forward, OK)
            }
        }
        (S::CpPending, Event::Open) => notoper,
        (S::CpPending, Event::Close) => t(S::Standby, A::Disable, OK),
        // --- continuations of the driver's own backend calls ---
        (S::Standby, Event::Opened(cc)) => match cc {
            ConditionCode::Cc0 => t(S::Idle, A::None, OK),
            ConditionCode::Cc1 | ConditionCode::Cc2 => {
                t(S::Standby, A::None, Outcome::Err(Errno::Busy))
            }
            ConditionCode::Cc3 => t(S::NotOper, A::Abort, Outcome::Err(Errno::NoDevice)),
        },
        (S::CpProcessing, Event::TranslateFailed(e)) => t(S::Idle, A::Release, Outcome::Err(e)),
        (S::CpProcessing, Event::Started { cc, paths_left }) => match cc {
            ConditionCode::Cc0 => t(S::CpPending, A::AwaitInterrupt, OK),
            ConditionCode::Cc1 | ConditionCode::Cc2 => {
                t(S::Idle, A::Release, Outcome::Err(Errno::Busy))
            }
            ConditionCode::Cc3 => t(
                S::Idle,
                A::Release,
                Outcome::Err(if paths_left {
                    Errno::Access
                } else {
                    Errno::NoDevice
                }),
            ),
        },
        // A continuation that lost a race (close, not-operational) finds another state:
        // the request that raced is answered by whoever moved the state on; the late
        // continuation only learns the device is no longer there for it.
        (s, Event::Opened(_)) | (s, Event::Started { .. }) => {
            t(s, A::None, Outcome::Err(Errno::NoDevice))
        }
        (s, Event::TranslateFailed(e)) => t(s, A::None, Outcome::Err(e)),
    }
}

/// Every event shape, with representative payloads, for exhaustive tests and models.
pub fn all_events() -> Vec<Event> {
    let mut v = vec![
        Event::NotOper,
        Event::IoRequest,
        Event::AsyncRequest(AsyncOp::Halt),
        Event::AsyncRequest(AsyncOp::Clear),
        Event::Open,
        Event::Close,
        Event::TranslateFailed(Errno::Invalid),
    ];
    v.extend(IrqKind::ALL.into_iter().map(Event::Interrupt));
    for cc in ConditionCode::ALL {
        v.push(Event::Opened(cc));
        v.push(Event::Started {
            cc,
            paths_left: false,
        });
        v.push(Event::Started {
            cc,
            paths_left: true,
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConditionCode::*;
    use State::*;

    const HALT: Event = Event::AsyncRequest(AsyncOp::Halt);
    const CLEAR: Event = Event::AsyncRequest(AsyncOp::Clear);

    fn irq(is_final: bool, solicited: bool) -> Event {
        Event::Interrupt(IrqKind {
            is_final,
            solicited,
        })
    }

    fn check(s: State, e: Event, next: State, action: Action, outcome: Outcome) {
        let tr = transition(s, e);
        assert_eq!(
            (tr.next, tr.action, tr.outcome),
            (next, action, outcome),
            "cell ({s:?}, {e:?})"
        );
    }

    use Action as A;
    use Outcome::Ok as OK;
    fn err(e: Errno) -> Outcome {
        Outcome::Err(e)
    }

    /// The 5 x 6 vfio-ccw table, every cell spelled out (interrupt and async columns for every
    /// payload).
    #[test]
    fn vfio_ccw_table_every_cell() {
        // NOT_OPER
        check(NotOper, Event::NotOper, NotOper, A::None, OK);
        check(NotOper, Event::IoRequest, NotOper, A::None, err(Errno::Io));
        check(NotOper, HALT, NotOper, A::None, err(Errno::Io));
        check(NotOper, CLEAR, NotOper, A::None, err(Errno::Io));
        for k in IrqKind::ALL {
            check(
                NotOper,
                Event::Interrupt(k),
                NotOper,
                A::DisableSubchannel,
                OK,
            );
            check(
                Standby,
                Event::Interrupt(k),
                Standby,
                A::DisableSubchannel,
                OK,
            );
            check(Idle, Event::Interrupt(k), Idle, A::Forward, OK);
        }
        check(NotOper, Event::Open, NotOper, A::None, OK);
        check(NotOper, Event::Close, NotOper, A::None, OK);
        // STANDBY
        check(Standby, Event::NotOper, NotOper, A::Abort, OK);
        check(Standby, Event::IoRequest, Standby, A::None, err(Errno::Io));
        check(Standby, HALT, Standby, A::None, err(Errno::Io));
        check(Standby, CLEAR, Standby, A::None, err(Errno::Io));
        check(Standby, Event::Open, Standby, A::Enable, OK);
        check(Standby, Event::Close, NotOper, A::Abort, OK);
        // IDLE
        check(Idle, Event::NotOper, NotOper, A::Abort, OK);
        check(
            Idle,
            Event::IoRequest,
            CpProcessing,
            A::TranslateAndStart,
            OK,
        );
        check(Idle, HALT, Idle, A::Issue(AsyncOp::Halt), OK);
        check(Idle, CLEAR, Idle, A::Issue(AsyncOp::Clear), OK);
        check(Idle, Event::Open, NotOper, A::Abort, OK);
        check(Idle, Event::Close, Standby, A::Disable, OK);
        // CP_PROCESSING
        check(CpProcessing, Event::NotOper, NotOper, A::Abort, OK);
        check(
            CpProcessing,
            Event::IoRequest,
            CpProcessing,
            A::None,
            err(Errno::Again),
        );
        check(CpProcessing, HALT, CpProcessing, A::None, err(Errno::Again));
        check(
            CpProcessing,
            CLEAR,
            CpProcessing,
            A::None,
            err(Errno::Again),
        );
        check(
            CpProcessing,
            irq(false, false),
            CpProcessing,
            A::Forward,
            OK,
        );
        check(CpProcessing, irq(false, true), CpProcessing, A::Forward, OK);
        check(CpProcessing, irq(true, false), CpProcessing, A::Forward, OK);
        check(CpProcessing, irq(true, true), CpProcessing, A::Defer, OK);
        check(CpProcessing, Event::Open, NotOper, A::Abort, OK);
        check(CpProcessing, Event::Close, Standby, A::Disable, OK);
        // CP_PENDING
        check(CpPending, Event::NotOper, NotOper, A::Abort, OK);
        check(
            CpPending,
            Event::IoRequest,
            CpPending,
            A::None,
            err(Errno::Busy),
        );
        check(CpPending, HALT, CpPending, A::Issue(AsyncOp::Halt), OK);
        check(CpPending, CLEAR, CpPending, A::Issue(AsyncOp::Clear), OK);
        check(CpPending, irq(false, false), CpPending, A::Forward, OK);
        check(CpPending, irq(false, true), CpPending, A::Forward, OK);
        check(CpPending, irq(true, false), CpPending, A::Forward, OK);
        check(CpPending, irq(true, true), Idle, A::Complete, OK);
        check(CpPending, Event::Open, NotOper, A::Abort, OK);
        check(CpPending, Event::Close, Standby, A::Disable, OK);
    }

    #[test]
    fn continuation_cells() {
        for (cc, next, action, outcome) in [
            (Cc0, Idle, A::None, OK),
            (Cc1, Standby, A::None, err(Errno::Busy)),
            (Cc2, Standby, A::None, err(Errno::Busy)),
            (Cc3, NotOper, A::Abort, err(Errno::NoDevice)),
        ] {
            check(Standby, Event::Opened(cc), next, action, outcome);
        }
        for paths_left in [false, true] {
            let st = |cc| Event::Started { cc, paths_left };
            check(CpProcessing, st(Cc0), CpPending, A::AwaitInterrupt, OK);
            check(CpProcessing, st(Cc1), Idle, A::Release, err(Errno::Busy));
            check(CpProcessing, st(Cc2), Idle, A::Release, err(Errno::Busy));
            let cc3 = if paths_left {
                Errno::Access
            } else {
                Errno::NoDevice
            };
            check(CpProcessing, st(Cc3), Idle, A::Release, err(cc3));
        }
        check(
            CpProcessing,
            Event::TranslateFailed(Errno::Fault),
            Idle,
            A::Release,
            err(Errno::Fault),
        );
        // Late continuations in every other state change nothing.
        for s in State::ALL {
            for e in all_events() {
                let late = match e {
                    Event::Opened(_) => s != Standby,
                    Event::Started { .. } | Event::TranslateFailed(_) => s != CpProcessing,
                    _ => false,
                };
                if late {
                    let tr = transition(s, e);
                    assert_eq!((tr.next, tr.action), (s, A::None), "late ({s:?}, {e:?})");
                    assert!(matches!(tr.outcome, Outcome::Err(_)));
                }
            }
        }
    }

    /// Properties over every cell: requests never succeed outside `Idle`/`CpPending`, only the
    /// interrupt that completes a program leaves `CpPending` for `Idle`, and `NotOper` is only
    /// left by nobody (a new probe makes a new subchannel).
    #[test]
    fn table_invariants() {
        for s in State::ALL {
            for e in all_events() {
                let tr = transition(s, e);
                if s == NotOper {
                    assert_eq!(tr.next, NotOper, "({s:?}, {e:?})");
                }
                if tr.action == A::Complete {
                    assert_eq!((s, tr.next), (CpPending, Idle));
                }
                if tr.action == A::TranslateAndStart {
                    assert_eq!((s, tr.next), (Idle, CpProcessing));
                }
                if tr.next == CpPending {
                    assert!(s == CpPending || s == CpProcessing, "({s:?}, {e:?})");
                }
                if tr.next == NotOper && s != NotOper {
                    assert_eq!(tr.action, A::Abort, "({s:?}, {e:?})");
                }
            }
        }
    }

    /// QEMU's table itself is ccw-types' (`Errno::guest_answer`); an accepted request is cc 0.
    #[test]
    fn outcome_guest_answers() {
        assert_eq!(Outcome::Ok.guest_answer(), GuestAnswer::Cc(Cc0));
        for e in Errno::ALL {
            assert_eq!(Outcome::Err(e).guest_answer(), e.guest_answer());
        }
    }
}
