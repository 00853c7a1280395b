// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A simulated s390 channel subsystem.
//!
//! `mock-backend` executes host channel programs the way a channel subsystem does, with exact
//! SCSW/IRB semantics, against simulated devices, and implements [`css_core::Backend`] and
//! [`ccw_translate::Mapper`] so that everything above it (css-core, ccwctl, the conformance
//! suite) runs on any machine.
//!
//! - [`device`]: the [`DeviceModel`] trait a simulated device implements, with the
//!   [`DataStream`] through which it moves data;
//! - [`instr`]: the I/O instructions and status transitions as pure functions;
//! - [`devices`]: a virtio-blk-ccw control device that answers as QEMU's does, and a generic
//!   test device;
//! - [`FaultPolicy`]: seeded, deterministic fault injection.

mod backend;
mod channel;
pub mod device;
pub mod devices;
mod fault;
pub mod instr;
mod storage;

pub use backend::{MockBackend, MockBuilder};

pub use device::{
    ChainContext, Command, DataStream, DeviceModel, DeviceOutcome, SenseData, SenseIdData,
    TransferError,
};
pub use fault::{Fault, FaultKind, FaultPolicy};
pub use storage::{ARENA_BASE, DEFAULT_ARENA_SIZE, GUEST_BASE, MAX_ARENA_SIZE, MappingStats};
