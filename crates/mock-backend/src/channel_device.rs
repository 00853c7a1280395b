// SPDX-License-Identifier: Apache-2.0 OR MIT

//! [`ChannelDevice`]: a simulated device behind a subchannel, of the simulator or of
//! [`vcss::Vcss`].
//!
//! The simulator's device models ([`VirtioBlkCcw`](crate::devices::VirtioBlkCcw),
//! [`TestDevice`](crate::devices::TestDevice), the ECKD 3390 [`Eckd`](crate::dasd::Eckd)) have
//! one interface, [`DeviceModel`]: a control unit that executes one command at a time. The
//! channel that runs a program on them (CCW fetch, TIC, chaining, IDAWs, MIDAWs, SKIP, counts,
//! incorrect length, program and protection checks, suspension) is also one, and
//! [`ChannelDevice`] is the one adapter holding a model and its program: the simulator's
//! worker steps it a command at a time over the simulated host storage, and as the
//! [`vcss::Device`] of a virtual subchannel it runs to the end over a guest's memory. So a VMM
//! built on vcss and the simulator run the same device and channel code.
//!
//! SENSE ID on the test device through the guest-facing instructions:
//!
//! ```
//! use ccw_types::{CcwFlags, CcwFormat, CcwRepr, CommandOrb};
//! use mock_backend::ChannelDevice;
//! use mock_backend::devices::TestDevice;
//! use vcss::{ConditionCode, Vcss};
//! use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
//!
//! let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 16)]).unwrap();
//! let mut css = Vcss::new();
//! css.add_chpid(0, 0x32);
//! css.add_subchannel(0, 0x0100, 0, Box::new(ChannelDevice::new(Box::new(TestDevice::new(64)))))
//!     .unwrap();
//! css.subchannel_mut(0).unwrap().schib.pmcw.flags.set_enabled(true);
//! let ccw = CcwRepr { cmd: 0xE4, flags: CcwFlags::SLI, count: 8, cda: 0x2000 };
//! mem.write_slice(&ccw.emit(CcwFormat::Format1).unwrap(), GuestAddress(0x1000)).unwrap();
//! mem.write_slice(&CommandOrb::new(0, 0x1000).emit().into_bytes(), GuestAddress(0x800)).unwrap();
//! let sid = 0x0001_0000; // 0.0.0000
//! assert_eq!(css.ssch(&mem, sid, 0x800), Ok(ConditionCode::Cc0));
//! assert_eq!(css.tsch(&mem, sid, 0x900), Ok(ConditionCode::Cc0));
//! let mut irb = [0u8; 12];
//! mem.read_slice(&mut irb, GuestAddress(0x900)).unwrap();
//! assert_eq!(irb[8], 0x0C); // channel end + device end
//! let mut id = [0u8; 1];
//! mem.read_slice(&mut id, GuestAddress(0x2000)).unwrap();
//! assert_eq!(id, [0xFF]);
//! ```

use ccw_types::{CommandOrb, DeviceStatus, SubchannelStatus};
use vcss::{Ending, GuestIo, Outcome};

use crate::channel::{ChannelStorage, DEFAULT_MAX_CCWS, GuestStorage, Program, Step};
use crate::device::{
    ChainContext, Command, DataStream, DeviceModel, DeviceOutcome, SenseData, SenseIdData,
};

/// A [`DeviceModel`] with the simulator's channel in front of it: the [`vcss::Device`] of one
/// virtual subchannel, and the device of one subchannel of the simulator
/// ([`MockBackend`](crate::MockBackend)), whose worker steps its program a command at a time.
///
/// Differences of [`vcss::Device`]'s use from the simulator's worker, which presents status
/// as the program runs:
/// - the program runs to its end (or suspension) inside [`vcss::Device::start`], so halt and
///   clear find no program in flight (a suspended one is ended by them);
/// - a PCI flag does not present an intermediate interruption: vcss's device contract has
///   none, so the PCI condition is reported with the final status (subchannel status PCI), as
///   the architecture allows when the intermediate interruption was not yet taken;
/// - concurrent sense is off (vcss's subchannels are built without it), so the device keeps
///   its sense for the guest's basic SENSE.
pub struct ChannelDevice {
    model: Box<dyn DeviceModel>,
    program: Option<Program>,
    max_ccws: u64,
    /// Sense injected by a unit-check fault, presented before the model's own.
    injected_sense: Option<SenseData>,
}

impl std::fmt::Debug for ChannelDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelDevice")
            .field("model", &self.model.name())
            .field("program", &self.program.is_some())
            .finish()
    }
}

/// The model as the channel sees it during a step: injected sense first.
struct Presented<'a> {
    model: &'a mut dyn DeviceModel,
    injected: &'a mut Option<SenseData>,
}

impl DeviceModel for Presented<'_> {
    fn sense_id(&self) -> Option<SenseIdData> {
        self.model.sense_id()
    }
    fn execute(
        &mut self,
        cmd: &Command,
        data: &mut dyn DataStream,
        ctx: &mut ChainContext,
    ) -> DeviceOutcome {
        self.model.execute(cmd, data, ctx)
    }
    fn sense(&mut self) -> SenseData {
        self.injected.take().unwrap_or_else(|| self.model.sense())
    }
    fn reset(&mut self) {
        *self.injected = None;
        self.model.reset();
    }
    fn begin_chain(&mut self) {
        self.model.begin_chain();
    }
    fn end_chain(&mut self) -> DeviceStatus {
        self.model.end_chain()
    }
}

impl ChannelDevice {
    /// `model` behind the simulator's channel, with the default bound on CCWs per program
    /// (2^20: a program that loops longer ends in program check).
    pub fn new(model: Box<dyn DeviceModel>) -> Self {
        Self {
            model,
            program: None,
            max_ccws: DEFAULT_MAX_CCWS,
            injected_sense: None,
        }
    }

    /// Changes the bound on the CCWs one program may execute.
    pub fn with_max_ccws(mut self, n: u64) -> Self {
        self.max_ccws = n.max(1);
        self
    }

    /// The device model (to inspect a concrete model's state through
    /// [`DeviceModel::as_any_mut`]).
    pub fn model_mut(&mut self) -> &mut dyn DeviceModel {
        self.model.as_mut()
    }

    // ---- the stepping interface of the simulator's worker -----------------------------

    /// A started program: the channel begins at the ORB's CCW address.
    pub(crate) fn begin(&mut self, orb: &CommandOrb) {
        self.program = Some(Program::new(orb, self.max_ccws));
    }

    /// The program in flight (started, or suspended), if any.
    pub(crate) fn program(&self) -> Option<&Program> {
        self.program.as_ref()
    }

    /// Ends the program (cancel, halt, an injected fault): it is forgotten.
    pub(crate) fn take_program(&mut self) -> Option<Program> {
        self.program.take()
    }

    /// Executes up to and including one command of the program; `None` without one.
    /// `concurrent_sense`: fetch the sense into the ending of a unit check.
    pub(crate) fn step(
        &mut self,
        mem: &dyn ChannelStorage,
        concurrent_sense: bool,
    ) -> Option<Step> {
        let prog = self.program.as_mut()?;
        let mut dev = Presented {
            model: self.model.as_mut(),
            injected: &mut self.injected_sense,
        };
        Some(prog.step(mem, &mut dev, concurrent_sense))
    }

    /// The model makes the program's changes durable (see [`DeviceModel::end_chain`]).
    pub(crate) fn end_chain(&mut self) -> DeviceStatus {
        self.model.end_chain()
    }

    /// The sense the device presents: injected sense first, then the model's.
    pub(crate) fn sense(&mut self) -> SenseData {
        self.injected_sense
            .take()
            .unwrap_or_else(|| self.model.sense())
    }

    /// A unit-check fault's sense, presented before the model's own.
    pub(crate) fn inject_sense(&mut self, sense: SenseData) {
        self.injected_sense = Some(sense);
    }

    /// The clear signal: no program, no injected sense, the model reset.
    pub(crate) fn reset(&mut self) {
        self.program = None;
        self.injected_sense = None;
        self.model.reset();
    }

    // ---- run to the end: vcss ---------------------------------------------------------

    /// Runs the current program until it ends or suspends.
    fn run(&mut self, mem: &dyn GuestIo) -> Outcome {
        let storage = GuestStorage(mem);
        let mut pci = false;
        loop {
            let Some(step) = self.step(&storage, false) else {
                // RESUME with no suspended program cannot come from vcss (the subchannel is
                // suspended only after a suspension here); end cleanly if it does.
                return Outcome::Ended(Ending {
                    cstat: SubchannelStatus::CHANNEL_CONTROL_CHECK,
                    ..Ending::default()
                });
            };
            match step {
                Step::Continue { pci: p } => pci |= p.is_some(),
                Step::Suspend { cpa, pci: p } => {
                    let lost = self.model.end_chain();
                    if !lost.is_empty() {
                        // The program's changes could not be made durable: it ends with
                        // that unit check instead of suspending.
                        let cpa = self.program.take().map_or(cpa, |p| p.executed_cpa());
                        return Outcome::Ended(Ending {
                            dstat: DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END | lost,
                            cstat: pci_status(pci || p),
                            cpa,
                            ..Ending::default()
                        });
                    }
                    return Outcome::Suspended { cpa };
                }
                Step::End { mut ending, pci: p } => {
                    ending.dstat |= self.model.end_chain();
                    ending.cstat |= pci_status(pci || p);
                    self.program = None;
                    return Outcome::Ended(ending);
                }
            }
        }
    }
}

fn pci_status(pci: bool) -> SubchannelStatus {
    if pci {
        SubchannelStatus::PCI
    } else {
        SubchannelStatus::NONE
    }
}

impl vcss::Device for ChannelDevice {
    fn start(&mut self, mem: &dyn GuestIo, orb: &CommandOrb, _path: u8) -> Outcome {
        self.begin(orb);
        self.run(mem)
    }

    fn resume(&mut self, mem: &dyn GuestIo, _cpa: u32) -> Outcome {
        // The program stopped before the suspending CCW and re-fetches it.
        self.run(mem)
    }

    fn halt(&mut self) -> u32 {
        let Some(prog) = self.program.take() else {
            return 0;
        };
        let lost = self.model.end_chain();
        if !lost.is_empty() {
            // A suspended program's changes were made durable at the suspension; nothing is
            // left to lose here, but say so if a model disagrees.
            tracing::warn!(%lost, "device check when a suspended program was halted");
        }
        prog.current_cpa()
    }

    fn clear(&mut self) {
        self.reset();
    }

    fn enabled(&mut self) {
        self.model.enabled();
    }

    fn virtio_notify(&mut self, mem: &dyn GuestIo, queue: u16) -> vcss::VirtioNotify {
        self.model.virtio_notify(mem, queue)
    }
}
