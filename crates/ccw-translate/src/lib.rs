// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Zero-copy, hostile-guest-safe translation of s390 channel programs from a guest's address
//! space to the device address space of a backend: what Linux vfio-ccw's `vfio_ccw_cp.c`
//! does, without its bug history.
//!
//! - [`Translator::translate`] reads the guest's channel program through
//!   [`vm_memory::GuestMemory`], copying every control block (CCW, IDAW) out of guest memory
//!   exactly once before parsing it, converts format-0 CCWs to format 1, follows command and
//!   data chaining and TICs (bounded by [`Limits`]), pins every data piece through the
//!   backend's [`Mapper`] and writes host CCWs with format-2 IDALs into the backend's control
//!   memory. Data is never copied: host IDAWs point at the guest's own pages. The common
//!   program (one segment, no TIC) takes a one-pass fast path with one batched
//!   [`Mapper::pin_many`]; a mapper whose guest memory is mapped once
//!   ([`Mapper::premapped`], IOVA = GPA) is not called per data range at all.
//! - [`ChannelProgram`] holds the result: [`ChannelProgram::host_orb`] to start it,
//!   [`ChannelProgram::update_scsw`] to map the SCSW's CCW address back to the guest,
//!   [`ChannelProgram::is_pinned`] for DMA-unmap notifications. It holds its [`Mapper`] and
//!   releases itself: dropping it unpins and frees exactly once.
//! - [`TranslateError`] names the failing CCW (index and guest address), the reason, the
//!   errno vfio-ccw returns ([`TranslateError::errno`]) and the channel-program check a real
//!   channel subsystem would report ([`TranslateError::program_check`]).
//!
//! Why vm-memory: it is the rust-vmm standard for guest memory, every Rust VMM already has a
//! `GuestMemory`, and its `Bytes::read_slice` copies out of guest memory with volatile
//! accesses, never handing out a `&[u8]` that the guest could change underneath.
//!
//! A mapper's bookkeeping (pins, control areas) is [`ledger`]'s, written once for every
//! backend; [`sync::lock`] is the workspace's one poison-tolerant lock helper.
//!
//! With the `test-utils` feature, `testing::RecordingMapper` is a complete in-memory mapper
//! for unit tests, benchmarks and fuzzing.

pub mod control;
pub mod error;
pub mod ledger;
pub mod mapper;
mod program;
pub mod sync;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
mod translator;

pub use error::{Block, MapOp, TranslateError, TranslateReason, Unsupported};
pub use mapper::{ControlArea, DeviceAddr, DmaAccess, GuestRange, MapError, Mapper, Premapped};
pub use program::ChannelProgram;
pub use translator::{Limits, Translator};

// A subchannel's translator and its in-flight program move between tasks and threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Translator>();
    send_sync::<ChannelProgram>();
    send_sync::<TranslateError>();
};
