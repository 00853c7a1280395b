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
//! - [`FaultPolicy`]: seeded, deterministic fault injection;
//! - [`dasd`]: an ECKD 3390 model on the same contract;
//! - [`ChannelDevice`]: any of these models behind the simulator's channel as the
//!   [`vcss::Device`] of a guest's virtual subchannel, so a VMM built on vcss runs the same
//!   device and channel code as this simulator.
//! - [`machine`]: a builder from a machine file (`vcss::machine`).
//!
//! A SENSE ID on the default subsystem's virtio-blk-ccw device, with the host program written
//! straight into the control arena (a translator would put it there through the
//! [`ccw_translate::Mapper`]):
//!
//! ```
//! use ccw_types::{CcwFlags, CcwFormat, CcwRepr, CommandOrb, SubchannelId};
//! use css_core::{Backend, BackendEvent, ConditionCode};
//! use mock_backend::MockBackend;
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let guest = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
//! let backend = MockBackend::default_subsystem(&guest)?;
//! let mut events = backend.take_events()?;
//! let sch: SubchannelId = "0.0.0000".parse().unwrap();
//! backend.enable(sch, 0x1234).await?;
//!
//! let mapper = backend.storage_mapper();
//! let data = mapper.alloc_control(256).unwrap();
//! let prog = mapper.alloc_control(8).unwrap();
//! let ccw = CcwRepr { cmd: 0xE4, flags: CcwFlags::SLI, count: 256, cda: data.addr as u32 };
//! mapper.write_control(&prog, 0, &ccw.emit(CcwFormat::Format1).unwrap()).unwrap();
//!
//! let orb = CommandOrb::new(0x1234, prog.addr as u32).emit();
//! assert_eq!(backend.start(sch, &orb).await?, ConditionCode::Cc0);
//! let Some(BackendEvent::Interrupt { irb, .. }) = events.recv().await else { panic!() };
//! assert_eq!(irb.scsw.into_bytes()[..4], [0x00, 0x80, 0x40, 0x07]);
//! assert_eq!(irb.scsw.cpa.get(), prog.addr as u32 + 8);
//! let mut id = [0u8; 4];
//! backend.read_storage(data.addr, &mut id)?;
//! assert_eq!(id, [0xff, 0x38, 0x32, 0x02]);
//! mapper.free_control(prog);
//! mapper.free_control(data);
//! assert!(backend.mapping_stats().is_idle());
//! # Ok::<(), css_core::BackendError>(())
//! # }).unwrap();
//! ```
//!
//! The crate README lists the devices, the fault policy and every place the simulator chose
//! between conflicting sources.

mod backend;
mod channel;
mod channel_device;
pub mod dasd;
pub mod device;
pub mod devices;
mod fault;
pub mod instr;
pub mod machine;
mod storage;

pub use backend::{MockBackend, MockBuilder};
pub use channel_device::ChannelDevice;

pub use device::{
    ChainContext, Command, DataStream, DeviceModel, DeviceOutcome, SenseData, SenseIdData,
    TransferError,
};
pub use fault::{Fault, FaultKind, FaultPolicy};
pub use storage::{ARENA_BASE, DEFAULT_ARENA_SIZE, GUEST_BASE, MAX_ARENA_SIZE, MappingStats};
