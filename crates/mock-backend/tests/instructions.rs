// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The I/O instructions through the Backend trait: condition codes and the status of halt,
//! clear and cancel, with a latency so that functions can be caught while pending.

mod common;

use std::time::Duration;

use ccw_types::{ActivityControl, CcwFlags as F, Crw, DeviceStatus, FunctionControl};
use common::*;
use css_core::{Backend, BackendErrorKind, BackendEvent, ConditionCode};
use mock_backend::{MockBackend, devices::TestDevice};

async fn slow_rig() -> Rig {
    Rig::with(
        MockBackend::builder()
            .subchannel(0x0006, Box::new(TestDevice::new(64)))
            .latency(Duration::from_millis(40)),
    )
    .await
}

const SCH: ccw_types::SubchannelId = ccw_types::SubchannelId::new(0, 0, 0);

#[tokio::test]
async fn start_condition_codes() {
    let mut rig = slow_rig().await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc0);
    // Busy while the start function is pending.
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc2);
    let (_, irb) = rig.irb().await;
    assert_eq!(scsw(&irb), scsw_bytes(0x0080_4007, prog + 8, 0x0c, 0, 0));
    // Disabled: not operational.
    assert_eq!(rig.backend.disable(SCH).await.unwrap(), ConditionCode::Cc0);
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc3);
    assert_eq!(rig.backend.halt(SCH).await.unwrap(), ConditionCode::Cc3);
    assert_eq!(rig.backend.clear(SCH).await.unwrap(), ConditionCode::Cc3);
}

#[tokio::test]
async fn disable_while_busy_is_cc2() {
    let rig = slow_rig().await;
    let mut rig = rig;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc0);
    assert_eq!(rig.backend.disable(SCH).await.unwrap(), ConditionCode::Cc2);
    rig.irb().await;
    assert_eq!(rig.backend.disable(SCH).await.unwrap(), ConditionCode::Cc0);
}

#[tokio::test]
async fn halt_while_start_pending() {
    let mut rig = slow_rig().await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc0);
    assert_eq!(rig.backend.halt(SCH).await.unwrap(), ConditionCode::Cc0);
    // A second halt: busy.
    assert_eq!(rig.backend.halt(SCH).await.unwrap(), ConditionCode::Cc2);
    let (_, irb) = rig.irb().await;
    // FC start + halt, SC status pending alone: the start was not performed.
    assert_eq!(scsw(&irb), scsw_bytes(0x0080_6001, 0, 0, 0, 0));
    rig.quiet().await;
}

#[tokio::test]
async fn halt_of_a_suspended_program() {
    let mut rig = slow_rig().await;
    let prog = rig.program(&[ccw1(0x03, F::S, 0, 0)]);
    let o = orb_with(prog, |o| o.suspend = true);
    let irb = rig.run(SCH, &o).await;
    assert_eq!(scsw(&irb), scsw_bytes(0x0080_4029, prog + 8, 0, 0, 0));
    assert_eq!(rig.backend.halt(SCH).await.unwrap(), ConditionCode::Cc0);
    let (_, irb) = rig.irb().await;
    // FC start + halt, SC primary + pending, cpa of the suspended CCW + 8, no device status.
    assert_eq!(scsw(&irb), scsw_bytes(0x0080_6005, prog + 8, 0, 0, 0));
}

#[tokio::test]
async fn clear_while_start_pending_gives_clear_status() {
    let mut rig = slow_rig().await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc0);
    assert_eq!(rig.backend.clear(SCH).await.unwrap(), ConditionCode::Cc0);
    let (_, irb) = rig.irb().await;
    assert_eq!(scsw(&irb), [0x00, 0x00, 0x10, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(irb.into_bytes()[12..].iter().all(|&b| b == 0));
    rig.quiet().await;
    // Idle afterwards: a new start works.
    let irb = rig.run(SCH, &orb(prog)).await;
    assert_eq!(irb.scsw.dstat, 0x0c);
}

#[tokio::test]
async fn cancel_withdraws_a_pending_start_without_interruption() {
    let mut rig = slow_rig().await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    assert_eq!(rig.backend.cancel(SCH).await.unwrap(), ConditionCode::Cc2);
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc0);
    assert_eq!(rig.backend.cancel(SCH).await.unwrap(), ConditionCode::Cc0);
    tokio::time::sleep(Duration::from_millis(60)).await;
    rig.quiet().await;
    let schib = rig.backend.store_schib(SCH).await.unwrap();
    assert_eq!(schib.scsw.ctrl.fc(), FunctionControl::NONE);
    assert_eq!(schib.scsw.ctrl.ac(), ActivityControl::NONE);
    assert_eq!(rig.run(SCH, &orb(prog)).await.scsw.dstat, 0x0c);
}

#[tokio::test]
async fn resume_without_suspension_is_cc2() {
    let rig = slow_rig().await;
    assert_eq!(rig.backend.resume(SCH).await.unwrap(), ConditionCode::Cc2);
}

#[tokio::test]
async fn operand_exceptions_and_unknown_subchannels_are_errors() {
    let rig = Rig::default_enabled().await;
    let mut o = orb(0x1000);
    o.ctrl.set_reserved(1);
    let e = rig.backend.start(TESTDEV, &o).await.unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::InvalidArgument);
    let mut o = orb(0x1000);
    o.ctrl.set_transport(true);
    o.ctrl.set_format1(false);
    o.ctrl.set_prefetch(false);
    o.ctrl.set_format2_idaw(false);
    let e = rig.backend.start(TESTDEV, &o).await.unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::InvalidArgument);
    assert!(e.to_string().contains("transport"), "{e}");
    let nowhere = ccw_types::SubchannelId::new(0, 0, 0x99);
    for e in [
        rig.backend.start(nowhere, &orb(0x1000)).await.unwrap_err(),
        rig.backend.halt(nowhere).await.unwrap_err(),
        rig.backend
            .store_schib(nowhere)
            .await
            .map(|_| ())
            .unwrap_err(),
        rig.backend.mapper(nowhere).map(|_| ()).unwrap_err(),
    ] {
        assert_eq!(e.kind, BackendErrorKind::NoDevice);
        assert_eq!(e.sch, Some(nowhere));
    }
    assert_eq!(
        rig.backend.take_events().unwrap_err().kind,
        BackendErrorKind::Closed
    );
}

#[tokio::test]
async fn probe_lists_the_default_subsystem() {
    let rig = Rig::default_enabled().await;
    let list = rig.backend.probe().await.unwrap();
    let devnos: Vec<(String, u16)> = list
        .iter()
        .map(|(s, schib)| (s.to_string(), schib.pmcw.flags.devno()))
        .collect();
    assert_eq!(
        devnos,
        [
            ("0.0.0000".to_string(), 0x0005),
            ("0.0.0001".to_string(), 0x0006)
        ]
    );
    assert!(list.iter().all(|(_, s)| s.pmcw.flags.dnv()
        && s.pmcw.flags.enabled()
        && s.pmcw.pim == 0x80
        && s.pmcw.chars.concurrent_sense()));
}

#[tokio::test]
async fn unsolicited_attention() {
    let mut rig = Rig::default_enabled().await;
    assert_eq!(
        rig.backend
            .unsolicited(TESTDEV, DeviceStatus::ATTENTION)
            .unwrap(),
        ConditionCode::Cc0
    );
    let (sch, irb) = rig.irb().await;
    assert_eq!(sch, TESTDEV);
    assert_eq!(scsw(&irb), [0, 0, 0, 0x11, 0, 0, 0, 0, 0x80, 0, 0, 0]);
    assert!(!irb.scsw.is_solicited());
}

#[tokio::test]
async fn varying_a_path_off_and_on() {
    let mut rig = Rig::default_enabled().await;
    rig.backend.vary_paths(TESTDEV, 0x80, false).unwrap();
    let BackendEvent::ChannelReport(c) = rig.event().await else {
        panic!("a channel report")
    };
    assert_eq!(c.into_bytes(), [0x04, 0x06, 0x00, 0x00]);
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    // LPM & PAM = 0: immediate cc 3.
    assert_eq!(rig.start(TESTDEV, &orb(prog)).await, ConditionCode::Cc3);
    rig.backend.vary_paths(TESTDEV, 0x80, true).unwrap();
    let BackendEvent::ChannelReport(c) = rig.event().await else {
        panic!("a channel report")
    };
    assert_eq!(c, Crw::from_bytes([0x04, 0x02, 0x00, 0x00]));
    assert_eq!(rig.run(TESTDEV, &orb(prog)).await.scsw.dstat, 0x0c);
}

#[tokio::test]
async fn modify_rejects_reserved_bits_and_busy() {
    let rig = Rig::default_enabled().await;
    let mut schib = rig.backend.store_schib(TESTDEV).await.unwrap();
    schib.pmcw.flags.set_limit_mode(3);
    let e = rig.backend.modify(TESTDEV, &schib).await.unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::InvalidArgument);
}

#[tokio::test]
async fn halt_while_the_program_runs() {
    // A loop that transfers data never trips the TIC guard: it runs until halted.
    let mut rig =
        Rig::with(MockBackend::builder().subchannel(0x0006, Box::new(TestDevice::new(64)))).await;
    let buf = rig.alloc(4, 0);
    let prog = rig.alloc(16, 0);
    rig.poke(
        prog as u64,
        &[ccw1(0x01, F::CC, 4, buf), ccw1(0x08, F::NONE, 0, prog)].concat(),
    );
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc0);
    // Single-threaded runtime: each yield lets the worker execute one command.
    for _ in 0..25 {
        tokio::task::yield_now().await;
    }
    let schib = rig.backend.store_schib(SCH).await.unwrap();
    assert!(
        schib
            .scsw
            .ctrl
            .ac()
            .contains(ActivityControl::SUBCHANNEL_ACTIVE)
    );
    assert_eq!(rig.backend.halt(SCH).await.unwrap(), ConditionCode::Cc0);
    let (_, irb) = rig.irb().await;
    // FC start + halt, SC primary + secondary + pending, device end, cpa = current CCW + 8.
    let b = scsw(&irb);
    assert_eq!(&b[..4], &[0x00, 0x80, 0x60, 0x07]);
    let cpa = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    assert!(cpa == prog + 8 || cpa == prog + 16, "cpa {cpa:#x}");
    assert_eq!(&b[8..], &[0x04, 0, 0, 0]);
    rig.quiet().await;
}

#[tokio::test]
async fn release_request_is_an_event() {
    let mut rig = Rig::default_enabled().await;
    rig.backend.request_release(VIRTIO).unwrap();
    assert_eq!(
        rig.event().await,
        BackendEvent::ReleaseRequest { sch: VIRTIO }
    );
}
