// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Interpreter details not visible through SCSW bytes alone: what the device sees.

use super::*;
use crate::device::{SenseData, SenseIdData};
use ccw_translate::Mapper;

#[derive(Default)]
struct Seen {
    chains: usize,
    commands: Vec<(u8, u16, usize, usize)>,
}

#[derive(Default)]
struct Counter(u32);

/// Reads everything offered and records (cmd, first count, index, bytes); counts chains.
struct Recorder(Seen);

impl DeviceModel for Recorder {
    fn sense_id(&self) -> Option<SenseIdData> {
        None
    }
    fn execute(
        &mut self,
        cmd: &Command,
        data: &mut dyn DataStream,
        ctx: &mut ChainContext,
    ) -> DeviceOutcome {
        let mut buf = [0u8; 64];
        let n = data.read(&mut buf).unwrap_or(0);
        ctx.state::<Counter>().0 += 1;
        assert_eq!(ctx.state::<Counter>().0 as usize, ctx.index + 1);
        self.0.commands.push((cmd.code, cmd.count, ctx.index, n));
        DeviceOutcome::done()
    }
    fn sense(&mut self) -> SenseData {
        SenseData::default()
    }
    fn reset(&mut self) {}
    fn begin_chain(&mut self) {
        self.0.chains += 1;
    }
}

fn ccw(cmd: u8, flags: CcwFlags, count: u16, cda: u32) -> [u8; 8] {
    CcwRepr {
        cmd,
        flags,
        count,
        cda,
    }
    .emit(CcwFormat::Format1)
    .unwrap()
}

fn run(mem: &HostStorage, dev: &mut dyn DeviceModel, cpa: u32) -> Step {
    let mut p = Program::new(&CommandOrb::new(0, cpa), DEFAULT_MAX_CCWS);
    loop {
        match p.step(mem, dev, true) {
            Step::Continue { .. } => continue,
            other => return other,
        }
    }
}

#[test]
fn data_chaining_is_one_command_and_context_lives_for_the_chain() {
    let mem = HostStorage::new(1 << 16, None, true).unwrap();
    let data = mem.alloc_control(64).unwrap();
    let prog = mem.alloc_control(32).unwrap();
    let d = data.addr as u32;
    let bytes = [
        ccw(0x01, CcwFlags::CD, 4, d),
        ccw(0x01, CcwFlags::CC, 6, d + 8),
        ccw(0x05, CcwFlags::NONE, 2, d),
    ]
    .concat();
    mem.write_control(&prog, 0, &bytes).unwrap();
    let mut dev = Recorder(Seen::default());
    let step = run(&mem, &mut dev, prog.addr as u32);
    let Step::End { ending, pci } = step else {
        panic!("{step:?}")
    };
    assert!(!pci);
    assert_eq!(ending.cpa, prog.addr as u32 + 24);
    assert_eq!(dev.0.chains, 1);
    assert_eq!(dev.0.commands, vec![(0x01, 4, 0, 10), (0x05, 2, 1, 2)]);
    // A second program starts a new chain with fresh state.
    run(&mem, &mut dev, prog.addr as u32);
    assert_eq!(dev.0.chains, 2);
    assert_eq!(dev.0.commands[2], (0x01, 4, 0, 10));
}

#[test]
fn sense_id_without_support_goes_to_the_device() {
    let mem = HostStorage::new(1 << 16, None, true).unwrap();
    let prog = mem.alloc_control(8).unwrap();
    mem.write_control(&prog, 0, &ccw(0xE4, CcwFlags::SLI, 0, 0))
        .unwrap();
    let mut dev = Recorder(Seen::default());
    run(&mem, &mut dev, prog.addr as u32);
    assert_eq!(dev.0.commands, vec![(0xE4, 0, 0, 0)]);
}

#[test]
fn peek_does_not_move_the_stream() {
    let mem = HostStorage::new(1 << 16, None, true).unwrap();
    let data = mem.alloc_control(8).unwrap();
    mem.write_control(&data, 0, b"abcdefgh").unwrap();
    let c = CcwRepr::parse(
        ccw(0x01, CcwFlags::NONE, 8, data.addr as u32),
        CcwFormat::Format1,
    )
    .unwrap();
    let p = Params::of(&CommandOrb::new(0, 0));
    let mut s = Stream::new(&mem, p, CommandClass::Write, 0, c);
    let mut b = [0u8; 2];
    assert_eq!(s.peek(3, &mut b), Ok(2));
    assert_eq!(&b, b"de");
    assert_eq!(s.remaining(), 8);
    assert_eq!(s.transferred(), 0);
    let mut all = [0u8; 8];
    assert_eq!(s.read(&mut all), Ok(8));
    assert_eq!(&all, b"abcdefgh");
    // Peeking past the count gives nothing.
    assert_eq!(s.peek(0, &mut b), Ok(0));
}
