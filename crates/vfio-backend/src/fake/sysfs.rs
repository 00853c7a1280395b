// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The fake kernel's sysfs: css subchannels and their drivers (`driver_override`, `unbind`,
//! `drivers_probe`), the ccw bus and `dev_busid`, subchannel types, vfio_ccw's mdev type
//! (`create`, one instance per subchannel, its attributes) and the mdevs (`remove`, EBUSY while
//! the device is open), and the kernel's random UUID.

use std::path::{Path, PathBuf};

use vmm_sys_util::errno::Error as Errno;

use super::{FakeSys, Node, State, UUID};
use crate::sys::{Sys, SysResult};

/// Forgets mdev `uuid`'s sysfs entries.
fn remove_mdev(st: &mut State, uuid: &str) {
    let mdev = PathBuf::from(format!("/sys/bus/mdev/devices/{uuid}"));
    st.links.remove(&mdev);
    st.links.remove(&mdev.join("iommu_group"));
    st.dirs.remove(&mdev.join("vfio-dev"));
}

impl FakeSys {
    /// Subchannel 0.0.0000 as a fresh system has it: bound to the I/O subchannel driver, no
    /// override, no mdev.
    pub(crate) fn on_io_subchannel(&self) {
        let mut st = self.state();
        remove_mdev(&mut st, UUID);
        st.links.insert(
            PathBuf::from("/sys/bus/css/devices/0.0.0000/driver"),
            PathBuf::from("../../../../bus/css/drivers/io_subchannel"),
        );
    }

    /// Adds subchannel `sch` of `ty` (0: I/O), bound to `driver`, holding ccw device `dev`.
    pub(crate) fn add_subchannel(
        &self,
        sch: &str,
        ty: u32,
        driver: Option<&str>,
        dev: Option<&str>,
    ) {
        let mut st = self.state();
        let dir = PathBuf::from(format!("/sys/bus/css/devices/{sch}"));
        st.links.insert(
            dir.clone(),
            PathBuf::from(format!("../../../devices/css0/{sch}")),
        );
        if let Some(d) = driver {
            st.links.insert(
                dir.join("driver"),
                PathBuf::from(format!("../../../../bus/css/drivers/{d}")),
            );
        }
        st.files
            .insert(dir.join("driver_override"), "(null)\n".to_owned());
        st.sch_types.insert(sch.to_owned(), ty);
        if let Some(d) = dev {
            st.ccw_devices.insert(sch.to_owned(), d.to_owned());
        }
    }

    /// Whether ccw device `dev` is on the ccw bus (its subchannel is on io_subchannel).
    pub(crate) fn has_ccw_device(&self, dev: &str) -> bool {
        Sys::read_link(self, Path::new(&format!("/sys/bus/ccw/devices/{dev}"))).is_ok()
    }

    /// The driver subchannel `sch` is bound to, if any.
    pub(crate) fn driver_of(&self, sch: &str) -> Option<String> {
        self.state()
            .links
            .get(Path::new(&format!("/sys/bus/css/devices/{sch}/driver")))
            .and_then(|l| l.file_name())
            .map(|n| n.to_string_lossy().into_owned())
    }

    /// Whether mdev `uuid` exists.
    pub(crate) fn has_mdev(&self, uuid: &str) -> bool {
        self.state()
            .links
            .contains_key(Path::new(&format!("/sys/bus/mdev/devices/{uuid}")))
    }

    /// The driver_override attribute of `sch`.
    pub(crate) fn override_of(&self, sch: &str) -> String {
        self.state()
            .files
            .get(Path::new(&format!(
                "/sys/bus/css/devices/{sch}/driver_override"
            )))
            .cloned()
            .unwrap_or_default()
    }
}

/// The driver subchannel `sch` is bound to.
pub(super) fn driver(st: &State, sch: &str) -> Option<String> {
    st.links
        .get(Path::new(&format!("/sys/bus/css/devices/{sch}/driver")))
        .and_then(|l| l.file_name())
        .map(|n| n.to_string_lossy().into_owned())
}

/// The mdevs whose parent is subchannel `sch`.
pub(super) fn mdevs_of(st: &State, sch: &str) -> Vec<String> {
    let mut v: Vec<String> = st
        .links
        .iter()
        .filter_map(|(k, target)| {
            let uuid = k.to_str()?.strip_prefix("/sys/bus/mdev/devices/")?;
            let parent = target.parent()?.file_name()?;
            (!uuid.contains('/') && parent == sch).then(|| uuid.to_owned())
        })
        .collect();
    v.sort();
    v
}

pub(super) fn read_link(st: &State, path: &Path) -> SysResult<PathBuf> {
    let p = path.to_string_lossy();
    if let Some(dev) = p.strip_prefix("/sys/bus/ccw/devices/") {
        // The ccw device exists while io_subchannel drives its subchannel.
        return st
            .ccw_devices
            .iter()
            .find(|(sch, d)| {
                d.as_str() == dev && driver(st, sch).as_deref() == Some("io_subchannel")
            })
            .map(|(sch, d)| PathBuf::from(format!("../../../devices/css0/{sch}/{d}")))
            .ok_or(Errno::new(libc::ENOENT));
    }
    st.links.get(path).cloned().ok_or(Errno::new(libc::ENOENT))
}

pub(super) fn read_dir(st: &State, path: &Path) -> SysResult<Vec<String>> {
    let p = path.to_string_lossy();
    if p == "/sys/bus/css/devices" {
        let mut names: Vec<String> = st
            .links
            .keys()
            .filter_map(|k| k.to_str()?.strip_prefix("/sys/bus/css/devices/"))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_owned)
            .collect();
        names.sort();
        return Ok(names);
    }
    if let Some(sch) = p.strip_prefix("/sys/bus/css/devices/") {
        if !sch.contains('/') {
            // A subchannel's directory: its attributes and its mdevs.
            if !st.links.contains_key(path) {
                return Err(Errno::new(libc::ENOENT));
            }
            let mut names = vec!["driver_override".to_owned(), "type".to_owned()];
            names.extend(mdevs_of(st, sch));
            return Ok(names);
        }
    }
    st.dirs.get(path).cloned().ok_or(Errno::new(libc::ENOENT))
}

pub(super) fn read_file(st: &State, path: &Path) -> SysResult<String> {
    let p = path.to_string_lossy();
    if let Some((sch, attr)) = p
        .strip_prefix("/sys/bus/css/devices/")
        .and_then(|r| r.split_once('/'))
    {
        if st
            .links
            .contains_key(Path::new(&format!("/sys/bus/css/devices/{sch}")))
        {
            let vfio = driver(st, sch).as_deref() == Some("vfio_ccw");
            let ty = st.sch_types.get(sch).copied().unwrap_or(0);
            match attr {
                "type" => return Ok(format!("{ty}\n")),
                "dev_busid" => {
                    let d = st.ccw_devices.get(sch).map_or("none", String::as_str);
                    return Ok(format!("{d}\n"));
                }
                // The mdev type exists while vfio_ccw drives the subchannel.
                "mdev_supported_types/vfio_ccw-io/name" if vfio => {
                    return Ok("I/O subchannel (Non-QDIO)\n".to_owned());
                }
                "mdev_supported_types/vfio_ccw-io/device_api" if vfio => {
                    return Ok("vfio-ccw\n".to_owned());
                }
                "mdev_supported_types/vfio_ccw-io/available_instances" if vfio => {
                    let free = usize::from(mdevs_of(st, sch).is_empty());
                    return Ok(format!("{free}\n"));
                }
                _ => {}
            }
        }
    }
    st.files.get(path).cloned().ok_or(Errno::new(libc::ENOENT))
}

/// The kernel's side of the device lifecycle: `driver_override`, a driver's `unbind`,
/// `drivers_probe`, an mdev type's `create` and an mdev's `remove`, as css and mdev do.
pub(super) fn write_file(st: &mut State, path: &Path, value: &str) -> SysResult<()> {
    let v = value.trim();
    let p = path.to_string_lossy().into_owned();
    let dev = |sch: &str| PathBuf::from(format!("/sys/bus/css/devices/{sch}"));
    let driver_link = |sch: &str| dev(sch).join("driver");
    if p == "/sys/bus/css/drivers_probe" {
        if !st.links.contains_key(&dev(v)) {
            return Err(Errno::new(libc::ENODEV));
        }
        if driver(st, v).is_none() {
            let ovr = st
                .files
                .get(&dev(v).join("driver_override"))
                .map(|s| s.trim().to_owned())
                .filter(|s| s != "(null)")
                .unwrap_or_else(|| "io_subchannel".to_owned());
            // A driver that is not loaded binds nothing.
            let loaded = ovr != "vfio_ccw"
                || st
                    .dirs
                    .contains_key(Path::new("/sys/bus/css/drivers/vfio_ccw"));
            if loaded {
                st.links.insert(
                    driver_link(v),
                    PathBuf::from(format!("../../../../bus/css/drivers/{ovr}")),
                );
            }
        }
        return Ok(());
    }
    if let Some(drv) = p
        .strip_prefix("/sys/bus/css/drivers/")
        .and_then(|r| r.strip_suffix("/unbind"))
    {
        if driver(st, v).as_deref() != Some(drv) {
            return Err(Errno::new(libc::ENODEV));
        }
        st.links.remove(&driver_link(v));
        return Ok(());
    }
    if let Some(rest) = p.strip_prefix("/sys/bus/css/devices/") {
        let (sch, attr) = rest.split_once('/').ok_or(Errno::new(libc::EACCES))?;
        if !st.links.contains_key(&dev(sch)) {
            return Err(Errno::new(libc::ENOENT));
        }
        if attr == "driver_override" {
            let stored = if v.is_empty() { "(null)" } else { v };
            st.files.insert(path.to_owned(), format!("{stored}\n"));
            return Ok(());
        }
        if attr == "mdev_supported_types/vfio_ccw-io/create" {
            if driver(st, sch).as_deref() != Some("vfio_ccw") {
                return Err(Errno::new(libc::ENOENT));
            }
            let mdev = PathBuf::from(format!("/sys/bus/mdev/devices/{v}"));
            if st.links.contains_key(&mdev) {
                return Err(Errno::new(libc::EEXIST));
            }
            // vfio_ccw offers one instance per subchannel (mdev core: EUSERS).
            if !mdevs_of(st, sch).is_empty() {
                return Err(Errno::new(libc::EUSERS));
            }
            st.links.insert(
                mdev.clone(),
                PathBuf::from(format!("../../../devices/css0/{sch}/{v}")),
            );
            st.links.insert(
                mdev.join("iommu_group"),
                PathBuf::from("../../../../kernel/iommu_groups/0"),
            );
            st.dirs
                .insert(mdev.join("vfio-dev"), vec!["vfio0".to_owned()]);
            return Ok(());
        }
        return Err(Errno::new(libc::EACCES));
    }
    if let Some(uuid) = p
        .strip_prefix("/sys/bus/mdev/devices/")
        .and_then(|r| r.strip_suffix("/remove"))
    {
        if !st
            .links
            .contains_key(Path::new(&format!("/sys/bus/mdev/devices/{uuid}")))
        {
            return Err(Errno::new(libc::ENOENT));
        }
        // vfio-ccw refuses to remove an mdev whose device is open.
        if st
            .open_fds
            .values()
            .any(|n| matches!(n, Node::Device | Node::Cdev))
        {
            return Err(Errno::new(libc::EBUSY));
        }
        remove_mdev(st, uuid);
        return Ok(());
    }
    Err(Errno::new(libc::EACCES))
}
