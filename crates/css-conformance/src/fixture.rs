// SPDX-License-Identifier: Apache-2.0 OR MIT

//! What the suite runs against: the devices under test, what they answer, and what the target
//! is known not to support.

use std::sync::Arc;
use std::time::Duration;

use ccw_types::{Irb, Orb, SubchannelId};

/// The kind of a device under test: decides what its commands answer and which device group
/// runs on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceKind {
    /// A virtio-blk-ccw device (QEMU's, or the simulator's model of it).
    VirtioBlk {
        /// Its disk size in 512-byte sectors (READ_CONF's first eight bytes, big-endian).
        capacity: u64,
    },
    /// mock-backend's test device (WRITE/READ record, READ BACKWARD, SEARCH EQUAL, forced
    /// unit check and unit exception).
    TestDevice,
    /// An ECKD 3390 behind a 3990 control unit.
    Eckd3390 {
        /// Cylinders of its image (what READ DEVICE CHARACTERISTICS reports).
        cylinders: u16,
    },
}

/// One device under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// What it is.
    pub kind: DeviceKind,
    /// Its subchannel.
    pub sch: SubchannelId,
    /// Its device number.
    pub devno: u16,
}

impl Device {
    /// The bytes SENSE ID must start with (byte 0 `ff`, control-unit type and model,
    /// device type).
    pub fn sense_id_prefix(&self) -> Vec<u8> {
        match self.kind {
            // ff, CU 3832 model 02 (virtio device id 2: block) (s390-io-reference §9.1).
            DeviceKind::VirtioBlk { .. } => vec![0xFF, 0x38, 0x32, 0x02],
            DeviceKind::TestDevice => vec![0xFF, 0x30, 0x88, 0x01],
            // ff, CU 3990 (model varies), device type 3390 at bytes 4-5 (checked apart).
            DeviceKind::Eckd3390 { .. } => vec![0xFF, 0x39, 0x90],
        }
    }

    /// How many bytes SENSE ID transfers at most (what is left of count 256 is the residual).
    pub fn sense_id_len(&self) -> u16 {
        match self.kind {
            // QEMU pads its SenseId to 256 bytes (8 + 62 CIWs); so does the simulator.
            DeviceKind::VirtioBlk { .. } => 256,
            DeviceKind::TestDevice => 8,
            // ff 3990 mm 3390 mm 00 + one CIW (RCD): 12 bytes (hercules-guest.md, gotcha 10).
            DeviceKind::Eckd3390 { .. } => 12,
        }
    }
}

/// The answer of a program written straight into vfio-ccw's io region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawOutcome {
    /// The io-region write failed with this errno (the kernel refused the program).
    Errno(i32),
    /// The program started and ended with this IRB.
    Irb(Irb),
    /// The program started but no interruption came within the timeout.
    NoInterrupt,
}

/// Direct access to a vfio-ccw device's io region, bypassing ccw-translate (the kernel-torture
/// group). Addresses are I/O addresses the device can reach (vfio-ccw's guest addresses).
pub trait RawChannel: Send + Sync {
    /// Allocates `len` zeroed bytes of device-reachable memory below 2 GiB; its address.
    fn alloc(&self, len: usize) -> Result<u32, String>;
    /// Writes `bytes` at `addr` (inside an allocation).
    fn write(&self, addr: u32, bytes: &[u8]) -> Result<(), String>;
    /// Reads `buf.len()` bytes at `addr` (inside an allocation).
    fn read(&self, addr: u32, buf: &mut [u8]) -> Result<(), String>;
    /// The first address past the end of the mapped I/O memory (an IDAW there is unmapped).
    fn end_of_mapped(&self) -> u32;
    /// Writes `orb` into the io region (the kernel translates and starts the program);
    /// the errno when the write fails.
    fn submit(&self, orb: &Orb) -> Result<(), i32>;
    /// HALT (`clear == false`) or CLEAR through the async region; the errno on failure.
    fn halt_or_clear(&self, clear: bool) -> Result<(), i32>;
    /// Waits up to `timeout` for the next io interruption and returns its IRB.
    fn wait(&self, timeout: Duration) -> RawOutcome;
    /// Which VFIO API the device was opened with (for the report).
    fn api(&self) -> String;
}

/// The target under test and what its devices should answer.
#[derive(Clone)]
pub struct Fixture {
    /// Names the target in reports, e.g. `"mock"` or `"vfio-ccw legacy (QEMU)"`.
    pub name: String,
    /// The device every generic group runs on.
    pub primary: Device,
    /// More devices; device groups for kinds not present skip.
    pub others: Vec<Device>,
    /// Groups or cases this target is known not to support, with the reason printed.
    pub known_unsupported: Vec<(String, String)>,
    /// Upper bound for one case.
    pub test_timeout: Duration,
    /// Size of the guest memory the suite creates (at guest address 0).
    pub memory_size: usize,
    /// Raw io-region access (vfio backends only): the kernel-torture group skips without.
    pub raw: Option<Arc<dyn RawChannel>>,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("name", &self.name)
            .field("primary", &self.primary)
            .field("others", &self.others)
            .field("known_unsupported", &self.known_unsupported)
            .field("raw", &self.raw.as_ref().map(|r| r.api()))
            .finish_non_exhaustive()
    }
}

impl Fixture {
    /// A target whose device under test is `primary`, everything supported.
    pub fn new(primary: Device) -> Self {
        Self {
            name: String::from("backend"),
            primary,
            others: Vec::new(),
            known_unsupported: Vec::new(),
            test_timeout: Duration::from_secs(10),
            memory_size: 1 << 20,
            raw: None,
        }
    }

    /// A virtio-blk-ccw device with a 64 MiB disk at `sch` / `devno`.
    pub fn virtio_blk(sch: SubchannelId, devno: u16) -> Self {
        Self::new(Device {
            kind: DeviceKind::VirtioBlk { capacity: 131_072 },
            sch,
            devno,
        })
    }

    /// A 3390 (control unit 3990) of `cylinders` cylinders at `sch` / `devno`.
    pub fn eckd_3390(sch: SubchannelId, devno: u16, cylinders: u16) -> Self {
        Self::new(Device {
            kind: DeviceKind::Eckd3390 { cylinders },
            sch,
            devno,
        })
    }

    /// Names the target.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds a device.
    pub fn with_device(mut self, d: Device) -> Self {
        self.others.push(d);
        self
    }

    /// Declares a group or case known-unsupported.
    pub fn unsupported(mut self, what: impl Into<String>, reason: impl Into<String>) -> Self {
        self.known_unsupported.push((what.into(), reason.into()));
        self
    }

    /// Gives the suite raw io-region access (kernel torture).
    pub fn with_raw(mut self, raw: Arc<dyn RawChannel>) -> Self {
        self.raw = Some(raw);
        self
    }

    /// Why `group`/`case` is skipped on this target, if it is declared unsupported.
    pub fn skip_reason(&self, group: &str, case: &str) -> Option<&str> {
        self.known_unsupported
            .iter()
            .find(|(w, _)| w == group || w == case)
            .map(|(_, r)| r.as_str())
    }

    /// The first device of `pred`'s kind: the primary, else one of the others.
    pub fn device(&self, pred: impl Fn(&DeviceKind) -> bool) -> Option<&Device> {
        std::iter::once(&self.primary)
            .chain(&self.others)
            .find(|d| pred(&d.kind))
    }

    /// Every subchannel of the fixture.
    pub fn all_schs(&self) -> Vec<SubchannelId> {
        std::iter::once(&self.primary)
            .chain(&self.others)
            .map(|d| d.sch)
            .collect()
    }
}
