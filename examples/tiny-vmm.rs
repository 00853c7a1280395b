// SPDX-License-Identifier: Apache-2.0 OR MIT

//! tiny-vmm: the whole loop of a VMM's guest I/O, with a test harness playing the guest's vCPU.
//!
//! ```text
//! cargo run -p vmm-examples --example tiny-vmm
//! ```
//!
//! The host is mock-backend's simulated channel subsystem, described by a machine file: a 3390
//! on a fresh CKD image (0.0.0190, two FICON paths), passed through to the guest with vcss's
//! passthrough device (the same code passes a vfio-ccw subchannel through on s390x) as
//! `fe.0.1234`, i.e. device 0.0.1234 in the guest. The VMM emulates a virtio-blk-ccw disk
//! itself, as QEMU does (a virtio device cannot be passed through): mock-backend's model
//! behind its channel (`ChannelDevice`), device 0.0.0005 on subchannel 0.0.0001.
//!
//! The "vCPU" issues what a Linux guest issues at boot (vcss-reference §2), each instruction a
//! call of the vcss handler KVM's intercept would reach: CHSC store channel-subsystem
//! characteristics and set domain attributes, STSCH over every subchannel number until cc 3,
//! CHSC store-subchannel-description and store-channel-path-description for each, STCRW on an
//! empty queue, MSCH to enable with ISC 3 and an intparm, SSCH SENSE ID, then TSCH after the
//! interruption (delivered at lowcore 0xB8 the way KVM does, or taken with TPI as Linux does
//! on LPAR), and then the devices' own work: a record of the 3390; and for the virtio disk what
//! Linux's virtio_ccw and virtio_blk do — revision, reset, status, features (VERSION_1),
//! configuration (capacity), queue size, SET_VQ, classic indicators (SET_IND), DRIVER_OK —
//! then a block written and read back through the split ring in guest memory: each request
//! made available, the queue notified with DIAGNOSE 0x500 subcode 3 (the hypercall KVM hands
//! the VMM, which calls `Vcss::diag500`), the device's interruption (alert status, the
//! subchannel's intparm) taken, the indicator bit, the used ring and the status byte checked.
//! Every answer is checked; a wrong one ends the run with an error.

use ccw_types::{CommandOrb, Irb};
use css_core::ConditionCode;
use mock_backend::ChannelDevice;
use mock_backend::dasd::{CkdImage, CreateOptions, Model3390};
use mock_backend::devices::VirtioBlkCcw;
use vcss::InstrError;
use vcss::machine::Machine;
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
// The virtqueue (256 entries) and the block requests.
const VQ_DESC: u64 = 0x30000;
const VQ_AVAIL: u64 = 0x31000;
const VQ_USED: u64 = 0x32000;
const INDICATORS: u64 = 0x33000;
const REQ_HDR: u64 = 0x34000;
const REQ_STATUS: u64 = 0x34100;
const BLOCK: u64 = 0x35000;

/// Guest subchannel numbers: the passed-through 3390 and the emulated virtio disk.
const SCH_3390: u16 = 0;
const SCH_VIRTIO: u16 = 1;

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
    /// I/O interruptions taken so far.
    interruptions: usize,
    /// The driver's next available index of the virtqueue.
    avail_idx: u16,
    /// The cookie the last notification returned (Linux passes it back in GR4).
    cookie: i64,
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
        self.take(n, intparm, tpi)
    }

    /// Waits for subchannel `n`'s interruption (delivered at 0xB8, or taken with TPI), checks
    /// its code and stores the IRB with TSCH.
    fn take(&mut self, n: u16, intparm: u32, tpi: bool) -> Result<Irb, Error> {
        // The VMM's loop: the host runs the program; its ending becomes the interruption.
        self.vm.wait_interruption(self.cr6)?;
        self.interruptions += 1;
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

    /// One virtio-ccw command on the disk: `out` written to the buffer first, `count` bytes,
    /// no flags (as Linux's virtio_ccw issues them); returns the buffer after it.
    fn vccw(&mut self, cmd: u8, out: &[u8], count: u16) -> Result<Vec<u8>, Error> {
        self.write(DATA, &[0u8; 64])?;
        self.write(DATA, out)?;
        let intparm = 0x0F8A_1200 | u32::from(SCH_VIRTIO);
        let irb = self.run(
            SCH_VIRTIO,
            intparm,
            &[ccw(cmd, 0, count, DATA as u32)],
            false,
        )?;
        Vcpu::clean(&irb, &format!("virtio command {cmd:#04x}"))?;
        self.read(DATA, usize::from(count))
    }

    /// `virtio_ccw_probe` + `virtio_dev_probe` + `virtblk_probe` up to DRIVER_OK: returns the
    /// capacity in sectors.
    fn virtio_bring_up(&mut self) -> Result<u64, Error> {
        // SET_VIRTIO_REV 2 (Linux starts at its highest revision), VDEV_RESET.
        self.vccw(0x83, &[0, 2, 0, 0], 4)?;
        self.vccw(0x33, &[], 0)?;
        self.vccw(0x31, &[0x03], 1)?; // ACKNOWLEDGE | DRIVER
        let w0 = self.vccw(0x12, &[0, 0, 0, 0, 0], 5)?;
        let w1 = self.vccw(0x12, &[0, 0, 0, 0, 1], 5)?;
        let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        ensure!(
            word(&w1) & 1 != 0,
            "VERSION_1 not offered: {:08x}",
            word(&w1)
        );
        // Take VERSION_1 only: no optional virtio-blk feature, no EVENT_IDX.
        self.vccw(0x11, &[0, 0, 0, 0, 0], 5)?;
        self.vccw(0x11, &[1, 0, 0, 0, 1], 5)?;
        self.vccw(0x31, &[0x0B], 1)?; // | FEATURES_OK
        let st = self.vccw(0x72, &[], 1)?;
        ensure!(st[0] == 0x0B, "status {:#04x} after FEATURES_OK", st[0]);
        self.say(format_args!(
            "virtio 0.0.0005: revision 2, features offered {:08x} {:08x}, VERSION_1 taken, FEATURES_OK",
            word(&w1),
            word(&w0)
        ));
        // Little-endian configuration now that VERSION_1 is negotiated.
        let conf = self.vccw(0x22, &[], 8)?;
        let cap = u64::from_le_bytes(conf[..8].try_into()?);
        let vq = self.vccw(0x32, &[0, 0], 4)?;
        let num = u16::from_be_bytes([vq[2], vq[3]]);
        ensure!(num == 256, "queue 0 has {num} entries, not 256");
        let mut info = Vec::new();
        info.extend_from_slice(&VQ_DESC.to_be_bytes());
        info.extend_from_slice(&[0; 4]);
        info.extend_from_slice(&0u16.to_be_bytes());
        info.extend_from_slice(&num.to_be_bytes());
        info.extend_from_slice(&VQ_AVAIL.to_be_bytes());
        info.extend_from_slice(&VQ_USED.to_be_bytes());
        self.write(VQ_DESC, &[0u8; 0x3000])?;
        self.vccw(0x13, &info, 32)?;
        self.write(INDICATORS, &[0u8; 8])?;
        self.vccw(0x43, &INDICATORS.to_be_bytes(), 8)?;
        self.vccw(0x31, &[0x0F], 1)?; // | DRIVER_OK
        self.say(format_args!(
            "virtio 0.0.0005: capacity {cap} sectors, queue 0 of {num} at {VQ_DESC:#x}/{VQ_AVAIL:#x}/{VQ_USED:#x}, indicators at {INDICATORS:#x}, DRIVER_OK"
        ));
        Ok(cap)
    }

    /// One virtio-blk request through the ring: header, `len` bytes at `buf` (written by the
    /// device for T_IN), status; made available, notified with DIAGNOSE 0x500, the interruption
    /// taken. Returns the status byte.
    fn blk_request(&mut self, ty: u32, sector: u64, buf: u64, len: u32) -> Result<u8, Error> {
        let mut hdr = ty.to_le_bytes().to_vec();
        hdr.extend_from_slice(&[0; 4]);
        hdr.extend_from_slice(&sector.to_le_bytes());
        self.write(REQ_HDR, &hdr)?;
        self.write(REQ_STATUS, &[0xFF])?;
        let write = if ty == 0 { 2u16 } else { 0 };
        let desc = |addr: u64, len: u32, flags: u16, next: u16| {
            let mut d = addr.to_le_bytes().to_vec();
            d.extend_from_slice(&len.to_le_bytes());
            d.extend_from_slice(&flags.to_le_bytes());
            d.extend_from_slice(&next.to_le_bytes());
            d
        };
        // Chain 0 -> 1 -> 2 (NEXT = 1, WRITE = 2).
        self.write(VQ_DESC, &desc(REQ_HDR, 16, 1, 1))?;
        self.write(VQ_DESC + 16, &desc(buf, len, 1 | write, 2))?;
        self.write(VQ_DESC + 32, &desc(REQ_STATUS, 1, 2, 0))?;
        let slot = u64::from(self.avail_idx % 256);
        self.write(VQ_AVAIL + 4 + 2 * slot, &0u16.to_le_bytes())?;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.write(VQ_AVAIL + 2, &self.avail_idx.to_le_bytes())?;
        // The hypercall: GR1 = 3, GR2 = subchannel id, GR3 = queue index, GR4 = cookie.
        let gr2 = self
            .vm
            .css
            .diag500(&*self.vm.mem, 3, sid(SCH_VIRTIO), 0)
            .map_err(|e| format!("DIAGNOSE 0x500: the vCPU got {e}"))?;
        ensure!(gr2 >= 0, "virtio notify: GR2 = {gr2}");
        self.cookie = gr2;
        // `virtio_ccw_int_handler`: the interruption, then the indicator bits.
        let intparm = 0x0F8A_1200 | u32::from(SCH_VIRTIO);
        let irb = self.take(SCH_VIRTIO, intparm, false)?;
        ensure!(
            irb.scsw.ctrl.into_bits().get() & 0x1F == 0x11 && irb.scsw.dstat == 0,
            "virtio interruption: status control {:08x}, dstat {:02x} (alert status expected)",
            irb.scsw.ctrl.into_bits().get(),
            irb.scsw.dstat
        );
        let ind = u64::from_be_bytes(self.read(INDICATORS, 8)?.try_into().map_err(|_| "ind")?);
        ensure!(ind & 1 != 0, "queue 0's indicator not set: {ind:#x}");
        self.write(INDICATORS, &(ind & !1).to_be_bytes())?;
        // `vring_interrupt`: the used ring has the chain, with the bytes the device wrote.
        let used = self.read(VQ_USED, 12)?;
        let used_idx = u16::from_le_bytes([used[2], used[3]]);
        ensure!(
            used_idx == self.avail_idx,
            "used index {used_idx}, not {}",
            self.avail_idx
        );
        let slot = 4 + 8 * usize::from((used_idx.wrapping_sub(1)) % 256);
        let e = self.read(VQ_USED + slot as u64, 8)?;
        let (id, n) = (
            u32::from_le_bytes(e[0..4].try_into()?),
            u32::from_le_bytes(e[4..8].try_into()?),
        );
        // Bytes the device wrote: the data of a successful read, and the status byte.
        let status = self.read(REQ_STATUS, 1)?[0];
        let want = if ty == 0 && status == 0 { len + 1 } else { 1 };
        ensure!(
            id == 0 && n == want,
            "used element ({id}, {n}), not (0, {want})"
        );
        Ok(status)
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
            "chpid 40 type=1b\nchpid 41 type=1b\n\
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
    // The 3390 appears as fe.0.1234; the VMM's own virtio disk is 0.0.0005, 64 MiB, with a
    // block the harness preloaded at sector 0.
    let devnos = ["fe.0.1234".parse()?];
    let mut vm = Vm::new(machine, &devnos, 1 << 20)?;
    let mut disk = VirtioBlkCcw::new(131_072);
    disk.write_disk(0, &preloaded_block())?;
    vm.add_emulated(
        SCH_VIRTIO,
        0x0005,
        0x00,
        Box::new(ChannelDevice::new(Box::new(disk))),
    )?;
    let mut cpu = Vcpu {
        vm: &mut vm,
        cr6: ccw_types::cr6_isc_mask(ISC),
        verbose,
        interruptions: 0,
        avail_idx: 0,
        cookie: 0,
    };

    let fcs = cpu.css_characteristics()?;
    let found = cpu.scan()?;
    ensure!(found.len() == 2, "found {} devices, not 2", found.len());
    let (d3390, dvirtio) = (found[usize::from(SCH_3390)], found[usize::from(SCH_VIRTIO)]);
    ensure!(
        dvirtio.1 == 0x0005,
        "virtio disk is 0.0.{:04x}, not 0.0.0005",
        dvirtio.1
    );
    ensure!(
        d3390.1 == 0x1234,
        "3390 is 0.0.{:04x}, not 0.0.1234 (fe.0.1234)",
        d3390.1
    );
    ensure!(
        d3390.2 == 0xC0 && d3390.3[..2] == [0x40, 0x41],
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
        let irb = cpu.run(
            n,
            intparm,
            &[ccw(0xE4, SLI, 256, DATA as u32)],
            n == SCH_3390,
        )?;
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
    let (i3390, ivirtio) = (ids[usize::from(SCH_3390)], ids[usize::from(SCH_VIRTIO)]);
    ensure!(
        ivirtio.0 == 0x3832 && ivirtio.1 == 2,
        "0.0.0005 is not a virtio block device: {ivirtio:04x?}"
    );
    ensure!(
        i3390.0 == 0x3990 && i3390.2 == 0x3390,
        "0.0.1234 is not a 3390: {i3390:04x?}"
    );

    // virtio-blk-ccw: bring-up to DRIVER_OK, then blocks through the ring.
    let cap = cpu.virtio_bring_up()?;
    ensure!(cap == 131_072, "virtio-blk capacity {cap}, not 131072");
    let st = cpu.blk_request(0, 0, BLOCK, 512)?; // VIRTIO_BLK_T_IN, sector 0
    ensure!(st == 0, "read of sector 0: status {st}");
    ensure!(
        cpu.read(BLOCK, 512)? == preloaded_block(),
        "sector 0 differs from the preloaded block"
    );
    cpu.say(format_args!(
        "virtio 0.0.0005: sector 0 read through the ring (DIAGNOSE 0x500 -> {}, interruption, indicator, used ring): the preloaded block",
        cpu.cookie
    ));
    let block: Vec<u8> = (0..512u32).map(|i| (i * 31 + 7) as u8).collect();
    cpu.write(BLOCK, &block)?;
    let st = cpu.blk_request(1, 4096, BLOCK, 512)?; // VIRTIO_BLK_T_OUT
    ensure!(st == 0, "write of sector 4096: status {st}");
    cpu.write(BLOCK, &[0u8; 512])?;
    let st = cpu.blk_request(0, 4096, BLOCK, 512)?;
    ensure!(st == 0, "read of sector 4096: status {st}");
    ensure!(
        cpu.read(BLOCK, 512)? == block,
        "sector 4096 read back differs"
    );
    cpu.say(format_args!(
        "virtio 0.0.0005: sector 4096 written and read back through the ring"
    ));
    // The passed-through 3390 is no virtio device: the hypercall answers -EINVAL in GR2.
    let gr2 = cpu
        .vm
        .css
        .diag500(&*cpu.vm.mem, 3, sid(SCH_3390), 0)
        .map_err(|e| format!("DIAGNOSE 0x500: {e}"))?;
    ensure!(
        gr2 == vcss::EINVAL,
        "notify of the 3390: GR2 = {gr2}, not -EINVAL"
    );
    let st = cpu.blk_request(0, cap, BLOCK, 512)?;
    ensure!(
        st == 1,
        "read past the end: status {st}, not VIRTIO_BLK_S_IOERR"
    );
    cpu.say(format_args!(
        "virtio 0.0.0005: sector {cap} (past the end): VIRTIO_BLK_S_IOERR"
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
    let irb = cpu.run(SCH_3390, 0x0F8A_1200 | u32::from(SCH_3390), &prog, true)?;
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

    // Every I/O interruption (SENSE IDs, virtio commands, the ring's, the 3390 read) was
    // notified once: the VMM's cue to inject KVM_S390_INT_IO.
    let (notified, taken) = (cpu.vm.notified.len(), cpu.interruptions);
    cpu.say(format_args!(
        "vcss notified the VMM {notified} times (one per I/O interruption)"
    ));
    ensure!(
        notified == taken,
        "{notified} notifications for {taken} I/O interruptions"
    );
    vm.shutdown()?;
    Ok(())
}

/// The block the harness puts at sector 0 of the virtio disk before the guest runs.
fn preloaded_block() -> Vec<u8> {
    let mut b = b"tiny-vmm: sector 0 of the virtio-blk disk".to_vec();
    b.resize(512, 0x5A);
    b
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
