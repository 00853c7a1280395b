// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The kernel ABI of vfio-ccw in one place: what `vfio-bindings` carries is re-exported, what
//! it does not is written by hand.
//!
//! `vfio-bindings` 0.7 is generated from `linux/vfio.h`: it has the VFIO constants, the
//! generic structs and the vfio-ccw region and irq indexes (re-exported here).
//! `iommufd-bindings` 0.2 is generated from `linux/iommufd.h`: the IOAS alloc/map/unmap and
//! destroy structs, flags and command numbers. Neither has `linux/vfio_ccw.h` (the four
//! vfio-ccw region layouts, the async commands): the region layouts are ccw-types'
//! (re-exported here); the async command numbers are written here from the UAPI header's
//! documented values (reference §12.1, §12.3).
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

// The iommufd structs, map flags and command numbers are `iommufd-bindings`' (generated from
// `linux/iommufd.h`); sys.rs uses them directly.
pub(crate) use iommufd_bindings::{
    IOMMUFD_CMD_DESTROY, IOMMUFD_CMD_IOAS_ALLOC, IOMMUFD_CMD_IOAS_MAP, IOMMUFD_CMD_IOAS_UNMAP,
    IOMMUFD_TYPE, iommu_destroy, iommu_ioas_alloc, iommu_ioas_map, iommu_ioas_unmap,
    iommufd_ioas_map_flags_IOMMU_IOAS_MAP_FIXED_IOVA as IOMMU_IOAS_MAP_FIXED_IOVA,
    iommufd_ioas_map_flags_IOMMU_IOAS_MAP_READABLE as IOMMU_IOAS_MAP_READABLE,
    iommufd_ioas_map_flags_IOMMU_IOAS_MAP_WRITEABLE as IOMMU_IOAS_MAP_WRITEABLE,
};
// The kernel ABI is fixed: the iommufd ioctls are `_IO(';', 0x80 + n)` on the VFIO type.
const _: () = assert!(IOMMUFD_TYPE == vfio_bindings::bindings::vfio::VFIO_TYPE);
const _: () = assert!(IOMMUFD_CMD_DESTROY == 0x80);
const _: () = assert!(IOMMUFD_CMD_IOAS_ALLOC == 0x81);
const _: () = assert!(IOMMUFD_CMD_IOAS_MAP == 0x85);
const _: () = assert!(IOMMUFD_CMD_IOAS_UNMAP == 0x86);
