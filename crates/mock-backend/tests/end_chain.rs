// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Issue #15 item 8, the channel's side: device status a device returns from `end_chain`
//! (changes it could not make durable) reaches the status of every way a program stops:
//! the end of the chain, a suspension (which then ends the program) and a halt.

mod common;

use std::time::Duration;

use ccw_types::CcwFlags as F;
use ccw_types::DeviceStatus;
use common::*;
use css_core::{Backend, ConditionCode};
use mock_backend::{
    ChainContext, Command, DataStream, DeviceModel, DeviceOutcome, MockBackend, SenseData,
    SenseIdData,
};

/// A device that can never make its changes durable.
struct Lossy;

impl DeviceModel for Lossy {
    fn sense_id(&self) -> Option<SenseIdData> {
        None
    }
    fn execute(
        &mut self,
        _: &Command,
        _: &mut dyn DataStream,
        _: &mut ChainContext,
    ) -> DeviceOutcome {
        DeviceOutcome::done()
    }
    fn sense(&mut self) -> SenseData {
        SenseData::with_byte0(SenseData::EQUIPMENT_CHECK)
    }
    fn reset(&mut self) {}
    fn end_chain(&mut self) -> DeviceStatus {
        DeviceStatus::UNIT_CHECK
    }
}

async fn rig(latency: Duration) -> Rig {
    Rig::with(
        MockBackend::builder()
            .subchannel(0x0100, Box::new(Lossy))
            .latency(latency),
    )
    .await
}

const SCH: ccw_types::SubchannelId = ccw_types::SubchannelId::new(0, 0, 0);

#[tokio::test]
async fn end_of_chain() {
    let mut rig = rig(Duration::ZERO).await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    let irb = rig.run(SCH, &orb(prog)).await;
    // CE | DE | UC with alert, and the device's sense as concurrent sense.
    assert_eq!(
        &scsw(&irb)[3..],
        &scsw_bytes(0x0080_4017, prog + 8, 0x0e, 0, 0)[3..]
    );
    assert_eq!(
        irb.concurrent_sense().map(|s| s[0]),
        Some(SenseData::EQUIPMENT_CHECK)
    );
}

#[tokio::test]
async fn a_suspension_ends_the_program_instead() {
    let mut rig = rig(Duration::ZERO).await;
    let prog = rig.program(&[ccw1(0x03, F::CC, 0, 0), ccw1(0x03, F::S, 0, 0)]);
    let irb = rig.run(SCH, &orb_with(prog, |o| o.suspend = true)).await;
    // Ended at the last executed CCW, not suspended: no intermediate status, no suspend.
    assert!(irb.scsw.is_final(), "{}", irb.scsw);
    assert_eq!(irb.scsw.dstat, 0x0e, "{}", irb.scsw);
    assert_eq!(irb.scsw.cpa.get(), prog + 8);
    assert_eq!(rig.backend.resume(SCH).await.unwrap(), ConditionCode::Cc2);
}

#[tokio::test(start_paused = true)]
async fn a_halt_carries_the_unit_check() {
    // The start waits an hour (virtual) before it runs: the halt finds it start pending.
    let mut rig = rig(Duration::from_secs(3600)).await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    assert_eq!(rig.start(SCH, &orb(prog)).await, ConditionCode::Cc0);
    assert_eq!(rig.backend.halt(SCH).await.unwrap(), ConditionCode::Cc0);
    let (_, irb) = rig.irb().await;
    assert!(
        irb.scsw
            .ctrl
            .fc()
            .contains(ccw_types::FunctionControl::HALT),
        "{}",
        irb.scsw
    );
    assert_ne!(irb.scsw.dstat & 0x02, 0, "{}", irb.scsw);
    assert!(
        irb.scsw.ctrl.sc().contains(ccw_types::StatusControl::ALERT),
        "{}",
        irb.scsw
    );
}
