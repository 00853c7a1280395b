// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Defects the `channel` fuzz target found, each kept as a test (its input is also kept in
//! `fuzz/regressions/channel/`).

mod common;

use std::time::Duration;

use ccw_types::{CcwFlags as F, FunctionControl as Fc, SubchannelId};
use common::*;
use css_core::{Backend, BackendEvent, ConditionCode};
use mock_backend::{Fault, FaultPolicy, MockBackend, devices::TestDevice};

const SCH: SubchannelId = SubchannelId::new(0, 0, 0);

/// A delayed interruption that comes due after CLEAR SUBCHANNEL but before the clear function
/// ran used to be delivered: the old status, relabelled with the clear function, and then
/// the clear status as well, so one clear was answered twice. The clear function discards
/// pending status and interruptions (reference §10.8): only the clear status may follow.
#[tokio::test(start_paused = true)]
async fn clear_discards_a_delayed_interruption_coming_due() {
    for wait_first in [false, true] {
        let delay = Duration::from_millis(5);
        let policy = FaultPolicy::none()
            .with_script(SCH, 0, Fault::DelayedInterrupt)
            .with_interrupt_delay(delay);
        let mut rig = Rig::with(
            MockBackend::builder()
                .subchannel(0x0006, Box::new(TestDevice::new(64)))
                .faults(policy),
        )
        .await;
        let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
        // The caller's timer is registered before or after the delivery's, for the same
        // instant: either way its CLEAR lands in the tick the delivery comes due.
        let due = tokio::time::Instant::now() + delay;
        let early = wait_first.then(|| tokio::time::sleep_until(due));
        assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc0);
        match early {
            Some(s) => s.await,
            None => tokio::time::sleep_until(due).await,
        }
        let answered_before = match rig.events.try_recv() {
            Ok(BackendEvent::Interrupt { irb, .. }) => {
                assert!(irb.scsw.is_final(), "{}", irb.scsw);
                true
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => false,
        };
        assert_eq!(rig.backend.clear(SCH).await.unwrap(), ConditionCode::Cc0);
        let (_, irb) = rig.irb().await;
        assert!(
            irb.scsw.ctrl.fc().contains(Fc::CLEAR) && irb.scsw.is_final(),
            "{} (start answered before the clear: {answered_before})",
            irb.scsw
        );
        assert_eq!(irb.scsw.ctrl.sc().bits(), 0x01, "{}", irb.scsw);
        rig.quiet().await;
    }
}

/// A skipped transfer through an IDAW near the top of the 64-bit address space: the channel
/// counts the skipped bytes without accessing storage, so the data address is never checked,
/// and advancing it past 2^64 overflowed (a panic in builds with overflow checks; a silent
/// wrap otherwise). Nothing is accessed while skipping: the address wraps, the program ends
/// normally and the next IDAW takes over. Input: `fuzz/regressions/channel/skip-idaw-at-the-top-of-storage`.
#[tokio::test]
async fn a_skipped_idaw_at_the_top_of_storage_wraps_without_access() {
    let mut rig =
        Rig::with(MockBackend::builder().subchannel(0x0006, Box::new(TestDevice::new(64)))).await;
    // The test device's record, which the read below skips.
    let data = rig.alloc(5, b'h');
    let w = rig.program(&[ccw1(0x01, F::NONE, 5, data)]);
    assert_eq!(rig.run(SCH, &orb(w)).await.scsw.cstat, 0);
    let buf = rig.alloc(8, 0x55);
    let idal = rig.alloc(16, 0);
    rig.poke(
        idal as u64,
        &[0xFFFF_FFFF_FFFF_FFFEu64, u64::from(buf) & !0xFFF]
            .map(u64::to_be_bytes)
            .concat(),
    );
    let prog = rig.program(&[ccw1(0x02, F::SKIP | F::IDA | F::SLI, 5, idal)]);
    let irb = rig.run(SCH, &orb(prog)).await;
    assert!(irb.scsw.is_final(), "{}", irb.scsw);
    assert_eq!(irb.scsw.cstat, 0, "{}", irb.scsw);
    assert_eq!(irb.scsw.cpa.get(), prog + 8, "{}", irb.scsw);
    assert_eq!(rig.peek(u64::from(buf), 8), [0x55; 8]);
}
