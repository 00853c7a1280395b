// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Channel-program execution, one rule per test, with the expected SCSW/IRB bytes.
//! The test device is on 0.0.0001 (see `MockBackend::default_subsystem`).

mod common;

use ccw_types::CcwFlags as F;
use ccw_types::CcwFormat;
use common::*;
use mock_backend::GUEST_BASE;

/// SCSW word 0 of a normal ending (F, start, primary + secondary + pending).
const DONE: u32 = 0x0080_4007;
/// ... with alert.
const ALERT: u32 = 0x0080_4017;
/// Format-0 program, normal ending.
const DONE0: u32 = 0x0000_4007;
const ALERT0: u32 = 0x0000_4017;

async fn write_record(rig: &mut Rig, record: &[u8]) {
    let buf = rig.alloc(record.len(), 0);
    rig.poke(buf as u64, record);
    let prog = rig.program(&[ccw1(0x01, F::NONE, record.len() as u16, buf)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
}

async fn setup(record: &[u8]) -> Rig {
    let mut rig = Rig::default_enabled().await;
    write_record(&mut rig, record).await;
    rig
}

#[tokio::test]
async fn read_exact_count_is_ce_de() {
    let mut rig = setup(b"hello").await;
    let buf = rig.alloc(5, 0);
    let prog = rig.program(&[ccw1(0x02, F::NONE, 5, buf)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
    assert_eq!(rig.peek(buf as u64, 5), b"hello");
}

#[tokio::test]
async fn short_record_is_incorrect_length_with_residual() {
    let mut rig = setup(b"hello").await;
    let buf = rig.alloc(10, 0);
    let prog = rig.program(&[ccw1(0x02, F::NONE, 10, buf)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0x0c, 0x40, 5));
    // SLI suppresses it.
    let prog = rig.program(&[ccw1(0x02, F::SLI, 10, buf)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 5));
}

#[tokio::test]
async fn long_record_is_incorrect_length_unless_sli() {
    let mut rig = setup(b"hello").await;
    let buf = rig.alloc(8, 0);
    let prog = rig.program(&[ccw1(0x02, F::NONE, 3, buf)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0x0c, 0x40, 0));
    assert_eq!(rig.peek(buf as u64, 4), b"hel\0");
    let prog = rig.program(&[ccw1(0x02, F::SLI, 3, buf)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
}

#[tokio::test]
async fn incorrect_length_ends_command_chaining() {
    let mut rig = setup(b"hello").await;
    let buf = rig.alloc(16, 0);
    let prog = rig.program(&[ccw1(0x02, F::CC, 10, buf), ccw1(0x02, F::NONE, 5, buf)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0x0c, 0x40, 5));
}

#[tokio::test]
async fn command_chaining_reports_last_ccw_plus_8() {
    let mut rig = setup(b"hello").await;
    let buf = rig.alloc(16, 0);
    let prog = rig.program(&[
        ccw1(0x03, F::CC, 0, 0),
        ccw1(0x02, F::CC | F::SLI, 16, buf),
        ccw1(0x03, F::NONE, 0, 0),
    ]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 24, 0x0c, 0, 0));
}

#[tokio::test]
async fn data_chaining_splits_one_transfer() {
    let mut rig = setup(b"0123456789").await;
    let a = rig.alloc(4, 0);
    let b = rig.alloc(6, 0);
    let prog = rig.program(&[ccw1(0x02, F::CD, 4, a), ccw1(0x02, F::NONE, 6, b)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 16, 0x0c, 0, 0));
    assert_eq!(rig.peek(a as u64, 4), b"0123");
    assert_eq!(rig.peek(b as u64, 6), b"456789");
}

#[tokio::test]
async fn data_chaining_through_a_tic() {
    let mut rig = setup(b"0123456789").await;
    let a = rig.alloc(4, 0);
    let b = rig.alloc(6, 0);
    let tail = rig.program(&[ccw1(0x02, F::NONE, 6, b)]);
    let prog = rig.program(&[ccw1(0x02, F::CD, 4, a), ccw1(0x08, F::NONE, 0, tail)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, tail + 8, 0x0c, 0, 0));
    assert_eq!(rig.peek(b as u64, 6), b"456789");
}

#[tokio::test]
async fn device_ending_inside_a_data_chain_is_incorrect_length_despite_sli() {
    let mut rig = setup(b"abc").await;
    let a = rig.alloc(4, 0);
    let prog = rig.program(&[ccw1(0x02, F::CD | F::SLI, 4, a), ccw1(0x02, F::SLI, 4, a)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0x0c, 0x40, 1));
}

#[tokio::test]
async fn data_chained_ccw_with_count_zero_is_program_check() {
    let mut rig = setup(b"0123456789").await;
    let a = rig.alloc(4, 0);
    let prog = rig.program(&[ccw1(0x02, F::CD, 4, a), ccw1(0x02, F::NONE, 0, a)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 16, 0x0c, 0x20, 0));
}

#[tokio::test]
async fn cd_with_count_zero_is_program_check() {
    let mut rig = Rig::default_enabled().await;
    let prog = rig.program(&[ccw1(0x02, F::CD, 0, 0x1000), ccw1(0x02, F::NONE, 1, 0)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0, 0x20, 0));
}

#[tokio::test]
async fn invalid_command_codes_are_program_checks() {
    let mut rig = Rig::default_enabled().await;
    for cmd in [0x00, 0x10, 0xF0, 0x18, 0x28] {
        let prog = rig.program(&[ccw1(0x03, F::CC, 0, 0), ccw1(cmd, F::NONE, 0, 0)]);
        let irb = rig.run(TESTDEV, &orb(prog)).await;
        assert_eq!(
            scsw(&irb),
            scsw_bytes(ALERT, prog + 16, 0, 0x20, 0),
            "cmd {cmd:#x}"
        );
    }
}

#[tokio::test]
async fn tic_rules() {
    let mut rig = Rig::default_enabled().await;
    // A plain TIC to a NOP.
    let target = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    let prog = rig.program(&[ccw1(0x08, F::NONE, 0, target)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, target + 8, 0x0c, 0, 0));
    // TIC to TIC: program check at the second TIC.
    let t2 = rig.program(&[ccw1(0x08, F::NONE, 0, target)]);
    let prog = rig.program(&[ccw1(0x08, F::NONE, 0, t2)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, t2 + 8, 0, 0x20, 0));
    // Misaligned target: program check reported at the TIC.
    let prog = rig.program(&[ccw1(0x03, F::CC, 0, 0), ccw1(0x08, F::NONE, 0, target + 4)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 16, 0, 0x20, 0));
    // Format-1 TIC with flags or count.
    for bad in [ccw1(0x08, F::CC, 0, target), ccw1(0x08, F::NONE, 8, target)] {
        let prog = rig.program(&[bad]);
        let irb = rig.run(TESTDEV, &orb(prog)).await;
        assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0, 0x20, 0));
    }
}

#[tokio::test]
async fn backward_tic_loop_without_data_is_stopped() {
    let mut rig = Rig::default_enabled().await;
    let prog = rig.alloc(16, 0);
    rig.poke(
        prog as u64,
        &[ccw1(0x03, F::CC, 0, 0), ccw1(0x08, F::NONE, 0, prog)].concat(),
    );
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    // The 256th backward TIC is the program check.
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 16, 0, 0x20, 0));
}

#[tokio::test]
async fn runaway_program_with_data_hits_the_ccw_bound() {
    let guest = guest_mem();
    let backend = mock_backend::MockBackend::builder()
        .subchannel(0x0100, Box::new(mock_backend::devices::TestDevice::new(16)))
        .max_ccws(1000)
        .guest_memory(&guest)
        .build()
        .unwrap();
    let mut rig = Rig::from_backend(backend, guest);
    let sch = rig.backend.subchannel_ids()[0];
    css_core::Backend::enable(&rig.backend, sch, 1)
        .await
        .unwrap();
    let buf = rig.alloc(4, 0);
    let prog = rig.alloc(16, 0);
    rig.poke(
        prog as u64,
        &[ccw1(0x01, F::CC, 4, buf), ccw1(0x08, F::NONE, 0, prog)].concat(),
    );
    let irb = rig.run(sch, &orb(prog)).await;
    assert_eq!(irb.scsw.cstat, 0x20);
    assert_eq!(irb.scsw.ctrl.sc().bits(), 0x17);
}

#[tokio::test]
async fn status_modifier_skips_the_next_ccw() {
    let mut rig = setup(b"KEY1").await;
    let key = rig.alloc(4, 0);
    rig.poke(key as u64, b"KEY1");
    let out = rig.alloc(4, 0);
    let prog = rig.alloc(24, 0);
    // SEARCH EQUAL; TIC back to it; READ. A hit (SM) skips the TIC.
    rig.poke(
        prog as u64,
        &[
            ccw1(0x31, F::CC, 4, key),
            ccw1(0x08, F::NONE, 0, prog),
            ccw1(0x02, F::NONE, 4, out),
        ]
        .concat(),
    );
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 24, 0x0c, 0, 0));
    assert_eq!(rig.peek(out as u64, 4), b"KEY1");
    // Status modifier on the last CCW of a chain is presented with CE + DE.
    let prog2 = rig.program(&[ccw1(0x31, F::NONE, 4, key)]);
    let irb = rig.run(TESTDEV, &orb(prog2)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog2 + 8, 0x4c, 0, 0));
}

#[tokio::test]
async fn format0_program() {
    let mut rig = setup(b"hello").await;
    let buf = rig.alloc(5, 0);
    let target = rig.program(&[ccw0(0x02, F::NONE, 5, buf)]);
    // Format-0 TIC: any code with low nibble 8, flags and count ignored.
    let prog = rig.program(&[ccw0(0x03, F::CC, 1, 0), ccw0(0x18, F::SLI, 7, target)]);
    let o = orb_with(prog, |o| o.format = CcwFormat::Format0);
    let irb = rig.run(TESTDEV, &o).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE0, target + 8, 0x0c, 0, 0));
    assert_eq!(rig.peek(buf as u64, 5), b"hello");
    // Format-0 count 0 is a program check.
    let prog = rig.program(&[ccw0(0x03, F::NONE, 0, 0)]);
    let o = orb_with(prog, |o| o.format = CcwFormat::Format0);
    let irb = rig.run(TESTDEV, &o).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT0, prog + 8, 0, 0x20, 0));
}

#[tokio::test]
async fn immediate_command_with_count_is_incorrect_length_in_format_1_only() {
    let mut rig = Rig::default_enabled().await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 4, 0)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0x0c, 0x40, 4));
    // ORB L suppresses it.
    let irb = rig.run(TESTDEV, &orb_with(prog, |o| o.ils = true)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 4));
    // Format 0: never.
    let prog0 = rig.program(&[ccw0(0x03, F::NONE, 4, 0)]);
    let o = orb_with(prog0, |o| o.format = CcwFormat::Format0);
    let irb = rig.run(TESTDEV, &o).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE0, prog0 + 8, 0x0c, 0, 4));
}

#[tokio::test]
async fn skip_suppresses_the_transfer_but_counts() {
    let mut rig = setup(b"hello").await;
    let buf = rig.alloc(5, 0x55);
    let prog = rig.program(&[ccw1(0x02, F::SKIP, 5, buf)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
    assert_eq!(rig.peek(buf as u64, 5), [0x55; 5]);
    // SKIP on an unmapped address: no access, no check.
    let prog = rig.program(&[ccw1(0x02, F::SKIP, 5, 0x100)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
}

/// Issue #15 item 6: with SKIP and IDA the channel fetches the IDAWs (to count the skipped
/// bytes) but stores nothing: an IDAL outside storage is a program check.
#[tokio::test]
async fn skip_with_ida_fetches_the_idaws() {
    let mut rig = setup(b"hello").await;
    let prog = rig.program(&[ccw1(0x02, F::SKIP | F::IDA, 5, 0x100)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0, 0x20, 5));
    // A valid IDAL: read, the data (even at an address with nothing behind it) untouched.
    let buf = rig.alloc(8, 0x55);
    let idal = rig.alloc(8, 0);
    rig.poke(idal as u64, &u64::from(buf).to_be_bytes());
    let prog = rig.program(&[ccw1(0x02, F::SKIP | F::IDA, 5, idal)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
    assert_eq!(rig.peek(buf as u64, 8), [0x55; 8]);
    rig.poke(idal as u64, &0x100u64.to_be_bytes());
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
    // An invalid later IDAW (not on a block boundary) is a program check while skipping too.
    let idal = rig.alloc(16, 0);
    rig.poke(
        idal as u64,
        &[0x2_0FFCu64, 0x2_1004].map(u64::to_be_bytes).concat(),
    );
    let prog = rig.program(&[ccw1(0x02, F::SKIP | F::IDA | F::SLI, 16, idal)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(irb.scsw.cstat, 0x20, "{}", irb.scsw);
}

#[tokio::test]
async fn read_backward_stores_descending() {
    let mut rig = setup(b"abcd").await;
    let buf = rig.alloc(8, 0);
    // The data address designates the highest byte.
    let prog = rig.program(&[ccw1(0x0C, F::NONE, 4, buf + 3)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
    // The device presents "dcba" (reading backward); storage ends up in ascending order.
    assert_eq!(rig.peek(buf as u64, 4), b"abcd");
}

#[tokio::test]
async fn read_backward_through_an_idaw_at_the_top_of_the_address_space_is_a_check() {
    // Reading backward, a later IDAW must designate the last byte of a block; one holding
    // the highest 64-bit address is such a byte but storage there does not exist.
    let mut rig = setup(&[0x5A; 32]).await;
    let data = rig.alloc(8192, 0);
    let page = (data + 0xFFF) & !0xFFF;
    let mut list = Vec::new();
    for a in [u64::from(page) + 0x0F, u64::MAX] {
        list.extend_from_slice(&a.to_be_bytes());
    }
    let idal = rig.alloc(list.len(), 0);
    rig.poke(idal as u64, &list);
    let prog = rig.program(&[ccw1(0x0C, F::IDA, 32, idal)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_ne!(irb.scsw.cstat, 0, "{}", irb.scsw);
    // The first block (16 bytes below and at the IDAW's address) was stored.
    assert_eq!(rig.peek(u64::from(page), 16), [0x5A; 16]);
}

#[tokio::test]
async fn pci_gives_an_intermediate_interruption() {
    let mut rig = setup(b"hello").await;
    let buf = rig.alloc(5, 0);
    let prog = rig.program(&[
        ccw1(0x03, F::CC | F::PCI, 0, 0),
        ccw1(0x02, F::NONE, 5, buf),
    ]);
    let i1 = rig.run(TESTDEV, &orb(prog)).await;
    // FC start, AC subchannel + device active, SC intermediate + pending, cstat PCI.
    assert_eq!(scsw(&i1), scsw_bytes(0x0080_40C9, prog + 8, 0, 0x80, 0));
    let (_, i2) = rig.irb().await;
    assert_eq!(scsw(&i2), scsw_bytes(DONE, prog + 16, 0x0c, 0, 0));
}

#[tokio::test]
async fn pci_on_the_last_ccw_shows_in_the_final_status() {
    let mut rig = Rig::default_enabled().await;
    let prog = rig.program(&[ccw1(0x03, F::PCI, 0, 0)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0x80, 0));
}

#[tokio::test]
async fn suspend_flag_without_orb_s_is_program_check() {
    let mut rig = Rig::default_enabled().await;
    let prog = rig.program(&[ccw1(0x03, F::S, 0, 0)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0, 0x20, 0));
}

#[tokio::test]
async fn suspend_and_resume() {
    use css_core::{Backend, ConditionCode};
    let mut rig = Rig::default_enabled().await;
    let prog = rig.program(&[ccw1(0x03, F::CC, 0, 0), ccw1(0x03, F::S, 0, 0)]);
    let o = orb_with(prog, |o| o.suspend = true);
    let irb = rig.run(TESTDEV, &o).await;
    // AC suspended, SC intermediate + pending, cpa = suspended CCW + 8.
    assert_eq!(scsw(&irb), scsw_bytes(0x0080_4029, prog + 16, 0, 0, 0));
    // Resuming with S still set suspends again at the same CCW.
    assert_eq!(
        rig.backend.resume(TESTDEV).await.unwrap(),
        ConditionCode::Cc0
    );
    let (_, irb) = rig.irb().await;
    assert_eq!(scsw(&irb), scsw_bytes(0x0080_4029, prog + 16, 0, 0, 0));
    // Clear S in the CCW, resume: the program completes.
    rig.poke(prog as u64 + 8, &ccw1(0x03, F::NONE, 0, 0));
    assert_eq!(
        rig.backend.resume(TESTDEV).await.unwrap(),
        ConditionCode::Cc0
    );
    let (_, irb) = rig.irb().await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 16, 0x0c, 0, 0));
    // Nothing is suspended any more.
    assert_eq!(
        rig.backend.resume(TESTDEV).await.unwrap(),
        ConditionCode::Cc2
    );
}

#[tokio::test]
async fn suspend_with_u_gives_no_interruption() {
    use css_core::{Backend, ConditionCode};
    let mut rig = Rig::default_enabled().await;
    let prog = rig.program(&[ccw1(0x03, F::S, 0, 0)]);
    let o = orb_with(prog, |o| {
        o.suspend = true;
        o.suppress_suspended = true;
    });
    assert_eq!(rig.start(TESTDEV, &o).await, ConditionCode::Cc0);
    rig.quiet().await;
    let schib = rig.backend.store_schib(TESTDEV).await.unwrap();
    assert_eq!(schib.scsw.ctrl.ac(), ccw_types::ActivityControl::SUSPENDED);
    // Cancel withdraws it silently.
    assert_eq!(
        rig.backend.cancel(TESTDEV).await.unwrap(),
        ConditionCode::Cc0
    );
    rig.quiet().await;
    let schib = rig.backend.store_schib(TESTDEV).await.unwrap();
    assert!(schib.scsw.ctrl.fc().is_empty());
}

#[tokio::test]
async fn initial_status_interruption() {
    let mut rig = Rig::default_enabled().await;
    let prog = rig.program(&[ccw1(0x03, F::NONE, 0, 0)]);
    let o = orb_with(prog, |o| o.initial_status = true);
    let i1 = rig.run(TESTDEV, &o).await;
    // Z, FC start, AC active, SC intermediate + pending.
    assert_eq!(scsw(&i1), scsw_bytes(0x0084_40C9, prog + 8, 0, 0, 0));
    let (_, i2) = rig.irb().await;
    assert_eq!(scsw(&i2), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
}

#[tokio::test]
async fn multi_idaw_transfer_is_correct() {
    // The transfer QEMU gets wrong (s390x-guest.md): 6000 bytes over two 4 KiB blocks.
    let mut rig = Rig::default_enabled().await;
    let record: Vec<u8> = (0..6000u32).map(|i| (i * 7 % 251) as u8).collect();
    write_record(&mut rig, &record).await;
    let idal = rig.idal2(0x10F00, 6000);
    let prog = rig.program(&[ccw1(0x02, F::IDA, 6000, idal)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
    assert_eq!(rig.guest_read(0x10F00, 6000), record);
    // And back out through the same IDAL, written with format-2 2 KiB IDAWs.
    rig.unpin(0x10F00, 6000);
}

#[tokio::test]
async fn format1_idaws_use_2k_blocks_and_must_be_aligned() {
    let mut rig = Rig::default_enabled().await;
    let record: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    write_record(&mut rig, &record).await;
    let data = rig.alloc(8192 + 2048, 0);
    let first = ((data + 0x7FF) & !0x7FF) + 0x700; // 0x100 bytes to the 2 KiB boundary
    let mut list = Vec::new();
    for a in [first, (first & !0x7FF) + 0x800, (first & !0x7FF) + 0x1000] {
        list.extend_from_slice(&a.to_be_bytes());
    }
    let idal = rig.alloc(list.len(), 0);
    rig.poke(idal as u64, &list);
    let prog = rig.program(&[ccw1(0x02, F::IDA, 3000, idal)]);
    let o = orb_with(prog, |o| o.format2_idaw = false);
    let irb = rig.run(TESTDEV, &o).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
    assert_eq!(rig.peek(first as u64, 3000), record);
    // A second IDAW that is not on a block boundary: program check, residual left.
    rig.poke(idal as u64 + 4, &(first + 0x901).to_be_bytes());
    let irb = rig.run(TESTDEV, &o).await;
    assert_eq!(
        scsw(&irb),
        scsw_bytes(ALERT, prog + 8, 0x0c, 0x20, 3000 - 0x100)
    );
    // A format-1 IDAW with bit 0 set: program check.
    rig.poke(idal as u64, &(first | 0x8000_0000).to_be_bytes());
    let irb = rig.run(TESTDEV, &o).await;
    assert_eq!(irb.scsw.cstat, 0x20);
}

#[tokio::test]
async fn format2_2k_idaws() {
    let mut rig = Rig::default_enabled().await;
    let record: Vec<u8> = (0..2500u32).map(|i| (i % 13) as u8).collect();
    write_record(&mut rig, &record).await;
    let data = rig.alloc(8192, 0);
    let first = (data as u64 + 0x800) & !0x7FF;
    let mut list = Vec::new();
    for a in [first + 0x600, first + 0x800, first + 0x1000] {
        list.extend_from_slice(&a.to_be_bytes());
    }
    let idal = rig.alloc(list.len(), 0);
    rig.poke(idal as u64, &list);
    let prog = rig.program(&[ccw1(0x02, F::IDA, 2500, idal)]);
    let o = orb_with(prog, |o| o.idaw_2k = true);
    let irb = rig.run(TESTDEV, &o).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
    assert_eq!(rig.peek(first + 0x600, 2500), record);
}

fn midaw(flags: u8, count: u16, addr: u64) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[5] = flags;
    m[6..8].copy_from_slice(&count.to_be_bytes());
    m[8..].copy_from_slice(&addr.to_be_bytes());
    m
}

#[tokio::test]
async fn midaws() {
    let mut rig = setup(b"0123456789").await;
    let a = rig.alloc(16, 0);
    let b = rig.alloc(16, 0x77);
    let list = rig.alloc(48, 0);
    rig.poke(
        list as u64,
        &[
            midaw(0, 3, a as u64),
            midaw(0x40, 2, b as u64), // skip
            midaw(0x80, 5, b as u64),
        ]
        .concat(),
    );
    let prog = rig.program(&[ccw1(0x02, F::MIDA, 10, list)]);
    let o = orb_with(prog, |o| o.midaw = true);
    let irb = rig.run(TESTDEV, &o).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
    assert_eq!(rig.peek(a as u64, 3), b"012");
    assert_eq!(rig.peek(b as u64, 5), b"56789");
    // Without ORB D: program check.
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0, 0x20, 0));
    // MIDA with IDA: program check.
    let bad = rig.program(&[ccw1(0x02, F::MIDA | F::IDA, 10, list)]);
    let irb = rig.run(TESTDEV, &orb_with(bad, |o| o.midaw = true)).await;
    assert_eq!(irb.scsw.cstat, 0x20);
    // The list ends (last flag) with count left: program check.
    rig.poke(list as u64, &midaw(0x80, 3, a as u64));
    let irb = rig.run(TESTDEV, &o).await;
    assert_eq!(irb.scsw.cstat, 0x20);
}

#[tokio::test]
async fn storage_checks() {
    let mut rig = setup(b"hello").await;
    // Direct data address with nothing behind it: program check before the device starts.
    let prog = rig.program(&[ccw1(0x02, F::NONE, 5, 0x100)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0, 0x20, 5));
    // CCW address with nothing behind it: program check, no device status.
    let irb = rig.run(TESTDEV, &orb(0x0800_0000)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, 0x0800_0008, 0, 0x20, 0));
    // Unpinned guest page through an IDAW: channel-data check.
    let idal = rig.alloc(8, 0);
    rig.poke(idal as u64, &(GUEST_BASE + 0x7000).to_be_bytes());
    let prog = rig.program(&[ccw1(0x02, F::IDA, 5, idal)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0x0c, 0x08, 5));
    // A raw guest address (untranslated) in an IDAW points at nothing: program check.
    rig.poke(idal as u64, &0x7000u64.to_be_bytes());
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(irb.scsw.cstat, 0x20);
    // Key mismatch on store: protection check.
    let buf = rig.alloc(5, 0);
    let prog = rig.program(&[ccw1(0x02, F::NONE, 5, buf)]);
    let irb = rig.run(TESTDEV, &orb_with(prog, |o| o.key = 6)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0x0c, 0x10, 5));
    rig.backend.set_storage_key(buf as u64, 6, false);
    let irb = rig.run(TESTDEV, &orb_with(prog, |o| o.key = 6)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 0));
}

/// Issue #15 item 5: the data area of a read is checked whether or not the device has data
/// for it (a fresh test device has an empty record: this was incorrect length alone).
#[tokio::test]
async fn read_into_nonexistent_storage_is_program_check_even_without_data() {
    let mut rig = Rig::default_enabled().await;
    for cda in [0x100, 0x0800_0000, 0x7FFF_FFF0] {
        let prog = rig.program(&[ccw1(0x02, F::NONE, 5, cda)]);
        let irb = rig.run(TESTDEV, &orb(prog)).await;
        assert_eq!(
            scsw(&irb),
            scsw_bytes(ALERT, prog + 8, 0, 0x20, 5),
            "{cda:#x}"
        );
    }
    // An area that begins in storage and runs past its end: nothing is stored.
    let buf = rig.alloc(16, 0x11);
    let prog = rig.program(&[ccw1(0x02, F::NONE, 0x2000, buf)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0, 0x20, 0x2000));
    assert_eq!(rig.peek(buf as u64, 16), [0x11; 16]);
    // Read backward over nothing.
    let prog = rig.program(&[ccw1(0x0C, F::NONE, 0x20, 0x30)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0, 0x20, 0x20));
    // A write from nonexistent storage, the same.
    let prog = rig.program(&[ccw1(0x01, F::NONE, 5, 0x100)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0, 0x20, 5));
    // A control command's area is not accessed unless the device asks for data.
    let prog = rig.program(&[ccw1(0x03, F::SLI, 5, 0x100)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, prog + 8, 0x0c, 0, 5));
}

/// Issue #15 item 5, indirect addressing: an IDAW or MIDAW whose data block does not exist is
/// a program check when it is fetched; what earlier IDAWs designated is stored and counted.
#[tokio::test]
async fn indirect_data_in_nonexistent_storage_is_program_check() {
    let record: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
    let mut rig = setup(&record).await;
    // The first IDAW already points at nothing: checked before the device starts.
    let idal = rig.alloc(16, 0);
    rig.poke(idal as u64, &(GUEST_BASE + (2 << 20)).to_be_bytes());
    let prog = rig.program(&[ccw1(0x02, F::IDA, 6000, idal)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0, 0x20, 6000));
    // The second one points past the guest's memory: the first block is stored.
    rig.pin(0xFF000, 0x1000);
    let list = [GUEST_BASE + 0xFF000, GUEST_BASE + 0x100000]
        .map(u64::to_be_bytes)
        .concat();
    rig.poke(idal as u64, &list);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(
        scsw(&irb),
        scsw_bytes(ALERT, prog + 8, 0x0c, 0x20, 6000 - 4096)
    );
    assert_eq!(rig.guest_read(0xFF000, 4096), record[..4096]);
    rig.unpin(0xFF000, 0x1000);
    // A MIDAW whose data does not exist.
    let list = rig.alloc(32, 0);
    let buf = rig.alloc(16, 0);
    rig.poke(
        list as u64,
        &[midaw(0, 8, buf as u64), midaw(0x80, 8, 0x100)].concat(),
    );
    let prog = rig.program(&[ccw1(0x02, F::MIDA | F::SLI, 16, list)]);
    let irb = rig.run(TESTDEV, &orb_with(prog, |o| o.midaw = true)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0x0c, 0x20, 8));
    assert_eq!(rig.peek(buf as u64, 8), record[..8]);
}

/// Issue #15 item 5: storage is accessed a page at a time, so a protection check on the
/// second page of a direct area leaves the first page stored and counted.
#[tokio::test]
async fn protection_check_midway_counts_what_was_stored() {
    let record = vec![0xA5u8; 3000];
    let mut rig = setup(&record).await;
    let area = rig.alloc(3 * 4096, 0);
    let page = (u64::from(area) + 0xFFF) & !0xFFF;
    let start = page + 4096 - 1000;
    rig.backend.set_storage_key(start, 6, false);
    let prog = rig.program(&[ccw1(0x02, F::NONE, 3000, start as u32)]);
    let irb = rig.run(TESTDEV, &orb_with(prog, |o| o.key = 6)).await;
    assert_eq!(
        scsw(&irb),
        scsw_bytes(ALERT, prog + 8, 0x0c, 0x10, 3000 - 1000)
    );
    assert_eq!(rig.peek(start, 1000), record[..1000]);
    assert_eq!(rig.peek(start + 1000, 8), [0; 8]);
}

#[tokio::test]
async fn unit_check_with_and_without_concurrent_sense() {
    use css_core::Backend;
    let mut rig = Rig::default_enabled().await;
    let prog = rig.program(&[ccw1(0x27, F::NONE, 0, 0)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    let b = irb.into_bytes();
    // L + E set, FC start, SC 0x17; dstat CE|DE|UC.
    assert_eq!(&b[..12], &scsw_bytes(0x0482_4017, prog + 8, 0x0e, 0, 0));
    assert_eq!(&b[16..20], &[0x01, 0x20, 0x00, 0x00]);
    assert_eq!(b[32], 0x10);
    // Concurrent sense off: the sense waits for a SENSE command.
    let mut schib = rig.backend.store_schib(TESTDEV).await.unwrap();
    schib.pmcw.chars.set_concurrent_sense(false);
    rig.backend.modify(TESTDEV, &schib).await.unwrap();
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    let b = irb.into_bytes();
    assert_eq!(&b[..12], &scsw_bytes(ALERT, prog + 8, 0x0e, 0, 0));
    assert!(b[12..].iter().skip(4).all(|&x| x == 0));
    let buf = rig.alloc(32, 0);
    let sense = rig.program(&[ccw1(0x04, F::NONE, 32, buf)]);
    let irb = rig.run(TESTDEV, &orb(sense)).await;
    assert_eq!(scsw(&irb), scsw_bytes(DONE, sense + 8, 0x0c, 0, 0));
    assert_eq!(rig.peek(buf as u64, 1), [0x10]);
}

#[tokio::test]
async fn unit_exception_ends_the_chain_with_alert() {
    let mut rig = Rig::default_enabled().await;
    let prog = rig.program(&[ccw1(0x37, F::CC, 0, 0), ccw1(0x03, F::NONE, 0, 0)]);
    let irb = rig.run(TESTDEV, &orb(prog)).await;
    assert_eq!(scsw(&irb), scsw_bytes(ALERT, prog + 8, 0x0d, 0, 0));
}
