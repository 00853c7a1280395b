// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The backend conformance suite (css-conformance) on the simulated channel subsystem: one
//! `#[test]` per case, each on a fresh simulator with the virtio-blk-ccw device at 0.0.0000
//! (devno 0x0005), the test device at 0.0.0001 (devno 0x0006) and a 2-cylinder 3390 at
//! 0.0.0002 (devno 0x0120, cylinder 1 heads 0-2 formatted as `dasdfmt` leaves them). The mock
//! implements the architecture, so nothing is declared unsupported; after every passing case
//! nothing may stay pinned or allocated. The kernel-torture group needs a raw vfio-ccw io
//! region and skips here.
//!
//! The whole suite runs twice on that simulator: with virtio-blk-ccw as the device under test
//! of the generic groups (the top-level modules, as in the QEMU lane), and in module
//! `eckd_primary` with the 3390 as the device under test (as in the Hercules lane's `--fixture
//! 3390`), so the 3390 forms of the generic cases (its big read is Read Device
//! Characteristics, its data chains split a located Read Data) run on the simulator too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use css_conformance::{Device, DeviceKind, Fixture, conformance_tests};
use css_core::{BackendError, BackendErrorKind};
use mock_backend::MockBackend;
use mock_backend::dasd::{CkdImage, CreateOptions, Eckd, Model3390, Record, Track, TrackAddr};
use mock_backend::devices::{TestDevice, VirtioBlkCcw};
use vm_memory::GuestMemoryMmap;

/// A fresh 2-cylinder 3390 image: cylinder 1, heads 0-2 hold R1-R12 of 4096 zero bytes. The
/// file is unlinked at once (the open image keeps it; its journal goes when it closes).
fn image() -> Result<CkdImage, BackendError> {
    static N: AtomicU32 = AtomicU32::new(0);
    let fail = |e: mock_backend::dasd::ImageError| {
        BackendError::new(BackendErrorKind::Io, "3390 image").with_detail(e.to_string())
    };
    let path = std::env::temp_dir().join(format!(
        "ccw-conformance-{}-{}.3390",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let opts = CreateOptions {
        cylinders: Some(2),
        volser: Some("LNX001".into()),
    };
    let mut img = CkdImage::create(&path, Model3390::M1, &opts).map_err(fail)?;
    let unlinked = std::fs::remove_file(&path);
    for head in 0..3 {
        let addr = TrackAddr::new(1, head);
        let mut t = Track::empty(addr);
        for r in 1..=12u8 {
            let [c0, c1, h0, h1] = addr.to_cchh();
            t.records
                .push(Record::new([c0, c1, h0, h1, r], Vec::new(), vec![0; 4096]));
        }
        img.write_track(&t).map_err(fail)?;
    }
    unlinked.map_err(|e| {
        BackendError::new(BackendErrorKind::Io, "3390 image").with_detail(e.to_string())
    })?;
    Ok(img)
}

fn make(mem: Arc<GuestMemoryMmap>) -> Result<Arc<MockBackend>, BackendError> {
    Ok(Arc::new(
        MockBackend::builder()
            .subchannel(0x0005, Box::new(VirtioBlkCcw::new(131_072)))
            .subchannel(0x0006, Box::new(TestDevice::new(64 * 1024)))
            .subchannel(0x0120, Box::new(Eckd::new(image()?, 0x0120)))
            .guest_memory(&*mem)
            .build()?,
    ))
}

fn fixture() -> Fixture {
    Fixture::virtio_blk("0.0.0000".parse().unwrap(), 0x0005)
        .named("mock-backend")
        .with_device(Device {
            kind: DeviceKind::TestDevice,
            sch: "0.0.0001".parse().unwrap(),
            devno: 0x0006,
        })
        .with_device(Device {
            kind: DeviceKind::Eckd3390 { cylinders: 2 },
            sch: "0.0.0002".parse().unwrap(),
            devno: 0x0120,
        })
}

fn idle(b: &MockBackend) -> Result<(), String> {
    let stats = b.mapping_stats();
    if stats.is_idle() {
        Ok(())
    } else {
        Err(format!("leaked mappings: {stats:?}"))
    }
}

conformance_tests!(make, fixture(), Some(idle));

/// The same simulator with the 3390 as the device under test of every generic group.
mod eckd_primary {
    use super::*;

    fn fixture_3390() -> Fixture {
        Fixture::eckd_3390("0.0.0002".parse().unwrap(), 0x0120, 2).named("mock-backend 3390")
    }

    conformance_tests!(make, fixture_3390(), Some(idle));
}
