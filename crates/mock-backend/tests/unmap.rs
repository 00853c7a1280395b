// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Issue #15 item 9 on the simulator: the VMM unmaps guest memory that a running (here:
//! start-pending) channel program has pinned. css-core clears the subchannel, answers the
//! request once with `CssError::Unmapped`, and every pin and control area is back before
//! `unmap_guest_range` returns. A program on memory elsewhere is not touched.

use std::sync::Arc;
use std::time::Duration;

use ccw_translate::GuestRange;
use ccw_types::{CcwFlags as F, CcwFormat, CcwRepr, CommandOrb, FunctionControl};
use css_core::{Css, CssConfig, CssError, CssErrorKind, State, SubchannelEvent};
use mock_backend::MockBackend;
use mock_backend::devices::TestDevice;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

fn ccw(cmd: u8, flags: F, count: u16, cda: u32) -> [u8; 8] {
    CcwRepr {
        cmd,
        flags,
        count,
        cda,
    }
    .emit(CcwFormat::Format1)
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn unmapping_pinned_guest_memory_clears_the_subchannel_and_releases_everything() {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
    // Each start waits an hour (virtual: the clock is paused) before the channel runs it,
    // so the program is start pending, its data pinned, when the unmap comes.
    let backend = Arc::new(
        MockBackend::builder()
            .subchannel(0x0100, Box::new(TestDevice::new(64)))
            .subchannel(0x0101, Box::new(TestDevice::new(64)))
            .latency(Duration::from_secs(3600))
            .guest_memory(&mem)
            .build()
            .unwrap(),
    );
    let config = CssConfig {
        quiesce_wait: Duration::from_secs(3 * 3600),
        ..CssConfig::default()
    };
    let css: Css<MockBackend> = Css::with_config(backend.clone(), config).unwrap();
    let ids = css.probe().await.unwrap();
    let (idle, busy) = (ids[0], ids[1]);
    let _idle_sub = css.open(idle).await.unwrap();
    let sub = css.open(busy).await.unwrap();
    let mut events = sub.events();
    let prog = [ccw(0x02, F::SLI, 16, 0x2000)].concat();
    mem.write_slice(&prog, GuestAddress(0x1000)).unwrap();
    let orb = CommandOrb::new(0x77, 0x1000).emit();
    let (done, cleared) = tokio::join!(sub.submit(&orb, &mem), async {
        while css.state(busy).unwrap() != State::CpPending {
            tokio::task::yield_now().await;
        }
        assert!(!backend.mapping_stats().is_idle());
        let untouched = css
            .unmap_guest_range(GuestRange::new(0x8_0000, 0x1000))
            .await
            .unwrap();
        assert!(untouched.is_empty());
        assert!(!backend.mapping_stats().is_idle());
        let cleared = css
            .unmap_guest_range(GuestRange::new(0x2008, 8))
            .await
            .unwrap();
        // Before the call returned: nothing pinned, no control memory.
        let stats = backend.mapping_stats();
        assert!(stats.is_idle(), "{stats:?}");
        assert_eq!(stats.unbalanced_unpins, 0);
        cleared
    });
    assert_eq!(cleared, vec![busy]);
    let e = done.unwrap_err();
    assert_eq!(e.kind(), CssErrorKind::Unmapped, "{e}");
    assert!(matches!(e, CssError::Unmapped { sch, .. } if sch == busy));
    assert!(e.to_string().contains("0x2008"), "{e}");
    // The clear's status arrives as an event; the subchannel is usable again.
    match events.recv().await.unwrap() {
        SubchannelEvent::Status(irb) => {
            assert!(
                irb.scsw.ctrl.fc().contains(FunctionControl::CLEAR),
                "{}",
                irb.scsw
            )
        }
        other => panic!("{other:?}"),
    }
    mem.write_slice(&ccw(0x03, F::NONE, 0, 0), GuestAddress(0x3000))
        .unwrap();
    let done = sub
        .submit(&CommandOrb::new(1, 0x3000).emit(), &mem)
        .await
        .unwrap();
    assert_eq!(done.irb.scsw.dstat, 0x0c);
    assert_eq!(css.state(idle).unwrap(), State::Idle);
    assert!(backend.mapping_stats().is_idle());
}
