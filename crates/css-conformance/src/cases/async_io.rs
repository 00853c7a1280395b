// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Group `async`: HALT and CLEAR while idle, while a start is pending, while an endless
//! NOP -> TIC program runs; the exact SCSW each leaves; the subchannel usable afterwards;
//! START while busy.

use std::time::Duration;

use ccw_types::{ActivityControl, CcwFlags, FunctionControl, Irb, Scsw, StatusControl};
use css_core::{Backend, CssErrorKind, IoCompletion, State, Subchannel, SubchannelEvent};

use crate::prog::*;
use crate::{CaseResult, Ctx, Failure, Verdict, ensure};

/// A program that runs until something stops it: a one-byte SENSE ID, TIC back. Each round
/// transfers data, so no loop guard ends it (Hercules and the simulator count backward TICs
/// without data, QEMU CCWs without data; anchors.md: loop detection); a real channel, the
/// simulator and Hercules run it until halted or cleared.
pub(crate) fn write_loop<B: Backend>(c: &Ctx<B>) -> Result<(), Failure> {
    c.program(
        PROG,
        &[
            ccw(cmd::SENSE_ID, CcwFlags::CC | CcwFlags::SLI, 1, DATA3),
            ccw(cmd::TIC, none(), 0, PROG),
        ],
    )
}

/// Waits until the start was accepted (`CpPending`) or the request left `CpProcessing`.
pub(crate) async fn wait_started<B: Backend>(sub: &Subchannel<B>) {
    for _ in 0..10_000 {
        if sub.state() != State::CpProcessing {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// The SCSW a completed CLEAR leaves: function control clear only, no activity, status
/// pending alone, no device or subchannel status (§10.8, §3.4).
fn clear_scsw(s: &Scsw) -> Result<(), Failure> {
    ensure!(
        s.ctrl.fc() == FunctionControl::CLEAR,
        "fc {} (want clear): {s}",
        s.ctrl.fc()
    );
    ensure!(
        s.ctrl.ac() == ActivityControl::from_bits(0),
        "ac {} (want none): {s}",
        s.ctrl.ac()
    );
    ensure!(
        s.ctrl.sc() == StatusControl::PENDING,
        "sc {} (want pending alone): {s}",
        s.ctrl.sc()
    );
    ensure!(
        s.dstat == 0 && s.cstat == 0,
        "device/subchannel status {}/{}: {s}",
        s.dstat,
        s.cstat
    );
    Ok(())
}

/// The SCSW a completed HALT leaves: function control halt (with start if a program was
/// active), no activity, status pending, no subchannel status (§10.7, §3.4).
fn halt_scsw(s: &Scsw, with_start: bool) -> Result<(), Failure> {
    let fc = s.ctrl.fc();
    ensure!(
        fc.contains(FunctionControl::HALT),
        "fc {fc} (want halt): {s}"
    );
    ensure!(
        !fc.contains(FunctionControl::CLEAR),
        "fc {fc} has clear: {s}"
    );
    if with_start {
        // §10.7 [DISAGREE]: keep start set; QEMU clears it. Both are seen.
    } else {
        ensure!(
            !fc.contains(FunctionControl::START),
            "fc {fc} has start without a program: {s}"
        );
    }
    ensure!(
        s.ctrl.ac() == ActivityControl::from_bits(0),
        "ac {} (want none; Hercules 3.13 leaves it, hercules-guest.md gotcha 5): {s}",
        s.ctrl.ac()
    );
    ensure!(
        s.ctrl.sc().contains(StatusControl::PENDING),
        "sc {}: {s}",
        s.ctrl.sc()
    );
    ensure!(
        !s.ctrl.sc().contains(StatusControl::INTERMEDIATE),
        "sc {} intermediate: {s}",
        s.ctrl.sc()
    );
    ensure!(s.cstat == 0, "subchannel status {:#04x}: {s}", s.cstat);
    Ok(())
}

/// Waits up to a second for unsolicited status on `ev`.
async fn next_status(
    ev: &mut tokio::sync::mpsc::UnboundedReceiver<SubchannelEvent>,
) -> Result<Irb, Failure> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, ev.recv()).await {
            Ok(Some(SubchannelEvent::Status(irb))) => return Ok(irb),
            Ok(Some(_)) => continue,
            Ok(None) => return Err(Failure("event stream closed".into())),
            Err(_) => return Err(Failure("no status within 2 s".into())),
        }
    }
}

/// HALT of an idle subchannel: cc 0, then status pending with function control halt as an
/// unsolicited status event; the subchannel works afterwards (§10.7, §3.4).
pub(crate) async fn halt_idle<B: Backend>(c: &Ctx<B>) -> CaseResult {
    idle_function(c, false).await
}

/// CLEAR of an idle subchannel: cc 0, then clear status pending alone; usable afterwards
/// (§10.8).
pub(crate) async fn clear_idle<B: Backend>(c: &Ctx<B>) -> CaseResult {
    idle_function(c, true).await
}

async fn idle_function<B: Backend>(c: &Ctx<B>, clear: bool) -> CaseResult {
    let sub = c.open().await?;
    let mut ev = sub.events();
    let r = async {
        if clear {
            sub.clear().await?
        } else {
            sub.halt().await?
        }
        let irb = next_status(&mut ev).await?;
        if clear {
            clear_scsw(&irb.scsw)
        } else {
            halt_scsw(&irb.scsw, false)
        }
    }
    .await;
    sub.close().await?;
    r?;
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// Starts the endless loop and issues HALT or CLEAR once it runs; returns the loop's
/// completion and whether the function was issued. A halt whose status leaves activity set
/// fails (see [`halted`]).
async fn interrupt_loop<B: Backend>(
    c: &Ctx<B>,
    clear: bool,
    intparm: u32,
) -> Result<(IoCompletion, bool), Failure> {
    write_loop(c)?;
    let sub = c.open().await?;
    let mut ev = sub.events();
    let o = orb(intparm, PROG);
    let (done, issued) = tokio::join!(c.submit(&sub, &o), async {
        wait_started(&sub).await;
        if sub.state() != State::CpPending {
            return Ok(false);
        }
        // Let the loop run a little.
        tokio::time::sleep(Duration::from_millis(5)).await;
        if clear {
            sub.clear().await?;
        } else {
            sub.halt().await?;
            halted(&sub, &mut ev).await?;
        }
        Ok::<_, Failure>(true)
    });
    sub.close().await?;
    let issued = issued?;
    Ok((done?, issued))
}

/// After HALT of a running program: waits (up to 2 s) until its request ends. The halt's
/// status must leave no activity (§3.4: subchannel-active ends at primary, device-active at
/// secondary status; §10.7: after a completed halt the activity control is 0), else it is
/// not final: css-core forwards it as an event and the request would never end. That is
/// Hercules 3.13's halt completion (SCSW `00c060c1`, hercules-guest.md gotcha 5): the case
/// fails with the status and CLEARs the subchannel, so the request ends and the next case finds
/// the device usable.
async fn halted<B: Backend>(
    sub: &Subchannel<B>,
    ev: &mut tokio::sync::mpsc::UnboundedReceiver<SubchannelEvent>,
) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while sub.state() == State::CpPending && tokio::time::Instant::now() < deadline {
        let Ok(e) = tokio::time::timeout(Duration::from_millis(10), ev.recv()).await else {
            continue;
        };
        match e {
            Some(SubchannelEvent::Status(irb))
                if irb.scsw.ctrl.fc().contains(FunctionControl::HALT) && !irb.scsw.is_final() =>
            {
                let cleared = match sub.clear().await {
                    Ok(()) => "cleared",
                    Err(_) => "the clear that should end it failed",
                };
                return Err(Failure(format!(
                    "the halt's status leaves activity {} set, so it is not final and the \
                     program's request never ends ({cleared}): {}",
                    irb.scsw.ctrl.ac(),
                    irb.scsw
                )));
            }
            Some(_) => {}
            None => break,
        }
    }
    Ok(())
}

/// The loop ended by the channel itself (QEMU's loop guard) is undecided, not a pass.
fn ended_by_channel(done: &IoCompletion) -> Option<Verdict> {
    let s = &done.irb.scsw;
    s.subchannel_status()
        .contains(ccw_types::SubchannelStatus::PROGRAM_CHECK)
        .then(|| {
            Verdict::Skip(format!(
                "the channel ended the loop itself before the function: {s}"
            ))
        })
}

/// HALT of a running program: the program's request ends with the halt's status (fc halt,
/// no activity, status pending, no subchannel status) and the subchannel works afterwards
/// (§10.7, §3.4; vfio-ccw 2021 HALT/CLEAR serialization fix, anchors.md).
pub(crate) async fn halt_running<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (done, issued) = interrupt_loop(c, false, 0x4A17).await?;
    if let Some(v) = ended_by_channel(&done) {
        return Ok(v);
    }
    ensure!(issued, "program ended before the halt: {}", done.irb.scsw);
    halt_scsw(&done.irb.scsw, true)?;
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// CLEAR of a running program: its request ends with clear status pending alone (§10.8).
pub(crate) async fn clear_running<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (done, issued) = interrupt_loop(c, true, 0xC1EA).await?;
    if let Some(v) = ended_by_channel(&done) {
        return Ok(v);
    }
    ensure!(issued, "program ended before the clear: {}", done.irb.scsw);
    clear_scsw(&done.irb.scsw)?;
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// The halted program's completion carries the ORB's intparm and a cpa inside the loop
/// (current CCW + 8) (§10.7: CPA = current CCW + 8 when active).
pub(crate) async fn halt_running_cpa_and_intparm<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (done, _) = interrupt_loop(c, false, 0x1A7E_0001).await?;
    if let Some(v) = ended_by_channel(&done) {
        return Ok(v);
    }
    ensure!(done.intparm == 0x1A7E_0001, "intparm {:#x}", done.intparm);
    let cpa = done.irb.scsw.cpa.get();
    if cpa == 0 && done.irb.scsw.dstat == 0 {
        // No device status: the halt overtook a start still pending, which is then not
        // performed (§10.7) and leaves no CCW address to check.
        return Ok(Verdict::Skip(format!(
            "the halt came before the program started: {}",
            done.irb.scsw
        )));
    }
    ensure!(
        cpa == PROG + 8 || cpa == PROG + 16,
        "cpa {cpa:#x} (want inside the loop: {:#x} or {:#x})",
        PROG + 8,
        PROG + 16
    );
    Ok(Verdict::Pass)
}

/// HALT then CLEAR of the same running program: the clear wins, one completion with clear
/// status (§10.8: CLEAR resets every other function).
pub(crate) async fn clear_after_halt<B: Backend>(c: &Ctx<B>) -> CaseResult {
    write_loop(c)?;
    let sub = c.open().await?;
    let o = orb(0xC0DE, PROG);
    let (done, issued) = tokio::join!(c.submit(&sub, &o), async {
        wait_started(&sub).await;
        if sub.state() != State::CpPending {
            return Ok::<_, css_core::CssError>(None);
        }
        let h = sub.halt().await;
        let cl = sub.clear().await;
        Ok(Some((h, cl)))
    });
    sub.close().await?;
    let done = done?;
    if let Some(v) = ended_by_channel(&done) {
        return Ok(v);
    }
    match issued? {
        None => return Ok(Verdict::Skip("program ended before the halt".into())),
        Some((h, cl)) => {
            h?;
            match cl {
                Ok(()) => {
                    let s = &done.irb.scsw;
                    // The halt may have completed before the clear was issued.
                    if s.ctrl.fc().contains(FunctionControl::CLEAR) {
                        clear_scsw(s)?;
                    } else {
                        halt_scsw(s, true)?;
                    }
                }
                Err(e) if matches!(e.kind(), CssErrorKind::NotOpen | CssErrorKind::Busy) => {
                    // Clear refused because the halt already finished the program.
                    halt_scsw(&done.irb.scsw, true)?;
                }
                Err(e) => return Err(Failure(format!("clear after halt: {e}"))),
            }
        }
    }
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// HALT issued as soon as the start is accepted (start pending or just running): the
/// request ends with halt status or, if the program was never started, with status
/// pending and fc halt; usable afterwards (§10.7: a pending start is not performed).
pub(crate) async fn halt_start_pending<B: Backend>(c: &Ctx<B>) -> CaseResult {
    write_loop(c)?;
    let sub = c.open().await?;
    let mut ev = sub.events();
    let o = orb(0x5A, PROG);
    let (done, issued) = tokio::join!(c.submit(&sub, &o), async {
        wait_started(&sub).await;
        if sub.state() != State::CpPending {
            return Ok(false);
        }
        sub.halt().await?;
        halted(&sub, &mut ev).await?;
        Ok::<_, Failure>(true)
    });
    sub.close().await?;
    let done = done?;
    if let Some(v) = ended_by_channel(&done) {
        return Ok(v);
    }
    ensure!(issued?, "no halt issued: {}", done.irb.scsw);
    halt_scsw(&done.irb.scsw, true)?;
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// CLEAR issued as soon as the start is accepted (§10.8).
pub(crate) async fn clear_start_pending<B: Backend>(c: &Ctx<B>) -> CaseResult {
    write_loop(c)?;
    let sub = c.open().await?;
    let o = orb(0x5B, PROG);
    let (done, issued) = tokio::join!(c.submit(&sub, &o), async {
        wait_started(&sub).await;
        if sub.state() != State::CpPending {
            return Ok(false);
        }
        sub.clear().await.map(|()| true)
    });
    sub.close().await?;
    let done = done?;
    if let Some(v) = ended_by_channel(&done) {
        return Ok(v);
    }
    ensure!(issued?, "no clear issued: {}", done.irb.scsw);
    clear_scsw(&done.irb.scsw)?;
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// HALT right after a program completed (status already collected): an idle halt, one
/// status event, nothing delivered to the finished request (§10.7; anchors.md FSM: IDLE +
/// ASYNC_REQ -> async_request).
pub(crate) async fn halt_after_completion<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, DATA)])?;
    let sub = c.open().await?;
    let mut ev = sub.events();
    let r = async {
        let done = c.submit(&sub, &orb(0xAF, PROG)).await?;
        ends_ok(&done, PROG + 8, 0)?;
        sub.halt().await?;
        let irb = next_status(&mut ev).await?;
        halt_scsw(&irb.scsw, false)
    }
    .await;
    sub.close().await?;
    r?;
    Ok(Verdict::Pass)
}

/// START while a program runs is refused with EBUSY (anchors.md FSM: CP_PENDING + IO_REQ ->
/// io_busy) and the first program is unaffected.
pub(crate) async fn start_while_busy<B: Backend>(c: &Ctx<B>) -> CaseResult {
    write_loop(c)?;
    let (code, len) = c.big();
    c.program(PROG2, &[ccw(code, CcwFlags::SLI, len, DATA)])?;
    let sub = c.open().await?;
    let (o1, o2) = (orb(1, PROG), orb(2, PROG2));
    let (first, second) = tokio::join!(c.submit(&sub, &o1), async {
        wait_started(&sub).await;
        if sub.state() != State::CpPending {
            return None;
        }
        let r = c.submit(&sub, &o2).await;
        if let Err(e) = sub.clear().await {
            tracing::warn!(error = %e, "start_while_busy: clear after the second start failed");
        }
        Some(r)
    });
    sub.close().await?;
    ensure!(first.is_ok(), "first program: {:?}", first.err());
    let verdict = match second {
        Some(Err(e)) if e.kind() == CssErrorKind::Busy => Verdict::Pass,
        Some(Err(e)) => return Err(Failure(format!("second start: {e} (want EBUSY)"))),
        Some(Ok(d)) => {
            return Err(Failure(format!(
                "second start accepted while busy: {}",
                d.irb.scsw
            )));
        }
        None => Verdict::Skip(String::from("first program ended before the second start")),
    };
    c.still_works().await?;
    Ok(verdict)
}

/// HALT of a subchannel that is not open is refused with EIO and sends nothing to the
/// device (anchors.md FSM: STANDBY + ASYNC_REQ -> async_error, -EIO).
pub(crate) async fn halt_when_closed<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sub = c.open().await?;
    c.css.close(c.fx.primary.sch).await?;
    match sub.halt().await {
        Err(e) if e.kind() == CssErrorKind::NotOpen => {}
        Err(e) => return Err(Failure(format!("halt after close: {e} (want EIO)"))),
        Ok(()) => return Err(Failure("halt accepted on a closed subchannel".into())),
    }
    drop(sub);
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// Ten HALT-interrupted loops in a row: every one ends once with halt status and the
/// subchannel returns to idle each time (§10.7; anchors.md: 2021 HALT/CLEAR interrupt
/// serialization).
pub(crate) async fn halt_repeated<B: Backend>(c: &Ctx<B>) -> CaseResult {
    for i in 0..10u32 {
        let (done, issued) = interrupt_loop(c, i % 2 == 1, 0x100 + i).await?;
        if let Some(v) = ended_by_channel(&done) {
            return Ok(v);
        }
        ensure!(issued, "round {i}: program ended by itself");
        ensure!(
            done.intparm == 0x100 + i,
            "round {i}: intparm {:#x}",
            done.intparm
        );
        if i % 2 == 1 {
            clear_scsw(&done.irb.scsw)?;
        } else {
            halt_scsw(&done.irb.scsw, true)?;
        }
    }
    c.still_works().await?;
    Ok(Verdict::Pass)
}
