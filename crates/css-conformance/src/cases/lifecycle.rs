// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Group `lifecycle`: open, close and remove with I/O in each state; re-open; racing
//! submits; the final status delivered exactly once.

use std::time::Duration;

use ccw_types::CcwFlags;
use css_core::{Backend, CssErrorKind, State, SubchannelEvent};

use super::async_io::{wait_started, write_loop};
use crate::prog::*;
use crate::{CaseResult, Ctx, Failure, Verdict, ensure};

/// Open, close, open again: each open enables, each close leaves STANDBY; I/O works after
/// the re-open (anchors.md FSM: STANDBY + OPEN -> IDLE, IDLE + CLOSE -> STANDBY).
pub(crate) async fn reopen<B: Backend>(c: &Ctx<B>) -> CaseResult {
    for round in 0..3 {
        let sub = c.open().await?;
        ensure!(
            sub.state() == State::Idle,
            "round {round}: state after open {:?}",
            sub.state()
        );
        sub.close().await?;
        let st = c.css.state(c.fx.primary.sch)?;
        ensure!(
            st == State::Standby,
            "round {round}: state after close {st:?}"
        );
    }
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// A second open of an open subchannel is refused (one owner at a time, vfio-ccw's one
/// mdev user) and the first handle keeps working.
pub(crate) async fn open_twice_refused<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sub = c.open().await?;
    let second = c.css.open(c.fx.primary.sch).await;
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, DATA)])?;
    let done = c.submit(&sub, &orb(1, PROG)).await;
    sub.close().await?;
    match second {
        Err(e) if e.kind() == CssErrorKind::AlreadyOpen => {}
        Err(e) => return Err(Failure(format!("second open: {e} (want already open)"))),
        Ok(_) => return Err(Failure("second open accepted".into())),
    }
    ends_ok(&done?, PROG + 8, 0)?;
    Ok(Verdict::Pass)
}

/// The state is IDLE after a completed program and a request on a closed handle is refused
/// with EIO (anchors.md FSM: STANDBY + IO_REQ -> io_error).
pub(crate) async fn submit_after_close<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, DATA)])?;
    let sub = c.open().await?;
    let done = c.submit(&sub, &orb(2, PROG)).await?;
    ends_ok(&done, PROG + 8, 0)?;
    ensure!(
        sub.state() == State::Idle,
        "state after completion {:?}",
        sub.state()
    );
    c.css.close(c.fx.primary.sch).await?;
    match c.submit(&sub, &orb(3, PROG)).await {
        Err(e) if e.kind() == CssErrorKind::NotOpen => {}
        Err(e) => return Err(Failure(format!("submit after close: {e} (want EIO)"))),
        Ok(_) => return Err(Failure("submit accepted on a closed subchannel".into())),
    }
    drop(sub);
    Ok(Verdict::Pass)
}

/// Close with a program running: the request is answered once with "closed", the
/// subchannel ends in STANDBY and works after a re-open (anchors.md FSM: CP_PENDING +
/// CLOSE -> close, quiesce with cancel/halt/clear).
pub(crate) async fn close_with_io_running<B: Backend>(c: &Ctx<B>) -> CaseResult {
    write_loop(c)?;
    let sub = c.open().await?;
    let o = orb(4, PROG);
    let (done, closed) = tokio::join!(c.submit(&sub, &o), async {
        wait_started(&sub).await;
        let pending = sub.state() == State::CpPending;
        (pending, c.css.close(c.fx.primary.sch).await)
    });
    let (pending, closed) = closed;
    closed?;
    let st = c.css.state(c.fx.primary.sch)?;
    ensure!(st == State::Standby, "state after close {st:?}");
    let verdict = match done {
        Err(e) if e.kind() == CssErrorKind::Closed => Verdict::Pass,
        Err(e) => return Err(Failure(format!("outstanding request answered {e}"))),
        Ok(_) if !pending => Verdict::Skip("program ended before the close".into()),
        Ok(_) => Verdict::Skip("program completed while closing".into()),
    };
    c.still_works().await?;
    Ok(verdict)
}

/// Close right after a program completed, with no I/O outstanding: nothing to quiesce,
/// STANDBY at once (anchors.md FSM: IDLE + CLOSE).
pub(crate) async fn close_after_completion<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, DATA)])?;
    let sub = c.open().await?;
    let done = c.submit(&sub, &orb(5, PROG)).await?;
    let t = tokio::time::Instant::now();
    sub.close().await?;
    ensure!(
        t.elapsed() < Duration::from_secs(1),
        "an idle close took {:?}",
        t.elapsed()
    );
    ends_ok(&done, PROG + 8, 0)?;
    Ok(Verdict::Pass)
}

/// Remove with a program running: the request is answered once (gone or closed), the
/// removal completes, and a new probe finds the device usable again (anchors.md: notoper
/// -> NOT_OPER, cp_free; 2026 fix: deferred notoper under io_mutex).
pub(crate) async fn remove_with_io_running<B: Backend>(c: &Ctx<B>) -> CaseResult {
    write_loop(c)?;
    let sub = c.open().await?;
    let o = orb(6, PROG);
    let (done, removed) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(c.submit(&sub, &o), async {
            wait_started(&sub).await;
            c.css.remove(c.fx.primary.sch).await
        })
    })
    .await
    .map_err(|_| Failure("remove with I/O running stalled for 5 s".into()))?;
    removed?;
    match done {
        Err(e) if matches!(e.kind(), CssErrorKind::Closed | CssErrorKind::NoDevice) => {}
        Err(e) => return Err(Failure(format!("outstanding request answered {e}"))),
        Ok(d) => {
            return Ok(Verdict::Skip(format!(
                "program completed before the removal: {}",
                d.irb.scsw
            )));
        }
    }
    drop(sub);
    let ids = c.css.probe().await?;
    ensure!(
        ids.contains(&c.fx.primary.sch),
        "device not found by the probe after removal"
    );
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// Remove an idle, closed subchannel, probe again: it comes back and works (§6: a
/// subchannel report brings a device back).
pub(crate) async fn remove_idle_and_reprobe<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.css.remove(c.fx.primary.sch).await?;
    match c.css.open(c.fx.primary.sch).await {
        Err(e) if matches!(e.kind(), CssErrorKind::NoDevice) => {}
        Err(e) => return Err(Failure(format!("open after removal: {e} (want ENODEV)"))),
        Ok(_) => return Err(Failure("open of a removed subchannel accepted".into())),
    }
    let ids = c.css.probe().await?;
    ensure!(ids.contains(&c.fx.primary.sch), "device not found again");
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// Two submits racing on one subchannel (issued in the same poll): exactly one runs, the
/// other is refused with EAGAIN or EBUSY; the first is a never-ending program, so the race
/// cannot be decided by it ending early (anchors.md FSM: CP_PROCESSING + IO_REQ -> io_retry,
/// CP_PENDING + IO_REQ -> io_busy).
pub(crate) async fn two_submits_racing<B: Backend>(c: &Ctx<B>) -> CaseResult {
    write_loop(c)?;
    let (code, len) = c.big();
    c.program(PROG2, &[ccw(code, CcwFlags::SLI, len, DATA2)])?;
    let sub = c.open().await?;
    let (o1, o2) = (orb(7, PROG), orb(8, PROG2));
    let (a, b) = tokio::join!(c.submit(&sub, &o1), async {
        let r = c.submit(&sub, &o2).await;
        // End the loop whatever the second submit got.
        wait_started(&sub).await;
        let cl = sub.clear().await;
        (r, cl)
    });
    sub.close().await?;
    let (b, cleared) = b;
    match &b {
        Err(e) if matches!(e.kind(), CssErrorKind::Busy | CssErrorKind::Again) => {}
        Err(e) => {
            return Err(Failure(format!(
                "second submit: {e} (want EAGAIN or EBUSY)"
            )));
        }
        Ok(d) => {
            return Err(Failure(format!(
                "second submit ran beside the first: {}",
                d.irb.scsw
            )));
        }
    }
    cleared.map_err(|e| Failure(format!("clear of the first program: {e}")))?;
    let a = a?;
    ensure!(a.intparm == 7, "first program's intparm {:#x}", a.intparm);
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// The final status of a program is delivered exactly once: to the request, never again as
/// an unsolicited event (anchors.md: irq -> cp_update_scsw, one IRB per interruption).
pub(crate) async fn final_status_once<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, DATA)])?;
    let sub = c.open().await?;
    let mut ev = sub.events();
    let r = c.submit(&sub, &orb(9, PROG)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut extra = Vec::new();
    while let Ok(e) = ev.try_recv() {
        if let SubchannelEvent::Status(irb) = e {
            extra.push(irb.scsw.to_string());
        }
    }
    sub.close().await?;
    ends_ok(&r?, PROG + 8, 0)?;
    ensure!(
        extra.is_empty(),
        "status delivered again as events: {extra:?}"
    );
    Ok(Verdict::Pass)
}

/// One hundred programs in a row on one open subchannel: each completes once with its own
/// intparm (anchors.md FSM: IDLE -> CP_PROCESSING -> CP_PENDING -> IDLE every time).
pub(crate) async fn many_in_a_row<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, DATA)])?;
    let sub = c.open().await?;
    let r = async {
        for i in 0..100u32 {
            let done = c.submit(&sub, &orb(0x1000 + i, PROG)).await?;
            ensure!(
                done.intparm == 0x1000 + i,
                "program {i}: intparm {:#x}",
                done.intparm
            );
            ends_ok(&done, PROG + 8, 0)?;
        }
        Ok::<(), Failure>(())
    }
    .await;
    sub.close().await?;
    r?;
    Ok(Verdict::Pass)
}

/// A refused program (translation error) leaves the subchannel IDLE and usable: the
/// refusal does not start anything (anchors.md: io_request error -> IDLE; 2018 cleanup on
/// prefetch failure).
pub(crate) async fn idle_after_refusal<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(PROG, &[raw_ccw(0x00, 0, 1, DATA)])?;
    let sub = c.open().await?;
    let r = c.submit(&sub, &orb(10, PROG)).await;
    let st = sub.state();
    sub.close().await?;
    ensure!(
        r.is_err() || r.as_ref().is_ok_and(|d| d.irb.scsw.cstat != 0),
        "invalid command accepted cleanly"
    );
    ensure!(st == State::Idle, "state after a refused program {st:?}");
    c.still_works().await?;
    Ok(Verdict::Pass)
}
