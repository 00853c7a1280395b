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
//! a method made of ordinary starts, [`PrefetchIpl`]: the VMM (or the firmware it plays)
//! runs it over any subchannel, and mock-backend's `tests/vcss_devices.rs` and the s390x
//! Hercules lane (`vfio-guest vcss-ipl`, over vfio-ccw) load the same chain with it.

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
    /// The loaded records break a rule of the firmware method ([`PrefetchIpl`]).
    #[error("IPL from 0.0.{sch:04x}: {why}")]
    Program {
        /// The subchannel.
        sch: u16,
        /// What is wrong.
        why: &'static str,
    },
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

/// Most CCWs [`PrefetchIpl`] walks in one program before it gives up (a loaded program
/// that never ends its chain).
const MAX_WALK: u32 = 256;
/// Most starts [`PrefetchIpl`] makes for one load (a chain that keeps reading programs).
const MAX_STARTS: u32 = 64;

/// Where [`PrefetchIpl`] puts the seek and search arguments it builds (QEMU `dasd-ipl.c`
/// `ipl1_fixup`; IPL1's CCWs move to 0x20 and 0x28).
const SEEK_ARG: u32 = 0x30;
const SEARCH_ARG: u32 = 0x38;

/// What the VMM (or the firmware it plays) does next in a [`PrefetchIpl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IplStep {
    /// Start the format-0 program at `cpa` with [`PrefetchIpl::orb`], wait for its final
    /// status and hand the SCSW to [`PrefetchIpl::ended`].
    Start {
        /// The program's address.
        cpa: u32,
    },
    /// The load is complete: the PSW at absolute 0, for the VMM to load.
    Loaded {
        /// The 8-byte PSW.
        psw: [u8; 8],
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing started yet.
    Begin,
    /// Read IPL (unchained) is running.
    ReadIpl,
    /// IPL1's READ, behind a seek and a search for record 2, is running; IPL2 is at the
    /// address.
    Ipl1 { ipl2: u32 },
    /// A piece of the loaded program is running; the next starts at the address, if any.
    Program { next: Option<u32> },
    /// Loaded, or failed.
    Over,
}

/// IPL from a DASD behind a channel that prefetches the whole program before it starts it
/// (vfio-ccw), the way QEMU's firmware does it (QEMU `docs/devel/s390-dasd-ipl.rst`,
/// vcss-reference §5.3): every start is a program whole in storage before it starts.
///
/// 1. Read IPL at 0 without command chaining or SLI (count 24): IPL1 lands at 0-23.
/// 2. IPL1's CCWs at 8 and 16 must be a READ (0x06) and a TIC; the TIC names IPL2. They are
///    moved to 0x20/0x28 (the READ unchained) behind a SEEK to cylinder 0 head 0 at 8, a
///    SEARCH ID EQUAL for record 2 at 0x10 and a TIC back to the search at 0x18 (the search
///    loop: a satisfied search skips the TIC with status modifier).
/// 3. IPL2 and whatever it loads run piece by piece: the walk skips a TIC back to the CCW
///    before it (a search loop), and a READ (0x06 or 0x86) with command chaining followed by
///    a TIC ends a piece (its chaining is cleared); the next piece starts at the TIC's
///    target. The first CCW without chaining ends the load.
///
/// The driver is pure: it writes the CCWs it builds into guest memory and says what to start
/// ([`IplStep`]); the VMM starts each program on the IPL subchannel (through the guest's
/// SSCH/TSCH or its own), synchronous device or passed-through alike. An ending other than
/// channel end + device end alone, a program that breaks the rules above or a walk past
/// 256 CCWs in one program or 64 starts is a typed [`IplError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefetchIpl {
    sch_no: u16,
    phase: Phase,
    starts: u32,
}

/// A format-0 CCW.
fn ccw0(cmd: u8, addr: u32, flags: u8, count: u16) -> [u8; 8] {
    let a = addr.to_be_bytes();
    let c = count.to_be_bytes();
    [cmd, a[1], a[2], a[3], flags, 0, c[0], c[1]]
}

/// The data address of a format-0 CCW.
fn cda0(c: &[u8]) -> u32 {
    u32::from_be_bytes([0, c[1], c[2], c[3]])
}

const CD: u8 = 0x80;
const CC: u8 = 0x40;
const READ_DATA: u8 = 0x06;
const READ_MT: u8 = 0x86;

fn is_tic(cmd: u8) -> bool {
    cmd & 0x0F == 0x08
}

impl PrefetchIpl {
    /// A load from the device of subchannel 0.0.`sch_no` (named in errors).
    pub const fn new(sch_no: u16) -> Self {
        Self {
            sch_no,
            phase: Phase::Begin,
            starts: 0,
        }
    }

    /// The ORB of every start: format 0, prefetch, all paths, key 0 (QEMU's firmware).
    pub fn orb(cpa: u32) -> CommandOrb {
        let mut orb = CommandOrb::new(0, cpa);
        orb.format = CcwFormat::Format0;
        orb.prefetch = true;
        orb.lpm = 0xFF;
        orb
    }

    /// Places the unchained Read IPL CCW at 0 and returns the first start.
    pub fn begin(&mut self, mem: &dyn GuestIo) -> Result<IplStep, IplError> {
        if self.phase != Phase::Begin {
            return Err(self.fail("begin called twice"));
        }
        if !mem.accessible(0, 0x40, true) {
            self.phase = Phase::Over;
            return Err(IplError::Storage(0));
        }
        mem.write_at(0, &ccw0(0x02, 0, 0, 24))
            .map_err(IplError::Storage)?;
        self.phase = Phase::ReadIpl;
        self.start(0)
    }

    /// The program of the last [`IplStep::Start`] ended with `scsw`: checks it and returns
    /// the next step.
    pub fn ended(
        &mut self,
        mem: &dyn GuestIo,
        scsw: &ccw_types::Scsw,
    ) -> Result<IplStep, IplError> {
        let ok = scsw.device_status() == DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END
            && scsw.subchannel_status() == SubchannelStatus::NONE;
        if !ok {
            self.phase = Phase::Over;
            return Err(IplError::Status {
                sch: self.sch_no,
                dstat: scsw.dstat,
                cstat: scsw.cstat,
                cpa: scsw.cpa.get(),
            });
        }
        match self.phase {
            Phase::ReadIpl => self.fixup_ipl1(mem),
            Phase::Ipl1 { ipl2 } => {
                let mut first = [0u8; 8];
                mem.read_at(u64::from(ipl2), &mut first)
                    .map_err(IplError::Storage)?;
                if ipl2 == 0 || first[0] == 0 {
                    return Err(self.fail("IPL2 is empty (address 0 or a zero first command)"));
                }
                self.piece(mem, ipl2)
            }
            Phase::Program { next: Some(at) } => self.piece(mem, at),
            Phase::Program { next: None } => {
                self.phase = Phase::Over;
                let mut psw = [0u8; 8];
                mem.read_at(0, &mut psw).map_err(IplError::Storage)?;
                Ok(IplStep::Loaded { psw })
            }
            Phase::Begin | Phase::Over => Err(self.fail("no start is outstanding")),
        }
    }

    fn fail(&mut self, why: &'static str) -> IplError {
        self.phase = Phase::Over;
        IplError::Program {
            sch: self.sch_no,
            why,
        }
    }

    fn start(&mut self, cpa: u32) -> Result<IplStep, IplError> {
        self.starts += 1;
        if self.starts > MAX_STARTS {
            return Err(self.fail("the IPL program keeps reading programs (64 starts)"));
        }
        Ok(IplStep::Start { cpa })
    }

    /// Step 2: IPL1 must be READ + TIC; build seek, search loop and the moved READ.
    fn fixup_ipl1(&mut self, mem: &dyn GuestIo) -> Result<IplStep, IplError> {
        let mut ipl1 = [0u8; 16];
        mem.read_at(8, &mut ipl1).map_err(IplError::Storage)?;
        if ipl1[0] != READ_DATA || !is_tic(ipl1[8]) {
            return Err(self.fail("IPL1's CCWs are not a READ DATA followed by a TIC"));
        }
        let ipl2 = cda0(&ipl1[8..]);
        let mut read = [0u8; 8];
        read.copy_from_slice(&ipl1[..8]);
        read[4] &= !CC;
        let mut prog = Vec::with_capacity(0x40);
        prog.extend_from_slice(&ccw0(0x07, SEEK_ARG, CC, 6)); // 0x08 SEEK 0/0
        prog.extend_from_slice(&ccw0(0x31, SEARCH_ARG, CC, 5)); // 0x10 SEARCH ID EQUAL R2
        prog.extend_from_slice(&ccw0(0x08, 0x10, 0, 0)); // 0x18 TIC back to the search
        prog.extend_from_slice(&read); // 0x20 IPL1's READ, unchained
        prog.extend_from_slice(&ipl1[8..]); // 0x28 IPL1's TIC (never reached)
        prog.extend_from_slice(&[0; 8]); // 0x30 seek argument: bin 0, cylinder 0, head 0
        prog.extend_from_slice(&[0, 0, 0, 0, 2, 0, 0, 0]); // 0x38 search: CCHHR 0/0/2
        mem.write_at(8, &prog).map_err(IplError::Storage)?;
        self.phase = Phase::Ipl1 { ipl2 };
        self.start(8)
    }

    /// Step 3: the piece of the loaded program that starts at `start`.
    fn piece(&mut self, mem: &dyn GuestIo, start: u32) -> Result<IplStep, IplError> {
        let mut at = start;
        for _ in 0..MAX_WALK {
            let mut c = [0u8; 16];
            mem.read_at(u64::from(at), &mut c)
                .map_err(IplError::Storage)?;
            if is_tic(c[0]) {
                if cda0(&c) != at.wrapping_sub(8) || at == start {
                    return Err(self.fail("a TIC that closes no search loop"));
                }
                at += 8;
                continue;
            }
            // Command or data chaining goes on to the next CCW.
            let chained = c[4] & (CC | CD) != 0;
            if (c[0] == READ_DATA || c[0] == READ_MT) && chained && is_tic(c[8]) {
                mem.write_at(u64::from(at) + 4, &[c[4] & !CC])
                    .map_err(IplError::Storage)?;
                self.phase = Phase::Program {
                    next: Some(cda0(&c[8..])),
                };
                return self.start(start);
            }
            if !chained {
                self.phase = Phase::Program { next: None };
                return self.start(start);
            }
            at += 8;
        }
        Err(self.fail("the IPL program does not end its chain within 256 CCWs"))
    }
}
