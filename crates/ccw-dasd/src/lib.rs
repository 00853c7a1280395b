// SPDX-License-Identifier: Apache-2.0 OR MIT

//! An ECKD 3390 DASD driver over any channel subsystem backend: the client side of a DASD.
//!
//! - [`EckdProgram`]: channel programs as Linux's `dasd_eckd` builds them (Define Extent,
//!   Locate Record, reads, writes, formats, searches), as data;
//! - [`lay_out`]: lays one out as format-1 CCWs (IDALs, data chaining, TICs) in guest memory;
//!   [`lay_out_native`] does the same with data pinned through a [`ccw_translate::Mapper`],
//!   for a driver on the channel subsystem itself (no translation);
//! - [`DasdSession`]: runs programs through css-core's `Subchannel::submit` on any
//!   `Backend`: mock-backend's simulated 3390 or a real one through vfio-ccw.
//!
//! The device is not here: mock-backend's `dasd` module models it. Facts both sides share
//! (geometry, track addresses, the count field, EBCDIC) are `ccw_types::eckd`.

mod layout;
mod program;
mod session;

pub use layout::{LaidOut, LayoutError, LayoutOptions, NativeProgram, lay_out, lay_out_native};
pub use program::{
    EckdProgram, Payload, ProgramCcw, ProgramError, code, define_extent, locate, mask,
};
pub use session::{
    DEFAULT_TIMEOUT, DasdSession, PROGRAM_BASE, ProgramOutcome, SessionError, SessionErrorKind,
};
