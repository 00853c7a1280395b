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
//! use vfio_backend::{ClaimedSubchannel, VfioOptions};
//! let mut claim = ClaimedSubchannel::claim("0.0.0313")?;
//! claim.mdev("6dfd3ec5-e8b3-4e18-a6fe-57bc9eceb920")?;
//! let backend = claim.open(&VfioOptions::default())?;
//! // ... drive the subchannel ...
//! backend.shutdown().await; // the mdev cannot be removed while its device is open
//! claim.release()?; // or let it drop
//! # Ok(()) }
//! ```
//!
//! A subchannel already bound to vfio_ccw is used as it is and left so; an mdev that already
//! exists is reused and left so. Only what this value changed is undone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ccw_types::SubchannelId;
use css_core::{BackendError, BackendErrorKind};

use crate::backend::{VfioBackend, VfioOptions};
use crate::device::VfioDevice;
use crate::error::{error, sys_error};
use crate::sys::{HostSys, Sys};
use crate::sysfs::{MDEV_BUS, is_uuid};

/// The driver vfio-ccw registers on the css bus.
const VFIO_CCW: &str = "vfio_ccw";
/// The css bus.
const CSS_BUS: &str = "/sys/bus/css";

/// What a claim changed, to undo it.
#[derive(Debug)]
struct Binding {
    /// The driver the subchannel had (`None`: unbound).
    driver: Option<String>,
    /// Its `driver_override` before (`None`: none).
    driver_override: Option<String>,
}

/// A subchannel taken for vfio-ccw, with its mediated device. Undoes what it changed when
/// released or dropped.
pub struct ClaimedSubchannel {
    sys: Arc<dyn Sys>,
    sch: SubchannelId,
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

fn sch_dir(sch: SubchannelId) -> PathBuf {
    Path::new(CSS_BUS).join("devices").join(sch.to_string())
}

fn driver_of(sys: &dyn Sys, sch: SubchannelId) -> Option<String> {
    sys.read_link(&sch_dir(sch).join("driver"))
        .ok()
        .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()))
}

impl ClaimedSubchannel {
    /// Claims the subchannel `busid` (`0.0.0313`) for vfio_ccw.
    ///
    /// Errors: `InvalidArgument` for a bus id that does not parse, `NoDevice` for a subchannel
    /// that does not exist, the errno of a failed sysfs write (`PermissionDenied` without
    /// root), `Io` when the subchannel did not end up on vfio_ccw (module not loaded). On
    /// error nothing stays changed.
    pub fn claim(busid: &str) -> Result<Self, BackendError> {
        Self::claim_with(Arc::new(HostSys), busid)
    }

    pub(crate) fn claim_with(sys: Arc<dyn Sys>, busid: &str) -> Result<Self, BackendError> {
        const OP: &str = "claim subchannel";
        let sch: SubchannelId = busid.parse().map_err(|_| {
            error(
                BackendErrorKind::InvalidArgument,
                OP,
                format!("`{busid}` is not a subchannel bus id (0.0.0000)"),
            )
        })?;
        let dir = sch_dir(sch);
        if let Err(e) = sys.read_link(&dir) {
            return Err(if e.errno() == libc::ENOENT {
                error(
                    BackendErrorKind::NoDevice,
                    OP,
                    format!("no subchannel {sch} ({} is absent)", dir.display()),
                )
            } else {
                sys_error("readlink subchannel", e)
            });
        }
        let driver = driver_of(&*sys, sch);
        let mut claim = ClaimedSubchannel {
            sys,
            sch,
            binding: None,
            mdev: None,
        };
        if driver.as_deref() == Some(VFIO_CCW) {
            return Ok(claim);
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
            let unbind = Path::new(CSS_BUS).join("drivers").join(d).join("unbind");
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
                    "{sch} is bound to {} after probing, not vfio_ccw (is the module loaded?)",
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

    /// Creates the vfio_ccw-io mediated device `uuid` on the subchannel, or reuses it when it
    /// exists. Returns its sysfs directory.
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
            let created = if self.sys.read_link(&dir).is_ok() {
                false
            } else {
                let create = sch_dir(self.sch).join("mdev_supported_types/vfio_ccw-io/create");
                self.write(&create, uuid, OP)?;
                true
            };
            self.mdev = Some((uuid.to_owned(), created));
        }
        Ok(dir)
    }

    /// Opens the mdev (see [`ClaimedSubchannel::mdev`]) as a backend. Shut the backend down
    /// ([`VfioBackend::shutdown`]) before releasing the claim: the kernel does not remove an
    /// mdev whose device is open (the release then reports EBUSY and still rebinds what it
    /// can).
    pub fn open(&self, options: &VfioOptions) -> Result<VfioBackend, BackendError> {
        let Some((uuid, _)) = &self.mdev else {
            return Err(error(
                BackendErrorKind::InvalidArgument,
                "open claimed subchannel",
                "no mdev yet: call mdev(uuid) first",
            ));
        };
        let device = VfioDevice::open_with(self.sys.clone(), uuid, options.api)?;
        VfioBackend::from_device(device, options)
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

    fn fresh() -> FakeSys {
        let k = FakeSys::vfio_ccw();
        k.on_io_subchannel();
        k
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
        assert!(!k.has_mdev(UUID));
        assert_eq!(k.driver_of(SCH).as_deref(), Some("io_subchannel"));
        assert_eq!(k.override_of(SCH).trim(), "(null)");
    }

    #[test]
    fn drop_undoes_like_release() {
        let k = fresh();
        {
            let mut c = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap();
            c.mdev(UUID).unwrap();
        }
        assert!(!k.has_mdev(UUID));
        assert_eq!(k.driver_of(SCH).as_deref(), Some("io_subchannel"));
        assert_eq!(k.override_of(SCH).trim(), "(null)");
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
    fn a_failed_create_gives_the_subchannel_back() {
        let k = fresh();
        let mut c = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap();
        k.fail("write_file", libc::EACCES);
        let e = c.mdev(UUID).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::PermissionDenied, "{e}");
        k.state().fail.clear();
        drop(c);
        assert!(!k.has_mdev(UUID));
        assert_eq!(k.driver_of(SCH).as_deref(), Some("io_subchannel"));
    }

    #[test]
    fn what_was_there_is_reused_and_left() {
        // Already on vfio_ccw with the mdev: nothing to change, nothing to undo.
        let k = FakeSys::vfio_ccw();
        {
            let mut c = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap();
            c.mdev(UUID).unwrap();
        }
        assert!(k.has_mdev(UUID));
        assert_eq!(k.driver_of(SCH).as_deref(), Some("vfio_ccw"));
        assert!(!k.state().calls.contains(&"write_file"));
    }

    #[test]
    fn bad_names_are_typed() {
        let k = fresh();
        let e = ClaimedSubchannel::claim_with(k.sys(), "0.0.0001").unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::NoDevice, "{e}");
        let e = ClaimedSubchannel::claim_with(k.sys(), "zero").unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::InvalidArgument, "{e}");
        let mut c = ClaimedSubchannel::claim_with(k.sys(), SCH).unwrap();
        let e = c.mdev("not-a-uuid").unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::InvalidArgument, "{e}");
        let e = c.open(&VfioOptions::default()).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::InvalidArgument, "{e}");
    }
}
