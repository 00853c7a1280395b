// SPDX-License-Identifier: Apache-2.0 OR MIT

//! vcss's passthrough device against mock-backend as the host: device-number mapping, the
//! guest's MSCH on the virtual PMCW only, host path bits merged, host channel reports
//! forwarded, all paths gone, the host device gone, unsolicited status, halt of a program in
//! flight, and a program the host refuses.

use ccw_types::{CommandOrb, DeviceStatus, Irb, SubchannelId};
use mock_backend::dasd::{CkdImage, CreateOptions, Model3390};
use vcss::machine::Machine;
use vcss::passthrough::DevnoMapping;
use vm_memory::{Bytes, GuestAddress};
use vmm_examples::Vm;

const SCHIB: u64 = 0x20000;
const ORB: u64 = 0x21000;
const IRB: u64 = 0x22000;
const CCWS: u64 = 0x23000;
const DATA: u64 = 0x24000;
const CRW: u64 = 0x25000;

fn sid(n: u16) -> u64 {
    0x0001_0000 | u64::from(n)
}

fn cr6() -> u64 {
    ccw_types::cr6_isc_mask(3)
}

/// A host with a test device (0.0.0000, devno 0100, CHPID 00) and a 3390 (0.0.0001, devno
/// 0190, CHPIDs 40 and 41), passed through with `devnos`. The scratch directory goes when the
/// returned guard drops.
struct Setup {
    vm: Vm,
    dir: std::path::PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn setup(name: &str, devnos: &[DevnoMapping]) -> Setup {
    setup_with(name, devnos, mock_backend::FaultPolicy::none())
}

fn setup_with(name: &str, devnos: &[DevnoMapping], faults: mock_backend::FaultPolicy) -> Setup {
    let dir = std::env::temp_dir().join(format!("vcss-pt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join("v.3390");
    let opts = CreateOptions {
        cylinders: Some(1),
        volser: Some("PT0001".into()),
    };
    CkdImage::create(&image, Model3390::M3, &opts).unwrap();
    let machine = Machine::parse(
        &format!(
            "chpid 00 type=32\nchpid 40 type=1b\nchpid 41 type=1b\n\
             0100 test chpids=00 bytes=4096\n0190 3390 chpids=40,41 image={}\n",
            image.display()
        ),
        &dir.join("m.machine"),
    )
    .unwrap();
    let vm = Vm::with_faults(&machine, devnos, 1 << 20, faults).unwrap();
    Setup { vm, dir }
}

fn stsch(vm: &Vm, n: u16) -> [u8; 52] {
    assert_eq!(vm.css.stsch(&*vm.mem, sid(n), SCHIB).unwrap().value(), 0);
    let mut s = [0u8; 52];
    vm.mem.read_slice(&mut s, GuestAddress(SCHIB)).unwrap();
    s
}

fn enable(vm: &mut Vm, n: u16, isc: u8, intparm: u32) {
    let mut s = stsch(vm, n);
    s[0..4].copy_from_slice(&intparm.to_be_bytes());
    s[4] = isc << 3;
    s[5] |= 0x80;
    vm.mem.write_slice(&s, GuestAddress(SCHIB)).unwrap();
    assert_eq!(vm.css.msch(&*vm.mem, sid(n), SCHIB).unwrap().value(), 0);
}

fn ssch(vm: &mut Vm, n: u16, intparm: u32, ccws: &[[u8; 8]]) -> u8 {
    for (i, c) in ccws.iter().enumerate() {
        vm.mem
            .write_slice(c, GuestAddress(CCWS + 8 * i as u64))
            .unwrap();
    }
    let orb = CommandOrb::new(intparm, CCWS as u32).emit();
    vm.mem
        .write_slice(&orb.into_bytes()[..12], GuestAddress(ORB))
        .unwrap();
    vm.css.ssch(&*vm.mem, sid(n), ORB).unwrap().value()
}

fn tsch(vm: &mut Vm, n: u16) -> (u8, Irb) {
    let cc = vm.css.tsch(&*vm.mem, sid(n), IRB).unwrap().value();
    let mut b = [0u8; 96];
    vm.mem.read_slice(&mut b[..64], GuestAddress(IRB)).unwrap();
    (cc, Irb::from_bytes(b))
}

fn stcrw(vm: &mut Vm) -> Option<[u8; 4]> {
    let cc = vm.css.stcrw(&*vm.mem, CRW).unwrap().value();
    let mut w = [0u8; 4];
    vm.mem.read_slice(&mut w, GuestAddress(CRW)).unwrap();
    (cc == 0).then_some(w)
}

const SENSE_ID: [u8; 8] = [0xE4, 0x20, 0x01, 0x00, 0x00, 0x02, 0x40, 0x00]; // -> DATA

/// Runs SENSE ID on `n` to its interruption and TSCH.
fn sense_id(vm: &mut Vm, n: u16, intparm: u32) -> Irb {
    assert_eq!(ssch(vm, n, intparm, &[SENSE_ID]), 0);
    vm.wait_interruption(cr6()).unwrap();
    let code = vm.deliver(cr6()).unwrap();
    assert_eq!(code.sid.get(), sid(n) as u32);
    assert_eq!(code.intparm.get(), intparm);
    let (cc, irb) = tsch(vm, n);
    assert_eq!(cc, 0);
    irb
}

#[test]
fn devno_is_mapped_or_kept_and_paths_are_the_hosts() {
    let s = setup("devno", &[DevnoMapping::Host, "fe.0.1234".parse().unwrap()]);
    let a = stsch(&s.vm, 0);
    assert_eq!(u16::from_be_bytes([a[6], a[7]]), 0x0100, "host number kept");
    assert_eq!(a[5] & 0x01, 0x01, "DNV");
    let b = stsch(&s.vm, 1);
    assert_eq!(u16::from_be_bytes([b[6], b[7]]), 0x1234, "fe.0.1234");
    // PIM, POM, PAM and CHPIDs from the host; LPM = PIM.
    assert_eq!((b[8], b[11], b[14], b[15]), (0xC0, 0xC0, 0xFF, 0xC0));
    assert_eq!(&b[16..18], &[0x40, 0x41]);
    // Beyond: end of the subchannel set.
    assert_eq!(
        s.vm.css.stsch(&*s.vm.mem, sid(2), SCHIB).unwrap().value(),
        3
    );
}

#[test]
fn the_guests_msch_stays_virtual_and_its_io_runs_on_the_host() {
    let mut s = setup("msch", &[]);
    enable(&mut s.vm, 1, 3, 0xC0FF_EE01);
    // The host subchannel keeps css-core's enablement (intparm = its SID word, ISC 3).
    let host = s.vm.host_schib(SubchannelId::new(0, 0, 1)).unwrap();
    assert!(host.pmcw.flags.enabled());
    assert_eq!(host.pmcw.intparm.get(), 0x0001_0001);
    // The guest's PMCW has its own.
    let g = stsch(&s.vm, 1);
    assert_eq!(u32::from_be_bytes(g[0..4].try_into().unwrap()), 0xC0FF_EE01);
    let irb = sense_id(&mut s.vm, 1, 0xC0FF_EE01);
    assert_eq!((irb.scsw.dstat, irb.scsw.cstat), (0x0C, 0));
    let mut id = [0u8; 7];
    s.vm.mem.read_slice(&mut id, GuestAddress(DATA)).unwrap();
    assert_eq!(id, [0xFF, 0x39, 0x90, 0xE9, 0x33, 0x90, 0x02]);
    // A second TSCH: nothing pending any more.
    assert_eq!(tsch(&mut s.vm, 1).0, 1);
}

#[test]
fn host_path_changes_are_merged_and_reported_and_no_path_left_is_cc_3() {
    let mut s = setup("paths", &[]);
    enable(&mut s.vm, 1, 3, 0x11);
    assert_eq!(stcrw(&mut s.vm), None, "nothing reported at start");
    let host = SubchannelId::new(0, 0, 1);
    s.vm.backend.vary_paths(host, 0x80, false).unwrap();
    s.vm.settle(std::time::Duration::from_millis(200));
    // CHPID 40 went away: the host's CRW verbatim (RSC 4, ERC 6), PAM merged.
    assert_eq!(stcrw(&mut s.vm), Some([0x04, 0x06, 0x00, 0x40]));
    assert_eq!(stcrw(&mut s.vm), None);
    assert_eq!(stsch(&s.vm, 1)[15], 0x40, "PAM: only CHPID 41 left");
    // I/O still works on the remaining path.
    assert_eq!(sense_id(&mut s.vm, 1, 0x11).scsw.dstat, 0x0C);
    // The last path goes too: a start finds no path its ORB allows available, cc 3, and
    // nothing reaches the host.
    s.vm.backend.vary_paths(host, 0x40, false).unwrap();
    s.vm.settle(std::time::Duration::from_millis(200));
    assert_eq!(stcrw(&mut s.vm), Some([0x04, 0x06, 0x00, 0x41]));
    assert_eq!(stsch(&s.vm, 1)[15], 0x00, "PAM: all paths gone");
    assert_eq!(ssch(&mut s.vm, 1, 0x11, &[SENSE_ID]), 3);
    s.vm.settle(std::time::Duration::from_millis(100));
    assert!(!s.vm.css.interruption_pending(cr6()));
    // Paths back: reported (ERC 2, initialized) and usable again.
    s.vm.backend.vary_paths(host, 0xC0, true).unwrap();
    s.vm.settle(std::time::Duration::from_millis(200));
    assert_eq!(stcrw(&mut s.vm), Some([0x04, 0x02, 0x00, 0x40]));
    assert_eq!(stcrw(&mut s.vm), Some([0x04, 0x02, 0x00, 0x41]));
    assert_eq!(stsch(&s.vm, 1)[15], 0xC0);
    assert_eq!(sense_id(&mut s.vm, 1, 0x11).scsw.dstat, 0x0C);
}

#[test]
fn a_host_device_that_goes_away_is_unplugged() {
    let mut s = setup("gone", &[]);
    enable(&mut s.vm, 0, 3, 0x22);
    s.vm.backend
        .request_release(SubchannelId::new(0, 0, 0))
        .unwrap();
    s.vm.settle(std::time::Duration::from_millis(200));
    let a = stsch(&s.vm, 0);
    assert_eq!(a[5] & 0x81, 0, "DNV and E cleared");
    // RSC 3 / ERC 4 for guest subchannel 0.0.0000.
    assert_eq!(stcrw(&mut s.vm), Some([0x03, 0x04, 0x00, 0x00]));
    assert_eq!(ssch(&mut s.vm, 0, 0x22, &[SENSE_ID]), 3);
    // The other device is untouched.
    assert_eq!(stsch(&s.vm, 1)[5] & 0x01, 0x01);
}

#[test]
fn unsolicited_host_status_reaches_an_enabled_guest_subchannel() {
    let mut s = setup("attn", &[]);
    enable(&mut s.vm, 0, 3, 0x33);
    s.vm.backend
        .unsolicited(SubchannelId::new(0, 0, 0), DeviceStatus::ATTENTION)
        .unwrap();
    s.vm.wait_interruption(cr6()).unwrap();
    let code = s.vm.deliver(cr6()).unwrap();
    assert_eq!(code.intparm.get(), 0x33);
    let (cc, irb) = tsch(&mut s.vm, 0);
    assert_eq!(cc, 0);
    assert_eq!(irb.scsw.dstat & 0x80, 0x80, "attention");
}

#[test]
fn halt_ends_the_guest_function_at_once_and_the_next_start_runs_cleanly() {
    let mut s = setup("halt", &[]);
    enable(&mut s.vm, 1, 3, 0x44);
    assert_eq!(ssch(&mut s.vm, 1, 0x44, &[SENSE_ID]), 0);
    // The host has not run yet (the VMM loop did not turn): halt it. Whatever the host made
    // of the halted program is dropped, and the next start reaches the host after the halted
    // one finished there.
    halt_invisibly_then_sense_id(&mut s.vm, 0x45);
}

/// The guest halts subchannel 1's start function: HSCH cc 0, one interruption with FC halt,
/// nothing more from the host after it (neither its ending of the program nor the status of
/// its own halt), and a SENSE ID with `intparm` then ends normally.
fn halt_invisibly_then_sense_id(vm: &mut Vm, intparm: u32) {
    assert_eq!(vm.css.hsch(sid(1)).unwrap().value(), 0);
    vm.deliver(cr6()).unwrap();
    let (cc, irb) = tsch(vm, 1);
    assert_eq!(cc, 0);
    assert_eq!(
        irb.scsw.ctrl.into_bits().get() & 0x0000_4000,
        0x4000,
        "FC halt"
    );
    vm.settle(std::time::Duration::from_millis(200));
    assert!(!vm.css.interruption_pending(cr6()));
    let irb = sense_id(vm, 1, intparm);
    assert_eq!((irb.scsw.dstat, irb.scsw.cstat), (0x0C, 0));
}

#[test]
fn a_guest_halt_that_reaches_the_host_after_its_program_ended_stays_invisible() {
    let mut s = setup("halt-late", &[]);
    enable(&mut s.vm, 1, 3, 0x46);
    assert_eq!(ssch(&mut s.vm, 1, 0x46, &[SENSE_ID]), 0);
    // The host runs the program to its end, but the VMM has not applied the ending yet: for
    // the guest the start function is still active.
    s.vm.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(50)).await });
    assert!(!s.vm.css.interruption_pending(cr6()));
    // The guest's halt ends its function at once; the host halts an idle subchannel.
    halt_invisibly_then_sense_id(&mut s.vm, 0x47);
}

#[test]
fn a_program_the_host_refuses_ends_with_its_program_check() {
    let mut s = setup("refused", &[]);
    enable(&mut s.vm, 0, 3, 0x55);
    // A READ into storage the guest does not have: the translator refuses it as a channel
    // would end it.
    let bad = [0x02, 0x00, 0x00, 0x10, 0x7F, 0xF0, 0x00, 0x00];
    assert_eq!(ssch(&mut s.vm, 0, 0x55, &[bad]), 0);
    s.vm.wait_interruption(cr6()).unwrap();
    s.vm.deliver(cr6()).unwrap();
    let (cc, irb) = tsch(&mut s.vm, 0);
    assert_eq!(cc, 0);
    assert_eq!(irb.scsw.cstat, 0x20, "program check: {}", irb.scsw);
    assert_eq!(irb.scsw.dstat, 0);
    assert_eq!(irb.scsw.cpa.get(), CCWS as u32 + 8, "{}", irb.scsw);
}

#[test]
fn shutdown_closes_the_host_subchannels() {
    let s = setup("close", &[]);
    s.vm.shutdown().unwrap();
    let host = s.vm.host_schib(SubchannelId::new(0, 0, 0)).unwrap();
    assert!(
        !host.pmcw.flags.enabled(),
        "host subchannel disabled on close"
    );
}

#[test]
fn attach_refuses_a_taken_guest_number_and_an_unknown_host_subchannel() {
    let s = setup("attach", &[]);
    let taken = s.vm.block_on(
        s.vm.host
            .attach(SubchannelId::new(0, 0, 1), 0, DevnoMapping::Host),
    );
    assert!(
        matches!(taken, Err(vcss::passthrough::AttachError::GuestTaken(0))),
        "{taken:?}"
    );
    let unknown = s.vm.block_on(s.vm.host.attach(
        SubchannelId::new(0, 0, 9),
        5,
        DevnoMapping::Host,
    ));
    assert!(
        matches!(unknown, Err(vcss::passthrough::AttachError::Host { .. })),
        "{unknown:?}"
    );
}

#[test]
fn a_host_start_that_finds_the_device_not_operational_is_the_guests_deferred_cc_3() {
    // The host's first start on 0.0.0000 answers cc 3: the guest's start was accepted (cc 0),
    // so it ends with deferred cc 3.
    let faults = mock_backend::FaultPolicy::none().with_script(
        SubchannelId::new(0, 0, 0),
        0,
        mock_backend::Fault::StartNotOperational,
    );
    let mut s = setup_with("notoper", &[], faults);
    enable(&mut s.vm, 0, 3, 0x66);
    assert_eq!(ssch(&mut s.vm, 0, 0x66, &[SENSE_ID]), 0);
    s.vm.wait_interruption(cr6()).unwrap();
    assert_eq!(s.vm.deliver(cr6()).unwrap().intparm.get(), 0x66);
    let (cc, irb) = tsch(&mut s.vm, 0);
    assert_eq!(cc, 0);
    assert_eq!(irb.scsw.ctrl.deferred_cc(), 3, "{}", irb.scsw);
    // css-core retires a path that answered cc 3 (as Linux's cio does), so the host has no
    // path for the next start either: deferred cc 3 again, without reaching the device.
    assert_eq!(ssch(&mut s.vm, 0, 0x67, &[SENSE_ID]), 0);
    s.vm.wait_interruption(cr6()).unwrap();
    s.vm.deliver(cr6()).unwrap();
    assert_eq!(tsch(&mut s.vm, 0).1.scsw.ctrl.deferred_cc(), 3);
    // Until the host's path comes back (channel-path report, ERC initialized, forwarded):
    s.vm.backend
        .vary_paths(SubchannelId::new(0, 0, 0), 0x80, true)
        .unwrap();
    s.vm.settle(std::time::Duration::from_millis(200));
    assert_eq!(stcrw(&mut s.vm), Some([0x04, 0x02, 0x00, 0x00]));
    let irb = sense_id(&mut s.vm, 0, 0x68);
    assert_eq!(irb.scsw.dstat, 0x0C, "{}", irb.scsw);
}
