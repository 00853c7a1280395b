// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Every fault of the policy, scripted, with what the consumer sees.

mod common;

use std::time::Duration;

use ccw_types::{CcwFlags as F, Crw, SubchannelId};
use common::*;
use css_core::{Backend, BackendEvent, ConditionCode};
use mock_backend::{Fault, FaultKind, FaultPolicy, MockBackend, devices::TestDevice};

const SCH: SubchannelId = SubchannelId::new(0, 0, 0);

async fn rig(policy: FaultPolicy) -> Rig {
    Rig::with(
        MockBackend::builder()
            .subchannel(0x0006, Box::new(TestDevice::new(64)))
            .faults(policy),
    )
    .await
}

fn script(nth: u64, f: Fault) -> FaultPolicy {
    FaultPolicy::none()
        .with_script(SCH, nth, f)
        .with_interrupt_delay(Duration::from_millis(20))
        .with_path_restore(Duration::from_millis(20))
}

async fn crw(rig: &mut Rig) -> Crw {
    match rig.event().await {
        BackendEvent::ChannelReport(c) => c,
        other => panic!("expected a channel report, got {other:?}"),
    }
}

#[tokio::test]
async fn start_busy_and_not_operational_change_nothing() {
    for (f, cc) in [
        (Fault::StartBusy, ConditionCode::Cc2),
        (Fault::StartNotOperational, ConditionCode::Cc3),
    ] {
        let mut rig = rig(script(0, f)).await;
        let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
        assert_eq!(rig.start(SCH, &orb(prog)).await, cc);
        rig.quiet().await;
        // The next start is normal.
        assert_eq!(rig.run(SCH, &orb(prog)).await.scsw.dstat, 0x0c);
    }
}

#[tokio::test]
async fn start_finds_status_pending() {
    let mut rig = rig(script(0, Fault::StartStatusPending)).await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc1);
    let (_, irb) = rig.irb().await;
    assert_eq!(scsw(&irb), [0, 0, 0, 0x11, 0, 0, 0, 0, 0x80, 0, 0, 0]);
    assert_eq!(rig.run(SCH, &orb(prog)).await.scsw.dstat, 0x0c);
}

#[tokio::test]
async fn not_operational_during_io() {
    let mut rig = rig(script(0, Fault::NotOperationalDuringIo)).await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc0);
    let c = crw(&mut rig).await;
    assert_eq!(c.into_bytes(), [0x03, 0x03, 0x00, 0x00]);
    let (_, irb) = rig.irb().await;
    // Deferred cc 3, F, FC start, SC alert + pending.
    assert_eq!(&scsw(&irb)[..4], &[0x03, 0x80, 0x40, 0x11]);
    assert_eq!(rig.run(SCH, &orb(prog)).await.scsw.dstat, 0x0c);
}

#[tokio::test]
async fn path_loss_and_restore() {
    // The second start below must run while the path is still gone: a restore 20 ms after
    // the loss could come first under emulation (qemu-user), so it waits a full second.
    let policy = script(0, Fault::PathLoss).with_path_restore(Duration::from_secs(1));
    let mut rig = rig(policy).await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc0);
    assert_eq!(crw(&mut rig).await.into_bytes(), [0x04, 0x06, 0x00, 0x00]);
    let (_, irb) = rig.irb().await;
    // Deferred cc 3 with N: the path was found not operational.
    assert_eq!(&scsw(&irb)[..4], &[0x03, 0x81, 0x40, 0x11]);
    let schib = rig.backend.store_schib(SCH).await.unwrap();
    assert_eq!(schib.pmcw.pom, 0x7F);
    assert_eq!(schib.pmcw.pnom, 0x80);
    // While the path is gone: accepted (LPM & PAM != 0), then deferred cc 3.
    let irb = rig.run(SCH, &orb(prog)).await;
    assert_eq!(&scsw(&irb)[..4], &[0x03, 0x81, 0x40, 0x11]);
    // The path comes back.
    assert_eq!(crw(&mut rig).await.into_bytes(), [0x04, 0x02, 0x00, 0x00]);
    assert_eq!(rig.run(SCH, &orb(prog)).await.scsw.dstat, 0x0c);
}

#[tokio::test]
async fn injected_unit_check() {
    let mut rig = rig(script(
        1,
        Fault::UnitCheck {
            sense: [0x10, 0x20, 0x30, 0x40],
        },
    ))
    .await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    assert_eq!(rig.run(SCH, &orb(prog)).await.scsw.dstat, 0x0c);
    let irb = rig.run(SCH, &orb(prog)).await;
    assert_eq!(&scsw(&irb)[..4], &[0x04, 0x82, 0x40, 0x17]);
    assert_eq!(irb.scsw.dstat, 0x02);
    assert_eq!(
        irb.concurrent_sense().map(|s| s[..4].to_vec()),
        Some(vec![0x10, 0x20, 0x30, 0x40])
    );
}

#[tokio::test]
async fn delayed_interrupt_keeps_status_pending() {
    // A wide delay window, and polling instead of one sample at a fixed time: under emulation
    // (the big-endian lane runs this under qemu-user) a fixed 5 ms sample can land before the
    // program finished or after a short delay already delivered the interrupt.
    let policy = FaultPolicy::none()
        .with_script(SCH, 0, Fault::DelayedInterrupt)
        .with_interrupt_delay(Duration::from_secs(2));
    let mut rig = rig(policy).await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let schib = rig.backend.store_schib(SCH).await.unwrap();
        if schib
            .scsw
            .ctrl
            .sc()
            .contains(ccw_types::StatusControl::PENDING)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status never became pending: {}",
            schib.scsw
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Status pending: a new start is cc 1.
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc1);
    let (_, irb) = rig.irb().await;
    assert_eq!(scsw(&irb), scsw_bytes(0x0080_4007, prog + 8, 0x0c, 0, 0));
}

#[tokio::test]
async fn duplicate_interrupt() {
    let mut rig = rig(script(0, Fault::DuplicateInterrupt)).await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    let a = rig.run(SCH, &orb(prog)).await;
    let (_, b) = rig.irb().await;
    assert_eq!(a, b);
    rig.quiet().await;
}

#[tokio::test]
async fn spurious_interrupt_is_unsolicited_attention() {
    let mut rig = rig(script(0, Fault::SpuriousInterrupt)).await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    let a = rig.run(SCH, &orb(prog)).await;
    assert_eq!(a.scsw.dstat, 0x0c);
    let (_, b) = rig.irb().await;
    assert_eq!(scsw(&b), [0, 0, 0, 0x11, 0, 0, 0, 0, 0x80, 0, 0, 0]);
}

#[tokio::test]
async fn every_report_lost_at_rate_one() {
    let mut rig = rig(FaultPolicy::seeded(1).with_rate(FaultKind::CrwOverflow, 1.0)).await;
    rig.backend.vary_paths(SCH, 0x80, false).unwrap();
    rig.backend.vary_paths(SCH, 0x80, true).unwrap();
    rig.quiet().await;
}

#[tokio::test]
async fn crw_after_a_lost_one_has_the_overflow_flag() {
    // The scripted overflow is armed by start 0 and fires at the next channel report.
    let mut rig = rig(script(0, Fault::CrwOverflow)).await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    assert_eq!(rig.run(SCH, &orb(prog)).await.scsw.dstat, 0x0c);
    rig.backend.vary_paths(SCH, 0x80, false).unwrap();
    rig.backend.vary_paths(SCH, 0x80, true).unwrap();
    let c = crw(&mut rig).await;
    // R = 1, RSC channel path, ERC initialized.
    assert_eq!(c.into_bytes(), [0x24, 0x02, 0x00, 0x00]);
    rig.quiet().await;
}

#[tokio::test]
async fn same_seed_same_story() {
    async fn story(seed: u64) -> Vec<String> {
        let policy = FaultPolicy::seeded(seed)
            .with_all_rates(0.2)
            .with_rate(FaultKind::DelayedInterrupt, 0.0)
            .with_rate(FaultKind::PathLoss, 0.0);
        let mut rig = rig(policy).await;
        let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
        let mut out = Vec::new();
        for _ in 0..30 {
            let cc = rig.start(SCH, &orb(prog)).await;
            out.push(format!("cc{}", cc.value()));
            // Single-threaded runtime: a few yields let the worker and deliveries run.
            for _ in 0..16 {
                tokio::task::yield_now().await;
            }
            while let Ok(ev) = rig.events.try_recv() {
                out.push(format!("{ev:?}"));
            }
        }
        out
    }
    let a = story(9).await;
    assert!(a.iter().any(|e| e.starts_with("Interrupt")), "{a:?}");
    assert!(a.iter().any(|e| e != "cc0" && e.starts_with("cc")), "{a:?}");
    assert_eq!(a, story(9).await);
    assert_ne!(a, story(10).await);
}
