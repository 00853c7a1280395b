// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The backends ccwctl can open, each behind its cargo feature: the built-in simulator
//! (`sim`, mock-backend, with its [`Controls`]) and vfio-ccw (`vfio`, vfio-backend). Both
//! are on by default.

#[cfg(any(feature = "sim", feature = "vfio"))]
use std::sync::Arc;

#[cfg(any(feature = "sim", feature = "vfio"))]
use vm_memory::GuestMemoryMmap;

#[cfg(any(feature = "sim", feature = "vfio"))]
use crate::target::{Controls, TargetError};
#[cfg(any(feature = "sim", feature = "vfio"))]
use crate::target::{Target, backend_error};

/// vfio-ccw devices are real: nothing can be injected.
#[cfg(feature = "vfio")]
impl Controls for vfio_backend::VfioBackend {}

/// The simulator's controls: mock-backend's path variation and unsolicited status.
#[cfg(feature = "sim")]
impl Controls for mock_backend::MockBackend {
    fn vary_paths(
        &self,
        sch: ccw_types::SubchannelId,
        mask: u8,
        online: bool,
    ) -> Result<(), TargetError> {
        mock_backend::MockBackend::vary_paths(self, sch, mask, online)
            .map_err(|e| backend_error(&e))
    }

    fn attention(&self, sch: ccw_types::SubchannelId) -> Result<(), TargetError> {
        match self
            .unsolicited(sch, ccw_types::DeviceStatus::ATTENTION)
            .map_err(|e| backend_error(&e))?
        {
            css_core::ConditionCode::Cc0 => Ok(()),
            cc => Err(TargetError::new(
                crate::target::TargetErrorKind::Busy,
                format!("{sch}: attention not presented (cc {})", cc.value()),
            )),
        }
    }
}

#[cfg(feature = "vfio")]
/// Opens the vfio-ccw mediated device `mdev` (sysfs path or UUID) and maps `mem` for its
/// channel programs (IOVA = guest address).
pub fn open_vfio(
    mdev: &str,
    mem: Arc<GuestMemoryMmap>,
) -> Result<Target<vfio_backend::VfioBackend>, TargetError> {
    let backend = vfio_backend::VfioBackend::open(mdev).map_err(|e| backend_error(&e))?;
    backend
        .attach_memory(mem.clone())
        .map_err(|e| backend_error(&e))?;
    Target::new("vfio", Arc::new(backend), mem)
}

#[cfg(feature = "sim")]
/// The built-in simulated channel subsystem (mock-backend's default: virtio-blk-ccw devno
/// 0005 on 0.0.0000, the test device devno 0006 on 0.0.0001), with `mem` attached.
pub fn simulated(
    mem: Arc<GuestMemoryMmap>,
) -> Result<Target<mock_backend::MockBackend>, TargetError> {
    let backend =
        mock_backend::MockBackend::default_subsystem(&*mem).map_err(|e| backend_error(&e))?;
    Target::new("simulated", Arc::new(backend), mem)
}

#[cfg(feature = "sim")]
/// The simulated channel subsystem of `machine` (a machine file, `vcss::machine`), with `mem`
/// attached. A 3390 whose image cannot be opened is an error naming the file and line.
pub fn simulated_machine(
    mem: Arc<GuestMemoryMmap>,
    machine: &vcss::machine::Machine,
) -> Result<Target<mock_backend::MockBackend>, crate::commands::CommandError> {
    let backend = mock_backend::machine::builder(machine)?
        .guest_memory(&*mem)
        .build()
        .map_err(|e| backend_error(&e))?;
    Ok(Target::new("simulated", Arc::new(backend), mem)?)
}
