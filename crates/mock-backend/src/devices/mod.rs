// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Simulated devices.
//!
//! - [`VirtioBlkCcw`]: the control plane of a virtio-blk-ccw device, answering the way QEMU's
//!   device answered in the emulated s390x guest (SENSE ID `ff 38 32 02`, feature and revision
//!   negotiation, configuration space in legacy big-endian or revision-1 little-endian).
//! - [`TestDevice`]: a generic device with an internal buffer for channel edge cases (read,
//!   write, read backward, a search that presents status modifier, unit check, unit exception).

mod test_device;
mod virtio;

pub use test_device::TestDevice;
pub use virtio::VirtioBlkCcw;
