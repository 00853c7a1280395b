// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The device behind a virtual subchannel: what vcss calls when the guest starts, resumes, halts
//! or clears a function.
//!
//! vcss owns the subchannel (SCHIB, status, interruptions); the device owns the channel program's
//! execution. A device model (a simulator's test device, virtio-blk-ccw, 3390) answers
//! synchronously with [`Outcome::Ended`]; a passed-through subchannel (css-core `Subchannel`
//! over vfio) answers [`Outcome::InProgress`] and the VMM reports the ending later with
//! [`Vcss::complete`](crate::Vcss::complete).

use ccw_types::{CommandOrb, DeviceStatus, SubchannelStatus};

/// Guest storage as a device sees it: absolute addresses, whole transfers or an error.
///
/// Implemented for every vm-memory [`GuestMemory`](vm_memory::GuestMemory); a trait of its own so
/// that [`Device`] stays object-safe.
pub trait GuestIo {
    /// Reads `buf.len()` bytes at `addr`; `Err(addr)` names the first address not accessible.
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), u64>;
    /// Writes `data` at `addr`; `Err(addr)` names the first address not accessible.
    fn write_at(&self, addr: u64, data: &[u8]) -> Result<(), u64>;
    /// Whether all of `addr..addr + len` is guest storage the channel subsystem may write
    /// (`write`) or read.
    fn accessible(&self, addr: u64, len: usize, write: bool) -> bool;
}

impl<M: vm_memory::GuestMemory> GuestIo for M {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), u64> {
        vm_memory::Bytes::read_slice(self, buf, vm_memory::GuestAddress(addr)).map_err(|_| addr)
    }
    fn write_at(&self, addr: u64, data: &[u8]) -> Result<(), u64> {
        vm_memory::Bytes::write_slice(self, data, vm_memory::GuestAddress(addr)).map_err(|_| addr)
    }
    fn accessible(&self, addr: u64, len: usize, write: bool) -> bool {
        let access = if write {
            vm_memory::Permissions::Write
        } else {
            vm_memory::Permissions::Read
        };
        vm_memory::GuestMemory::check_range(self, vm_memory::GuestAddress(addr), len, access)
    }
}

/// Basic sense data (command 0x04), up to 32 bytes (reference §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenseData {
    /// The sense bytes; bytes past `len` are zero.
    pub bytes: [u8; 32],
    /// How many bytes the device presents (32 for modern devices).
    pub len: u8,
}

impl Default for SenseData {
    /// No error: 32 zero bytes.
    fn default() -> Self {
        Self {
            bytes: [0; 32],
            len: 32,
        }
    }
}

impl SenseData {
    /// Sense byte 0 bit 0: command reject.
    pub const COMMAND_REJECT: u8 = 0x80;
    /// Sense byte 0 bit 1: intervention required.
    pub const INTERVENTION_REQUIRED: u8 = 0x40;
    /// Sense byte 0 bit 3: equipment check.
    pub const EQUIPMENT_CHECK: u8 = 0x10;
    /// Sense byte 0 bit 4: data check.
    pub const DATA_CHECK: u8 = 0x08;

    /// 32 bytes of sense with byte 0 = `byte0`.
    pub const fn with_byte0(byte0: u8) -> Self {
        let mut bytes = [0u8; 32];
        bytes[0] = byte0;
        Self { bytes, len: 32 }
    }
    /// Command reject (sense byte 0 = 0x80).
    pub const fn command_reject() -> Self {
        Self::with_byte0(Self::COMMAND_REJECT)
    }
    /// The presented bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len.min(32))]
    }
}

/// How a start (or resume) function ended, as the channel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ending {
    /// Device status.
    pub dstat: DeviceStatus,
    /// Subchannel status.
    pub cstat: SubchannelStatus,
    /// CCW address field (last CCW executed + 8).
    pub cpa: u32,
    /// Residual count of the last CCW.
    pub count: u16,
    /// Concurrent sense to store in the ECW (when the subchannel has it enabled).
    pub sense: Option<SenseData>,
}

/// What became of a start or resume function the device was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The channel program ended (primary and secondary status together).
    Ended(Ending),
    /// The channel program suspended at the CCW before `cpa` (ORB S = 1, CCW S = 1).
    Suspended {
        /// CCW address + 8 of the suspending CCW.
        cpa: u32,
    },
    /// The start could not be performed: deferred condition code 3, no operational path among
    /// `pnom` (the paths found not operational).
    NoPath {
        /// Paths found not operational.
        pnom: u8,
    },
    /// The device runs the program asynchronously; the VMM reports the ending with
    /// [`Vcss::complete`](crate::Vcss::complete).
    InProgress,
}

/// What a device made of a virtio notification (DIAGNOSE 0x500 subcode 3, see
/// [`Vcss::virtio_notify`](crate::Vcss::virtio_notify)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioNotify {
    /// The device is not a virtio device (the default answer of [`Device::virtio_notify`]).
    NotVirtio,
    /// The device has no such queue, or the driver has not set it up.
    NoQueue,
    /// The device processed the queue. `interrupt`: it set the queue's bit in the guest's
    /// indicators and asks for the subchannel's I/O interruption (classic indicators). A
    /// broken ring is answered `Processed` too: the device sets `VIRTIO_CONFIG_S_NEEDS_RESET`
    /// and keeps the typed error for the VMM, as the guest learns of it from the status.
    Processed {
        /// Make the subchannel status pending (alert status) and queue its interruption.
        interrupt: bool,
    },
}

/// A device behind a virtual subchannel.
pub trait Device: Send + std::fmt::Debug {
    /// Runs the channel program `orb` starts, on path `path` (one bit of the path mask), against
    /// guest storage `mem`.
    fn start(&mut self, mem: &dyn GuestIo, orb: &CommandOrb, path: u8) -> Outcome;
    /// Continues a suspended program by re-fetching the CCW before `cpa` (CCW address + 8).
    fn resume(&mut self, mem: &dyn GuestIo, cpa: u32) -> Outcome;
    /// The halt signal: the device stops what it runs. Returns the CCW address + 8 of the CCW it
    /// was executing (or 0 when none).
    fn halt(&mut self) -> u32;
    /// The clear signal: the device drops all state of the current function.
    fn clear(&mut self);
    /// MODIFY SUBCHANNEL enabled the device's subchannel (it was disabled): state the
    /// architecture ties to enablement starts over here (virtio-ccw, virtio spec 4.3.2.1.1:
    /// the revision is unset from the time the subchannel is enabled). The default does
    /// nothing.
    fn enabled(&mut self) {}
    /// The guest notified virtqueue `queue` (DIAGNOSE 0x500 subcode 3). The default: not a
    /// virtio device (a passed-through subchannel never is: vfio-ccw cannot pass one through).
    fn virtio_notify(&mut self, mem: &dyn GuestIo, queue: u16) -> VirtioNotify {
        let _ = (mem, queue);
        VirtioNotify::NotVirtio
    }
}
