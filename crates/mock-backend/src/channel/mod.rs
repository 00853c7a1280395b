// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The channel-program interpreter (reference §1, §8).
//!
//! A [`Program`] is a started channel program. [`Program::step`] fetches CCWs from the
//! simulated host storage (following TICs), validates them, executes one command on the device
//! through a [`Stream`] (which resolves data chaining, IDAWs, MIDAWs and SKIP and counts bytes)
//! and says what happens next: the chain continues (possibly with a PCI interruption), the
//! program suspends, or the start function ends with an [`Ending`].

use ccw_types::{
    CcwFlags, CcwFormat, CcwRepr, CommandClass, CommandOrb, DeviceStatus, IdawFormat,
    SubchannelStatus, ccw::cmd,
};

use crate::device::{ChainContext, Command, DataStream, DeviceModel, DeviceOutcome, TransferError};
use crate::instr::Ending;
use crate::storage::{HostStorage, StorageCheck};

/// Storage as the channel reaches it: the simulator's host storage (arena and pinned guest
/// pages, with storage keys) or a guest's memory seen through [`vcss::GuestIo`] when the
/// channel runs behind a virtual subchannel ([`crate::ChannelDevice`]).
pub(crate) trait ChannelStorage {
    /// Reads `buf.len()` bytes at `addr` with access key `key`.
    fn read(&self, addr: u64, buf: &mut [u8], key: u8) -> Result<(), StorageCheck>;
    /// Writes `buf` at `addr` with access key `key`.
    fn write(&self, addr: u64, buf: &[u8], key: u8) -> Result<(), StorageCheck>;
    /// Whether all of `addr..addr + len` is storage (for the addressing checks made before a
    /// transfer starts).
    fn exists(&self, addr: u64, len: u64) -> bool;
}

impl ChannelStorage for HostStorage {
    fn read(&self, addr: u64, buf: &mut [u8], key: u8) -> Result<(), StorageCheck> {
        HostStorage::read(self, addr, buf, key)
    }
    fn write(&self, addr: u64, buf: &[u8], key: u8) -> Result<(), StorageCheck> {
        HostStorage::write(self, addr, buf, key)
    }
    fn exists(&self, addr: u64, len: u64) -> bool {
        HostStorage::exists(self, addr, len)
    }
}

/// A guest's memory as the channel of a virtual subchannel reaches it. Storage keys are not
/// modelled by vcss (its [`vcss::GuestIo`] has none), so the access key is ignored; storage
/// the guest memory reports read-only is a protection check on a write, storage it does not
/// have is a program check (addressing), as the architecture gives the channel.
pub(crate) struct GuestStorage<'a>(pub(crate) &'a dyn vcss::GuestIo);

impl ChannelStorage for GuestStorage<'_> {
    fn read(&self, addr: u64, buf: &mut [u8], _key: u8) -> Result<(), StorageCheck> {
        self.0
            .read_at(addr, buf)
            .map_err(|_| StorageCheck::Nonexistent)
    }
    fn write(&self, addr: u64, buf: &[u8], _key: u8) -> Result<(), StorageCheck> {
        let len = buf.len();
        if !self.0.accessible(addr, len, true) {
            return Err(if self.0.accessible(addr, len, false) {
                StorageCheck::Protection
            } else {
                StorageCheck::Nonexistent
            });
        }
        self.0
            .write_at(addr, buf)
            .map_err(|_| StorageCheck::Nonexistent)
    }
    fn exists(&self, addr: u64, len: u64) -> bool {
        usize::try_from(len).is_ok_and(|len| self.0.accessible(addr, len, false))
    }
}

/// Backward TICs (without a data-transferring command in between) a program may execute before
/// the channel declares a loop: Hercules' limit.
pub(crate) const MAX_TICS_WITHOUT_DATA: u32 = 255;
/// Default bound on the CCWs of one program (model-dependent guard of the simulator; a real
/// channel runs until halted).
pub(crate) const DEFAULT_MAX_CCWS: u64 = 1 << 20;
/// The unit in which the channel accesses data storage (and in which keys and pins apply).
const PAGE: u64 = 4096;

/// Why the channel stopped the program: becomes subchannel status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Program,
    Protection,
    ChannelData,
}

impl Check {
    fn status(self) -> SubchannelStatus {
        match self {
            Check::Program => SubchannelStatus::PROGRAM_CHECK,
            Check::Protection => SubchannelStatus::PROTECTION_CHECK,
            Check::ChannelData => SubchannelStatus::CHANNEL_DATA_CHECK,
        }
    }
    fn error(self) -> TransferError {
        match self {
            Check::Program => TransferError::ProgramCheck,
            Check::Protection => TransferError::ProtectionCheck,
            Check::ChannelData => TransferError::ChannelDataCheck,
        }
    }
}

impl From<StorageCheck> for Check {
    fn from(c: StorageCheck) -> Self {
        match c {
            StorageCheck::Nonexistent => Check::Program,
            StorageCheck::NotPinned => Check::ChannelData,
            StorageCheck::Protection => Check::Protection,
        }
    }
}

/// The ORB fields the interpreter needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub(crate) key: u8,
    pub(crate) format: CcwFormat,
    pub(crate) suspend: bool,
    pub(crate) ils: bool,
    pub(crate) midaw: bool,
    pub(crate) idaw: IdawFormat,
}

impl Params {
    pub(crate) fn of(orb: &CommandOrb) -> Self {
        Self {
            key: orb.key,
            format: orb.format,
            suspend: orb.suspend,
            ils: orb.ils,
            midaw: orb.midaw,
            idaw: orb.idaw_format(),
        }
    }

    fn ccw_addr_ok(&self, addr: u64) -> bool {
        addr & 7 == 0
            && match self.format {
                CcwFormat::Format0 => addr <= 0x00FF_FFFF,
                CcwFormat::Format1 => addr <= 0x7FFF_FFFF,
            }
    }

    fn data_limit(&self) -> u64 {
        match self.format {
            CcwFormat::Format0 => 0x00FF_FFFF,
            CcwFormat::Format1 => 0x7FFF_FFFF,
        }
    }
}

/// What the executor does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The command ended normally and command chaining continues. `pci`: present intermediate
    /// status with PCI and this CCW address first.
    Continue { pci: Option<u32> },
    /// The program suspends before the CCW at `cpa - 8`.
    Suspend { cpa: u32, pci: bool },
    /// The start function ends. `pci`: a PCI CCW was executed and its status must show.
    End { ending: Ending, pci: bool },
}

/// A started channel program.
#[derive(Debug)]
pub(crate) struct Program {
    params: Params,
    /// Address of the next CCW to fetch.
    next: u32,
    /// Address of the CCW being (or last) executed.
    current: u32,
    /// Address of the last CCW whose command ended + 8 (0 before the first).
    executed: u32,
    ctx: ChainContext,
    tics_without_data: u32,
    ccws: u64,
    max_ccws: u64,
}

fn ccw_check(check: Check, ccw_addr: u32, dstat: DeviceStatus) -> Step {
    Step::End {
        ending: Ending {
            dstat,
            cstat: check.status(),
            cpa: ccw_addr.wrapping_add(8),
            count: 0,
            sense: None,
        },
        pci: false,
    }
}

impl Program {
    pub(crate) fn new(orb: &CommandOrb, max_ccws: u64) -> Self {
        Self {
            params: Params::of(orb),
            next: orb.cpa,
            current: orb.cpa,
            executed: 0,
            ctx: ChainContext::new(),
            tics_without_data: 0,
            ccws: 0,
            max_ccws,
        }
    }

    /// Address of the current CCW + 8 (for halt status).
    pub(crate) fn current_cpa(&self) -> u32 {
        self.current.wrapping_add(8)
    }

    /// Address of the last CCW whose command ended + 8 (for status that ends the program
    /// after that command, e.g. at a suspension).
    pub(crate) fn executed_cpa(&self) -> u32 {
        self.executed
    }

    /// Fetches and validates the next CCW, following TICs. `Err` is the ending step.
    fn fetch(&mut self, mem: &dyn ChannelStorage) -> Result<(u32, CcwRepr), Step> {
        let p = self.params;
        let mut addr = self.next;
        let mut after_tic = false;
        loop {
            self.current = addr;
            if !p.ccw_addr_ok(u64::from(addr)) {
                return Err(ccw_check(Check::Program, addr, DeviceStatus::NONE));
            }
            let mut raw = [0u8; 8];
            if let Err(e) = mem.read(u64::from(addr), &mut raw, p.key) {
                return Err(ccw_check(e.into(), addr, DeviceStatus::NONE));
            }
            let Ok(ccw) = CcwRepr::parse(raw, p.format) else {
                return Err(ccw_check(Check::Program, addr, DeviceStatus::NONE));
            };
            if !ccw.is_tic(p.format) {
                return Ok((addr, ccw));
            }
            // TIC: never to another TIC; format 1 needs zero flags and count; the target must be
            // a valid CCW address (a bad target is reported at the TIC, as Hercules does).
            let bad_fmt1 =
                p.format == CcwFormat::Format1 && (!ccw.flags.is_empty() || ccw.count != 0);
            if after_tic || bad_fmt1 || !p.ccw_addr_ok(u64::from(ccw.cda)) {
                return Err(ccw_check(Check::Program, addr, DeviceStatus::NONE));
            }
            if ccw.cda <= addr {
                self.tics_without_data += 1;
                if self.tics_without_data > MAX_TICS_WITHOUT_DATA {
                    return Err(ccw_check(Check::Program, addr, DeviceStatus::NONE));
                }
            }
            after_tic = true;
            addr = ccw.cda;
        }
    }

    /// Validates a CCW that starts a command (reference §1.6). `Some` is the check.
    fn validate(&self, ccw: &CcwRepr) -> Option<Check> {
        let p = self.params;
        let f = ccw.flags;
        let class = ccw.class(p.format);
        let bad = class == CommandClass::Invalid
            || (f.contains(CcwFlags::S) && (!p.suspend || f.contains(CcwFlags::CD)))
            || (p.format == CcwFormat::Format0 && ccw.count == 0)
            || (f.contains(CcwFlags::CD) && ccw.count == 0)
            || !mida_ok(&p, f)
            || !direct_range_ok(&p, ccw, class);
        bad.then_some(Check::Program)
    }

    /// Executes up to and including one command. `concurrent_sense`: fetch the device's sense
    /// into the ending when the command ends in unit check.
    pub(crate) fn step(
        &mut self,
        mem: &dyn ChannelStorage,
        dev: &mut dyn DeviceModel,
        concurrent_sense: bool,
    ) -> Step {
        self.ccws += 1;
        if self.ccws > self.max_ccws {
            return ccw_check(Check::Program, self.next, DeviceStatus::NONE);
        }
        let (addr, ccw) = match self.fetch(mem) {
            Ok(x) => x,
            Err(step) => return step,
        };
        if let Some(check) = self.validate(&ccw) {
            return ccw_check(check, addr, DeviceStatus::NONE);
        }
        if ccw.flags.contains(CcwFlags::S) {
            // Suspend before executing; RESUME re-fetches this CCW.
            self.next = addr;
            return Step::Suspend {
                cpa: addr.wrapping_add(8),
                pci: ccw.flags.contains(CcwFlags::PCI),
            };
        }
        let p = self.params;
        let class = ccw.class(p.format);
        let command = Command {
            code: ccw.cmd,
            class,
            flags: ccw.flags,
            count: ccw.count,
            format: p.format,
            ccw_addr: addr,
        };
        let mut stream = Stream::new(mem, p, class, addr, ccw);
        if let Err(check) = stream.prime() {
            // The data area (or the first IDAW/MIDAW) is checked before the device is
            // started: nothing transferred, no device status.
            return Step::End {
                ending: Ending {
                    dstat: DeviceStatus::NONE,
                    cstat: check.status(),
                    cpa: addr.wrapping_add(8),
                    count: ccw.count,
                    sense: None,
                },
                pci: false,
            };
        }
        if self.ctx.is_first() && self.ctx.previous.is_none() {
            dev.begin_chain();
        }
        let outcome = match ccw.cmd {
            cmd::NOP => DeviceOutcome::done(),
            cmd::SENSE => {
                let sense = dev.sense();
                let _ = stream.write(sense.as_bytes());
                DeviceOutcome::done()
            }
            cmd::SENSE_ID => match dev.sense_id() {
                Some(id) => {
                    let _ = stream.write(id.as_bytes());
                    DeviceOutcome::done()
                }
                None => dev.execute(&command, &mut stream, &mut self.ctx),
            },
            _ => dev.execute(&command, &mut stream, &mut self.ctx),
        };
        let pci = ccw.flags.contains(CcwFlags::PCI) || stream.pos.pci;
        let dstat = outcome.status;
        self.ctx.previous = Some((ccw.cmd, dstat));
        self.ctx.index += 1;
        if stream.pos.transferred > 0 {
            self.tics_without_data = 0;
        }
        let last = stream.pos.cur;
        self.executed = last.addr.wrapping_add(8);
        if let Some(check) = stream.pos.check {
            return Step::End {
                ending: Ending {
                    dstat,
                    cstat: check.status(),
                    cpa: last.addr.wrapping_add(8),
                    count: last.count - last.consumed,
                    sense: None,
                },
                pci,
            };
        }
        let residual = last.count - last.consumed;
        let mut cstat = SubchannelStatus::NONE;
        if dstat.contains(DeviceStatus::CHANNEL_END) && stream.incorrect_length(&ccw) {
            cstat |= SubchannelStatus::INCORRECT_LENGTH;
        }
        let normal = dstat.contains(DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END)
            && !dstat.intersects(
                DeviceStatus::UNIT_CHECK
                    | DeviceStatus::UNIT_EXCEPTION
                    | DeviceStatus::ATTENTION
                    | DeviceStatus::BUSY,
            )
            && cstat.is_empty();
        if normal && last.flags.contains(CcwFlags::CC) && !last.flags.contains(CcwFlags::CD) {
            let skip = if dstat.contains(DeviceStatus::STATUS_MODIFIER) {
                16
            } else {
                8
            };
            self.next = last.addr.wrapping_add(skip);
            let at = addr.wrapping_add(8);
            return Step::Continue {
                pci: pci.then_some(at),
            };
        }
        let sense =
            (concurrent_sense && dstat.contains(DeviceStatus::UNIT_CHECK)).then(|| dev.sense());
        Step::End {
            ending: Ending {
                dstat,
                cstat,
                cpa: last.addr.wrapping_add(8),
                count: residual,
                sense,
            },
            pci,
        }
    }
}

fn mida_ok(p: &Params, f: CcwFlags) -> bool {
    !f.contains(CcwFlags::MIDA) || (p.midaw && !f.intersects(CcwFlags::IDA | CcwFlags::SKIP))
}

fn direct_range_ok(p: &Params, ccw: &CcwRepr, class: CommandClass) -> bool {
    let f = ccw.flags;
    if f.intersects(CcwFlags::IDA | CcwFlags::MIDA) || ccw.count == 0 {
        return true;
    }
    if f.contains(CcwFlags::SKIP) && class.honours_skip() {
        return true;
    }
    let limit = p.data_limit();
    let cda = u64::from(ccw.cda);
    let count = u64::from(ccw.count);
    if class == CommandClass::ReadBackward {
        cda <= limit && cda + 1 >= count
    } else {
        cda + count - 1 <= limit
    }
}

/// The CCW currently supplying data, with its indirect-addressing position.
#[derive(Debug, Clone, Copy)]
struct Cur {
    addr: u32,
    flags: CcwFlags,
    count: u16,
    cda: u32,
    consumed: u16,
    /// IDAWs fetched so far.
    idaws: u64,
    /// MIDAW list position (bytes into the list).
    midaw_off: u64,
    /// Current indirect block: next address and bytes left in it.
    block_addr: u64,
    block_left: u64,
    midaw_skip: bool,
    midaw_last: bool,
}

impl Cur {
    fn new(addr: u32, ccw: &CcwRepr) -> Self {
        Self {
            addr,
            flags: ccw.flags,
            count: ccw.count,
            cda: ccw.cda,
            consumed: 0,
            idaws: 0,
            midaw_off: 0,
            block_addr: 0,
            block_left: 0,
            midaw_skip: false,
            midaw_last: false,
        }
    }
    fn left(&self) -> usize {
        usize::from(self.count - self.consumed)
    }
}

/// A piece of storage for the next bytes.
#[derive(Debug, Clone, Copy)]
enum Piece {
    /// Transfer to/from `[addr, addr + len)` (for read backward: `addr` is the highest byte).
    At(u64, usize),
    /// Drop (skip) `len` bytes.
    Skip(usize),
}

enum Dir<'b> {
    In(&'b [u8]),
    Out(&'b mut [u8]),
}

impl Dir<'_> {
    fn len(&self) -> usize {
        match self {
            Dir::In(b) => b.len(),
            Dir::Out(b) => b.len(),
        }
    }
}

/// The channel's side of one command's data transfer.
pub(crate) struct Stream<'a> {
    mem: &'a dyn ChannelStorage,
    p: Params,
    class: CommandClass,
    pos: Position,
}

/// Where a [`Stream`] stands; copied to peek without moving it.
#[derive(Debug, Clone, Copy)]
struct Position {
    /// The CCW currently supplying data.
    cur: Cur,
    /// Bytes transferred or skipped so far.
    transferred: usize,
    /// The device offered more than the count (device to storage).
    overrun: bool,
    /// The device called `read` or `write` at least once.
    touched: bool,
    /// The check that stopped the transfer.
    check: Option<Check>,
    /// A data-chained CCW had PCI.
    pci: bool,
}

impl<'a> Stream<'a> {
    fn new(
        mem: &'a dyn ChannelStorage,
        p: Params,
        class: CommandClass,
        addr: u32,
        ccw: CcwRepr,
    ) -> Self {
        Self {
            mem,
            p,
            class,
            pos: Position {
                cur: Cur::new(addr, &ccw),
                transferred: 0,
                overrun: false,
                touched: false,
                check: None,
                pci: false,
            },
        }
    }

    fn backward(&self) -> bool {
        self.class == CommandClass::ReadBackward
    }

    fn fail(&mut self, check: Check) -> TransferError {
        self.pos.check = Some(check);
        check.error()
    }

    /// Incorrect length for the command that just ended (reference §1.7).
    fn incorrect_length(&self, first: &CcwRepr) -> bool {
        let last = &self.pos.cur;
        if self.class == CommandClass::Control && !self.pos.touched {
            // Immediate command: format 1 only, non-zero count, unless SLI or ORB L.
            return self.p.format == CcwFormat::Format1
                && first.count != 0
                && !first.flags.contains(CcwFlags::SLI)
                && !self.p.ils;
        }
        let suppressed = last.flags.contains(CcwFlags::SLI) && !last.flags.contains(CcwFlags::CD);
        let wrong =
            last.consumed != last.count || self.pos.overrun || last.flags.contains(CcwFlags::CD);
        wrong && !suppressed
    }

    /// Continues the command with the next CCW (data chaining).
    fn chain_data(&mut self) -> Result<(), TransferError> {
        let p = self.p;
        let mut addr = self.pos.cur.addr.wrapping_add(8);
        let mut after_tic = false;
        let ccw = loop {
            if !p.ccw_addr_ok(u64::from(addr)) {
                self.pos.cur.addr = addr;
                return Err(self.fail(Check::Program));
            }
            let mut raw = [0u8; 8];
            if let Err(e) = self.mem.read(u64::from(addr), &mut raw, p.key) {
                self.pos.cur.addr = addr;
                return Err(self.fail(e.into()));
            }
            let Ok(ccw) = CcwRepr::parse(raw, p.format) else {
                self.pos.cur.addr = addr;
                return Err(self.fail(Check::Program));
            };
            if !ccw.is_tic(p.format) {
                break ccw;
            }
            let bad_fmt1 =
                p.format == CcwFormat::Format1 && (!ccw.flags.is_empty() || ccw.count != 0);
            if after_tic || bad_fmt1 || !p.ccw_addr_ok(u64::from(ccw.cda)) {
                self.pos.cur.addr = addr;
                return Err(self.fail(Check::Program));
            }
            after_tic = true;
            addr = ccw.cda;
        };
        let f = ccw.flags;
        self.pos.cur = Cur::new(addr, &ccw);
        // A data-chained CCW: count 0 and S are program checks (Hercules, reference §14 #24).
        if ccw.count == 0
            || f.contains(CcwFlags::S)
            || !mida_ok(&p, f)
            || !direct_range_ok(&p, &ccw, self.class)
        {
            return Err(self.fail(Check::Program));
        }
        if f.contains(CcwFlags::PCI) {
            self.pos.pci = true;
        }
        self.prime().map_err(|c| self.fail(c))
    }

    /// What the channel checks when a read, write or sense CCW begins to supply data
    /// (reference §1.6, §8; the storage-access rules in the crate README): a direct data area
    /// must exist in full
    /// (addressing: program check) unless SKIP suppresses the transfer; with IDA or MIDA the
    /// first IDAW or MIDAW is fetched and validated (also when skipping, as the channel
    /// fetches IDAWs to count the skipped bytes). Keys and pins are checked as the bytes move.
    fn prime(&mut self) -> Result<(), Check> {
        let c = self.pos.cur;
        if c.count == 0 || self.class == CommandClass::Control {
            // A control command's data area is accessed only if the device asks for data.
            return Ok(());
        }
        let f = c.flags;
        if f.contains(CcwFlags::MIDA) {
            return self.next_midaw();
        }
        if f.contains(CcwFlags::IDA) {
            return self.next_idaw();
        }
        if self.skipping() {
            return Ok(());
        }
        let count = u64::from(c.count);
        let lo = if self.backward() {
            u64::from(c.cda) + 1 - count
        } else {
            u64::from(c.cda)
        };
        if self.mem.exists(lo, count) {
            Ok(())
        } else {
            Err(Check::Program)
        }
    }

    /// SKIP is set and honoured by this command: no data moves to storage.
    fn skipping(&self) -> bool {
        self.pos.cur.flags.contains(CcwFlags::SKIP) && self.class.honours_skip()
    }

    /// The storage for up to `want` of the next bytes of the current CCW.
    fn piece(&mut self, want: usize) -> Result<Piece, Check> {
        let c = self.pos.cur;
        let f = c.flags;
        let skip = self.skipping();
        let back = self.backward();
        if f.contains(CcwFlags::MIDA) {
            return self.midaw_piece(want);
        }
        if !f.contains(CcwFlags::IDA) {
            if skip {
                return Ok(Piece::Skip(want));
            }
            let off = u64::from(c.consumed);
            let addr = if back {
                u64::from(c.cda) - off
            } else {
                u64::from(c.cda) + off
            };
            return Ok(Piece::At(addr, want));
        }
        // IDA: the IDAWs are fetched as the count is consumed, also while skipping.
        if self.pos.cur.block_left == 0 {
            self.next_idaw()?;
        }
        let n = want.min(self.pos.cur.block_left as usize);
        if skip {
            return Ok(Piece::Skip(n));
        }
        Ok(Piece::At(self.pos.cur.block_addr, n))
    }

    fn next_idaw(&mut self) -> Result<(), Check> {
        let fmt = self.p.idaw;
        let size = fmt.idaw_size();
        let list = u64::from(self.pos.cur.cda);
        if list % size != 0 || (self.p.format == CcwFormat::Format0 && list > 0x00FF_FFFF) {
            return Err(Check::Program);
        }
        let at = list + self.pos.cur.idaws * size;
        let mut raw = [0u8; 8];
        let raw = &mut raw[..size as usize];
        self.mem.read(at, raw, self.p.key)?;
        let addr = fmt.decode(raw).map_err(|_| Check::Program)?;
        let bs = fmt.block_size();
        let back = self.backward();
        let left = if self.pos.cur.idaws == 0 {
            if back {
                (addr & (bs - 1)) + 1
            } else {
                bs - (addr & (bs - 1))
            }
        } else {
            let aligned = if back {
                // The last byte of a block (no `addr + 1`: the IDAW may hold u64::MAX).
                addr & (bs - 1) == bs - 1
            } else {
                addr & (bs - 1) == 0
            };
            if !aligned {
                return Err(Check::Program);
            }
            bs
        };
        if !self.skipping() {
            // The part of the block this CCW's count will use must exist.
            let used = left.min(self.pos.cur.left() as u64);
            let lo = if back {
                addr.checked_sub(used.saturating_sub(1))
            } else {
                Some(addr)
            };
            if !lo.is_some_and(|lo| self.mem.exists(lo, used)) {
                return Err(Check::Program);
            }
        }
        self.pos.cur.idaws += 1;
        self.pos.cur.block_addr = addr;
        self.pos.cur.block_left = left;
        Ok(())
    }

    fn midaw_piece(&mut self, want: usize) -> Result<Piece, Check> {
        if self.pos.cur.block_left == 0 {
            self.next_midaw()?;
        }
        let n = want.min(self.pos.cur.block_left as usize);
        if self.pos.cur.midaw_skip {
            return Ok(Piece::Skip(n));
        }
        Ok(Piece::At(self.pos.cur.block_addr, n))
    }

    /// Fetches and validates the next MIDAW; its data area must exist unless it skips.
    fn next_midaw(&mut self) -> Result<(), Check> {
        {
            if self.pos.cur.midaw_off > 0 && self.pos.cur.midaw_last {
                // The list ended with count left.
                return Err(Check::Program);
            }
            let list = u64::from(self.pos.cur.cda);
            let at = list + self.pos.cur.midaw_off;
            if list % 16 != 0 || (self.pos.cur.midaw_off > 0 && at % 4096 == 0) {
                return Err(Check::Program);
            }
            let mut raw = [0u8; 16];
            self.mem.read(at, &mut raw, self.p.key)?;
            let flags = raw[5];
            let count = u64::from(u16::from_be_bytes([raw[6], raw[7]]));
            let mut a = [0u8; 8];
            a.copy_from_slice(&raw[8..]);
            let addr = u64::from_be_bytes(a);
            let skip = flags & 0x40 != 0;
            let back = self.backward();
            let crosses = if back {
                count > (addr & 0xFFF) + 1
            } else {
                (addr & 0xFFF) + count > 4096
            };
            let lo = if back {
                addr.checked_sub(count.saturating_sub(1))
            } else {
                Some(addr)
            };
            if raw[..5].iter().any(|&b| b != 0)
                || flags & 0x3F != 0
                || count == 0
                || count > self.pos.cur.left() as u64
                || (!skip && crosses)
                || (!skip && !lo.is_some_and(|lo| self.mem.exists(lo, count)))
            {
                return Err(Check::Program);
            }
            self.pos.cur.midaw_off += 16;
            self.pos.cur.block_addr = addr;
            self.pos.cur.block_left = count;
            self.pos.cur.midaw_skip = skip;
            self.pos.cur.midaw_last = flags & 0x80 != 0;
        }
        Ok(())
    }

    fn advance(&mut self, n: usize) {
        self.pos.cur.consumed += n as u16;
        self.pos.transferred += n;
        let c = &mut self.pos.cur;
        if c.flags.intersects(CcwFlags::IDA | CcwFlags::MIDA) && c.block_left > 0 {
            c.block_left -= n as u64;
            // Wrapping both ways: a skipped block's address is never checked (nothing is
            // accessed), so it may sit at either end of the 64-bit space.
            if self.class == CommandClass::ReadBackward {
                c.block_addr = c.block_addr.wrapping_sub(n as u64);
            } else {
                c.block_addr = c.block_addr.wrapping_add(n as u64);
            }
        }
    }

    fn transfer(&mut self, mut dir: Dir<'_>) -> Result<usize, TransferError> {
        self.pos.touched = true;
        if let Some(c) = self.pos.check {
            return Err(c.error());
        }
        let total = dir.len();
        let mut done = 0;
        while done < total {
            if self.pos.cur.left() == 0 {
                if self.pos.cur.flags.contains(CcwFlags::MIDA) && !self.pos.cur.midaw_last {
                    return Err(self.fail(Check::Program));
                }
                if !self.pos.cur.flags.contains(CcwFlags::CD) {
                    // The device had more data than the count (device to storage). A device
                    // reading from storage with a larger buffer than needed is no error.
                    if matches!(dir, Dir::In(_)) {
                        self.pos.overrun = true;
                    }
                    break;
                }
                self.chain_data()?;
            }
            let want = (total - done).min(self.pos.cur.left());
            let piece = match self.piece(want) {
                Ok(p) => p,
                Err(c) => return Err(self.fail(c)),
            };
            let n = match piece {
                Piece::Skip(n) => n,
                Piece::At(addr, n) => {
                    // Storage is accessed a page at a time, so a key or pin check on a later
                    // page leaves the earlier pages transferred and counted.
                    let n = n.min(if self.backward() {
                        (addr & (PAGE - 1)) as usize + 1
                    } else {
                        (PAGE - (addr & (PAGE - 1))) as usize
                    });
                    let res = match &mut dir {
                        Dir::In(src) => {
                            let chunk = &src[done..done + n];
                            if self.backward() {
                                let lo = addr.wrapping_sub(n as u64 - 1);
                                let rev: Vec<u8> = chunk.iter().rev().copied().collect();
                                self.mem.write(lo, &rev, self.p.key)
                            } else {
                                self.mem.write(addr, chunk, self.p.key)
                            }
                        }
                        Dir::Out(dst) => self.mem.read(addr, &mut dst[done..done + n], self.p.key),
                    };
                    if let Err(e) = res {
                        return Err(self.fail(e.into()));
                    }
                    n
                }
            };
            self.advance(n);
            done += n;
        }
        if self.pos.cur.left() == 0
            && self.pos.cur.flags.contains(CcwFlags::MIDA)
            && !self.pos.cur.midaw_last
            && done > 0
        {
            return Err(self.fail(Check::Program));
        }
        Ok(done)
    }
}

impl DataStream for Stream<'_> {
    fn write(&mut self, data: &[u8]) -> Result<usize, TransferError> {
        self.transfer(Dir::In(data))
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransferError> {
        self.transfer(Dir::Out(buf))
    }

    fn remaining(&self) -> usize {
        self.pos.cur.left()
    }

    fn chains_data(&self) -> bool {
        self.pos.cur.flags.contains(CcwFlags::CD)
    }

    fn transferred(&self) -> usize {
        self.pos.transferred
    }

    fn peek(&mut self, offset: usize, buf: &mut [u8]) -> Result<usize, TransferError> {
        let saved = self.pos;
        let mut skip = vec![0u8; offset];
        let r = self.transfer(Dir::Out(&mut skip)).and_then(|n| {
            if n < offset {
                Ok(0)
            } else {
                self.transfer(Dir::Out(buf))
            }
        });
        self.pos = saved;
        r
    }
}

#[cfg(test)]
mod tests;
