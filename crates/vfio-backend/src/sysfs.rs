// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Finding things in sysfs: a vfio-ccw mediated device (its UUID, parent subchannel, IOMMU
//! group and VFIO cdev), and the subchannel a bus id names.

use std::path::{Path, PathBuf};

use ccw_types::{DeviceId, SubchannelId};
use css_core::{BackendError, BackendErrorKind};

use crate::error::{error, sys_error};
use crate::sys::Sys;

/// Where mdevs live on the mdev bus.
pub(crate) const MDEV_BUS: &str = "/sys/bus/mdev/devices";
/// The css bus (subchannels and their drivers).
pub(crate) const CSS_BUS: &str = "/sys/bus/css";
/// Where ccw devices live while the I/O subchannel driver drives their subchannel.
const CCW_DEVICES: &str = "/sys/bus/ccw/devices";

/// A subchannel's sysfs directory.
pub(crate) fn sch_dir(sch: SubchannelId) -> PathBuf {
    Path::new(CSS_BUS).join("devices").join(sch.to_string())
}

/// What a bus id was written to name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    /// `sch:0.0.0001`.
    Subchannel,
    /// `dev:0.0.0120`.
    Device,
    /// `0.0.0120`: either, when that is not ambiguous.
    Either,
}

/// Resolves a bus id to the subchannel it names.
///
/// `sch:<id>` names a subchannel (`/sys/bus/css/devices/<id>`), `dev:<id>` a ccw device (the
/// device number, as `lscss`, `chccwdev` and the `dasd=` parameter write it), found through
/// `/sys/bus/ccw/devices/<id>` while the I/O subchannel driver has it, else through the
/// subchannels' `dev_busid` (which stays while vfio_ccw has the subchannel). A plain `<id>`
/// is whichever of the two exists; when it is a subchannel's id and also the bus id of a
/// device on another subchannel, it is ambiguous and an error: taking a subchannel from its
/// driver is not something to guess about.
///
/// Errors: `InvalidArgument` for text that is not a bus id or is ambiguous, `NoDevice` when
/// nothing has that id.
pub(crate) fn subchannel_of(sys: &dyn Sys, busid: &str) -> Result<SubchannelId, BackendError> {
    const OP: &str = "resolve bus id";
    let (names, text) = if let Some(t) = busid.strip_prefix("sch:") {
        (Names::Subchannel, t)
    } else if let Some(t) = busid.strip_prefix("dev:") {
        (Names::Device, t)
    } else {
        (Names::Either, busid)
    };
    let bad = || {
        error(
            BackendErrorKind::InvalidArgument,
            OP,
            format!(
                "`{busid}` is not a bus id (c.s.nnnn, e.g. 0.0.0120; `sch:` or `dev:` in front says \
                 whether it names a subchannel or a device)"
            ),
        )
    };
    let sch = match names {
        Names::Device => None,
        _ => {
            let id: SubchannelId = text.parse().map_err(|_| bad())?;
            match sys.read_link(&sch_dir(id)) {
                Ok(_) => Some(id),
                Err(e) if e.errno() == libc::ENOENT => None,
                Err(e) => return Err(sys_error("readlink subchannel", e)),
            }
        }
    };
    let dev = match names {
        Names::Subchannel => None,
        _ => {
            let id: DeviceId = text.parse().map_err(|_| bad())?;
            device_subchannel(sys, id)?
        }
    };
    match (sch, dev) {
        (Some(s), Some(d)) if s != d => Err(error(
            BackendErrorKind::InvalidArgument,
            OP,
            format!(
                "`{busid}` is ambiguous: subchannel {s}, and device {text} on subchannel {d}; \
                 write sch:{text} or dev:{text}"
            ),
        )),
        (Some(s), _) | (None, Some(s)) => Ok(s),
        (None, None) => Err(error(
            BackendErrorKind::NoDevice,
            OP,
            match names {
                Names::Subchannel => format!("no subchannel {text} (see lscss)"),
                Names::Device => format!("no ccw device {text} (see lscss)"),
                Names::Either => format!("no subchannel or ccw device {text} (see lscss)"),
            },
        )),
    }
}

/// The subchannel of ccw device `dev`, if there is such a device.
fn device_subchannel(sys: &dyn Sys, dev: DeviceId) -> Result<Option<SubchannelId>, BackendError> {
    let name = dev.to_string();
    // .../css0/0.0.0000/0.0.0005: the device's parent is its subchannel.
    match sys.read_link(&Path::new(CCW_DEVICES).join(&name)) {
        Ok(target) => {
            let parent = target
                .parent()
                .and_then(Path::file_name)
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            return parent.parse().map(Some).map_err(|_| {
                error(
                    BackendErrorKind::Io,
                    "resolve bus id",
                    format!("ccw device {name}'s parent `{parent}` is not a subchannel"),
                )
            });
        }
        Err(e) if e.errno() == libc::ENOENT => {}
        Err(e) => return Err(sys_error("readlink ccw device", e)),
    }
    // Not on the ccw bus (its subchannel is unbound or on vfio_ccw): ask the subchannels.
    let devices = Path::new(CSS_BUS).join("devices");
    let names = match sys.read_dir(&devices) {
        Ok(names) => names,
        // No css bus: not an s390 machine, so no such device.
        Err(e) if e.errno() == libc::ENOENT => return Ok(None),
        Err(e) => return Err(sys_error("read css devices", e)),
    };
    for sch in names {
        let Ok(id) = sch.parse::<SubchannelId>() else {
            continue;
        };
        // Subchannels without a device say `none`; other types have no attribute.
        if let Ok(busid) = sys.read_file(&devices.join(&sch).join("dev_busid")) {
            if busid.trim() == name {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

/// A resolved mediated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mdev {
    /// The UUID (also the VFIO device name of the legacy API).
    pub(crate) uuid: String,
    /// Its sysfs directory.
    pub(crate) dir: PathBuf,
    /// The subchannel it mediates.
    pub(crate) sch: SubchannelId,
}

/// Whether `s` is a UUID in its textual 8-4-4-4-12 form (how mdevs are named).
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Resolves `name` (an mdev UUID, or the mdev's sysfs directory) to the device.
pub(crate) fn resolve(sys: &dyn Sys, name: &str) -> Result<Mdev, BackendError> {
    const OP: &str = "resolve mdev";
    let (uuid, dir) = if name.contains('/') {
        let dir = PathBuf::from(name.trim_end_matches('/'));
        let uuid = dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        (uuid, dir)
    } else {
        (name.to_owned(), Path::new(MDEV_BUS).join(name))
    };
    if !is_uuid(&uuid) {
        return Err(error(
            BackendErrorKind::InvalidArgument,
            OP,
            format!("`{name}` is neither an mdev UUID nor an mdev's sysfs directory"),
        ));
    }
    // The bus entry is a symlink into the device tree: .../css0/0.0.0000/<uuid>. A path that
    // is already the device directory is not a link; its parent is the subchannel then.
    let real = match sys.read_link(&dir) {
        Ok(target) => dir.parent().unwrap_or(Path::new("/")).join(target),
        Err(e) if e.errno() == libc::EINVAL => dir.clone(),
        Err(e) if e.errno() == libc::ENOENT => {
            return Err(error(
                BackendErrorKind::NoDevice,
                OP,
                format!("no mdev {uuid} at {} (create it first)", dir.display()),
            ));
        }
        Err(e) => return Err(sys_error("readlink mdev", e)),
    };
    let parent = real
        .parent()
        .and_then(Path::file_name)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sch = parent.parse::<SubchannelId>().map_err(|_| {
        error(
            BackendErrorKind::InvalidArgument,
            OP,
            format!("mdev {uuid}'s parent `{parent}` is not a subchannel"),
        )
    })?;
    Ok(Mdev { uuid, dir, sch })
}

impl Mdev {
    /// The IOMMU group number (legacy API).
    pub(crate) fn iommu_group(&self, sys: &dyn Sys) -> Result<u32, BackendError> {
        let link = sys
            .read_link(&self.dir.join("iommu_group"))
            .map_err(|e| sys_error("readlink iommu_group", e))?;
        link.file_name()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                error(
                    BackendErrorKind::Io,
                    "readlink iommu_group",
                    format!("`{}` does not name a group", link.display()),
                )
            })
    }

    /// The VFIO cdev node (`/dev/vfio/devices/vfioN`) for the iommufd API.
    pub(crate) fn cdev(&self, sys: &dyn Sys) -> Result<PathBuf, BackendError> {
        let names = sys
            .read_dir(&self.dir.join("vfio-dev"))
            .map_err(|e| sys_error("read vfio-dev", e))?;
        names
            .iter()
            .find(|n| n.starts_with("vfio") && n[4..].bytes().all(|b| b.is_ascii_digit()))
            .map(|n| Path::new("/dev/vfio/devices").join(n))
            .ok_or_else(|| {
                error(
                    BackendErrorKind::Unsupported,
                    "read vfio-dev",
                    "the mdev has no VFIO cdev (kernel without VFIO_DEVICE_CDEV)",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_uuids() {
        assert!(is_uuid("6dfd3ec5-e8b3-4e18-a6fe-57bc9eceb920"));
        assert!(!is_uuid("6dfd3ec5e8b34e18a6fe57bc9eceb920"));
        assert!(!is_uuid("6dfd3ec5-e8b3-4e18-a6fe-57bc9eceb92g"));
        assert!(!is_uuid("../../etc"));
    }
}
