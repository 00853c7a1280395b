// SPDX-License-Identifier: Apache-2.0 OR MIT

//! An ECKD 3390 DASD on Hercules-compatible CKD image files.
//!
//! Three layers, each usable on its own:
//! - [`CkdImage`]: the `CKD_P370` image file, whole-track reads and crash-safe whole-track
//!   writes (see the module docs of `image` for the journal), on the host file system or any
//!   other [`ImageFs`] (the in-memory, fault-injecting `testing::MemFs` with feature
//!   `test-utils`);
//! - [`Track`], [`Record`], [`Count`]: the stored track format;
//! - [`Eckd`]: the device, executing ECKD channel commands (Define Extent, Locate Record,
//!   reads, writes, searches, sense) with the semantics Linux's `dasd_eckd` relies on.

mod eckd;
mod geometry;
mod image;
mod io;
mod layout;
mod program;
mod session;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
mod track;

pub use eckd::{Eckd, SliceData, sense};
pub use geometry::{
    CMD_RCD, CU_MODEL, CU_TYPE, DEVICE_TYPE, HEADS, Identity, Model3390, R1_MAX, RCD_LEN, RDC_LEN,
    SENSE_LEN, TRACK_SLOT, TrackAddr, UnknownModel, ascii_to_ebcdic, ebcdic_to_ascii,
    records_per_track,
};
pub use image::{
    CkdImage, CrashPoint, CreateOptions, DEVTYPE_3390, HEADER_LEN, ImageError, ImageErrorKind,
    check_volser, parse_vol1, volume_labels,
};
pub use io::{HostFs, ImageFile, ImageFs, OpenMode};
pub use layout::{LaidOut, LayoutError, LayoutOptions, NativeProgram, lay_out, lay_out_native};
pub use program::{EckdProgram, Payload, ProgramCcw, ProgramError, code, mask};
pub use session::{DasdSession, ProgramOutcome, SessionError};
pub use track::{COUNT_LEN, Count, EOT, HA_LEN, Record, Track, TrackFormatError};
