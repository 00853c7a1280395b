// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The bounded event queue on the simulator (issue #15 item 7): while the queue is full a
//! subchannel stays status pending (START answers cc 1) and its interruption is delivered
//! once there is room, exactly once; a storm of channel reports overflows with the R bit.

mod common;

use ccw_types::CcwFlags as F;
use common::*;
use css_core::{Backend, BackendEvent, ConditionCode};
use mock_backend::MockBackend;
use mock_backend::devices::TestDevice;

async fn rig(events: usize) -> Rig {
    let mut b = MockBackend::builder().event_capacity(events);
    for devno in 0..3 {
        b = b.subchannel(0x100 + devno, Box::new(TestDevice::new(64)));
    }
    Rig::with(b).await
}

/// Waits (yielding, bounded) until `n` subchannels show status pending.
async fn until_pending(rig: &Rig, n: usize) -> Vec<ccw_types::SubchannelId> {
    for _ in 0..100_000 {
        let mut pending = Vec::new();
        for sch in rig.backend.subchannel_ids() {
            let schib = rig.backend.store_schib(sch).await.unwrap();
            if schib
                .scsw
                .ctrl
                .sc()
                .contains(ccw_types::StatusControl::PENDING)
            {
                pending.push(sch);
            }
        }
        if pending.len() == n {
            return pending;
        }
        tokio::task::yield_now().await;
    }
    panic!("{n} subchannels never became status pending");
}

#[tokio::test]
async fn a_full_queue_leaves_status_pending_until_there_is_room() {
    let mut rig = rig(1).await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    let ids = rig.backend.subchannel_ids();
    for &sch in &ids {
        assert_eq!(rig.start(sch, &orb(prog)).await, ConditionCode::Cc0);
    }
    // One interruption fits the queue; the other two subchannels keep their status.
    let pending = until_pending(&rig, 2).await;
    for &sch in &pending {
        assert_eq!(rig.start(sch, &orb(prog)).await, ConditionCode::Cc1);
    }
    // Taking events makes room: every subchannel's final status arrives exactly once.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (sch, irb) = rig.irb().await;
        assert_eq!(irb.scsw.dstat, 0x0c);
        seen.push(sch);
    }
    seen.sort_by_key(|s| s.sch_no);
    assert_eq!(seen, ids);
    rig.quiet().await;
    // And the subchannels work again.
    let irb = rig.run(ids[1], &orb(prog)).await;
    assert_eq!(irb.scsw.dstat, 0x0c);
}

#[tokio::test]
async fn a_channel_report_storm_overflows_with_the_r_bit() {
    let mut rig = rig(2).await;
    let sch = rig.backend.subchannel_ids()[0];
    for i in 0..50 {
        rig.backend.vary_paths(sch, 0x80, i % 2 == 1).unwrap();
    }
    let mut reports = Vec::new();
    while let Ok(ev) = rig.events.try_recv() {
        match ev {
            BackendEvent::ChannelReport(c) => reports.push(c),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        reports.len(),
        3,
        "two queued, the last one held: {reports:?}"
    );
    assert!(!reports[0].overflow() && !reports[1].overflow());
    assert!(reports[2].overflow(), "{}", reports[2]);
    assert_eq!(rig.events.lost_reports(), 47);
}
