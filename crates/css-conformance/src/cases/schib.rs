// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Group `schib-paths`: STORE SUBCHANNEL after enable, path masks, varying paths off and on
//! (the masks return), channel reports for path and subchannel events and their order.

use std::time::Duration;

use ccw_types::{ActivityControl, CcwFlags, CommandOrb, Crw, FunctionControl, StatusControl, crw};
use css_core::{Backend, CssErrorKind, PathEvent, SubchannelEvent};

use crate::prog::*;
use crate::{CaseResult, Ctx, Failure, Verdict, ensure};

/// The installed channel paths of the primary device: (mask bit, chpid).
async fn paths<B: Backend>(c: &Ctx<B>) -> Result<Vec<(u8, u8)>, Failure> {
    let sub = c.open().await?;
    let schib = sub.schib().await;
    sub.close().await?;
    let p = schib?.pmcw;
    Ok((0..8)
        .filter(|i| p.pim & (0x80 >> i) != 0)
        .map(|i| (0x80u8 >> i, p.chpid[i]))
        .collect())
}

/// After enable, STSCH shows the device number valid and right, the subchannel enabled,
/// and an installed, available, operational path (§5.1, §5.2, §10.5).
pub(crate) async fn stsch_after_enable<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sub = c.open().await?;
    let schib = sub.schib().await;
    sub.close().await?;
    let p = schib?.pmcw;
    ensure!(p.flags.dnv(), "device number not valid");
    ensure!(
        p.flags.devno() == c.fx.primary.devno,
        "devno {:#06x} (want {:#06x})",
        p.flags.devno(),
        c.fx.primary.devno
    );
    ensure!(p.flags.enabled(), "open subchannel not enabled");
    ensure!(
        p.pim & p.pam & p.pom != 0,
        "no usable path (pim {:#04x} pam {:#04x} pom {:#04x})",
        p.pim,
        p.pam,
        p.pom
    );
    Ok(Verdict::Pass)
}

/// Path masks are consistent: PAM, PNOM and LPUM name installed paths only (§5.1, §5.2).
/// LPM is not checked: SSCH may copy the ORB's LPM, uninstalled bits included (§5.5).
pub(crate) async fn path_masks_consistent<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sub = c.open().await?;
    let schib = sub.schib().await;
    sub.close().await?;
    let p = schib?.pmcw;
    ensure!(
        p.pam & !p.pim == 0,
        "pam {:#04x} outside pim {:#04x}",
        p.pam,
        p.pim
    );
    ensure!(
        p.pnom & !p.pim == 0,
        "pnom {:#04x} outside pim {:#04x}",
        p.pnom,
        p.pim
    );
    ensure!(
        p.lpum & !p.pim == 0,
        "lpum {:#04x} outside pim {:#04x}",
        p.lpum,
        p.pim
    );
    Ok(Verdict::Pass)
}

/// A closed subchannel is disabled: STSCH shows E = 0 (anchors.md FSM close: disable).
pub(crate) async fn disabled_after_close<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sub = c.open().await?;
    sub.close().await?;
    let schib = c.css.backend().store_schib(c.fx.primary.sch).await?;
    ensure!(
        !schib.pmcw.flags.enabled(),
        "subchannel still enabled after close"
    );
    ensure!(
        schib.pmcw.flags.dnv(),
        "device number no longer valid after close"
    );
    Ok(Verdict::Pass)
}

/// After a program's final status was taken, STSCH shows no status pending and no function
/// (§10.4: TEST SUBCHANNEL clears the status and the function control).
pub(crate) async fn scsw_idle_after_completion<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, DATA)])?;
    let sub = c.open().await?;
    let r = async {
        let done = c.submit(&sub, &orb(1, PROG)).await?;
        ends_ok(&done, PROG + 8, 0)?;
        Ok::<_, Failure>(sub.schib().await?)
    }
    .await;
    sub.close().await?;
    let s = r?.scsw;
    ensure!(
        s.ctrl.sc() == StatusControl::from_bits(0),
        "status control {} after completion: {s}",
        s.ctrl.sc()
    );
    ensure!(
        s.ctrl.ac() == ActivityControl::from_bits(0),
        "activity control {}: {s}",
        s.ctrl.ac()
    );
    ensure!(
        s.ctrl.fc() == FunctionControl::from_bits(0),
        "function control {}: {s}",
        s.ctrl.fc()
    );
    Ok(Verdict::Pass)
}

/// The SCHIB css-core caches at probe time matches a fresh STSCH (device number, paths)
/// (§10.5).
pub(crate) async fn cached_schib_matches<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let cached = c.css.cached_schib(c.fx.primary.sch)?.pmcw;
    let fresh = c.css.backend().store_schib(c.fx.primary.sch).await?.pmcw;
    ensure!(cached.flags.devno() == fresh.flags.devno(), "devno differs");
    ensure!(
        cached.pim == fresh.pim,
        "pim {:#04x} vs {:#04x}",
        cached.pim,
        fresh.pim
    );
    ensure!(
        cached.chpid == fresh.chpid,
        "chpids {:02x?} vs {:02x?}",
        cached.chpid,
        fresh.chpid
    );
    Ok(Verdict::Pass)
}

/// Runs the big read; `Ok(true)` if it ended normally, `Ok(false)` if it was refused for
/// lack of a path.
async fn runs<B: Backend>(c: &Ctx<B>, lpm: u8) -> Result<bool, Failure> {
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, DATA)])?;
    let mut o = CommandOrb::new(0xBA7, PROG);
    o.lpm = lpm;
    match c.try_run(&o.emit()).await? {
        Ok(done) if done.irb.scsw.ctrl.deferred_cc() == 3 => Ok(false),
        Ok(done) => ends_ok(&done, PROG + 8, 0).map(|()| true),
        Err(e) if matches!(e.kind(), CssErrorKind::NoPath | CssErrorKind::NoDevice) => Ok(false),
        Err(e) => Err(Failure(format!("start: {e}"))),
    }
}

/// Varying every path of the device off makes a start fail for lack of a path; varying
/// them on again makes it work (anchors.md chp_event: VARY_OFF clears opm/lpm bits,
/// VARY_ON sets them).
pub(crate) async fn vary_off_on<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let ps = paths(c).await?;
    for &(_, chpid) in &ps {
        c.css.vary_path(chpid, false).await;
    }
    // ORB lpm 0: the subchannel's logical paths (anchors.md cp: lpm 0 -> sch->lpm).
    let off = runs(c, 0).await;
    for &(_, chpid) in &ps {
        c.css.vary_path(chpid, true).await;
    }
    ensure!(!off?, "a start succeeded with every path varied off");
    ensure!(
        runs(c, 0).await?,
        "no start after varying the paths on again"
    );
    Ok(Verdict::Pass)
}

/// A path that went offline and came back online is usable again: the masks return
/// (anchors.md chp_event: OFFLINE clears, ONLINE lpm |= mask & opm). "Path masks not
/// restored after offline/online" is fixed on branch `rel`.
pub(crate) async fn offline_online_restores<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let ps = paths(c).await?;
    for &(_, chpid) in &ps {
        c.css.path_event(chpid, PathEvent::Offline).await;
    }
    let off = runs(c, 0).await;
    for &(_, chpid) in &ps {
        c.css.path_event(chpid, PathEvent::Online).await;
    }
    ensure!(!off?, "a start succeeded with every path offline");
    ensure!(
        runs(c, 0).await?,
        "no start after the paths came back online"
    );
    Ok(Verdict::Pass)
}

/// Varying a path off and on while the subchannel is open keeps it usable (anchors.md
/// chp_event on an IDLE subchannel: masks only).
pub(crate) async fn vary_while_open<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let ps = paths(c).await?;
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, DATA)])?;
    let sub = c.open().await?;
    for &(_, chpid) in &ps {
        c.css.vary_path(chpid, false).await;
        c.css.vary_path(chpid, true).await;
    }
    let r = c.submit(&sub, &orb(2, PROG)).await;
    sub.close().await?;
    ends_ok(&r?, PROG + 8, 0)?;
    Ok(Verdict::Pass)
}

/// Offline then online of a path queues two channel-path reports to the open subchannel,
/// in that order: ERC permanent error (not initialized), then initialized, RSID = CHPID
/// (§6.1-6.3; anchors.md chp_event: OFFLINE queues CRW (CPATH, PERRN), ONLINE (CPATH, INIT)).
pub(crate) async fn path_crws_in_order<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let ps = paths(c).await?;
    let Some(&(_, chpid)) = ps.first() else {
        return Err(Failure("no installed path".into()));
    };
    let sub = c.open().await?;
    let mut ev = sub.events();
    c.css.path_event(chpid, PathEvent::Offline).await;
    c.css.path_event(chpid, PathEvent::Online).await;
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while got.len() < 2 {
        match tokio::time::timeout_at(deadline, ev.recv()).await {
            Ok(Some(SubchannelEvent::ChannelReport(crw))) => got.push(crw),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    sub.close().await?;
    ensure!(
        got.len() == 2,
        "{} channel reports (want 2): {got:?}",
        got.len()
    );
    for (crw, erc) in got.iter().zip([crw::erc::PERRN, crw::erc::INIT]) {
        ensure!(
            crw.rsc() == crw::rsc::CHANNEL_PATH,
            "rsc {:#x} (want channel path)",
            crw.rsc()
        );
        ensure!(
            crw.erc() == erc,
            "erc {:#x} (want {erc:#x}); reports {got:?}",
            crw.erc()
        );
        ensure!(
            crw.rsid() == u16::from(chpid),
            "rsid {:#x} (want chpid {chpid:#x})",
            crw.rsid()
        );
    }
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// A subchannel report for the open subchannel refreshes its SCHIB and says so with the
/// device number intact (§6.2 RSC 3; anchors.md sch_event: update_schib).
pub(crate) async fn subchannel_crw_refreshes<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sub = c.open().await?;
    let mut ev = sub.events();
    let report = Crw::new()
        .with_rsc(crw::rsc::SUBCHANNEL)
        .with_erc(crw::erc::PMOD)
        .with_rsid(c.fx.primary.sch.sch_no);
    c.css.process_report(report).await;
    let mut refreshed = None;
    while let Ok(e) = ev.try_recv() {
        if let SubchannelEvent::SchibRefreshed(s) = e {
            refreshed = Some(s);
        }
    }
    sub.close().await?;
    let s =
        refreshed.ok_or_else(|| Failure("no SCHIB refresh after a subchannel report".into()))?;
    ensure!(
        s.pmcw.flags.devno() == c.fx.primary.devno,
        "devno {:#06x}",
        s.pmcw.flags.devno()
    );
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// Every channel report processed is forwarded to report subscribers, in order (§6.1).
pub(crate) async fn reports_forwarded_in_order<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let mut rx = c.css.subscribe_reports();
    let ps = paths(c).await?;
    let chpid = ps.first().map(|p| p.1).unwrap_or(0);
    let reports = [
        Crw::new()
            .with_rsc(crw::rsc::CHANNEL_PATH)
            .with_erc(crw::erc::PERRN)
            .with_rsid(u16::from(chpid)),
        Crw::new()
            .with_rsc(crw::rsc::CHANNEL_PATH)
            .with_erc(crw::erc::INIT)
            .with_rsid(u16::from(chpid)),
        Crw::new()
            .with_rsc(crw::rsc::SUBCHANNEL)
            .with_erc(crw::erc::PMOD)
            .with_rsid(c.fx.primary.sch.sch_no),
    ];
    for r in reports {
        c.css.process_report(r).await;
    }
    let mut got = Vec::new();
    while let Ok(r) = rx.try_recv() {
        got.push(r);
    }
    ensure!(got == reports, "forwarded {got:?} (want {reports:?})");
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// An ORB whose LPM names only installed paths runs; LPM 0 means "the subchannel's paths"
/// (anchors.md cp: lpm 0 -> sch->lpm).
pub(crate) async fn orb_lpm<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let ps = paths(c).await?;
    let all: u8 = ps.iter().map(|p| p.0).fold(0, |a, b| a | b);
    ensure!(
        runs(c, all).await?,
        "ORB lpm {all:#04x} (the installed paths) refused"
    );
    ensure!(runs(c, 0).await?, "ORB lpm 0 refused");
    Ok(Verdict::Pass)
}
