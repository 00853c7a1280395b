// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A Linux-guest-like bring-up of the channel subsystem (vcss-reference §2), step by step as a
//! guest issues it, reading everything back from guest memory as the guest would.

use super::*;
use crate::ConditionCode as Cc;

const CHSC: u64 = 0x4_0000;
const SCHIB: u64 = 0x1000;
const ORB: u64 = 0x2000;
const CCW: u64 = 0x3000;
const DATA: u64 = 0x3100;
const IRB: u64 = 0x5000;
const PREFIX: u64 = 0x8_0000;

fn chsc(css: &mut Vcss, mem: &GuestMemoryMmap<()>, req: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; 16];
    r[..req.len()].copy_from_slice(req);
    put(mem, CHSC, &[0; 4096]);
    put(mem, CHSC, &r);
    assert_eq!(css.chsc(mem, CHSC), Ok(Cc::Cc0));
    let len = u16::from_be_bytes(get(mem, CHSC + 16, 2).try_into().unwrap());
    get(mem, CHSC + 16, usize::from(len))
}

fn bit(area: &[u8], n: usize) -> bool {
    area[n / 8] & (0x80 >> (n % 8)) != 0
}

#[test]
fn linux_like_bring_up() {
    let mut css = Vcss::new();
    css.add_chpid(0x00, 0x32);
    css.add_chpid(0x01, 0x32);
    let (d0, log0) = TestDevice::boxed(Mode::Run);
    let (d2, _) = TestDevice::boxed(Mode::Run);
    css.add_subchannel(0, 0x0005, 0x00, d0).unwrap();
    css.add_subchannel(2, 0x0007, 0x01, d2).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    css.set_notifier(Box::new(move |n| s2.lock().unwrap().push(n)));
    let mem = memory();

    // css_bus_init: SCSC, then SDA op 2 (not installed: max_ssid stays 0).
    let scsc = chsc(&mut css, &mem, &[0, 0x10, 0, 0x10]);
    assert_eq!(&scsc[2..4], &[0, 1]);
    let general = &scsc[8..2048];
    let fcs = bit(general, 46);
    assert!(fcs && bit(general, 6) && !bit(general, 88));
    let mut sda = vec![0u8; 0x400];
    sda[..8].copy_from_slice(&[0x04, 0, 0, 0x31, 0, 0, 0, 2]);
    put(&mem, CHSC, &sda);
    assert_eq!(css.chsc(&mem, CHSC), Ok(Cc::Cc0));
    assert_eq!(get(&mem, CHSC + 0x400, 4), [0, 8, 0, 4]);

    // Slow path: STSCH over set 0 until the first cc 3.
    let mut found = Vec::new();
    for no in 0..=0xFFFFu16 {
        match css.stsch(&mem, sid(no), SCHIB) {
            Ok(Cc::Cc0) => {
                let w1 = u32::from_be_bytes(get(&mem, SCHIB + 4, 4).try_into().unwrap());
                if w1 & 0x0001_0000 != 0 {
                    found.push((no, w1 as u16));
                }
            }
            Ok(Cc::Cc3) => break,
            other => panic!("STSCH {no}: {other:?}"),
        }
    }
    assert_eq!(found, vec![(0, 0x0005), (2, 0x0007)]);

    for &(no, devno) in &found {
        // css_update_ssd_info: SSD for the subchannel, then SCPD per path.
        let [hi, lo] = no.to_be_bytes();
        let ssd = chsc(
            &mut css,
            &mem,
            &[0, 0x10, 0, 0x04, 0, 0, hi, lo, 0, 0, hi, lo],
        );
        assert_eq!(&ssd[2..4], &[0, 1]);
        let entry = &ssd[8..40];
        assert_eq!(entry[0] & 0xC0, 0xC0, "valid, devno valid");
        assert_eq!(u16::from_be_bytes([entry[2], entry[3]]), devno);
        let pim = entry[4];
        for slot in 0..8 {
            if pim & (0x80 >> slot) == 0 {
                continue;
            }
            let chpid = entry[8 + slot];
            let d0 = chsc(
                &mut css,
                &mem,
                &[0, 0x10, 0, 0x02, 0, 0, 0, chpid, 0, 0, 0, chpid],
            );
            assert_eq!(
                &d0[8..12],
                &[0x80, 0, 0x32, chpid],
                "chp_new needs flags 0x80"
            );
            if fcs {
                let d1 = chsc(
                    &mut css,
                    &mem,
                    &[0, 0x10, 0, 0x02, 0x10, 0, 1, chpid, 0, 0, 0, chpid],
                );
                assert_eq!((d1.len(), d1[7]), (40, 1));
            }
        }

        // Recognition: MSCH enable with ISC 3 and Linux's intparm, LPM = PAM.
        let intparm = 0x0F8A_1200 + u32::from(no);
        assert_eq!(css.stsch(&mem, sid(no), SCHIB), Ok(Cc::Cc0));
        let mut schib = get(&mem, SCHIB, 52);
        schib[0..4].copy_from_slice(&intparm.to_be_bytes());
        schib[4] = 0x18; // ISC 3
        schib[5] |= 0x80; // E
        schib[27] |= 0x01; // concurrent sense
        put(&mem, SCHIB, &schib);
        assert_eq!(css.msch(&mem, sid(no), SCHIB), Ok(Cc::Cc0));

        // SENSE ID (SLI, 256 bytes) on the subchannel's paths.
        put(&mem, CCW, &[0xE4, 0x20, 0x01, 0x00, 0x00, 0x00, 0x31, 0x00]);
        let mut orb = CommandOrb::new(intparm, CCW as u32);
        orb.lpm = 0x80;
        put(&mem, ORB, &orb.emit().into_bytes()[..12]);
        assert_eq!(css.ssch(&mem, sid(no), ORB), Ok(Cc::Cc0));
        let Some(Notification::IoInterruption(code)) = seen.lock().unwrap().pop() else {
            panic!("no interruption");
        };
        assert_eq!(code.intparm.get(), intparm);
        // The VMM presents it: lowcore 0xB8-0xC3 at the vCPU's prefix.
        let taken = css.take_interruption(cr6(3)).unwrap();
        assert_eq!(taken, code);
        put(&mem, PREFIX + 0xB8, &taken.into_bytes());
        let lc = get(&mem, PREFIX + 0xB8, 12);
        let mut want = vec![0, 1, hi, lo];
        want.extend(intparm.to_be_bytes());
        want.extend([0x18, 0, 0, 0]);
        assert_eq!(lc, want);
        // The interrupt handler: TSCH for the SID at 0xB8.
        let sid_word = u32::from_be_bytes(lc[0..4].try_into().unwrap());
        assert_eq!(css.tsch(&mem, u64::from(sid_word), IRB), Ok(Cc::Cc0));
        let irb = get(&mem, IRB, 64);
        assert_eq!((irb[3] & 0x17, irb[8], irb[9]), (0x07, 0x0C, 0x00));
        assert_eq!(get(&mem, DATA, 8), [0xFF, 0x38, 0x32, 0x02, 0, 0, 0, 0]);

        // Path verification: one NOP per path in the PAM.
        put(&mem, CCW, &[0x03, 0x20, 0, 0, 0, 0, 0, 0]);
        assert_eq!(css.ssch(&mem, sid(no), ORB), Ok(Cc::Cc0));
        assert_eq!(css.tsch(&mem, sid(no), IRB), Ok(Cc::Cc0));
        assert_eq!(get(&mem, IRB + 8, 1), [0x0C]);
        // An unknown command: unit check with concurrent sense (command reject) in the ECW.
        put(&mem, CCW, &[0x77, 0x20, 0, 1, 0, 0, 0x31, 0]);
        assert_eq!(css.ssch(&mem, sid(no), ORB), Ok(Cc::Cc0));
        assert_eq!(css.tsch(&mem, sid(no), IRB), Ok(Cc::Cc0));
        let irb = get(&mem, IRB, 64);
        assert_eq!(irb[3] & 0x10, 0x10, "alert");
        assert_eq!(irb[8], 0x0E, "CE DE UC");
        assert_eq!(irb[32], 0x80, "command reject in the ECW");
    }
    assert!(css.take_interruption(0xFF00_0000).is_none());
    assert_eq!(
        log0.lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("ccw"))
            .count(),
        3
    );
}
