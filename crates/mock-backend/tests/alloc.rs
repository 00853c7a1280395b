// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Heap allocations per warm I/O on the whole css-core path over the simulator (issue 14:
//! zero once warm is the target): `Subchannel::submit` of a guest SENSE ID (translation,
//! pinning, START, the channel program, the interruption, routing, completion, release).
//!
//! Two are left, both named here so that a new one fails the test: the boxed future of
//! each call through the `Backend` trait (`async_trait`: one, START), and the request's
//! answer channel (a `tokio::sync::oneshot`). The bare round trip (START + interruption,
//! no css-core) has only the first.

use std::sync::Arc;

use ccw_testkit::alloc::{CountingAlloc, allocations};

use ccw_types::{CommandOrb, SubchannelId};
use css_core::{Backend, BackendEvent, Css};
use mock_backend::MockBackend;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const SCH: SubchannelId = SubchannelId::new(0, 0, 1);
const WARM: u64 = 200;
const IOS: u64 = 1000;

/// Everything on this thread: the runtime, the event task, the simulator's worker.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn guest() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
}

/// Allocations per I/O of `IOS` runs of `io`, after `WARM` runs.
fn per_io(rt: &tokio::runtime::Runtime, mut io: impl AsyncFnMut()) -> f64 {
    rt.block_on(async {
        for _ in 0..WARM {
            io().await;
        }
        let before = allocations();
        for _ in 0..IOS {
            io().await;
        }
        (allocations() - before) as f64 / IOS as f64
    })
}

#[test]
fn a_warm_submit_allocates_only_the_backend_call_and_the_answer_channel() {
    let rt = runtime();
    let mem = guest();
    // SENSE ID, SLI, count 8, data at 0x2000 (pinned per I/O).
    mem.write_slice(&[0xE4, 0x20, 0, 8, 0, 0, 0x20, 0], GuestAddress(0x1000))
        .unwrap();
    let backend = Arc::new(MockBackend::default_subsystem(&mem).unwrap());
    let (css, sub) = rt.block_on(async {
        let css: Css<MockBackend> = Css::new(backend).unwrap();
        css.probe().await.unwrap();
        let sub = css.open(SCH).await.unwrap();
        (css, sub)
    });
    let orb = CommandOrb::new(7, 0x1000).emit();
    let n = per_io(&rt, async || {
        let done = sub.submit(&orb, &mem).await.unwrap();
        assert_eq!(done.irb.scsw.dstat, 0x0C);
    });
    assert_eq!(n, 2.0, "allocations per warm submit -> completion");
    rt.block_on(sub.close()).unwrap();
    drop(css);
}

#[test]
fn a_warm_bare_round_trip_allocates_only_the_backend_call() {
    let rt = runtime();
    let mem = guest();
    let backend = MockBackend::default_subsystem(&mem).unwrap();
    let mut events = backend.take_events().unwrap();
    let mapper = backend.mapper(SCH).unwrap();
    let area = mapper.alloc_control(16).unwrap();
    let data = (area.addr + 8) as u32;
    let [a, b, c, d] = data.to_be_bytes();
    mapper
        .write_control(&area, 0, &[0xE4, 0x20, 0, 8, a, b, c, d])
        .unwrap();
    let orb = CommandOrb::new(1, area.addr as u32).emit();
    rt.block_on(backend.enable(SCH, 1)).unwrap();
    let n = per_io(&rt, async || {
        backend.start(SCH, &orb).await.unwrap();
        let Some(BackendEvent::Interrupt { irb, .. }) = events.recv().await else {
            panic!("an interruption");
        };
        assert_eq!(irb.scsw.dstat, 0x0C);
    });
    assert_eq!(n, 1.0, "allocations per warm START + interruption");
}
