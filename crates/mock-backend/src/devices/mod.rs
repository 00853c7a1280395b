// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Simulated devices.
//!
//! - [`VirtioBlkCcw`]: a virtio-blk-ccw device whose control plane answers the way QEMU's
//!   device answered in the emulated s390x guest (SENSE ID `ff 38 32 02`, feature and revision
//!   negotiation, configuration space in legacy big-endian or revision-1 little-endian), and
//!   whose request queue ([`virtqueue`]) reads and writes a disk in memory or in a file when
//!   the guest notifies it.
//! - [`TestDevice`]: a generic device with an internal buffer for channel edge cases (read,
//!   write, read backward, a search that presents status modifier, unit check, unit exception).

mod test_device;
mod virtio;
pub mod virtqueue;

pub use test_device::TestDevice;
pub use virtio::{VirtioBlkCcw, blk, status};
