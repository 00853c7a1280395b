// SPDX-License-Identifier: Apache-2.0 OR MIT

//! CHSC against the vcss-reference §7.1-§7.5 vectors.

use super::*;
use crate::{ConditionCode as Cc, InstrError, ProgramInterruption, SeiEvent};

const BLOCK: u64 = 0x4_0000;

/// Writes a fresh page with `req` at its start (the rest 0xEE, to see what is stored), runs
/// CHSC, and returns the page.
fn run(css: &mut Vcss, mem: &GuestMemoryMmap<()>, req: &[u8]) -> Result<Vec<u8>, InstrError> {
    put(mem, BLOCK, &[0xEE; 4096]);
    put(mem, BLOCK, req);
    assert_eq!(css.chsc(mem, BLOCK)?, Cc::Cc0);
    Ok(get(mem, BLOCK, 4096))
}

fn req16(bytes: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; 16];
    r[..bytes.len()].copy_from_slice(bytes);
    r
}

#[test]
fn scsc_layout_and_errors() {
    let (mut css, _) = one_device(Mode::Run);
    let mem = memory();
    let page = run(&mut css, &mem, &req16(&[0x00, 0x10, 0x00, 0x10])).unwrap();
    assert_eq!(&page[0x10..0x18], &[0x0F, 0xF0, 0x00, 0x01, 0, 0, 0, 0]);
    // General characteristics at 0x018: bits 6, 7 (cancel, concurrent sense), 46 (FCS).
    let mut general = vec![0u8; 0x810 - 0x18];
    general[0] = 0x03;
    general[5] = 0x02;
    assert_eq!(&page[0x18..0x810], &general[..]);
    // CHSC characteristics at 0x810: bits 1 (SCPD) and 3 (SSD).
    let mut chsc = vec![0u8; 0x1000 - 0x810];
    chsc[0] = 0x50;
    assert_eq!(&page[0x810..], &chsc[..]);
    // Q's error vectors.
    let page = run(&mut css, &mem, &req16(&[0x00, 0x10, 0x00, 0x10, 0, 0x01])).unwrap();
    assert_eq!(&page[0x10..0x18], &[0, 8, 0, 7, 0, 0, 0, 0]);
    let page = run(
        &mut css,
        &mem,
        &req16(&[0x00, 0x10, 0x00, 0x10, 0, 0, 0x01]),
    )
    .unwrap();
    assert_eq!(&page[0x10..0x18], &[0, 8, 0, 8, 0, 0, 0, 0]);
    let mut r = vec![0u8; 0x18];
    r[..4].copy_from_slice(&[0x00, 0x18, 0x00, 0x10]);
    let page = run(&mut css, &mem, &r).unwrap();
    assert_eq!(&page[0x18..0x20], &[0, 8, 0, 3, 0, 0, 0, 0]);
    assert_eq!(page[0x20], 0xEE, "exactly L2 bytes stored");
}

#[test]
fn scpd_vectors() {
    let (mut css, _) = one_device(Mode::Run);
    let mem = memory();
    let page = run(&mut css, &mem, &req16(&[0, 0x10, 0, 0x02])).unwrap();
    assert_eq!(
        &page[0x10..0x21],
        &[
            0, 0x10, 0, 1, 0, 0, 0, 0, 0x80, 0, 0x32, 0, 0, 0, 0, 0, 0xEE
        ]
    );
    // Format 1 (C = 1, RFMT = 1), as Linux sends with SCSC bit 46.
    let page = run(
        &mut css,
        &mem,
        &req16(&[0, 0x10, 0, 0x02, 0x10, 0, 0x01, 0]),
    )
    .unwrap();
    let mut want = vec![0, 0x28, 0, 1, 0, 0, 0, 1, 0x80, 0, 0x32, 0];
    want.extend([0; 28]);
    assert_eq!(&page[0x10..0x38], &want[..]);
    // Unused CHPID 5: one descriptor without the valid flag (Hercules positions).
    let page = run(
        &mut css,
        &mem,
        &req16(&[0, 0x10, 0, 0x02, 0, 0, 0, 5, 0, 0, 0, 5]),
    )
    .unwrap();
    assert_eq!(
        &page[0x10..0x20],
        &[0, 0x10, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0]
    );
    // Range 0..1: one descriptor per CHPID.
    let page = run(
        &mut css,
        &mem,
        &req16(&[0, 0x10, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 1]),
    )
    .unwrap();
    assert_eq!(
        &page[0x10..0x28],
        &[
            0, 0x18, 0, 1, 0, 0, 0, 0, 0x80, 0, 0x32, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0
        ]
    );
    // last < first; reserved bits; format; CSSID; a response format not installed.
    for (req, code) in [
        (req16(&[0, 0x10, 0, 0x02, 0, 0, 0, 2, 0, 0, 0, 1]), 3),
        (req16(&[0, 0x10, 0, 0x02, 0x40]), 3),
        (req16(&[0, 0x10, 0, 0x02, 0x01]), 7),
        (req16(&[0, 0x10, 0, 0x02, 0, 0x01]), 8),
        (req16(&[0, 0x10, 0, 0x02, 0, 0, 0x03]), 9),
    ] {
        let page = run(&mut css, &mem, &req).unwrap();
        assert_eq!(
            &page[0x10..0x18],
            &[0, 8, 0, code, 0, 0, 0, 0],
            "{req:02x?}"
        );
    }
}

#[test]
fn ssd_vectors() {
    let (mut css, _) = one_device(Mode::Run);
    let mem = memory();
    let page = run(&mut css, &mem, &req16(&[0, 0x10, 0, 0x04])).unwrap();
    let mut want = vec![0, 0x28, 0, 1, 0, 0, 0, 0];
    want.extend([0xC0, 0x05, 0x00, 0x05, 0x80, 0x00, 0x00, 0x00]);
    want.extend([0; 24]);
    assert_eq!(&page[0x10..0x38], &want[..]);
    // Numbers without a subchannel give zero entries.
    let page = run(
        &mut css,
        &mem,
        &req16(&[0, 0x10, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 2]),
    )
    .unwrap();
    assert_eq!(&page[0x10..0x14], &[0, 0x68, 0, 1]);
    assert_eq!(&page[0x38..0x78], &[0u8; 64][..]);
    // ssid 1: subchannel set 1 is not provided.
    let page = run(&mut css, &mem, &req16(&[0, 0x10, 0, 0x04, 0x00, 0x10])).unwrap();
    assert_eq!(&page[0x10..0x18], &[0, 8, 0, 0x0A, 0, 0, 0, 0]);
}

#[test]
fn sei_no_event_and_one_event() {
    let (mut css, seen) = one_device(Mode::Run);
    let mem = memory();
    let req = req16(&[0, 0x10, 0, 0x0E, 0, 0, 0, 0, 0xA0]);
    let page = run(&mut css, &mem, &req).unwrap();
    assert_eq!(&page[0x10..0x18], &[0, 8, 0, 5, 0, 0, 0, 0]);
    // Resource accessibility for CHPID 0x40 (vcss-reference §7.4, constructed).
    let ev = SeiEvent {
        vf: 0,
        rs: 4,
        cc: 2,
        fla: 0,
        rsid: 0x40,
    };
    css.queue_event(ev);
    css.queue_event(ev);
    // One RSC 0xB CRW for the batch.
    assert_eq!(css.stcrw(&mem, 0x1000), Ok(Cc::Cc0));
    assert_eq!(get(&mem, 0x1000, 4), [0x0B, 0, 0, 0]);
    assert_eq!(css.stcrw(&mem, 0x1000), Ok(Cc::Cc1));
    assert_eq!(seen.lock().unwrap().len(), 1);
    let page = run(&mut css, &mem, &req).unwrap();
    let mut want = vec![0, 0x30, 0, 1, 0, 0, 0, 0, 0x80, 0, 4, 2, 0, 0, 0, 0x40];
    want.extend([0; 32]);
    assert_eq!(&page[0x10..0x40], &want[..], "more pending: flags 0x80");
    let page = run(&mut css, &mem, &req).unwrap();
    want[8] = 0;
    assert_eq!(&page[0x10..0x40], &want[..]);
    let page = run(&mut css, &mem, &req).unwrap();
    assert_eq!(&page[0x10..0x18], &[0, 8, 0, 5, 0, 0, 0, 0]);
}

#[test]
fn unsupported_commands_and_frame_errors() {
    let (mut css, _) = one_device(Mode::Run);
    let mem = memory();
    // SDCAL as Linux sends it: command not installed at 0x020, as QEMU answers.
    let mut r = vec![0u8; 0x20];
    r[..5].copy_from_slice(&[0x00, 0x20, 0x00, 0x34, 0x04]);
    let page = run(&mut css, &mem, &r).unwrap();
    assert_eq!(&page[0x20..0x29], &[0, 8, 0, 4, 0, 0, 0, 0, 0xEE]);
    // SDA (0x0031) too: multiple subchannel sets are not installed.
    let mut r = vec![0u8; 0x400];
    r[..8].copy_from_slice(&[0x04, 0x00, 0x00, 0x31, 0, 0, 0, 2]);
    let page = run(&mut css, &mem, &r).unwrap();
    assert_eq!(&page[0x400..0x408], &[0, 8, 0, 4, 0, 0, 0, 0]);
    // L1 = 8, 0x14, 4096: operand exception, nothing stored.
    for l1 in [8u16, 0x14, 4096] {
        put(&mem, BLOCK, &[0xEE; 4096]);
        put(&mem, BLOCK, &[(l1 >> 8) as u8, l1 as u8, 0, 0x10]);
        assert!(matches!(
            css.chsc(&mem, BLOCK),
            Err(InstrError::Program(ProgramInterruption::Operand(_)))
        ));
        assert_eq!(&get(&mem, BLOCK + 4, 4092)[..], &[0xEE; 4092][..]);
    }
    assert!(matches!(
        css.chsc(&mem, BLOCK + 8),
        Err(InstrError::Program(ProgramInterruption::Specification(_)))
    ));
}

/// A passed-through path the host cannot describe (its own SCPD failed, as under Hercules
/// 3.13): usable by a subchannel, described as not valid, never with a made-up type.
#[test]
fn scpd_of_an_undescribed_host_path_is_not_valid() {
    let mut css = Vcss::new();
    css.add_chpid_undescribed(0x01);
    let (dev, _) = TestDevice::boxed(Mode::Run);
    let paths = crate::Paths {
        pim: 0x80,
        pam: 0x80,
        pom: 0xFF,
        chpids: [0x01, 0, 0, 0, 0, 0, 0, 0],
    };
    assert!(css.add_subchannel_paths(0, 0x0120, &paths, dev).is_ok());
    let mem = memory();
    let page = run(
        &mut css,
        &mem,
        &req16(&[0, 0x10, 0, 0x02, 0, 0, 0, 0x01, 0, 0, 0, 0x01]),
    )
    .unwrap();
    assert_eq!(
        &page[0x10..0x20],
        &[0, 0x10, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0]
    );
}
