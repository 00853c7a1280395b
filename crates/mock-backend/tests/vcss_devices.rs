// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The simulator's device models behind vcss's virtual subchannels ([`ChannelDevice`]): what
//! a guest sees through the I/O instructions a VMM answers with vcss, and IPL from a 3390
//! carrying an IPL record chain, the architected way ([`Vcss::ipl`]) and QEMU's firmware way
//! for a DASD behind vfio-ccw ([`PrefetchIpl`]).

use std::path::PathBuf;

use ccw_types::eckd::TrackAddr;
use ccw_types::{CcwFlags, CcwFormat, CcwRepr, CommandOrb};
use mock_backend::ChannelDevice;
use mock_backend::dasd::{CkdImage, CreateOptions, Eckd, IplChain, Model3390};
use mock_backend::devices::{TestDevice, VirtioBlkCcw};
use vcss::{ConditionCode, IplError, IplStep, PrefetchIpl, Vcss};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const ORB_AT: u64 = 0x800;
const IRB_AT: u64 = 0x900;
const PROG_AT: u32 = 0x1000;

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("vcss-dev-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn image(dir: &Scratch) -> CkdImage {
    let opts = CreateOptions {
        cylinders: Some(1),
        volser: Some("IPL001".into()),
    };
    CkdImage::create(&dir.0.join("d.3390"), Model3390::M1, &opts).unwrap()
}

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
}

/// Subchannels 0.0.0000 virtio-blk-ccw (devno 0x0005), 0.0.0001 test device (0x0006),
/// 0.0.0002 3390 on `img` (0x0120), on virtual CHPID 0, enabled.
fn css(img: CkdImage) -> Vcss {
    let mut css = Vcss::new();
    css.add_chpid(0, 0x32);
    let devs: [(u16, Box<dyn mock_backend::DeviceModel>); 3] = [
        (0x0005, Box::new(VirtioBlkCcw::new(2048))),
        (0x0006, Box::new(TestDevice::new(4096))),
        (0x0120, Box::new(Eckd::new(img, 0x0120))),
    ];
    for (no, (devno, dev)) in devs.into_iter().enumerate() {
        css.add_subchannel(no as u16, devno, 0, Box::new(ChannelDevice::new(dev)))
            .unwrap();
        css.subchannel_mut(no as u16)
            .unwrap()
            .schib
            .pmcw
            .flags
            .set_enabled(true);
    }
    css
}

fn sid(no: u16) -> u64 {
    0x0001_0000 | u64::from(no)
}

fn ccw1(cmd: u8, flags: CcwFlags, count: u16, cda: u32) -> [u8; 8] {
    CcwRepr {
        cmd,
        flags,
        count,
        cda,
    }
    .emit(CcwFormat::Format1)
    .unwrap()
}

fn put(m: &GuestMemoryMmap, at: u64, b: &[u8]) {
    m.write_slice(b, GuestAddress(at)).unwrap();
}

fn get(m: &GuestMemoryMmap, at: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    m.read_slice(&mut b, GuestAddress(at)).unwrap();
    b
}

/// Starts the program at `cpa` (ORB format from `fmt`) with SSCH and takes its status with
/// TSCH; returns the SCSW's 12 bytes.
fn run(css: &mut Vcss, m: &GuestMemoryMmap, no: u16, cpa: u32, fmt: CcwFormat) -> [u8; 12] {
    let mut orb = CommandOrb::new(0x1234, cpa);
    orb.format = fmt;
    put(m, ORB_AT, &orb.emit().into_bytes());
    assert_eq!(css.ssch(m, sid(no), ORB_AT), Ok(ConditionCode::Cc0));
    assert_eq!(css.tsch(m, sid(no), IRB_AT), Ok(ConditionCode::Cc0));
    get(m, IRB_AT, 12).try_into().unwrap()
}

/// One CCW (format 1) at [`PROG_AT`].
fn run1(css: &mut Vcss, m: &GuestMemoryMmap, no: u16, ccws: &[[u8; 8]]) -> [u8; 12] {
    put(m, u64::from(PROG_AT), &ccws.concat());
    run(css, m, no, PROG_AT, CcwFormat::Format1)
}

/// Device and subchannel status of an SCSW.
fn status(scsw: &[u8; 12]) -> (u8, u8) {
    (scsw[8], scsw[9])
}

const CE_DE: u8 = 0x0C;

#[test]
fn sense_id_of_every_model_through_ssch_and_tsch() {
    let dir = Scratch::new("sid");
    let mut css = css(image(&dir));
    let m = mem();
    let want: [&[u8]; 3] = [
        &[0xFF, 0x38, 0x32, 0x02, 0x00, 0x00, 0x00, 0x00],
        &[0xFF, 0x30, 0x88, 0x01, 0x00, 0x00, 0x00, 0x00],
        &[
            0xFF, 0x39, 0x90, 0xE9, 0x33, 0x90, 0x02, 0x00, 0x40, 0xFA, 0x01, 0x00,
        ],
    ];
    for (no, want) in want.iter().enumerate() {
        put(&m, 0x4000, &[0xAA; 16]);
        let len = want.len() as u16;
        let scsw = run1(
            &mut css,
            &m,
            no as u16,
            &[ccw1(0xE4, CcwFlags::SLI, len, 0x4000)],
        );
        assert_eq!(status(&scsw), (CE_DE, 0), "0.0.000{no}");
        assert_eq!(
            u32::from_be_bytes(scsw[4..8].try_into().unwrap()),
            PROG_AT + 8
        );
        assert_eq!(get(&m, 0x4000, want.len()), *want, "0.0.000{no}");
    }
}

fn de(beg: TrackAddr, end: TrackAddr) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = 0x40; // inhibit writes
    p[1] = 0xC0; // ECKD
    p[8..12].copy_from_slice(&beg.to_cchh());
    p[12..16].copy_from_slice(&end.to_cchh());
    p
}

fn lr_read(t: TrackAddr, rec: u8, len: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = 0x06; // orient to count, read data
    p[1] = 0x80;
    p[3] = 1;
    p[4..8].copy_from_slice(&t.to_cchh());
    p[8..12].copy_from_slice(&t.to_cchh());
    p[12] = rec;
    p[14..16].copy_from_slice(&len.to_be_bytes());
    p
}

#[test]
fn a_3390_read_through_vcss() {
    let dir = Scratch::new("read");
    let mut css = css(image(&dir));
    let m = mem();
    let t0 = TrackAddr::new(0, 0);
    put(&m, 0x3000, &de(t0, t0));
    put(&m, 0x3010, &lr_read(t0, 3, 80));
    let scsw = run1(
        &mut css,
        &m,
        2,
        &[
            ccw1(0x63, CcwFlags::CC, 16, 0x3000),
            ccw1(0x47, CcwFlags::CC, 16, 0x3010),
            ccw1(0x06, CcwFlags::NONE, 80, 0x4000),
        ],
    );
    assert_eq!(status(&scsw), (CE_DE, 0));
    assert_eq!(
        u32::from_be_bytes(scsw[4..8].try_into().unwrap()),
        PROG_AT + 24
    );
    let vol1 = get(&m, 0x4000, 80);
    assert_eq!(
        mock_backend::dasd::parse_vol1(&vol1).as_deref(),
        Some("IPL001")
    );
}

#[test]
fn path_grouping_and_a_command_reject_through_vcss() {
    let dir = Scratch::new("pg");
    let mut css = css(image(&dir));
    let m = mem();
    // SET PGID (multipath establish) then SENSE PGID, each a program of its own.
    let mut spid = [0u8; 12];
    spid[0] = 0x80;
    spid[1..].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    put(&m, 0x3000, &spid);
    let scsw = run1(&mut css, &m, 2, &[ccw1(0xAF, CcwFlags::NONE, 12, 0x3000)]);
    assert_eq!(status(&scsw), (CE_DE, 0));
    let scsw = run1(&mut css, &m, 2, &[ccw1(0x34, CcwFlags::NONE, 12, 0x4000)]);
    assert_eq!(status(&scsw), (CE_DE, 0));
    let mut want = spid;
    want[0] = 0xC8;
    assert_eq!(get(&m, 0x4000, 12), want);
    // An unknown command: unit check alone, and basic SENSE says command reject.
    let scsw = run1(&mut css, &m, 2, &[ccw1(0xFF, CcwFlags::NONE, 1, 0x4000)]);
    assert_eq!(status(&scsw), (0x02, 0));
    let scsw = run1(&mut css, &m, 2, &[ccw1(0x04, CcwFlags::NONE, 32, 0x4000)]);
    assert_eq!(status(&scsw), (CE_DE, 0));
    assert_eq!(get(&m, 0x4000, 1), [0x80]);
}

const PSW: [u8; 8] = [0x00, 0x08, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00];
const LOAD: u32 = 0x1_0000;

fn payload() -> Vec<u8> {
    (0..200u8).map(|i| i.wrapping_mul(7) ^ 0x5A).collect()
}

fn ipl_image(dir: &Scratch) -> CkdImage {
    let mut img = image(dir);
    IplChain::new(PSW, LOAD, payload())
        .unwrap()
        .install(&mut img)
        .unwrap();
    img
}

#[test]
fn architected_ipl_loads_the_record_chain() {
    let dir = Scratch::new("ipl");
    let mut css = css(ipl_image(&dir));
    let m = mem();
    // One start runs CCWs it reads itself (IPL1's, IPL2, R4): none is in storage before it,
    // which is what a prefetching channel (vfio-ccw) cannot run.
    for at in [8u64, 16, 0x2000, 0x3000] {
        assert_eq!(get(&m, at, 8), [0; 8]);
    }
    assert_eq!(css.ipl(&m, 2), Ok(PSW));
    assert_eq!(get(&m, 0x3000, 1), [0x07]);
    assert_eq!(get(&m, u64::from(LOAD), 200), payload());
    // IPL1's CCWs at 8 and 16, IPL2 where IPL1 read it.
    assert_eq!(
        get(&m, 8, 8),
        [0x06, 0x00, 0x20, 0x00, 0x60, 0x00, 0x00, 0x50]
    );
    assert_eq!(
        get(&m, 16, 8),
        [0x08, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00]
    );
    assert_eq!(get(&m, 0x2000, 1), [0x07]);
    // The subchannel-identification word at 0xB8, zeros at 0xBC; nothing left pending.
    assert_eq!(get(&m, 0xB8, 8), [0x00, 0x01, 0x00, 0x02, 0, 0, 0, 0]);
    assert_eq!(css.tsch(&m, sid(2), IRB_AT), Ok(ConditionCode::Cc1));
    assert!(!css.interruption_pending(u64::MAX));
    // The volume label survives the installation of the chain.
    let t0 = TrackAddr::new(0, 0);
    put(&m, 0x3000, &de(t0, t0));
    put(&m, 0x3010, &lr_read(t0, 3, 80));
    let scsw = run1(
        &mut css,
        &m,
        2,
        &[
            ccw1(0x63, CcwFlags::CC, 16, 0x3000),
            ccw1(0x47, CcwFlags::CC, 16, 0x3010),
            ccw1(0x06, CcwFlags::NONE, 80, 0x4000),
        ],
    );
    assert_eq!(status(&scsw), (CE_DE, 0));
    assert_eq!(
        mock_backend::dasd::parse_vol1(&get(&m, 0x4000, 80)).as_deref(),
        Some("IPL001")
    );
}

#[test]
fn ipl_failures_are_typed() {
    let dir = Scratch::new("ipl-bad");
    // A volume whose IPL1 holds a wait PSW and no CCWs: the zero CCW at 8 is a program check.
    let mut css = css(image(&dir));
    let m = mem();
    assert_eq!(
        css.ipl(&m, 2),
        Err(IplError::Status {
            sch: 2,
            dstat: 0,
            cstat: 0x20,
            cpa: 16,
        })
    );
    assert_eq!(css.tsch(&m, sid(2), IRB_AT), Ok(ConditionCode::Cc1));
    assert_eq!(css.ipl(&m, 9), Err(IplError::NotProvided(9)));
}

/// QEMU's firmware method for a DASD behind vfio-ccw (docs/devel/s390-dasd-ipl.rst), as
/// vcss's [`PrefetchIpl`] drives it: every start is a program whole in storage before it
/// starts (vfio-ccw prefetches), so Read IPL runs unchained, the IPL1 CCWs run behind a seek
/// and search for IPL2, and each READ -> TIC pair of IPL2 ends one start and begins the next.
#[test]
fn qemu_vfio_dasd_ipl_method_loads_the_same_bytes() {
    let dir = Scratch::new("ipl-qemu");
    let mut css = css(ipl_image(&dir));
    let m = mem();
    let mut ipl = PrefetchIpl::new(2);
    let mut step = ipl.begin(&m).unwrap();
    let mut starts = Vec::new();
    let psw = loop {
        match step {
            IplStep::Start { cpa } => {
                // The program is whole in storage before it starts and running it does not
                // change its own CCWs (what vfio-ccw's prefetch requires).
                let before = get(&m, u64::from(cpa), 24);
                put(&m, ORB_AT, &PrefetchIpl::orb(cpa).emit().into_bytes());
                assert_eq!(css.ssch(&m, sid(2), ORB_AT), Ok(ConditionCode::Cc0));
                assert_eq!(css.tsch(&m, sid(2), IRB_AT), Ok(ConditionCode::Cc0));
                let irb = get(&m, IRB_AT, 12);
                assert_eq!(irb[8..10], [CE_DE, 0], "program at {cpa:#x}: {irb:02x?}");
                if cpa != 0 {
                    assert_eq!(get(&m, u64::from(cpa), 24), before, "at {cpa:#x}");
                }
                starts.push(cpa);
                step = ipl
                    .ended(&m, &ccw_types::Scsw::read_from(&irb).unwrap())
                    .unwrap();
            }
            IplStep::Loaded { psw } => break psw,
        }
    };
    // Read IPL, IPL1's READ behind the search loop, IPL2, then the stage it read.
    assert_eq!(starts, [0, 8, IplChain::IPL2_ADDR, IplChain::STAGE3_ADDR]);
    assert_eq!(psw, PSW);
    assert_eq!(get(&m, u64::from(LOAD), 200), payload());
    // The search loop at 8 and IPL1's READ moved to 0x20, unchained.
    assert_eq!(get(&m, 8, 8), [0x07, 0, 0, 0x30, 0x40, 0, 0, 6]);
    assert_eq!(get(&m, 0x20, 8), [0x06, 0x00, 0x20, 0x00, 0x20, 0, 0, 0x50]);
    // Once loaded there is nothing more to start.
    let irb = get(&m, IRB_AT, 12);
    assert!(matches!(
        ipl.ended(&m, &ccw_types::Scsw::read_from(&irb).unwrap()),
        Err(IplError::Program { sch: 2, .. })
    ));
}

/// The firmware method refuses a volume without an IPL chain, naming why.
#[test]
fn qemu_vfio_dasd_ipl_method_refuses_a_volume_without_a_chain() {
    let dir = Scratch::new("ipl-qemu-bad");
    let mut css = css(image(&dir));
    let m = mem();
    let mut ipl = PrefetchIpl::new(2);
    let IplStep::Start { cpa: 0 } = ipl.begin(&m).unwrap() else {
        panic!("Read IPL first");
    };
    put(&m, ORB_AT, &PrefetchIpl::orb(0).emit().into_bytes());
    assert_eq!(css.ssch(&m, sid(2), ORB_AT), Ok(ConditionCode::Cc0));
    assert_eq!(css.tsch(&m, sid(2), IRB_AT), Ok(ConditionCode::Cc0));
    let irb = get(&m, IRB_AT, 12);
    assert_eq!(
        ipl.ended(&m, &ccw_types::Scsw::read_from(&irb).unwrap()),
        Err(IplError::Program {
            sch: 2,
            why: "IPL1's CCWs are not a READ DATA followed by a TIC"
        })
    );
}

#[test]
fn read_configuration_data_through_the_ciw_sense_id_advertises() {
    let dir = Scratch::new("rcd");
    let want = mock_backend::dasd::Identity {
        model: Model3390::M1,
        cylinders: 1,
        devno: 0x0120,
    }
    .rcd();
    let mut css = css(image(&dir));
    let m = mem();
    let scsw = run1(&mut css, &m, 2, &[ccw1(0xE4, CcwFlags::SLI, 256, 0x4000)]);
    assert_eq!(status(&scsw), (CE_DE, 0));
    // The CIW: type 0 (read configuration data), its command and count.
    let ciw = get(&m, 0x4008, 4);
    assert_eq!(ciw[0] & 0xCF, 0x40);
    let (cmd, count) = (ciw[1], u16::from_be_bytes([ciw[2], ciw[3]]));
    let scsw = run1(&mut css, &m, 2, &[ccw1(cmd, CcwFlags::NONE, count, 0x5000)]);
    assert_eq!(status(&scsw), (CE_DE, 0));
    assert_eq!(get(&m, 0x5000, 256), want);
}

#[test]
fn suspend_and_resume_through_vcss() {
    let dir = Scratch::new("susp");
    let mut css = css(image(&dir));
    let m = mem();
    put(&m, 0x3000, b"ABCD");
    put(
        &m,
        u64::from(PROG_AT),
        &[
            ccw1(0x01, CcwFlags::CC, 4, 0x3000),
            ccw1(0x02, CcwFlags::S, 4, 0x4000),
        ]
        .concat(),
    );
    let mut orb = CommandOrb::new(0x77, PROG_AT);
    orb.suspend = true;
    put(&m, ORB_AT, &orb.emit().into_bytes());
    assert_eq!(css.ssch(&m, sid(1), ORB_AT), Ok(ConditionCode::Cc0));
    // Suspended before the READ (ORB U = 0: an intermediate interruption), nothing read yet.
    assert!(css.interruption_pending(u64::MAX));
    assert_eq!(css.tsch(&m, sid(1), IRB_AT), Ok(ConditionCode::Cc0));
    let scsw: [u8; 12] = get(&m, IRB_AT, 12).try_into().unwrap();
    assert_eq!(scsw[3] & 0x20, 0x20, "activity control: suspended");
    assert_eq!(
        scsw[3] & 0x0F,
        0x09,
        "status control: intermediate + pending"
    );
    assert_eq!(
        u32::from_be_bytes(scsw[4..8].try_into().unwrap()),
        PROG_AT + 16
    );
    assert_eq!(get(&m, 0x4000, 4), [0; 4]);
    // The guest turns the suspend flag off and resumes: the channel re-fetches the CCW.
    put(
        &m,
        u64::from(PROG_AT) + 8,
        &ccw1(0x02, CcwFlags::NONE, 4, 0x4000),
    );
    assert_eq!(css.rsch(&m, sid(1)), Ok(ConditionCode::Cc0));
    assert_eq!(css.tsch(&m, sid(1), IRB_AT), Ok(ConditionCode::Cc0));
    let scsw: [u8; 12] = get(&m, IRB_AT, 12).try_into().unwrap();
    assert_eq!(status(&scsw), (CE_DE, 0));
    assert_eq!(
        u32::from_be_bytes(scsw[4..8].try_into().unwrap()),
        PROG_AT + 16
    );
    assert_eq!(get(&m, 0x4000, 4), b"ABCD");
}

/// Virtio spec 4.3.2.1.1: the revision stays negotiated until the subchannel is enabled again,
/// and MODIFY SUBCHANNEL enabling it through vcss tells the device (as the simulator's own
/// MSCH does).
#[test]
fn enabling_the_subchannel_unsets_the_virtio_revision() {
    const SET_VIRTIO_REV: u8 = 0x83;
    const SCHIB_AT: u64 = 0xA00;
    let dir = Scratch::new("virtio-rev");
    let m = mem();
    let mut css = css(image(&dir));
    // Revision 1, length 0: the 4 bytes the command carries.
    put(&m, 0x3000, &[0x00, 0x01, 0x00, 0x00]);
    let set_rev = ccw1(SET_VIRTIO_REV, CcwFlags::NONE, 4, 0x3000);
    assert_eq!(status(&run1(&mut css, &m, 0, &[set_rev])), (CE_DE, 0));
    // Once negotiated, a second SET_VIRTIO_REV is a command reject (unit check).
    assert_eq!(status(&run1(&mut css, &m, 0, &[set_rev])), (0x02, 0));
    // Disable, then enable again with MSCH.
    for enable in [false, true] {
        assert_eq!(css.stsch(&m, sid(0), SCHIB_AT), Ok(ConditionCode::Cc0));
        let mut schib = get(&m, SCHIB_AT, 52);
        // PMCW word 1 byte 1 (schib[5]), bit 8 of the word: E.
        schib[5] = if enable {
            schib[5] | 0x80
        } else {
            schib[5] & !0x80
        };
        put(&m, SCHIB_AT, &schib);
        assert_eq!(css.msch(&m, sid(0), SCHIB_AT), Ok(ConditionCode::Cc0));
    }
    assert_eq!(status(&run1(&mut css, &m, 0, &[set_rev])), (CE_DE, 0));
}
