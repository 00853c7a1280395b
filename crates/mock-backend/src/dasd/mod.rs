// SPDX-License-Identifier: Apache-2.0 OR MIT

//! An ECKD 3390 DASD on Hercules-compatible CKD image files: the device. The driver side
//! (channel programs, labels, read/write through a channel subsystem) is the `ccw-dasd` crate,
//! which runs on any backend; the facts both share (geometry, the count field, EBCDIC) are
//! `ccw_types::eckd`, re-exported here for the device's users.
//!
//! Three layers, each usable on its own:
//! - [`CkdImage`]: the `CKD_P370` image file, whole-track reads and crash-safe whole-track
//!   writes (see the module docs of `image` for the journal), on the host file system or any
//!   other [`ImageFs`] (the in-memory, fault-injecting `testing::MemFs` with feature
//!   `test-utils`);
//! - [`Track`], [`Record`]: the stored track format;
//! - [`Eckd`]: the device, executing ECKD channel commands (Define Extent, Locate Record,
//!   reads, writes, searches, sense) with the semantics Linux's `dasd_eckd` relies on.

mod eckd;
mod identity;
mod image;
mod io;
mod ipl;
mod model;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
mod track;

pub use ccw_types::eckd::{
    CMD_RCD, COUNT_LEN, Count, DEVICE_TYPE, HEADS, R1_MAX, RCD_LEN, RDC_LEN, SENSE_LEN, TRACK_SLOT,
    TrackAddr, ascii_to_ebcdic, ebcdic_to_ascii, records_per_track,
};
pub use eckd::{Eckd, SliceData, pg, sense};
pub use identity::{CU_MODEL, CU_TYPE, Identity};
pub use image::{
    CkdImage, CrashPoint, CreateOptions, DEVTYPE_3390, HEADER_LEN, ImageError, ImageErrorKind,
    check_volser, parse_vol1, volume_labels,
};
pub use io::{HostFs, ImageFile, ImageFs, OpenMode};
pub use ipl::{IplChain, IplChainError};
pub use model::{Model3390, UnknownModel};
pub use track::{EOT, HA_LEN, Record, Track, TrackFormatError};
