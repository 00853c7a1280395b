// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Handler-level tests over guest memory: kvm-unit-tests s390x `css.c` expectations, the
//! vcss-reference §7 vectors, CHSC, interruptions and CRWs, and a Linux-like bring-up.

mod bringup;
mod chsc;
mod handlers;
mod ipl;
mod notify;

use std::sync::{Arc, Mutex};

use ccw_types::{CcwFormat, CcwRepr, CommandOrb, DeviceStatus, SubchannelStatus};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::{Device, Ending, GuestIo, Notification, Outcome, SenseData, Vcss};

/// 1 MiB of guest memory from address 0.
pub(crate) fn memory() -> GuestMemoryMmap<()> {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
}

pub(crate) fn put(mem: &GuestMemoryMmap<()>, addr: u64, bytes: &[u8]) {
    mem.write_slice(bytes, GuestAddress(addr)).unwrap();
}

pub(crate) fn get(mem: &GuestMemoryMmap<()>, addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
    v
}

/// What the test device does with the next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Run the first CCW of the program.
    Run,
    /// Keep the program running until the test calls `Vcss::complete`.
    Async,
    /// Suspend at the first CCW.
    Suspend,
}

/// A device with SENSE ID `FF 38 32 02` (CU 3832 model 2, as virtio-blk-ccw) that runs the first
/// CCW of a program: SENSE ID and NOP end with CE + DE, anything else with unit check and
/// command reject. It records the calls it gets.
#[derive(Debug)]
pub(crate) struct TestDevice {
    pub(crate) mode: Mode,
    pub(crate) log: Arc<Mutex<Vec<String>>>,
}

impl TestDevice {
    pub(crate) fn boxed(mode: Mode) -> (Box<dyn Device>, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        (
            Box::new(Self {
                mode,
                log: log.clone(),
            }),
            log,
        )
    }

    fn run(&mut self, mem: &dyn GuestIo, ccw_addr: u32, format: CcwFormat) -> Outcome {
        let mut raw = [0u8; 8];
        if mem.read_at(u64::from(ccw_addr), &mut raw).is_err() {
            return Outcome::Ended(Ending {
                cstat: SubchannelStatus::PROGRAM_CHECK,
                cpa: ccw_addr,
                ..Ending::default()
            });
        }
        let Ok(ccw) = CcwRepr::parse(raw, format) else {
            return Outcome::Ended(Ending {
                cstat: SubchannelStatus::PROGRAM_CHECK,
                cpa: ccw_addr + 8,
                ..Ending::default()
            });
        };
        self.log
            .lock()
            .unwrap()
            .push(format!("ccw {:#04x}", ccw.cmd));
        let done = DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END;
        let (dstat, count, sense) = match ccw.cmd {
            0xE4 => {
                let data = [0xFF, 0x38, 0x32, 0x02, 0x00, 0x00, 0x00, 0x00];
                let n = usize::from(ccw.count).min(data.len());
                if mem.write_at(u64::from(ccw.cda), &data[..n]).is_err() {
                    return Outcome::Ended(Ending {
                        cstat: SubchannelStatus::PROGRAM_CHECK,
                        cpa: ccw_addr + 8,
                        ..Ending::default()
                    });
                }
                (done, ccw.count - n as u16, None)
            }
            0x03 => (done, ccw.count, None),
            _ => {
                let mut bytes = [0u8; 32];
                bytes[0] = 0x80;
                (
                    done | DeviceStatus::UNIT_CHECK,
                    ccw.count,
                    Some(SenseData { bytes, len: 32 }),
                )
            }
        };
        Outcome::Ended(Ending {
            dstat,
            cstat: SubchannelStatus::NONE,
            cpa: ccw_addr + 8,
            count,
            sense,
        })
    }
}

impl Device for TestDevice {
    fn start(&mut self, mem: &dyn GuestIo, orb: &CommandOrb, path: u8) -> Outcome {
        self.log
            .lock()
            .unwrap()
            .push(format!("start {:#x} path {path:#04x}", orb.cpa));
        match self.mode {
            Mode::Run => self.run(mem, orb.cpa, orb.format),
            Mode::Async => Outcome::InProgress,
            Mode::Suspend => Outcome::Suspended { cpa: orb.cpa + 8 },
        }
    }
    fn resume(&mut self, mem: &dyn GuestIo, cpa: u32) -> Outcome {
        self.log.lock().unwrap().push(format!("resume {cpa:#x}"));
        self.run(mem, cpa - 8, CcwFormat::Format1)
    }
    fn halt(&mut self) -> u32 {
        self.log.lock().unwrap().push("halt".into());
        0x1008
    }
    fn clear(&mut self) {
        self.log.lock().unwrap().push("clear".into());
    }
}

/// The configuration of the reference's vectors: subchannel 0.0.0000, devno 0x0005, CHPID 0x00
/// of type 0x32; notifications recorded.
pub(crate) fn one_device(mode: Mode) -> (Vcss, Arc<Mutex<Vec<Notification>>>) {
    let mut css = Vcss::new();
    css.add_chpid(0x00, 0x32);
    let (dev, _) = TestDevice::boxed(mode);
    css.add_subchannel(0, 0x0005, 0x00, dev).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    css.set_notifier(Box::new(move |n| s2.lock().unwrap().push(n)));
    (css, seen)
}

/// SID word of 0.0.`n`.
pub(crate) const fn sid(n: u16) -> u64 {
    0x0001_0000 | n as u64
}

/// CR6 with only `isc` enabled.
pub(crate) const fn cr6(isc: u8) -> u64 {
    ccw_types::cr6_isc_mask(isc)
}
