// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The kernel ABI of vfio-ccw in one place: what `vfio-bindings` carries is re-exported, what
//! it does not is written by hand.
//!
//! `vfio-bindings` 0.7 is generated from `linux/vfio.h`: it has the VFIO constants, the
//! generic structs and the vfio-ccw region and irq indexes (re-exported here). It has neither
//! `linux/vfio_ccw.h` (the four vfio-ccw region layouts, the async commands) nor
//! `linux/iommufd.h` (IOAS alloc/map/unmap, destroy). The region layouts are ccw-types'
//! (re-exported here); the async commands and the iommufd structs are defined here from the
//! UAPI headers' documented layouts (reference §12.1, §12.3).
//!
//! Kernel structs are native-endian (big-endian on s390x, the only place vfio-ccw exists);
//! the architected blocks *inside* the regions (ORB, SCSW, IRB, SCHIB) are big-endian always
//! and are decoded by ccw-types.

// The io region (`VFIO_CCW_CONFIG_REGION_INDEX`) and the io, crw and req interrupts
// (`VFIO_CCW_{IO,CRW,REQ}_IRQ_INDEX`, `VFIO_CCW_NUM_IRQS`), from vfio-bindings.
pub use vfio_bindings::bindings::vfio::{
    VFIO_CCW_CONFIG_REGION_INDEX, VFIO_CCW_CRW_IRQ_INDEX, VFIO_CCW_IO_IRQ_INDEX, VFIO_CCW_NUM_IRQS,
    VFIO_CCW_REQ_IRQ_INDEX,
};
// The kernel ABI is fixed: these are the values `linux/vfio.h` gives them.
const _: () = assert!(VFIO_CCW_CONFIG_REGION_INDEX == 0);
const _: () = assert!(VFIO_CCW_IO_IRQ_INDEX == 0);
const _: () = assert!(VFIO_CCW_CRW_IRQ_INDEX == 1);
const _: () = assert!(VFIO_CCW_REQ_IRQ_INDEX == 2);
const _: () = assert!(VFIO_CCW_NUM_IRQS == 3);
/// `VFIO_CCW_ASYNC_CMD_HSCH`: the async command region's HALT SUBCHANNEL.
pub const VFIO_CCW_ASYNC_CMD_HSCH: u32 = CmdRegion::HSCH;
/// `VFIO_CCW_ASYNC_CMD_CSCH`: the async command region's CLEAR SUBCHANNEL.
pub const VFIO_CCW_ASYNC_CMD_CSCH: u32 = CmdRegion::CSCH;

// The four region layouts (`struct ccw_io_region`, `ccw_cmd_region`, `ccw_schib_region`,
// `ccw_crw_region`) are ccw-types' zerocopy structs.
pub use ccw_types::{CmdRegion, CrwRegion, IoRegion, SchibRegion};

/// `IOMMU_IOAS_MAP_FIXED_IOVA`.
pub const IOMMU_IOAS_MAP_FIXED_IOVA: u32 = 1 << 0;
/// `IOMMU_IOAS_MAP_WRITEABLE`.
pub const IOMMU_IOAS_MAP_WRITEABLE: u32 = 1 << 1;
/// `IOMMU_IOAS_MAP_READABLE`.
pub const IOMMU_IOAS_MAP_READABLE: u32 = 1 << 2;

/// `struct iommu_destroy`.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct IommuDestroy {
    /// `sizeof(struct iommu_destroy)`.
    pub size: u32,
    /// The object to destroy.
    pub id: u32,
}

/// `struct iommu_ioas_alloc`.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct IommuIoasAlloc {
    /// `sizeof(struct iommu_ioas_alloc)`.
    pub size: u32,
    /// Must be 0.
    pub flags: u32,
    /// Output: the new IOAS id.
    pub out_ioas_id: u32,
}

/// `struct iommu_ioas_map`.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct IommuIoasMap {
    /// `sizeof(struct iommu_ioas_map)`.
    pub size: u32,
    /// `IOMMU_IOAS_MAP_*`.
    pub flags: u32,
    /// The IOAS.
    pub ioas_id: u32,
    /// Must be 0.
    pub reserved: u32,
    /// Host virtual address.
    pub user_va: u64,
    /// Length in bytes.
    pub length: u64,
    /// IOVA (input with `FIXED_IOVA`).
    pub iova: u64,
}

/// `struct iommu_ioas_unmap`.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct IommuIoasUnmap {
    /// `sizeof(struct iommu_ioas_unmap)`.
    pub size: u32,
    /// The IOAS.
    pub ioas_id: u32,
    /// IOVA.
    pub iova: u64,
    /// In: length; out: bytes unmapped.
    pub length: u64,
}

const _: () = assert!(size_of::<IommuDestroy>() == 8);
const _: () = assert!(size_of::<IommuIoasAlloc>() == 12);
const _: () = assert!(size_of::<IommuIoasMap>() == 40);
const _: () = assert!(size_of::<IommuIoasUnmap>() == 24);
