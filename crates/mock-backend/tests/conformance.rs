// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The backend conformance suite (css-conformance) on the simulated channel subsystem: one
//! `#[test]` per case, each on a fresh `MockBackend::default_subsystem` (the virtio-blk-ccw
//! device at 0.0.0000, devno 0x0005, and the test device at 0.0.0001, devno 0x0006). The mock
//! implements the architecture, so nothing is declared unsupported; after every passing case
//! nothing may stay pinned or allocated. The kernel-torture group needs a raw vfio-ccw io
//! region and skips here.

use std::sync::Arc;

use css_conformance::{Device, DeviceKind, Fixture, conformance_tests};
use css_core::BackendError;
use mock_backend::MockBackend;
use vm_memory::GuestMemoryMmap;

fn make(mem: Arc<GuestMemoryMmap>) -> Result<Arc<MockBackend>, BackendError> {
    Ok(Arc::new(MockBackend::default_subsystem(&*mem)?))
}

fn fixture() -> Fixture {
    Fixture::virtio_blk("0.0.0000".parse().unwrap(), 0x0005)
        .named("mock-backend")
        .with_device(Device {
            kind: DeviceKind::TestDevice,
            sch: "0.0.0001".parse().unwrap(),
            devno: 0x0006,
        })
        .with_path_control()
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
