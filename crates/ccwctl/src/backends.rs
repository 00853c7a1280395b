// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The backends ccwctl can open, each behind its cargo feature: the built-in simulator
//! (`sim`, mock-backend, with its [`Controls`]) and vfio-ccw
//! (`vfio`, vfio-backend; `--vfio` names an mdev or a bus id whose subchannel is claimed for
//! the run and given back after it, see [`Claims`]). Both are on by default.

#[cfg(any(feature = "sim", feature = "vfio"))]
use std::sync::Arc;

#[cfg(any(feature = "sim", feature = "vfio"))]
use vm_memory::GuestMemoryMmap;

#[cfg(any(feature = "sim", feature = "vfio"))]
use crate::target::Controls;
use crate::target::TargetError;
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

/// What `--vfio` names and how to take it: an mdev (UUID or sysfs path) is opened as it is;
/// a bus id (`sch:0.0.0001`, `dev:0.0.0120`, or plain when unambiguous; see
/// [`vfio_backend::subchannel_of`]) has its subchannel claimed for vfio_ccw with the mdev
/// `uuid` (default: the subchannel's own, or a new one with a random UUID), recorded in
/// `claims` to be given back after the run.
#[derive(Debug, Clone, Copy)]
pub struct VfioArgs<'a> {
    /// The `--vfio` value.
    pub name: &'a str,
    /// The `--mdev-uuid` value.
    pub uuid: Option<&'a str>,
    /// Where claims wait for their release.
    pub claims: &'a Claims,
}

/// The subchannels this run claimed for vfio_ccw. [`Claims::release`] gives them back (the
/// mdev made for the run removed, the subchannel on the driver it had): call it after the
/// async runtime is gone, when every task is dropped and with it every open device, since
/// the kernel does not remove an mdev whose device is open.
#[derive(Debug, Default)]
pub struct Claims {
    #[cfg(feature = "vfio")]
    held: std::sync::Mutex<Vec<vfio_backend::ClaimedSubchannel>>,
}

impl Claims {
    /// Gives back every claim; the first failure is returned, every claim is tried.
    pub fn release(self) -> Result<(), TargetError> {
        #[cfg(feature = "vfio")]
        {
            let held = self.held.into_inner().unwrap_or_else(|p| p.into_inner());
            let mut first = None;
            for claim in held {
                let sch = claim.subchannel();
                if let Err(e) = claim.release() {
                    first.get_or_insert(TargetError::new(
                        crate::target::TargetErrorKind::Other,
                        format!("giving {sch} back after the run: {e}"),
                    ));
                }
            }
            if let Some(e) = first {
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(feature = "vfio")]
/// Opens the vfio-ccw device `args` names (see [`VfioArgs`]) and maps `mem` for its channel
/// programs (IOVA = guest address). A failure after a claim gives the subchannel back at once.
pub fn open_vfio_backend(
    args: VfioArgs<'_>,
    mem: Arc<GuestMemoryMmap>,
) -> Result<Arc<vfio_backend::VfioBackend>, TargetError> {
    use vfio_backend::{ClaimedSubchannel, VfioBackend, VfioOptions, is_mdev_name};
    let err = |e: css_core::BackendError| backend_error(&e);
    let backend = if is_mdev_name(args.name) {
        if args.uuid.is_some() {
            return Err(TargetError::new(
                crate::target::TargetErrorKind::Other,
                format!(
                    "--mdev-uuid is for --vfio <busid>; `{}` already names an mdev",
                    args.name
                ),
            ));
        }
        VfioBackend::open(args.name).map_err(err)?
    } else {
        let mut claim = ClaimedSubchannel::claim(args.name).map_err(err)?;
        match args.uuid {
            Some(u) => claim.mdev(u).map(drop),
            None => claim.mdev_auto().map(drop),
        }
        .map_err(err)?;
        let backend = claim.open(&VfioOptions::default()).map_err(err)?;
        ccw_translate::sync::lock(&args.claims.held).push(claim);
        backend
    };
    backend.attach_memory(mem).map_err(err)?;
    Ok(Arc::new(backend))
}

#[cfg(feature = "vfio")]
/// [`open_vfio_backend`] as a command target.
pub fn open_vfio(
    args: VfioArgs<'_>,
    mem: Arc<GuestMemoryMmap>,
) -> Result<Target<vfio_backend::VfioBackend>, TargetError> {
    let backend = open_vfio_backend(args, mem.clone())?;
    Target::new("vfio", backend, mem)
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
