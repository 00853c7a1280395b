// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The device lifecycle as a library: take a subchannel from its driver and give it to
//! vfio_ccw (`driver_override`, unbind, `drivers_probe`), create or reuse the mediated device,
//! open it; and undo all of it (remove the mdev this code created, clear the override, give the
//! subchannel back to the driver it had) on [`ClaimedSubchannel::release`], on drop, or when a
//! step along the way fails. What `driverctl` and `mdevctl` do by hand, and what a forgotten
//! teardown leaves behind.
//!
//! ```no_run
//! # async fn run() -> Result<(), css_core::BackendError> {
//! use std::sync::Arc;
//! use vfio_backend::{ClaimedSubchannel, VfioOptions};
//! // A subchannel (`sch:0.0.0001`) or a ccw device (`dev:0.0.0120`); plain when unambiguous.
//! let mut claim = ClaimedSubchannel::claim("0.0.0120")?;
//! let uuid = claim.mdev_auto()?; // the subchannel's mdev, or a new one with a random UUID
//! println!("mdev {uuid} on subchannel {}", claim.subchannel());
//! let backend = Arc::new(claim.open(&VfioOptions::default())?);
//! // ... drive the subchannel ...
//! // The mdev cannot be removed while its device is open: close shuts the backend down
//! // first, then releases (or: `backend.shutdown().await; claim.release()?`, or drop).
//! claim.close(backend).await?;
//! # Ok(()) }
//! ```
//!
//! A subchannel already bound to vfio_ccw is used as it is and left so; an mdev that already
//! exists is reused and left so. Only what this value changed is undone. The I/O subchannel
//! driver finds the subchannel's ccw device again asynchronously: after a release the device
//! reappears under `/sys/bus/ccw/devices` shortly, not at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ccw_types::{DeviceId, SubchannelId};
use css_core::{BackendError, BackendErrorKind};

use crate::backend::{VfioBackend, VfioOptions};
use crate::device::VfioDevice;
use crate::error::{error, sys_error};
use crate::sys::{HostSys, Sys};
use crate::sysfs::{self, CSS_BUS, MDEV_BUS, is_uuid, sch_dir};

/// The driver vfio-ccw registers on the css bus.
const VFIO_CCW: &str = "vfio_ccw";
/// vfio_ccw's mdev type, under a subchannel bound to it.
const MDEV_TYPE: &str = "mdev_supported_types/vfio_ccw-io";
/// Where the kernel hands out random UUIDs.
const RANDOM_UUID: &str = "/proc/sys/kernel/random/uuid";

/// What a claim changed, to undo it.
#[derive(Debug)]
struct Binding {
    /// The driver the subchannel had (`None`: unbound).
    driver: Option<String>,
    /// Its `driver_override` before (`None`: none).
    driver_override: Option<String>,
}

/// vfio_ccw's mdev type on a subchannel (`mdev_supported_types/vfio_ccw-io`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevType {
    /// Its `name` (`I/O subchannel (Non-QDIO)`).
    pub name: String,
    /// Its `device_api` (`vfio-ccw`).
    pub device_api: String,
    /// How many more mdevs the subchannel takes (vfio_ccw: 1, or 0 with one in place).
    pub available_instances: u32,
}

/// A subchannel taken for vfio-ccw, with its mediated device. Undoes what it changed when
/// released or dropped.
pub struct ClaimedSubchannel {
    sys: Arc<dyn Sys>,
    sch: SubchannelId,
    /// The driver it had when claimed.
    original_driver: Option<String>,
    /// `Some` when this value rebound the subchannel.
    binding: Option<Binding>,
    /// The mdev's UUID, and whether this value created it.
    mdev: Option<(String, bool)>,
}

impl std::fmt::Debug for ClaimedSubchannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedSubchannel")
            .field("sch", &self.sch)
            .field("binding", &self.binding)
            .field("mdev", &self.mdev)
            .finish_non_exhaustive()
    }
}

fn driver_of(sys: &dyn Sys, sch: SubchannelId) -> Option<String> {
    sys.read_link(&sch_dir(sch).join("driver"))
        .ok()
        .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// Whether `name` names an mdev (a UUID, or a path such as its sysfs directory) rather than
/// a bus id: how a tool tells `--vfio <mdev>` from `--vfio <busid>`.
pub fn is_mdev_name(name: &str) -> bool {
    is_uuid(name) || name.contains('/')
}

/// The subchannel a bus id names: `sch:0.0.0001` a subchannel, `dev:0.0.0120` a ccw device
/// (its subchannel), a plain id either when that is not ambiguous.
///
/// Errors: `InvalidArgument` for text that is not a bus id, or a plain id that is one
/// subchannel's and another's device's; `NoDevice` when nothing has the id.
pub fn subchannel_of(busid: &str) -> Result<SubchannelId, BackendError> {
    sysfs::subchannel_of(&HostSys, busid)
}

impl ClaimedSubchannel {
    /// Claims for vfio_ccw the subchannel that `busid` names (see [`subchannel_of`]:
    /// `sch:0.0.0001`, `dev:0.0.0120`, or plain).
    ///
    /// Errors, each naming the problem: `InvalidArgument` for a bus id that does not parse or
    /// is ambiguous, or a subchannel that is not an I/O subchannel; `NoDevice` for a bus id
    /// nothing has; `Unsupported` when the vfio_ccw driver is not loaded; the errno of a
    /// failed sysfs write (`PermissionDenied` without root, `Busy` for a subchannel in use);
    /// `Io` when the subchannel did not end up on vfio_ccw. On error nothing stays changed.
    pub fn claim(busid: &str) -> Result<Self, BackendError> {
        Self::claim_with(Arc::new(HostSys), busid)
    }

    pub(crate) fn claim_with(sys: Arc<dyn Sys>, busid: &str) -> Result<Self, BackendError> {
        const OP: &str = "claim subchannel";
        let sch = sysfs::subchannel_of(&*sys, busid)?;
        let dir = sch_dir(sch);
        // vfio_ccw drives I/O subchannels (type 0) only.
        if let Ok(ty) = sys.read_file(&dir.join("type")) {
            if ty.trim() != "0" {
                return Err(error(
                    BackendErrorKind::InvalidArgument,
                    OP,
                    format!(
                        "{sch} is not an I/O subchannel (type {}): vfio_ccw drives I/O subchannels",
                        ty.trim()
                    ),
                ));
            }
        }
        let driver = driver_of(&*sys, sch);
        let mut claim = ClaimedSubchannel {
            sys,
            sch,
            original_driver: driver.clone(),
            binding: None,
            mdev: None,
        };
        if driver.as_deref() == Some(VFIO_CCW) {
            return Ok(claim);
        }
        let drivers = Path::new(CSS_BUS).join("drivers");
        if let Err(e) = claim.sys.read_dir(&drivers.join(VFIO_CCW)) {
            return Err(if e.errno() == libc::ENOENT {
                error(
                    BackendErrorKind::Unsupported,
                    OP,
                    format!(
                        "the vfio_ccw driver is not loaded (modprobe vfio_ccw), so {sch} stays"
                    ),
                )
            } else {
                sys_error("read vfio_ccw driver", e)
            });
        }
        let driver_override = claim
            .sys
            .read_file(&dir.join("driver_override"))
            .map_err(|e| sys_error("read driver_override", e))?
            .trim()
            .to_owned();
        // From here on, dropping `claim` undoes the steps.
        claim.binding = Some(Binding {
            driver: driver.clone(),
            driver_override: Some(driver_override).filter(|o| !o.is_empty() && o != "(null)"),
        });
        claim.write(
            &dir.join("driver_override"),
            VFIO_CCW,
            "write driver_override",
        )?;
        if let Some(d) = &driver {
            let unbind = drivers.join(d).join("unbind");
            claim.write(&unbind, &sch.to_string(), "unbind subchannel")?;
        }
        let probe = Path::new(CSS_BUS).join("drivers_probe");
        claim.write(&probe, &sch.to_string(), "drivers_probe")?;
        match driver_of(&*claim.sys, sch) {
            Some(d) if d == VFIO_CCW => Ok(claim),
            other => Err(error(
                BackendErrorKind::Io,
                OP,
                format!(
                    "{sch} is bound to {} after probing, not vfio_ccw",
                    other.as_deref().unwrap_or("no driver")
                ),
            )),
        }
    }

    fn write(&self, path: &Path, value: &str, op: &'static str) -> Result<(), BackendError> {
        self.sys.write_file(path, value).map_err(|e| {
            let mut err = sys_error(op, e);
            err.detail = format!("{}: {}", path.display(), err.detail);
            err
        })
    }

    /// The claimed subchannel.
    pub fn subchannel(&self) -> SubchannelId {
        self.sch
    }

    /// The driver the subchannel had when claimed (`io_subchannel` on a fresh system;
    /// `vfio_ccw` when it was already there), which release gives it back to.
    pub fn original_driver(&self) -> Option<&str> {
        self.original_driver.as_deref()
    }

    /// The driver the subchannel is bound to now (`vfio_ccw` while claimed).
    pub fn driver(&self) -> Option<String> {
        driver_of(&*self.sys, self.sch)
    }

    /// The bus id of the ccw device on the subchannel (its `dev_busid`), if it has one.
    pub fn device(&self) -> Option<DeviceId> {
        self.sys
            .read_file(&sch_dir(self.sch).join("dev_busid"))
            .ok()
            .and_then(|b| b.trim().parse().ok())
    }

    /// vfio_ccw's mdev type on the subchannel.
    pub fn mdev_type(&self) -> Result<MdevType, BackendError> {
        let dir = sch_dir(self.sch).join(MDEV_TYPE);
        let read = |attr: &str| {
            self.sys
                .read_file(&dir.join(attr))
                .map(|v| v.trim().to_owned())
                .map_err(|e| {
                    let mut err = sys_error("read mdev type", e);
                    err.detail = format!("{}: {}", dir.join(attr).display(), err.detail);
                    err
                })
        };
        let available = read("available_instances")?;
        Ok(MdevType {
            name: read("name")?,
            device_api: read("device_api")?,
            available_instances: available.parse().map_err(|_| {
                error(
                    BackendErrorKind::Io,
                    "read mdev type",
                    format!("available_instances `{available}` is not a number"),
                )
            })?,
        })
    }

    /// The UUIDs of the mdevs on the subchannel now (vfio_ccw allows one).
    fn mdevs_present(&self) -> Result<Vec<String>, BackendError> {
        let mut v: Vec<String> = self
            .sys
            .read_dir(&sch_dir(self.sch))
            .map_err(|e| sys_error("read subchannel directory", e))?
            .into_iter()
            .filter(|n| is_uuid(n))
            .collect();
        v.sort();
        Ok(v)
    }

    /// Creates the vfio_ccw-io mediated device `uuid` on the subchannel, or reuses it when it
    /// exists. Returns its sysfs directory.
    ///
    /// Errors: `InvalidArgument` for text that is not a UUID; `Busy` when the subchannel has
    /// another mdev (vfio_ccw allows one) or `uuid` is another subchannel's mdev.
    pub fn mdev(&mut self, uuid: &str) -> Result<PathBuf, BackendError> {
        const OP: &str = "create mdev";
        if !is_uuid(uuid) {
            return Err(error(
                BackendErrorKind::InvalidArgument,
                OP,
                format!("`{uuid}` is not a UUID"),
            ));
        }
        if let Some((have, _)) = &self.mdev {
            if have != uuid {
                return Err(error(
                    BackendErrorKind::Busy,
                    OP,
                    format!("{} already has mdev {have}", self.sch),
                ));
            }
        }
        let dir = Path::new(MDEV_BUS).join(uuid);
        if self.mdev.is_none() {
            let created = match sysfs::resolve(&*self.sys, uuid) {
                Ok(m) if m.sch == self.sch => false,
                Ok(m) => {
                    return Err(error(
                        BackendErrorKind::Busy,
                        OP,
                        format!(
                            "mdev {uuid} belongs to subchannel {}, not {}",
                            m.sch, self.sch
                        ),
                    ));
                }
                Err(e) if e.kind == BackendErrorKind::NoDevice => {
                    if let Some(other) = self.mdevs_present()?.first() {
                        return Err(error(
                            BackendErrorKind::Busy,
                            OP,
                            format!(
                                "{} already has mdev {other} (vfio_ccw allows one): use it or remove it",
                                self.sch
                            ),
                        ));
                    }
                    let create = sch_dir(self.sch).join(MDEV_TYPE).join("create");
                    self.write(&create, uuid, OP)?;
                    true
                }
                Err(e) => return Err(e),
            };
            self.mdev = Some((uuid.to_owned(), created));
        }
        Ok(dir)
    }

    /// Reuses the subchannel's mdev, or creates one with a random UUID (the kernel's); returns
    /// its UUID.
    pub fn mdev_auto(&mut self) -> Result<String, BackendError> {
        if let Some((uuid, _)) = &self.mdev {
            return Ok(uuid.clone());
        }
        let uuid = match self.mdevs_present()?.into_iter().next() {
            Some(existing) => existing,
            None => {
                let u = self
                    .sys
                    .read_file(Path::new(RANDOM_UUID))
                    .map_err(|e| sys_error("read random UUID", e))?;
                u.trim().to_owned()
            }
        };
        self.mdev(&uuid)?;
        Ok(uuid)
    }

    /// The mdev's UUID, once [`ClaimedSubchannel::mdev`] or [`ClaimedSubchannel::mdev_auto`]
    /// made or found it.
    pub fn uuid(&self) -> Option<&str> {
        self.mdev.as_ref().map(|(u, _)| u.as_str())
    }

    fn resolved(&self, op: &'static str) -> Result<sysfs::Mdev, BackendError> {
        let uuid = self.uuid().ok_or_else(|| {
            error(
                BackendErrorKind::InvalidArgument,
                op,
                "no mdev yet: call mdev(uuid) or mdev_auto() first",
            )
        })?;
        sysfs::resolve(&*self.sys, uuid)
    }

    /// The mdev's IOMMU group (the legacy API opens `/dev/vfio/<group>`).
    pub fn iommu_group(&self) -> Result<u32, BackendError> {
        self.resolved("iommu group")?.iommu_group(&*self.sys)
    }

    /// The mdev's VFIO cdev (`/dev/vfio/devices/vfioN`, the iommufd API);
    /// `Unsupported` on a kernel without VFIO_DEVICE_CDEV.
    pub fn cdev(&self) -> Result<PathBuf, BackendError> {
        self.resolved("vfio cdev")?.cdev(&*self.sys)
    }

    /// Opens the mdev (see [`ClaimedSubchannel::mdev`]) as a backend. Shut the backend down
    /// ([`VfioBackend::shutdown`]) before releasing the claim: the kernel does not remove an
    /// mdev whose device is open (the release then reports `Busy` and still rebinds what it
    /// can).
    pub fn open(&self, options: &VfioOptions) -> Result<VfioBackend, BackendError> {
        let Some((uuid, _)) = &self.mdev else {
            return Err(error(
                BackendErrorKind::InvalidArgument,
                "open claimed subchannel",
                "no mdev yet: call mdev(uuid) or mdev_auto() first",
            ));
        };
        let device = VfioDevice::open_with(self.sys.clone(), uuid, options.api)?;
        VfioBackend::from_device(device, options)
    }

    /// Shuts `backend` down (waiting until its interrupt task has let go of the device), then
    /// releases the claim: the order the kernel needs, for a backend that was shared. Whoever
    /// still holds a clone of `backend` keeps the device open, and the mdev removal then
    /// reports `Busy` (the rest is still undone).
    pub async fn close(self, backend: Arc<VfioBackend>) -> Result<(), BackendError> {
        if let Ok(b) = Arc::try_unwrap(backend) {
            b.shutdown().await;
        }
        self.release()
    }

    /// Undoes what the claim changed, reporting the first failure (every step is tried).
    pub fn release(mut self) -> Result<(), BackendError> {
        self.undo()
    }

    fn undo(&mut self) -> Result<(), BackendError> {
        let mut first: Option<BackendError> = None;
        let mut note = |r: Result<(), BackendError>| {
            if let Err(e) = r {
                tracing::warn!(error = %e, "undoing a subchannel claim");
                first.get_or_insert(e);
            }
        };
        if let Some((uuid, true)) = self.mdev.take() {
            let remove = Path::new(MDEV_BUS).join(&uuid).join("remove");
            note(self.write(&remove, "1", "remove mdev"));
        }
        if let Some(b) = self.binding.take() {
            let dir = sch_dir(self.sch);
            let ovr = b.driver_override.as_deref().unwrap_or("\n");
            note(self.write(&dir.join("driver_override"), ovr, "restore driver_override"));
            if driver_of(&*self.sys, self.sch).as_deref() == Some(VFIO_CCW) {
                let unbind = Path::new(CSS_BUS)
                    .join("drivers")
                    .join(VFIO_CCW)
                    .join("unbind");
                note(self.write(&unbind, &self.sch.to_string(), "unbind from vfio_ccw"));
            }
            if b.driver.is_some() && driver_of(&*self.sys, self.sch).is_none() {
                let probe = Path::new(CSS_BUS).join("drivers_probe");
                note(self.write(&probe, &self.sch.to_string(), "drivers_probe"));
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for ClaimedSubchannel {
    fn drop(&mut self) {
        // Failures are traced by `undo`; a destructor cannot report them.
        let _ = self.undo();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeSys, UUID};

    const SCH: &str = "0.0.0000";
    const OTHER: &str = "0cc5e000-5390-4000-8000-00000000abcd";

    fn fresh() -> FakeSys {
        let k = FakeSys::vfio_ccw();
        k.on_io_subchannel();
        k
    }

    /// The subchannel is as a fresh system has it: io_subchannel, no override, no mdev, its
    /// ccw device on the ccw bus.
    fn assert_given_back(k: &FakeSys) {
        assert!(!k.has_mdev(UUID));
        assert_eq!(k.driver_of(SCH).as_deref(), Some("io_subchannel"));
        assert_eq!(k.override_of(SCH).trim(), "(null)");
        assert!(k.has_ccw_device("0.0.0005"));
    }

    fn writes(k: &FakeSys) -> usize {
        k.state()
            .calls
            .iter()
            .filter(|c| **c == "write_file")
            .count()
    }

    #[tokio::test]
    async fn claim_create_open_and_give_everything_back() {
        let k = fresh();
        let mut c = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap();
        assert_eq!(k.driver_of(SCH).as_deref(), Some("vfio_ccw"));
        assert_eq!(k.override_of(SCH).trim(), "vfio_ccw");
        c.mdev(UUID).unwrap();
        assert!(k.has_mdev(UUID));
        let backend = c.open(&VfioOptions::default()).unwrap();
        assert_eq!(backend.subchannel(), SubchannelId::new(0, 0, 0));
        // The kernel keeps an mdev whose device is open: close it first.
        backend.shutdown().await;
        c.release().unwrap();
        assert_given_back(&k);
    }

    #[test]
    fn drop_undoes_like_release() {
        let k = fresh();
        {
            let mut c = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap();
            c.mdev(UUID).unwrap();
        }
        assert_given_back(&k);
    }

    #[test]
    fn a_failed_probe_leaves_the_subchannel_as_it_was() {
        let k = fresh();
        // override, unbind succeed; drivers_probe fails.
        k.script("write_file", &[None, None, Some(libc::EIO)]);
        let e = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap_err();
        assert!(e.to_string().contains("drivers_probe"), "{e}");
        assert_eq!(k.driver_of(SCH).as_deref(), Some("io_subchannel"));
        assert_eq!(k.override_of(SCH).trim(), "(null)");
    }

    #[test]
    fn a_busy_subchannel_is_named_and_left_as_it_was() {
        let k = fresh();
        // override succeeds; the driver refuses to let go.
        k.script("write_file", &[None, Some(libc::EBUSY)]);
        let e = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::Busy, "{e}");
        assert!(e.to_string().contains("unbind"), "{e}");
        assert_given_back(&k);
    }

    #[test]
    fn a_failed_create_gives_the_subchannel_back() {
        let k = fresh();
        let mut c = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap();
        k.fail("write_file", libc::EACCES);
        let e = c.mdev(UUID).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::PermissionDenied, "{e}");
        k.state().fail.clear();
        drop(c);
        assert_given_back(&k);
    }

    #[test]
    fn what_was_there_is_reused_and_left() {
        // Already on vfio_ccw with the mdev: nothing to change, nothing to undo.
        let k = FakeSys::vfio_ccw();
        {
            let mut c = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap();
            assert_eq!(c.original_driver(), Some("vfio_ccw"));
            c.mdev(UUID).unwrap();
        }
        {
            let mut c = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap();
            assert_eq!(c.mdev_auto().unwrap(), UUID);
        }
        assert!(k.has_mdev(UUID));
        assert_eq!(k.driver_of(SCH).as_deref(), Some("vfio_ccw"));
        assert!(!k.state().calls.contains(&"write_file"));
    }

    #[test]
    fn a_device_bus_id_names_its_subchannel_whatever_its_driver() {
        let k = fresh();
        for name in ["0.0.0005", "dev:0.0.0005", "sch:0.0.0000", "0.0.0000"] {
            let sch = sysfs::subchannel_of(&k, name).unwrap();
            assert_eq!(sch, SubchannelId::new(0, 0, 0), "{name}");
        }
        let c = ClaimedSubchannel::claim_with(k.sys(), "0.0.0005").unwrap();
        assert_eq!(c.subchannel(), SubchannelId::new(0, 0, 0));
        assert_eq!(c.original_driver(), Some("io_subchannel"));
        assert_eq!(c.device(), Some(DeviceId::new(0, 0, 5)));
        // On vfio_ccw the device has left the ccw bus; the subchannel's dev_busid still names it.
        assert!(!k.has_ccw_device("0.0.0005"));
        let sch = sysfs::subchannel_of(&k, "dev:0.0.0005").unwrap();
        assert_eq!(sch, SubchannelId::new(0, 0, 0));
        c.release().unwrap();
        assert_given_back(&k);
    }

    #[test]
    fn an_ambiguous_bus_id_is_refused_and_the_prefixes_decide() {
        let k = fresh();
        // Subchannel 0.0.0005 holds device 0.0.0009; device 0.0.0005 is on 0.0.0000.
        k.add_subchannel("0.0.0005", 0, Some("io_subchannel"), Some("0.0.0009"));
        let e = ClaimedSubchannel::claim_with(k.sys(), "0.0.0005").unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::InvalidArgument, "{e}");
        assert!(e.to_string().contains("ambiguous"), "{e}");
        assert_eq!(writes(&k), 0);
        let sch = |n| sysfs::subchannel_of(&k, n).unwrap();
        assert_eq!(sch("sch:0.0.0005"), SubchannelId::new(0, 0, 5));
        assert_eq!(sch("dev:0.0.0005"), SubchannelId::new(0, 0, 0));
        assert_eq!(sch("0.0.0009"), SubchannelId::new(0, 0, 5));
    }

    #[test]
    fn a_subchannel_that_is_not_for_io_is_refused() {
        let k = fresh();
        k.add_subchannel("0.0.ff40", 1, None, None);
        let e = ClaimedSubchannel::claim_with(k.sys(), "sch:0.0.ff40").unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::InvalidArgument, "{e}");
        assert!(e.to_string().contains("not an I/O subchannel"), "{e}");
        assert_eq!(writes(&k), 0);
    }

    #[test]
    fn without_vfio_ccw_nothing_is_touched() {
        let k = fresh();
        k.remove_dir("/sys/bus/css/drivers/vfio_ccw");
        let e = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::Unsupported, "{e}");
        assert!(e.to_string().contains("not loaded"), "{e}");
        assert_eq!(writes(&k), 0);
        assert_given_back(&k);
    }

    #[test]
    fn one_mdev_per_subchannel() {
        // Another mdev on the subchannel: named, and left.
        let k = FakeSys::vfio_ccw();
        let mut c = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap();
        let e = c.mdev(OTHER).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::Busy, "{e}");
        assert!(e.to_string().contains(UUID), "{e}");
        drop(c);
        assert!(k.has_mdev(UUID));
        // An mdev of another subchannel is not this one's.
        k.add_subchannel("0.0.0001", 0, Some("vfio_ccw"), Some("0.0.0006"));
        let mut c = ClaimedSubchannel::claim_with(k.sys(), "sch:0.0.0001").unwrap();
        let e = c.mdev(UUID).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::Busy, "{e}");
        assert!(
            e.to_string().contains("belongs to subchannel 0.0.0000"),
            "{e}"
        );
        drop(c);
        assert!(k.has_mdev(UUID));
    }

    #[tokio::test]
    async fn a_random_mdev_is_made_described_opened_and_removed() {
        let k = fresh();
        let mut c = ClaimedSubchannel::claim_with(k.sys(), "dev:0.0.0005").unwrap();
        assert_eq!(c.driver().as_deref(), Some("vfio_ccw"));
        let t = c.mdev_type().unwrap();
        assert_eq!(t.device_api, "vfio-ccw");
        assert_eq!(t.available_instances, 1);
        assert!(c.uuid().is_none());
        // The kernel's random UUID (the fake hands out the one it opens).
        assert_eq!(c.mdev_auto().unwrap(), UUID);
        assert_eq!(c.uuid(), Some(UUID));
        assert_eq!(c.mdev_type().unwrap().available_instances, 0);
        assert_eq!(c.iommu_group().unwrap(), 0);
        assert_eq!(c.cdev().unwrap(), Path::new("/dev/vfio/devices/vfio0"));
        let backend = Arc::new(c.open(&VfioOptions::default()).unwrap());
        // What a tool does: the backend was shared while it ran; close shuts it down first.
        c.close(backend).await.unwrap();
        assert_given_back(&k);
    }

    #[tokio::test]
    async fn a_device_still_open_is_reported_and_the_rest_undone() {
        let k = fresh();
        let mut c = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap();
        c.mdev(UUID).unwrap();
        let backend = Arc::new(c.open(&VfioOptions::default()).unwrap());
        let still = backend.clone();
        let e = c.close(backend).await.unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::Busy, "{e}");
        assert!(e.to_string().contains("remove mdev"), "{e}");
        assert_eq!(k.override_of(SCH).trim(), "(null)");
        drop(still);
    }

    #[test]
    fn bad_names_are_typed() {
        let k = fresh();
        for (name, what) in [
            ("0.0.0001", "no subchannel or ccw device 0.0.0001"),
            ("sch:0.0.0005", "no subchannel 0.0.0005"),
            ("dev:0.0.0777", "no ccw device 0.0.0777"),
        ] {
            let e = ClaimedSubchannel::claim_with(k.sys(), name).unwrap_err();
            assert_eq!(e.kind, BackendErrorKind::NoDevice, "{e}");
            assert!(e.to_string().contains(what), "{e}");
        }
        for name in ["zero", "0.4.0000", "sch:", "dev:0.0.12345"] {
            let e = ClaimedSubchannel::claim_with(k.sys(), name).unwrap_err();
            assert_eq!(e.kind, BackendErrorKind::InvalidArgument, "{name}: {e}");
            assert!(e.to_string().contains("is not a bus id"), "{e}");
        }
        assert_eq!(writes(&k), 0);
        let mut c = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap();
        let e = c.mdev("not-a-uuid").unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::InvalidArgument, "{e}");
        let e = c.open(&VfioOptions::default()).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::InvalidArgument, "{e}");
        assert!(c.iommu_group().is_err());
    }

    #[test]
    fn mdev_names_and_bus_ids_are_told_apart() {
        assert!(is_mdev_name(UUID));
        assert!(is_mdev_name("/sys/bus/mdev/devices/x"));
        assert!(!is_mdev_name("0.0.0120"));
        assert!(!is_mdev_name("dev:0.0.0120"));
    }
}
