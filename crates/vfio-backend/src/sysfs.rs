// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Finding a vfio-ccw mediated device in sysfs: its UUID, parent subchannel, IOMMU group and
//! VFIO cdev.

use std::path::{Path, PathBuf};

use ccw_types::SubchannelId;
use css_core::{BackendError, BackendErrorKind};

use crate::error::{error, sys_error};
use crate::sys::Sys;

/// Where mdevs live on the mdev bus.
pub(crate) const MDEV_BUS: &str = "/sys/bus/mdev/devices";

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

/// Whether `s` is a UUID in its textual 8-4-4-4-12 form.
pub(crate) fn is_uuid(s: &str) -> bool {
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
