// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The lifetime of a subchannel's worker task: spawned by its first function, reused by the
//! next ones, ended with its backend, and replaced when the runtime it lived on is gone.

mod common;

use ccw_types::CcwFlags as F;
use common::*;
use css_core::ConditionCode;
use mock_backend::{MockBackend, devices::TestDevice};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn rig() -> (tokio::runtime::Runtime, Rig) {
    let rt = runtime();
    let rig = rt.block_on(Rig::with(
        MockBackend::builder().subchannel(0x0006, Box::new(TestDevice::new(64))),
    ));
    (rt, rig)
}

const SCH: ccw_types::SubchannelId = ccw_types::SubchannelId::new(0, 0, 0);

/// One NOP: the start function ends with channel end + device end.
fn nop(rig: &mut Rig) -> ccw_types::Orb {
    orb(rig.program(&[ccw1(0x03, F::NONE, 0, 0)]))
}

#[test]
fn one_worker_task_serves_every_start_and_ends_with_the_backend() {
    let (rt, mut rig) = rig();
    let orb = nop(&mut rig);
    let alive = || rt.metrics().num_alive_tasks();
    assert_eq!(alive(), 0, "no task before the first function");
    for _ in 0..5 {
        let irb = rt.block_on(rig.run(SCH, &orb));
        assert_eq!(irb.scsw.dstat, 0x0C);
        assert_eq!(alive(), 1, "the idle worker stays, and is the only one");
    }
    drop(rig);
    rt.block_on(async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    });
    assert_eq!(alive(), 0, "the worker ended with its backend");
}

#[test]
fn a_backend_outlives_the_runtime_of_its_first_worker() {
    let (rt, mut rig) = rig();
    let orb = nop(&mut rig);
    assert_eq!(rt.block_on(rig.run(SCH, &orb)).scsw.dstat, 0x0C);
    // The worker is dropped with its runtime; the next start spawns one on the new runtime.
    drop(rt);
    let rt = runtime();
    assert_eq!(rt.block_on(rig.start(SCH, &orb)), ConditionCode::Cc0);
    assert_eq!(rt.metrics().num_alive_tasks(), 1);
    assert_eq!(rt.block_on(rig.irb()).1.scsw.dstat, 0x0C);
}
