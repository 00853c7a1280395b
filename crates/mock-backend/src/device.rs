// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The contract between the simulated channel and a simulated device.
//!
//! The channel does everything the architecture gives to the channel subsystem: it fetches and
//! validates CCWs, follows TIC, command chaining and data chaining, resolves IDAWs and MIDAWs,
//! applies SKIP, counts bytes, raises incorrect length, program and protection checks, PCI and
//! suspension, and skips a CCW when a command ends with *status modifier*. A [`DeviceModel`]
//! only does what a control unit does: it receives one command at a time with a
//! [`DataStream`] through which it reads or writes the bytes the channel program designates,
//! and it answers with device status ([`DeviceOutcome`]).
//!
//! The channel itself answers three device-independent commands by asking the device for data:
//! control no-operation (0x03, always channel end + device end), basic SENSE (0x04, from
//! [`DeviceModel::sense`]) and SENSE ID (0xE4, from [`DeviceModel::sense_id`]). Every other
//! command that is not a TIC and not invalid reaches [`DeviceModel::execute`].
//!
//! A minimal device:
//!
//! ```
//! use mock_backend::{ChainContext, Command, DataStream, DeviceModel, DeviceOutcome, SenseData, SenseIdData};
//!
//! /// Answers read (0x02) with "hello", rejects everything else.
//! struct Hello { sense: SenseData }
//!
//! impl DeviceModel for Hello {
//!     fn sense_id(&self) -> Option<SenseIdData> {
//!         Some(SenseIdData::basic(0x1234, 0x01, 0x5678, 0x02))
//!     }
//!     fn execute(&mut self, cmd: &Command, data: &mut dyn DataStream, _ctx: &mut ChainContext) -> DeviceOutcome {
//!         match cmd.code {
//!             0x02 => {
//!                 // The channel stops at the CCW count; it raises incorrect length itself
//!                 // (unless SLI) when the device offered more or less than the count.
//!                 let _ = data.write(b"hello");
//!                 DeviceOutcome::done()
//!             }
//!             _ => {
//!                 self.sense = SenseData::command_reject();
//!                 DeviceOutcome::unit_check()
//!             }
//!         }
//!     }
//!     fn sense(&mut self) -> SenseData {
//!         std::mem::take(&mut self.sense)
//!     }
//!     fn reset(&mut self) {
//!         self.sense = SenseData::default();
//!     }
//! }
//! # let _ = Hello { sense: SenseData::default() };
//! ```

use std::any::Any;
use std::fmt;

use ccw_types::{CcwFlags, CcwFormat, CommandClass, DeviceStatus};

/// One command as the device receives it, after the channel resolved TIC and validated the CCW.
///
/// With data chaining the device sees the command once; the CCWs that continue it only change
/// where the [`DataStream`] reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// The command code (byte 0 of the CCW).
    pub code: u8,
    /// The command class the channel derived from the code.
    pub class: CommandClass,
    /// Flags of the CCW that started the command.
    pub flags: CcwFlags,
    /// Count of the CCW that started the command (data chaining may add more).
    pub count: u16,
    /// The CCW format of the program.
    pub format: CcwFormat,
    /// Device address of the CCW (for tracing; devices must not depend on it).
    pub ccw_addr: u32,
}

impl Command {
    /// Whether the CCW has SLI set and does not chain data: the condition under which QEMU's
    /// devices accept a count different from the length they expect.
    pub fn sli_effective(&self) -> bool {
        self.flags.contains(CcwFlags::SLI) && !self.flags.contains(CcwFlags::CD)
    }
}

/// Why a data transfer stopped early. The channel has already recorded the check; a device
/// that sees one should stop and return (its status is replaced by the channel's check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The channel found a program check (bad IDAW, MIDAW, data-chained CCW, address).
    #[error("program check during data transfer")]
    ProgramCheck,
    /// The storage key did not match.
    #[error("protection check during data transfer")]
    ProtectionCheck,
    /// The storage was not accessible to the channel.
    #[error("channel-data check during data transfer")]
    ChannelDataCheck,
    /// The channel program was halted or cleared while the device was transferring.
    #[error("transfer terminated by halt or clear")]
    Terminated,
}

/// The device's view of the data the current command transfers.
///
/// The channel moves bytes between the device and storage as the CCW (and any data-chained
/// CCWs, IDAWs, MIDAWs) designate; SKIP drops them. The count is the channel's: `write` and
/// `read` return how many bytes were accepted or supplied, which is less than asked when the
/// count (across data chaining) is exhausted. The device never sees addresses.
pub trait DataStream {
    /// Device to storage (read, read backward, sense commands): offers `data`, returns how many
    /// bytes the channel accepted. Accepting fewer than offered means the count ran out; the
    /// channel then reports incorrect length unless SLI suppresses it.
    fn write(&mut self, data: &[u8]) -> Result<usize, TransferError>;

    /// Storage to device (write and control commands): fills `buf`, returns how many bytes the
    /// channel supplied (fewer when the count ran out). Asking for more than the count is no
    /// error: the channel reports incorrect length when the device takes *less* than the count.
    /// A device that needs more than it got should reject the command (unit check).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransferError>;

    /// Bytes left in the current CCW (data chaining may supply more after it).
    fn remaining(&self) -> usize;

    /// Whether the current CCW chains data (more count may follow the current one).
    fn chains_data(&self) -> bool;

    /// Total bytes transferred (or skipped) so far for this command.
    fn transferred(&self) -> usize;

    /// Reads the storage the command designates, `offset` bytes past the current position,
    /// *without* transferring: the position, count and status are unchanged, and a check found
    /// while peeking is returned but not recorded. Real devices never do this; QEMU's virtio
    /// devices do (READ_FEAT and READ_VQ_CONF read an index from the buffer they then fill),
    /// so the virtio model needs it.
    fn peek(&mut self, offset: usize, buf: &mut [u8]) -> Result<usize, TransferError>;
}

/// State that lives across one channel program (command chain) and is reset at its start.
///
/// The channel creates a fresh context at START SUBCHANNEL and keeps it across suspension and
/// RESUME SUBCHANNEL. A device keeps its chain state (a DASD's Define Extent / Locate Record
/// domain) in [`ChainContext::state`].
///
/// ```
/// use mock_backend::ChainContext;
/// #[derive(Default)]
/// struct Domain { extent_defined: bool }
/// let mut ctx = ChainContext::new();
/// assert!(!ctx.state::<Domain>().extent_defined);
/// ctx.state::<Domain>().extent_defined = true;
/// assert!(ctx.state::<Domain>().extent_defined);
/// ```
#[derive(Default)]
pub struct ChainContext {
    /// Index of the current command in the chain (0 for the first command).
    pub index: usize,
    /// The previous command of the chain and the device status it ended with.
    pub previous: Option<(u8, DeviceStatus)>,
    state: Option<Box<dyn Any + Send>>,
}

impl ChainContext {
    /// A context for a new chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether this command is the first of the chain.
    pub fn is_first(&self) -> bool {
        self.index == 0
    }

    /// The device's chain state of type `T`, created with `T::default()` on first use (or when a
    /// different type was stored).
    pub fn state<T: Default + Send + 'static>(&mut self) -> &mut T {
        let fresh = !matches!(&self.state, Some(s) if s.is::<T>());
        if fresh {
            self.state = Some(Box::new(T::default()));
        }
        match self.state.as_mut().and_then(|s| s.downcast_mut::<T>()) {
            Some(t) => t,
            // Unreachable: the box was just filled with a `T`.
            None => unreachable!("chain state has the requested type"),
        }
    }
}

impl fmt::Debug for ChainContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainContext")
            .field("index", &self.index)
            .field("previous", &self.previous)
            .field("has_state", &self.state.is_some())
            .finish()
    }
}

/// How a command ended, as the device presents it.
///
/// The status is presented exactly: a normal ending is channel end + device end; add *status
/// modifier* (a search hit) to make the channel skip the next CCW when command chaining; unit
/// check means the device has sense data ([`DeviceModel::sense`]); a command rejected before
/// any data moved is presented as unit check alone (as QEMU does for command reject).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceOutcome {
    /// The device status byte.
    pub status: DeviceStatus,
}

impl DeviceOutcome {
    /// Channel end + device end: the command completed normally.
    pub const fn done() -> Self {
        Self {
            status: DeviceStatus::CHANNEL_END.union(DeviceStatus::DEVICE_END),
        }
    }
    /// Channel end + device end + status modifier (search condition met).
    pub const fn status_modifier() -> Self {
        Self {
            status: DeviceStatus::CHANNEL_END
                .union(DeviceStatus::DEVICE_END)
                .union(DeviceStatus::STATUS_MODIFIER),
        }
    }
    /// Unit check alone: the command was rejected at initial selection (sense data explains).
    pub const fn unit_check() -> Self {
        Self {
            status: DeviceStatus::UNIT_CHECK,
        }
    }
    /// Channel end + device end + unit check: an error found while executing the command.
    pub const fn unit_check_after_transfer() -> Self {
        Self {
            status: DeviceStatus::CHANNEL_END
                .union(DeviceStatus::DEVICE_END)
                .union(DeviceStatus::UNIT_CHECK),
        }
    }
    /// Channel end + device end + unit exception (e.g. end of file).
    pub const fn unit_exception() -> Self {
        Self {
            status: DeviceStatus::CHANNEL_END
                .union(DeviceStatus::DEVICE_END)
                .union(DeviceStatus::UNIT_EXCEPTION),
        }
    }
    /// Any status.
    pub const fn with_status(status: DeviceStatus) -> Self {
        Self { status }
    }
}

/// Basic sense data (command 0x04), up to 32 bytes (reference §4.5): one type with the
/// guest-facing channel subsystem, whose status transitions the simulator runs.
pub use vcss::SenseData;

/// SENSE ID data (command 0xE4, reference §9.1), up to 256 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SenseIdData {
    /// The bytes: 0xFF, CU type, CU model, device type, device model, reserved, CIWs.
    pub bytes: [u8; 256],
    /// How many bytes the device presents.
    pub len: u16,
}

impl SenseIdData {
    /// The 8-byte extended SENSE ID header without CIWs.
    ///
    /// ```
    /// let id = mock_backend::SenseIdData::basic(0x3832, 0x02, 0x0000, 0x00);
    /// assert_eq!(&id.as_bytes()[..4], &[0xff, 0x38, 0x32, 0x02]);
    /// ```
    pub fn basic(cu_type: u16, cu_model: u8, dev_type: u16, dev_model: u8) -> Self {
        let mut bytes = [0u8; 256];
        bytes[0] = 0xFF;
        bytes[1..3].copy_from_slice(&cu_type.to_be_bytes());
        bytes[3] = cu_model;
        bytes[4..6].copy_from_slice(&dev_type.to_be_bytes());
        bytes[6] = dev_model;
        Self { bytes, len: 8 }
    }

    /// Appends a command-information word (`0x40 | ct`, command, count).
    pub fn with_ciw(mut self, ct: u8, cmd: u8, count: u16) -> Self {
        let at = usize::from(self.len);
        if at + 4 <= self.bytes.len() {
            self.bytes[at] = 0x40 | (ct & 0x0F);
            self.bytes[at + 1] = cmd;
            self.bytes[at + 2..at + 4].copy_from_slice(&count.to_be_bytes());
            self.len += 4;
        }
        self
    }

    /// Presents `len` bytes (zero padded), e.g. 256 as QEMU's virtual devices do.
    pub fn padded_to(mut self, len: u16) -> Self {
        self.len = len.min(256);
        self
    }

    /// The presented bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len.min(256))]
    }
}

impl fmt::Debug for SenseIdData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SenseIdData({:02x?})", &self.bytes[..8])
    }
}

/// A simulated device (control unit + device) attached to one subchannel.
///
/// The channel calls the device from the subchannel's execution context, never concurrently
/// for one device. Implementations must not panic on any command or data: unknown commands are
/// a command reject (unit check, sense byte 0 = 0x80).
pub trait DeviceModel: Send {
    /// The SENSE ID answer, or `None` if the device does not support SENSE ID (the channel then
    /// presents command reject).
    fn sense_id(&self) -> Option<SenseIdData>;

    /// Executes one command (after the channel resolved chaining, IDAWs and SKIP). The device
    /// reads or writes through `data` and returns the status it presents. `ctx` holds the
    /// chain's state.
    fn execute(
        &mut self,
        cmd: &Command,
        data: &mut dyn DataStream,
        ctx: &mut ChainContext,
    ) -> DeviceOutcome;

    /// The sense data of the last unit check, and the end of that condition: the next call
    /// returns no-error sense until another unit check. Used by basic SENSE (0x04) and by
    /// concurrent sense (stored in the ECW when the subchannel has it enabled).
    fn sense(&mut self) -> SenseData;

    /// Clear function or selective reset: back to the power-on state of the device's
    /// transient state (its data, e.g. disk contents, stays).
    fn reset(&mut self);

    /// Called when the channel starts a new channel program (after START SUBCHANNEL), before
    /// the first command. The default does nothing.
    fn begin_chain(&mut self) {}

    /// Called when the channel ends the start function, suspends or halts the program,
    /// before the status is made pending: a device that keeps changes in memory while
    /// commands chain (the ECKD DASD model keeps a changed track) makes them durable here.
    ///
    /// Returns device status to add to the ending: [`DeviceStatus::UNIT_CHECK`] when the
    /// changes could not be made durable (the device's [`DeviceModel::sense`] then describes
    /// it, e.g. equipment check), so a write that did not reach its medium never ends in
    /// success. The default does nothing and returns [`DeviceStatus::NONE`].
    fn end_chain(&mut self) -> DeviceStatus {
        DeviceStatus::NONE
    }

    /// Called when MODIFY SUBCHANNEL enables the device's subchannel (it was disabled):
    /// state an architecture ties to the enablement starts over here (virtio-ccw: the
    /// revision is unset from the time the subchannel is enabled). The default does nothing.
    fn enabled(&mut self) {}

    /// The device as `Any`, so tools and tests can reach a concrete model's state through
    /// `MockBackend::with_device` (`downcast_mut`). The default is `None`.
    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        None
    }

    /// A short name for tracing and for `ccwctl` listings.
    fn name(&self) -> &'static str {
        "device"
    }

    /// The guest notified virtqueue `queue` (DIAGNOSE 0x500 subcode 3, through
    /// `vcss::Vcss::virtio_notify` and [`ChannelDevice`](crate::ChannelDevice)); the device
    /// processes it over the guest's memory `mem`. The default: not a virtio device.
    fn virtio_notify(&mut self, mem: &dyn vcss::GuestIo, queue: u16) -> vcss::VirtioNotify {
        let _ = (mem, queue);
        vcss::VirtioNotify::NotVirtio
    }
}
