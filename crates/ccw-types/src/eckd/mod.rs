// SPDX-License-Identifier: Apache-2.0 OR MIT

//! ECKD (3390) facts both sides of a DASD share: the device model (mock-backend's `Eckd`) and
//! the driver (ccw-dasd) build on them, neither owns them. Geometry and track addresses,
//! record capacity, the count field and EBCDIC.

mod geometry;

pub use geometry::{
    CMD_RCD, COUNT_LEN, Count, DEVICE_TYPE, HEADS, R1_MAX, RCD_LEN, RDC_LEN, SENSE_LEN, TRACK_SLOT,
    TrackAddr, ascii_to_ebcdic, ebcdic_to_ascii, records_per_track,
};
