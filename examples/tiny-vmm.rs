// SPDX-License-Identifier: Apache-2.0 OR MIT

//! tiny-vmm: the whole loop of a VMM's guest I/O, with a test harness playing the guest's vCPU.
//!
//! ```text
//! cargo run -p vmm-examples --example tiny-vmm
//! ```
//!
//! The host is mock-backend's simulated channel subsystem, described by a machine file: a
//! virtio-blk-ccw disk (0.0.0005) and a 3390 on a fresh CKD image (0.0.0190, two FICON
//! paths). Both are passed through to the guest with vcss's passthrough device (the same code
//! passes a vfio-ccw subchannel through on s390x): the disk keeps its device number, the 3390
//! appears as `fe.0.1234`, i.e. device 0.0.1234 in the guest.
//!
//! The "vCPU" issues what a Linux guest issues at boot (vcss-reference §2), each instruction a
//! call of the vcss handler KVM's intercept would reach: CHSC store channel-subsystem
//! characteristics and set domain attributes, STSCH over every subchannel number until cc 3,
//! CHSC store-subchannel-description and store-channel-path-description for each, STCRW on an
//! empty queue, MSCH to enable with ISC 3 and an intparm, SSCH SENSE ID, then TSCH after the
//! interruption (delivered at lowcore 0xB8 the way KVM does, or taken with TPI as Linux does
//! on LPAR), and then the devices' own programs: the virtio-ccw configuration read and a
//! record of the 3390. Every answer is checked; a wrong one ends the run with an error.
//!
//! Not done, and said so: the virtio-blk disk's blocks move through virtqueues in guest
//! memory, notified by a hypercall, and the simulator runs none; the guest reads the disk's
//! configuration (its capacity) through channel programs and reads a block of the 3390.

use ccw_types::{CommandOrb, Irb};
use css_core::ConditionCode;
use mock_backend::dasd::{CkdImage, CreateOptions, Model3390};
use vcss::InstrError;
use vcss::machine::Machine;
use vcss::passthrough::DevnoMapping;
use vm_memory::{Bytes, GuestAddress};
use vmm_examples::{Error, Vm};

// Guest storage layout.
const CHSC_PAGE: u64 = 0x10000;
const SCHIB: u64 = 0x20000;
const ORB: u64 = 0x21000;
const IRB: u64 = 0x22000;
const CCWS: u64 = 0x23000;
const DATA: u64 = 0x24000;
const CRW: u64 = 0x25000;

/// The ISC Linux uses for I/O subchannels.
const ISC: u8 = 3;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(format!($($msg)*).into());
        }
    };
}

/// GR1 for subchannel 0.0.`n`.
fn sid(n: u16) -> u64 {
    0x0001_0000 | u64::from(n)
}

/// A format-1 CCW.
fn ccw(cmd: u8, flags: u8, count: u16, cda: u32) -> [u8; 8] {
    let mut c = [cmd, flags, 0, 0, 0, 0, 0, 0];
    c[2..4].copy_from_slice(&count.to_be_bytes());
    c[4..8].copy_from_slice(&cda.to_be_bytes());
    c
}
const CC: u8 = 0x40;
const SLI: u8 = 0x20;

/// A subchannel STSCH found with a device: number, device number, PIM, CHPIDs.
type Found = (u16, u16, u8, [u8; 8]);

/// The guest's vCPU: each method is an instruction or a driver step of a Linux guest.
struct Vcpu<'a> {
    vm: &'a mut Vm,
    cr6: u64,
    verbose: bool,
}

impl Vcpu<'_> {
    fn say(&self, what: std::fmt::Arguments<'_>) {
        if self.verbose {
            println!("{what}");
        }
    }

    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Error> {
        self.vm.mem.write_slice(bytes, GuestAddress(addr))?;
        Ok(())
    }

    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, Error> {
        let mut b = vec![0u8; len];
        self.vm.mem.read_slice(&mut b, GuestAddress(addr))?;
        Ok(b)
    }

    /// The condition code, or the program interruption as an error (a Linux guest would oops).
    fn cc(what: &str, r: Result<ConditionCode, InstrError>) -> Result<u8, Error> {
        r.map(|cc| cc.value())
            .map_err(|e| format!("{what}: the vCPU got {e}").into())
    }

    /// CHSC with request `req` (L1 = its first halfword); returns the response.
    fn chsc(&mut self, req: &[u8]) -> Result<Vec<u8>, Error> {
        self.write(CHSC_PAGE, &[0u8; 4096])?;
        self.write(CHSC_PAGE, req)?;
        let cc = Self::cc("CHSC", self.vm.css.chsc(&*self.vm.mem, CHSC_PAGE))?;
        ensure!(cc == 0, "CHSC: cc {cc}");
        let l1 = u64::from(u16::from_be_bytes([req[0], req[1]]));
        let head = self.read(CHSC_PAGE + l1, 2)?;
        let l2 = usize::from(u16::from_be_bytes([head[0], head[1]]));
        self.read(CHSC_PAGE + l1, l2)
    }

    fn response_code(resp: &[u8]) -> u16 {
        u16::from_be_bytes([resp[2], resp[3]])
    }

    /// `css_bus_init`: store channel-subsystem characteristics, enable MSS.
    fn css_characteristics(&mut self) -> Result<bool, Error> {
        let mut req = [0u8; 16];
        req[..4].copy_from_slice(&[0x00, 0x10, 0x00, 0x10]);
        let r = self.chsc(&req)?;
        ensure!(
            Self::response_code(&r) == 1,
            "SCSC: response code {:#06x}",
            Self::response_code(&r)
        );
        ensure!(r.len() == 0x0FF0, "SCSC: L2 {:#x}, not 0xff0", r.len());
        let general = &r[8..2048];
        let bits: Vec<usize> = (0..general.len() * 8)
            .filter(|b| general[b / 8] & (0x80 >> (b % 8)) != 0)
            .collect();
        self.say(format_args!(
            "CHSC SCSC: general characteristics bits {bits:?}"
        ));
        let fcs = bits.contains(&46);
        // Set domain attributes, enable MSS (operation 2): vcss models subchannel set 0
        // only and answers "not installed", so the guest runs with max_ssid = 0.
        let mut sda = vec![0u8; 0x400];
        sda[..8].copy_from_slice(&[0x04, 0x00, 0x00, 0x31, 0x00, 0x00, 0x00, 0x02]);
        let r = self.chsc(&sda)?;
        ensure!(
            Self::response_code(&r) == 0x0004,
            "SDA: response code {:#06x}",
            Self::response_code(&r)
        );
        self.say(format_args!(
            "CHSC SDA (enable MSS): 0x0004, not installed: max_ssid = 0"
        ));
        Ok(fcs)
    }

    /// `css_evaluate_new_subchannel` over subchannel set 0: STSCH until cc 3.
    fn scan(&mut self) -> Result<Vec<Found>, Error> {
        let mut found = Vec::new();
        for n in 0..=u16::MAX {
            let cc = Self::cc("STSCH", self.vm.css.stsch(&*self.vm.mem, sid(n), SCHIB))?;
            if cc == 3 {
                self.say(format_args!(
                    "STSCH 0.0.{n:04x}: cc 3, end of subchannel set 0"
                ));
                break;
            }
            let s = self.read(SCHIB, 52)?;
            let dnv = s[5] & 0x01 != 0;
            let devno = u16::from_be_bytes([s[6], s[7]]);
            let (pim, pam, pom) = (s[11], s[15], s[14]);
            let chpids: [u8; 8] = s[16..24].try_into()?;
            ensure!(s[5] & 0x80 == 0, "0.0.{n:04x} is enabled before any MSCH");
            if dnv {
                self.say(format_args!(
                    "STSCH 0.0.{n:04x}: device 0.0.{devno:04x} pim {pim:02x} pam {pam:02x} pom {pom:02x} chpids {chpids:02x?}"
                ));
                found.push((n, devno, pim, chpids));
            }
        }
        Ok(found)
    }

    /// `css_update_ssd_info` + `chp_new`: SSD for the subchannel, SCPD per installed path.
    fn describe(
        &mut self,
        n: u16,
        devno: u16,
        pim: u8,
        chpids: [u8; 8],
        fcs: bool,
    ) -> Result<(), Error> {
        let mut req = [0u8; 16];
        req[..4].copy_from_slice(&[0x00, 0x10, 0x00, 0x04]);
        req[6..8].copy_from_slice(&n.to_be_bytes());
        req[10..12].copy_from_slice(&n.to_be_bytes());
        let r = self.chsc(&req)?;
        ensure!(
            Self::response_code(&r) == 1,
            "SSD 0.0.{n:04x}: code {:#06x}",
            Self::response_code(&r)
        );
        let e = &r[8..40];
        ensure!(
            e[0] & 0xC0 == 0xC0,
            "SSD 0.0.{n:04x}: not valid ({:02x})",
            e[0]
        );
        ensure!(
            u16::from_be_bytes([e[2], e[3]]) == devno,
            "SSD 0.0.{n:04x}: devno differs from STSCH"
        );
        ensure!(
            e[4] == pim && e[8..16] == chpids,
            "SSD 0.0.{n:04x}: paths differ from STSCH"
        );
        for slot in (0..8).filter(|i| pim & (0x80 >> i) != 0) {
            let chpid = chpids[slot];
            for fmt in [0u8, 1].into_iter().filter(|&f| f == 0 || fcs) {
                let mut req = [0u8; 16];
                req[..4].copy_from_slice(&[0x00, 0x10, 0x00, 0x02]);
                req[4] = if fmt == 1 { 0x10 } else { 0 };
                req[6] = fmt;
                req[7] = chpid;
                req[11] = chpid;
                let r = self.chsc(&req)?;
                ensure!(
                    Self::response_code(&r) == 1,
                    "SCPD {chpid:02x}: code {:#06x}",
                    Self::response_code(&r)
                );
                ensure!(
                    r[8] & 0x80 != 0 && r[11] == chpid,
                    "SCPD {chpid:02x} fmt {fmt}: not valid"
                );
                if fmt == 0 {
                    self.say(format_args!(
                        "CHSC SCPD chpid {chpid:02x}: valid, type {:02x}",
                        r[10]
                    ));
                }
            }
        }
        Ok(())
    }

    /// `crw_collect_info`: STCRW until cc 1.
    fn drain_crws(&mut self) -> Result<Vec<[u8; 4]>, Error> {
        let mut out = Vec::new();
        loop {
            let cc = Self::cc("STCRW", self.vm.css.stcrw(&*self.vm.mem, CRW))?;
            let w: [u8; 4] = self.read(CRW, 4)?.try_into().map_err(|_| "CRW")?;
            if cc == 1 {
                ensure!(w == [0; 4], "STCRW cc 1 stored {w:02x?}, not a zero word");
                return Ok(out);
            }
            out.push(w);
        }
    }

    /// `cio_commit_config`: STSCH, set E, ISC 3 and the intparm, MSCH; cc 1 -> TSCH and retry.
    fn enable(&mut self, n: u16, intparm: u32) -> Result<(), Error> {
        Self::cc("STSCH", self.vm.css.stsch(&*self.vm.mem, sid(n), SCHIB))?;
        let mut s = self.read(SCHIB, 52)?;
        s[0..4].copy_from_slice(&intparm.to_be_bytes());
        s[4] = (s[4] & !0x38) | (ISC << 3);
        s[5] |= 0x80;
        self.write(SCHIB, &s)?;
        let cc = Self::cc("MSCH", self.vm.css.msch(&*self.vm.mem, sid(n), SCHIB))?;
        ensure!(cc == 0, "MSCH 0.0.{n:04x}: cc {cc}");
        Self::cc("STSCH", self.vm.css.stsch(&*self.vm.mem, sid(n), SCHIB))?;
        let s = self.read(SCHIB, 52)?;
        ensure!(
            s[5] & 0x80 != 0 && (s[4] >> 3) & 7 == ISC,
            "MSCH 0.0.{n:04x} did not take"
        );
        Ok(())
    }

    /// Starts `ccws` on subchannel `n`, waits for the interruption (delivered at 0xB8, or
    /// taken with TPI), checks its code and stores the IRB with TSCH.
    fn run(&mut self, n: u16, intparm: u32, ccws: &[[u8; 8]], tpi: bool) -> Result<Irb, Error> {
        for (i, c) in ccws.iter().enumerate() {
            self.write(CCWS + 8 * i as u64, c)?;
        }
        let orb = CommandOrb::new(intparm, CCWS as u32).emit();
        self.write(ORB, &orb.into_bytes()[..12])?;
        let cc = Self::cc("SSCH", self.vm.css.ssch(&*self.vm.mem, sid(n), ORB))?;
        ensure!(cc == 0, "SSCH 0.0.{n:04x}: cc {cc}");
        // The VMM's loop: the host runs the program; its ending becomes the interruption.
        self.vm.wait_interruption(self.cr6)?;
        let code = if tpi {
            let cc = Self::cc("TPI", self.vm.css.tpi(&*self.vm.mem, 0, self.cr6, 0))?;
            ensure!(cc == 1, "TPI: cc {cc} with an interruption pending");
            self.read(0xB8, 12)?
        } else {
            self.vm.deliver(self.cr6)?;
            self.read(0xB8, 12)?
        };
        let sidw = u32::from_be_bytes(code[0..4].try_into()?);
        let ip = u32::from_be_bytes(code[4..8].try_into()?);
        ensure!(
            sidw == sid(n) as u32,
            "interruption for {sidw:#010x}, not 0.0.{n:04x}"
        );
        ensure!(
            ip == intparm,
            "interruption parameter {ip:#x}, not {intparm:#x}"
        );
        ensure!(
            code[8] >> 3 & 7 == ISC,
            "interruption on ISC {}, not {ISC}",
            code[8] >> 3 & 7
        );
        let cc = Self::cc("TSCH", self.vm.css.tsch(&*self.vm.mem, sid(n), IRB))?;
        ensure!(cc == 0, "TSCH 0.0.{n:04x}: cc {cc}");
        let mut b = [0u8; 96];
        b[..64].copy_from_slice(&self.read(IRB, 64)?);
        let irb = Irb::from_bytes(b);
        let cc = Self::cc("TSCH", self.vm.css.tsch(&*self.vm.mem, sid(n), IRB))?;
        ensure!(
            cc == 1,
            "second TSCH 0.0.{n:04x}: cc {cc}, status should be cleared"
        );
        self.say(format_args!(
            "  0.0.{n:04x}: interruption {} intparm {ip:#010x}, TSCH: {}",
            if tpi {
                "taken with TPI"
            } else {
                "delivered at 0xB8"
            },
            irb.scsw
        ));
        Ok(irb)
    }

    /// Checks a clean ending: CE+DE, no subchannel status, status pending with primary and
    /// secondary status.
    fn clean(irb: &Irb, what: &str) -> Result<(), Error> {
        let s = &irb.scsw;
        ensure!(
            s.dstat == 0x0C && s.cstat == 0,
            "{what}: dstat {:02x} cstat {:02x}",
            s.dstat,
            s.cstat
        );
        ensure!(
            s.ctrl.into_bits().get() & 0x07 == 0x07,
            "{what}: status control {:08x}",
            s.ctrl.into_bits().get()
        );
        Ok(())
    }
}

/// Runs the whole loop; `verbose` prints each step.
fn run(verbose: bool) -> Result<(), Error> {
    let dir = std::env::temp_dir().join(format!(
        "tiny-vmm-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let image = dir.join("volume.3390");
    let opts = CreateOptions {
        cylinders: Some(2),
        volser: Some("TINY01".into()),
    };
    CkdImage::create(&image, Model3390::M3, &opts)?;
    let machine = Machine::parse(
        &format!(
            "chpid 00 type=32\nchpid 40 type=1b\nchpid 41 type=1b\n\
             0005 virtio-blk-ccw chpids=00 sectors=131072\n\
             0190 3390 chpids=40,41 image={}\n",
            image.display()
        ),
        &dir.join("host.machine"),
    )?;
    let result = guest(&machine, verbose);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn guest(machine: &Machine, verbose: bool) -> Result<(), Error> {
    // The disk keeps its host device number; the 3390 appears as fe.0.1234.
    let devnos = [DevnoMapping::Host, "fe.0.1234".parse()?];
    let mut vm = Vm::new(machine, &devnos, 1 << 20)?;
    let mut cpu = Vcpu {
        vm: &mut vm,
        cr6: ccw_types::cr6_isc_mask(ISC),
        verbose,
    };

    let fcs = cpu.css_characteristics()?;
    let found = cpu.scan()?;
    ensure!(found.len() == 2, "found {} devices, not 2", found.len());
    ensure!(
        found[0].1 == 0x0005,
        "virtio disk is 0.0.{:04x}, not 0.0.0005 (host number kept)",
        found[0].1
    );
    ensure!(
        found[1].1 == 0x1234,
        "3390 is 0.0.{:04x}, not 0.0.1234 (fe.0.1234)",
        found[1].1
    );
    ensure!(
        found[1].2 == 0xC0 && found[1].3[..2] == [0x40, 0x41],
        "3390 paths are not the host's"
    );
    for &(n, devno, pim, chpids) in &found {
        cpu.describe(n, devno, pim, chpids, fcs)?;
    }
    let crws = cpu.drain_crws()?;
    ensure!(crws.is_empty(), "channel reports at boot: {crws:02x?}");
    cpu.say(format_args!(
        "STCRW: cc 1, zero word (no channel report pending)"
    ));

    // Recognition: enable, SENSE ID. The 3390's interruption is taken with TPI.
    let mut ids = Vec::new();
    for &(n, devno, ..) in &found {
        let intparm = 0x0F8A_1200 | u32::from(n);
        cpu.enable(n, intparm)?;
        cpu.say(format_args!(
            "MSCH 0.0.{n:04x}: enabled, ISC {ISC}, intparm {intparm:#010x}; SSCH SENSE ID"
        ));
        let irb = cpu.run(n, intparm, &[ccw(0xE4, SLI, 256, DATA as u32)], n == 1)?;
        Vcpu::clean(&irb, "SENSE ID")?;
        let id = cpu.read(DATA, 7)?;
        ensure!(
            id[0] == 0xFF,
            "SENSE ID of 0.0.{devno:04x}: byte 0 {:02x}",
            id[0]
        );
        let cu = u16::from_be_bytes([id[1], id[2]]);
        let dev = u16::from_be_bytes([id[4], id[5]]);
        cpu.say(format_args!(
            "  0.0.{devno:04x}: CU {cu:04x}/{:02x}, device {dev:04x}/{:02x}",
            id[3], id[6]
        ));
        ids.push((cu, id[3], dev));
    }
    ensure!(
        ids[0].0 == 0x3832 && ids[0].1 == 2,
        "0.0.0005 is not a virtio block device: {:04x?}",
        ids[0]
    );
    ensure!(
        ids[1].0 == 0x3990 && ids[1].2 == 0x3390,
        "0.0.1234 is not a 3390: {:04x?}",
        ids[1]
    );

    // virtio-blk-ccw: the legacy configuration space (big-endian before VERSION_1), whose
    // first field is the capacity in 512-byte sectors.
    let irb = cpu.run(0, 0x0F8A_1200, &[ccw(0x22, 0, 8, DATA as u32)], false)?;
    Vcpu::clean(&irb, "virtio READ_CONF")?;
    let cap = u64::from_be_bytes(cpu.read(DATA, 8)?.try_into().map_err(|_| "capacity")?);
    ensure!(cap == 131_072, "virtio-blk capacity {cap}, not 131072");
    cpu.say(format_args!(
        "virtio READ_CONF: capacity {cap} sectors (64 MiB)"
    ));
    cpu.say(format_args!(
        "virtio-blk block read: skipped: blocks move through virtqueues, which the simulator does not run"
    ));

    // 3390: read cylinder 0 head 0 record 3 (key "VOL1" and the 80-byte label), as dasd_eckd
    // reads a record: Define Extent, Locate Record, Read Key and Data.
    let dx = [0x40, 0xC0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let lr = [0x06, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 84];
    cpu.write(DATA + 0x100, &dx)?;
    cpu.write(DATA + 0x110, &lr)?;
    cpu.write(DATA + 0x200, &[0u8; 84])?;
    let prog = [
        ccw(0x63, CC, 16, (DATA + 0x100) as u32),
        ccw(0x47, CC, 16, (DATA + 0x110) as u32),
        ccw(0x8E, 0, 84, (DATA + 0x200) as u32),
    ];
    let irb = cpu.run(1, 0x0F8A_1201, &prog, true)?;
    Vcpu::clean(&irb, "3390 read")?;
    let rec = cpu.read(DATA + 0x200, 84)?;
    ensure!(
        rec[..4] == [0xE5, 0xD6, 0xD3, 0xF1],
        "record 3 key {:02x?}, not VOL1",
        &rec[..4]
    );
    let volser: String = rec[8..14]
        .iter()
        .map(|&b| ebcdic_digit_or_upper(b))
        .collect();
    ensure!(volser == "TINY01", "volume serial {volser:?}, not TINY01");
    cpu.say(format_args!(
        "3390 0.0.1234: record 3 of cylinder 0 head 0 is VOL1, volume {volser}"
    ));

    // Two SENSE IDs, the configuration read, the 3390 read: four interruptions, each
    // notified once (the VMM's cue to inject KVM_S390_INT_IO).
    let notified = cpu.vm.notified.len();
    cpu.say(format_args!(
        "vcss notified the VMM {notified} times (one per I/O interruption)"
    ));
    ensure!(
        notified == 4,
        "{notified} notifications for 4 I/O interruptions"
    );
    vm.shutdown()?;
    Ok(())
}

/// EBCDIC upper-case letters and digits to ASCII (all a volume serial holds).
fn ebcdic_digit_or_upper(b: u8) -> char {
    match b {
        0xC1..=0xC9 => char::from(b'A' + (b - 0xC1)),
        0xD1..=0xD9 => char::from(b'J' + (b - 0xD1)),
        0xE2..=0xE9 => char::from(b'S' + (b - 0xE2)),
        0xF0..=0xF9 => char::from(b'0' + (b - 0xF0)),
        _ => '?',
    }
}

fn main() {
    match run(true) {
        Ok(()) => println!("tiny-vmm: the guest found and read its devices"),
        Err(e) => {
            eprintln!("tiny-vmm: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    /// The whole loop, in `cargo xtask test`: any wrong answer fails it.
    #[test]
    fn tiny_vmm_runs_the_whole_loop() {
        super::run(false).unwrap();
    }

    #[test]
    fn ebcdic() {
        assert_eq!(super::ebcdic_digit_or_upper(0xE3), 'T');
        assert_eq!(super::ebcdic_digit_or_upper(0xF1), '1');
        assert_eq!(super::ebcdic_digit_or_upper(0x40), '?');
    }
}
