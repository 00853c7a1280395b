// SPDX-License-Identifier: Apache-2.0 OR MIT

//! IPL from a channel device (vcss-reference §5.1): the load the VMM performs on the
//! operator's LOAD (or at machine start), before any vCPU runs.
//!
//! [`Vcss::ipl`] does what the architecture gives the channel subsystem for a CCW-type IPL:
//! the IPL device's subchannel is enabled, the implied format-0 CCW Read IPL is placed at
//! absolute 0 (`02 00 00 00 60 00 00 18`: data address 0, command chaining and SLI, count
//! 24) and started with an all-zero ORB (format 0, key 0). The 24-byte IPL record 1 lands at
//! 0-23 (the PSW at 0, two CCWs at 8 and 16) and command chaining continues with those CCWs,
//! which read the next IPL records. The program must end with channel end + device end and
//! no channel status; the status is then cleared (the loaded program finds the subchannel
//! idle, no interruption pending), the subchannel-identification word is stored at 0xB8 and
//! zeros at 0xBC-0xBF, and the 8-byte PSW at 0 is returned for the VMM to load.
//!
//! A passed-through DASD behind vfio-ccw cannot be loaded this way: vfio-ccw copies the
//! whole channel program before starting it, so CCWs the program reads from disk (and TICs
//! into them) are never seen. QEMU's firmware therefore runs Read IPL without chaining and
//! each READ → TIC pair as a start of its own (QEMU `docs/devel/s390-dasd-ipl.rst`); that is
//! a guest-firmware method made of ordinary START SUBCHANNEL instructions, and mock-backend's
//! `tests/ipl.rs` runs it against vcss.

use ccw_types::{CcwFormat, CommandOrb, DeviceStatus, SubchannelId, SubchannelStatus};

use crate::Vcss;
use crate::device::{GuestIo, Outcome};
use crate::sch;

/// The implied IPL CCW at absolute 0: Read IPL, data address 0, CC + SLI, count 24.
pub const IPL_CCW: [u8; 8] = [0x02, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x18];

/// Why an IPL failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IplError {
    /// No such subchannel.
    #[error("IPL subchannel 0.0.{0:04x} is not provided")]
    NotProvided(u16),
    /// The subchannel was status pending (condition code 1) or busy (2).
    #[error("IPL subchannel 0.0.{0:04x} is busy (condition code {1})")]
    Busy(u16, u8),
    /// No channel path to the device is operational.
    #[error("IPL device on 0.0.{0:04x} is not operational")]
    NotOperational(u16),
    /// The device runs programs asynchronously (a passed-through subchannel): the VMM loads
    /// it with the firmware method instead.
    #[error("IPL device on 0.0.{0:04x} runs channel programs asynchronously")]
    Asynchronous(u16),
    /// The IPL program suspended (it may not: the ORB does not allow suspension).
    #[error("IPL program on 0.0.{0:04x} suspended")]
    Suspended(u16),
    /// The IPL program ended with other than channel end + device end and zero channel
    /// status.
    #[error(
        "IPL program on 0.0.{sch:04x} ended with device status {dstat:#04x}, \
         subchannel status {cstat:#04x} at CCW address {cpa:#x}"
    )]
    Status {
        /// The subchannel.
        sch: u16,
        /// Device status.
        dstat: u8,
        /// Subchannel status.
        cstat: u8,
        /// CCW address field (last CCW + 8).
        cpa: u32,
    },
    /// The implied ORB was refused (a defect of vcss: it is valid by construction).
    #[error("the IPL ORB was refused: {0}")]
    Orb(String),
    /// Absolute 0-0xBF is not guest storage the channel subsystem may write.
    #[error("guest storage at {0:#x} is not writable for the IPL")]
    Storage(u64),
}

impl Vcss {
    /// Loads from the device of subchannel 0.0.`sch_no` (see the [module](crate::ipl) docs)
    /// and returns the 8-byte PSW the loaded records left at absolute 0.
    ///
    /// The subchannel stays enabled with its ISC and interruption parameter; nothing is left
    /// pending. A device that answers [`Outcome::InProgress`] (passthrough) is refused with
    /// [`IplError::Asynchronous`].
    pub fn ipl<M: GuestIo>(&mut self, mem: &M, sch_no: u16) -> Result<[u8; 8], IplError> {
        if !mem.accessible(0, 0xC0, true) {
            return Err(IplError::Storage(0));
        }
        let s = self
            .subchannels
            .get_mut(&sch_no)
            .ok_or(IplError::NotProvided(sch_no))?;
        s.state.schib.pmcw.flags.set_enabled(true);
        mem.write_at(0, &IPL_CCW).map_err(IplError::Storage)?;
        let mut orb = CommandOrb::new(0, 0);
        orb.format = CcwFormat::Format0;
        orb.prefetch = false;
        orb.format2_idaw = false;
        let cc = sch::ssch(&mut s.state, &orb.emit())
            .map_err(|e| IplError::Orb(e.to_string()))?
            .value();
        match cc {
            0 => {}
            3 => return Err(IplError::NotOperational(sch_no)),
            _ => return Err(IplError::Busy(sch_no, cc)),
        }
        let usable = s.state.usable_paths();
        if usable == 0 {
            sch::deferred_cc(&mut s.state, 3, 0);
            let _ = sch::tsch(&mut s.state);
            return Err(IplError::NotOperational(sch_no));
        }
        let path = 0x80u8 >> usable.leading_zeros();
        sch::begin_start(&mut s.state, path);
        let ending = match s.device.start(mem, &orb, path) {
            Outcome::Ended(e) => e,
            Outcome::InProgress => {
                // The device keeps running: leave the subchannel as it is (active); the VMM
                // clears it before using another method.
                return Err(IplError::Asynchronous(sch_no));
            }
            Outcome::Suspended { cpa } => {
                sch::suspend(&mut s.state, cpa, false);
                return Err(IplError::Suspended(sch_no));
            }
            Outcome::NoPath { pnom } => {
                sch::deferred_cc(&mut s.state, 3, pnom);
                let _ = sch::tsch(&mut s.state);
                return Err(IplError::NotOperational(sch_no));
            }
        };
        sch::end_start(&mut s.state, &ending);
        // The IPL takes the status itself: the loaded program finds nothing pending.
        let _ = sch::tsch(&mut s.state);
        let ok = ending.dstat == DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END
            && ending.cstat == SubchannelStatus::NONE;
        if !ok {
            return Err(IplError::Status {
                sch: sch_no,
                dstat: ending.dstat.bits(),
                cstat: ending.cstat.bits(),
                cpa: ending.cpa,
            });
        }
        let sid = SubchannelId::new(0, 0, sch_no).to_word();
        let mut code = [0u8; 8];
        code[..4].copy_from_slice(&sid.to_be_bytes());
        mem.write_at(0xB8, &code).map_err(IplError::Storage)?;
        let mut psw = [0u8; 8];
        mem.read_at(0, &mut psw).map_err(IplError::Storage)?;
        Ok(psw)
    }
}
