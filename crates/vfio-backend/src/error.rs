// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Turning errnos into css-core's typed [`BackendError`], and errnos of the io and async
//! command regions into condition codes the way QEMU's vfio-ccw passthrough does.

use ccw_types::{ConditionCode, GuestAnswer};
use css_core::{BackendError, BackendErrorKind};
use vmm_sys_util::errno::Error as Errno;

/// The [`BackendErrorKind`] an errno stands for.
pub(crate) fn kind_of(errno: i32) -> BackendErrorKind {
    match errno {
        libc::ENODEV | libc::ENOENT | libc::ENXIO => BackendErrorKind::NoDevice,
        libc::EACCES | libc::EPERM => BackendErrorKind::PermissionDenied,
        libc::EAGAIN => BackendErrorKind::Again,
        // In use: an open device, an mdev type without free instances.
        libc::EBUSY | libc::EUSERS => BackendErrorKind::Busy,
        libc::EINVAL | libc::EFAULT => BackendErrorKind::InvalidArgument,
        libc::ENOTTY | libc::EOPNOTSUPP => BackendErrorKind::Unsupported,
        _ => BackendErrorKind::Io,
    }
}

/// A [`BackendError`] for the failed system call `op`.
pub(crate) fn sys_error(op: &'static str, e: Errno) -> BackendError {
    let errno = e.errno();
    BackendError::new(kind_of(errno), op)
        .with_errno(errno)
        .with_detail(std::io::Error::from_raw_os_error(errno).to_string())
}

/// A [`BackendError`] of `kind` for `op` with a detail and no errno.
pub(crate) fn error(
    kind: BackendErrorKind,
    op: &'static str,
    detail: impl Into<String>,
) -> BackendError {
    BackendError::new(kind, op).with_detail(detail)
}

/// What an errno from writing the io or async command region means (QEMU's mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegionOutcome {
    /// The instruction completed with this condition code.
    Cc(ConditionCode),
    /// The region was busy: write it again.
    Retry,
    /// A failure that is not a condition code.
    Fail,
}

/// Maps the errno of an io / async region write through QEMU's table
/// ([`ccw_types::Errno::guest_answer`]): `EBUSY` -> cc 2, `ENODEV` / `EACCES` -> cc 3,
/// `EAGAIN` -> retry. Where QEMU presents a unit exception to its guest, we have no guest to
/// present it to: those errnos (and any outside vfio-ccw's set) become a typed error.
pub(crate) fn region_outcome(errno: i32) -> RegionOutcome {
    match ccw_types::Errno::from_raw(errno).map(ccw_types::Errno::guest_answer) {
        Some(GuestAnswer::Cc(cc)) => RegionOutcome::Cc(cc),
        Some(GuestAnswer::Retry) => RegionOutcome::Retry,
        Some(GuestAnswer::UnitException) | None => RegionOutcome::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_errnos_map_like_qemu() {
        assert_eq!(
            region_outcome(libc::EBUSY),
            RegionOutcome::Cc(ConditionCode::Cc2)
        );
        assert_eq!(
            region_outcome(libc::ENODEV),
            RegionOutcome::Cc(ConditionCode::Cc3)
        );
        assert_eq!(
            region_outcome(libc::EACCES),
            RegionOutcome::Cc(ConditionCode::Cc3)
        );
        assert_eq!(region_outcome(libc::EAGAIN), RegionOutcome::Retry);
        for e in [
            libc::EINVAL,
            libc::EIO,
            libc::EOPNOTSUPP,
            libc::EFAULT,
            libc::ENOMEM,
            libc::EPERM,
        ] {
            assert_eq!(region_outcome(e), RegionOutcome::Fail, "errno {e}");
        }
    }

    #[test]
    fn sys_errors_keep_errno_and_kind() {
        let e = sys_error("VFIO_SET_IOMMU", Errno::new(libc::ENODEV));
        assert_eq!(e.kind, BackendErrorKind::NoDevice);
        assert_eq!(e.errno, Some(libc::ENODEV));
        assert_eq!(e.op, "VFIO_SET_IOMMU");
        assert_eq!(kind_of(libc::EOPNOTSUPP), BackendErrorKind::Unsupported);
        assert_eq!(kind_of(libc::EPERM), BackendErrorKind::PermissionDenied);
        assert_eq!(kind_of(libc::EIO), BackendErrorKind::Io);
        assert_eq!(kind_of(libc::EBUSY), BackendErrorKind::Busy);
        assert_eq!(kind_of(libc::EUSERS), BackendErrorKind::Busy);
    }
}
