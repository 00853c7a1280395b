// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `vfio-guest vcss-bringup` and `vfio-guest vcss-ipl`: vcss, the guest-facing channel
//! subsystem, over the lane's real device.
//!
//! A [`Guest`] is what a VMM on s390x keeps for its guest's I/O with one passed-through
//! subchannel: a [`Vcss`] whose subchannel 0.0.0000 is [`vcss::passthrough`] over css-core
//! over the host's backend (vfio-ccw's [`vfio_backend::VfioBackend`] in the lanes,
//! mock-backend in this module's tests), the guest memory, and the VMM's loop that applies the
//! host's events and presents an interruption at lowcore 0xB8 as KVM does. The host's device
//! number is kept or replaced ([`DevnoMapping`], e.g. `fe.0.1234`), and the host subchannel
//! number (QEMU lane 0.0.0000, Hercules lane 0.0.0001) becomes the guest's 0.0.0000.
//!
//! [`bringup`] plays a Linux guest's bring-up (vcss-reference §2) through vcss's instruction
//! handlers and guest memory only: CHSC store channel-subsystem characteristics and set domain
//! attributes, STSCH over every subchannel number until cc 3, CHSC store subchannel description
//! and store channel-path description (formats 0 and 1) per path, STCRW on an empty queue, MSCH
//! to enable with ISC 3 and an interruption parameter, SSCH SENSE ID with the interruption
//! presented and TSCH, one NOP per available path taken with TPI, and then the device's own
//! reads: virtio-ccw's features, configuration (the capacity) and queue size as the conformance
//! suite reads them, or a 3390's Read Device Characteristics and a 4 KiB record the lane's host
//! wrote. [`ipl`] loads the lane 3390's IPL record chain (xtask/s390x/ipl_chain.rs) with
//! QEMU's firmware method for vfio-ccw ([`vcss::PrefetchIpl`]) through the same handlers and
//! checks the PSW and the bytes that arrived.
//!
//! Every check prints one `ok`/`FAIL` line and the run prints `<name>: N passed, M failed`,
//! which the lane counts (xtask/src/s390x/report.rs).

use std::sync::Arc;
use std::time::Duration;

use ccw_types::eckd::TrackAddr;
use ccw_types::{CommandOrb, IoInterruptionCode, Scsw, SubchannelId};
use css_core::{Backend, ConditionCode, Css};
use tokio::sync::mpsc;
use vcss::passthrough::{DevnoMapping, HostEvent, PassthroughHost};
use vcss::{InstrError, IplStep, Paths, PrefetchIpl, Vcss};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::fixtures::Target;

/// The lane's DASD records (the host fills `READ_AT` before boot); shared with the lane's
/// host and probe, which use other items of it.
#[allow(dead_code)]
mod records {
    include!("../../../xtask/s390x/dasd_records.rs");
}
/// The lane 3390's IPL record chain, shared with the host that writes it.
#[allow(dead_code)]
pub(crate) mod ipl_chain {
    include!("../../../xtask/s390x/ipl_chain.rs");
}

/// Guest memory: 1 MiB from 0 (the IPL uses 0-0x3F, 0x2000, 0x3000 and 0x10000-0x10FFF).
pub(crate) const MEMORY: usize = 1 << 20;
/// The guest's subchannel number of the passed-through device.
pub(crate) const GUEST_SCH: u16 = 0;
/// How long the VMM waits for the host to end a program.
const HOST_TIMEOUT: Duration = Duration::from_secs(5);
/// The ISC Linux gives I/O subchannels.
const ISC: u8 = 3;

// Guest storage of the bring-up, clear of the IPL's.
const CHSC_PAGE: u64 = 0x20000;
const SCHIB: u64 = 0x21000;
const ORB: u64 = 0x21100;
const IRB: u64 = 0x21200;
const TPI_CODE: u64 = 0x21300;
const CRW: u64 = 0x21380;
const CCWS: u64 = 0x21400;
const PARMS: u64 = 0x21800;
const DATA: u64 = 0x22000;
/// A byte no answer stores: what a transfer must (not) touch.
const POISON: u8 = 0xA5;

/// Capacity of the QEMU lane's disk in 512-byte sectors (xtask/src/s390x/guest.rs: 64 MiB).
pub(crate) const QEMU_DISK_SECTORS: u64 = (64 << 20) / 512;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(format!($($msg)*));
        }
    };
}

/// What the device must answer, beyond what the host's SCHIB says.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expect {
    /// A virtio-blk-ccw disk of this many sectors.
    VirtioBlk { sectors: u64 },
    /// A 3390 with this many cylinders.
    Dasd3390 { cylinders: u16 },
}

impl Expect {
    /// The lane's device of `target`.
    pub(crate) fn lane(target: Target) -> Self {
        match target {
            Target::VirtioBlk => Expect::VirtioBlk {
                sectors: QEMU_DISK_SECTORS,
            },
            // xtask/src/s390x/hercules.rs CYLINDERS.
            Target::Dasd3390 => Expect::Dasd3390 { cylinders: 20 },
        }
    }
}

/// The counted checks of one run.
#[derive(Debug)]
pub(crate) struct Checks {
    name: &'static str,
    pub(crate) passed: usize,
    pub(crate) failed: usize,
}

impl Checks {
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            passed: 0,
            failed: 0,
        }
    }

    /// Counts `r` and prints its line; returns the value of a passed check.
    pub(crate) fn record<T>(&mut self, what: &str, r: Result<(T, String), String>) -> Option<T> {
        match r {
            Ok((v, detail)) => {
                self.passed += 1;
                if detail.is_empty() {
                    println!("  ok   {}/{what}", self.name);
                } else {
                    println!("  ok   {}/{what}: {detail}", self.name);
                }
                Some(v)
            }
            Err(e) => {
                self.failed += 1;
                println!("  FAIL {}/{what}: {e}", self.name);
                None
            }
        }
    }

    /// The line the lane counts.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{}: {} passed, {} failed",
            self.name, self.passed, self.failed
        )
    }
}

fn ok(detail: impl Into<String>) -> Result<((), String), String> {
    Ok(((), detail.into()))
}

/// A VMM's guest I/O with one passed-through subchannel (see the module docs).
pub(crate) struct Guest<B: Backend + 'static> {
    pub(crate) css: Vcss,
    pub(crate) mem: Arc<GuestMemoryMmap>,
    host: PassthroughHost<B, GuestMemoryMmap>,
    events: mpsc::UnboundedReceiver<HostEvent>,
    /// The host's paths, as attached.
    pub(crate) paths: Paths,
    /// (CHPID, type) of every installed path; no type for a path the host cannot describe.
    pub(crate) chpids: Vec<(u8, Option<u8>)>,
    /// The guest's device number, and the host's.
    pub(crate) devno: u16,
    pub(crate) host_devno: u16,
}

impl<B: Backend + 'static> Guest<B> {
    /// Passes host subchannel `host_sch` of `css` (made over a backend that maps `mem`)
    /// through as guest subchannel [`GUEST_SCH`] with device number `devno`; `chpid_type`
    /// gives each host CHPID's type (host sysfs on s390x), `None` when the host has no
    /// description of it ([`Vcss::add_chpid_undescribed`]).
    pub(crate) async fn new(
        css: Css<B>,
        mem: Arc<GuestMemoryMmap>,
        host_sch: SubchannelId,
        devno: DevnoMapping,
        chpid_type: &dyn Fn(u8) -> Result<Option<u8>, String>,
    ) -> Result<Self, String> {
        let (host, events) =
            PassthroughHost::new(css, mem.clone(), tokio::runtime::Handle::current());
        let a = host
            .attach(host_sch, GUEST_SCH, devno)
            .await
            .map_err(|e| format!("attach {host_sch}: {e}"))?;
        let host_devno = host
            .css()
            .cached_schib(host_sch)
            .map_err(|e| format!("host SCHIB of {host_sch}: {e}"))?
            .pmcw
            .flags
            .devno();
        let mut vcss = Vcss::new();
        let mut chpids = Vec::new();
        for slot in 0..8 {
            if a.paths.pim & (0x80 >> slot) != 0 {
                let chpid = a.paths.chpids[slot];
                let ty = chpid_type(chpid)?;
                match ty {
                    Some(t) => vcss.add_chpid(chpid, t),
                    None => vcss.add_chpid_undescribed(chpid),
                }
                chpids.push((chpid, ty));
            }
        }
        let (devno, paths) = (a.devno, a.paths);
        vcss.add_subchannel_paths(GUEST_SCH, devno, &paths, Box::new(a.device))
            .map_err(|_| format!("guest subchannel {GUEST_SCH} cannot be added"))?;
        Ok(Self {
            css: vcss,
            mem,
            host,
            events,
            paths,
            chpids,
            devno,
            host_devno,
        })
    }

    /// Closes the host subchannel (the VMM's shutdown).
    pub(crate) async fn shutdown(self) -> Result<(), String> {
        let r = self.host.close().await.map_err(|e| e.to_string());
        drop(self.css);
        r
    }

    /// Runs the VMM's loop (the host's events applied) until an interruption enabled by
    /// `cr6` is pending.
    async fn wait_interruption(&mut self, cr6: u64) -> Result<(), String> {
        while !self.css.interruption_pending(cr6) {
            match tokio::time::timeout(HOST_TIMEOUT, self.events.recv()).await {
                Ok(Some(ev)) => self.css.host_event(ev),
                Ok(None) => return Err("the host side closed".into()),
                Err(_) => {
                    return Err(format!(
                        "no I/O interruption within {} s",
                        HOST_TIMEOUT.as_secs()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Presents the interruption to the vCPU as KVM does: its code at lowcore 0xB8.
    fn deliver(&mut self, cr6: u64) -> Result<IoInterruptionCode, String> {
        let code = self
            .css
            .take_interruption(cr6)
            .ok_or("no I/O interruption pending")?;
        self.put(0xB8, &code.into_bytes())?;
        Ok(code)
    }

    fn put(&self, at: u64, bytes: &[u8]) -> Result<(), String> {
        self.mem
            .write_slice(bytes, GuestAddress(at))
            .map_err(|e| format!("guest memory at {at:#x}: {e}"))
    }

    fn get(&self, at: u64, len: usize) -> Result<Vec<u8>, String> {
        let mut v = vec![0u8; len];
        self.mem
            .read_slice(&mut v, GuestAddress(at))
            .map_err(|e| format!("guest memory at {at:#x}: {e}"))?;
        Ok(v)
    }

    fn sid(&self) -> u64 {
        0x0001_0000 | u64::from(GUEST_SCH)
    }

    /// A CHSC request in the page; returns the response (L2 bytes).
    fn chsc(&mut self, req: &[u8]) -> Result<Vec<u8>, String> {
        let mut page = vec![0u8; 4096];
        page[..req.len()].copy_from_slice(req);
        self.put(CHSC_PAGE, &page)?;
        let cc = cc_of(self.css.chsc(&*self.mem, CHSC_PAGE), "CHSC")?;
        ensure!(cc == 0, "CHSC cc {cc}");
        let l1 = u64::from(u16::from_be_bytes([req[0], req[1]]));
        let head = self.get(CHSC_PAGE + l1, 2)?;
        let l2 = usize::from(u16::from_be_bytes([head[0], head[1]]));
        ensure!(l2 >= 8, "response length {l2}");
        self.get(CHSC_PAGE + l1, l2)
    }

    fn stsch(&mut self, no: u16) -> Result<(u8, Vec<u8>), String> {
        let cc = cc_of(
            self.css
                .stsch(&*self.mem, 0x0001_0000 | u64::from(no), SCHIB),
            "STSCH",
        )?;
        Ok((cc, self.get(SCHIB, 52)?))
    }

    /// Starts `ccws` (format 1) with `intparm` and `lpm`; returns the condition code.
    fn ssch(&mut self, ccws: &[[u8; 8]], intparm: u32, lpm: u8) -> Result<u8, String> {
        self.put(CCWS, &ccws.concat())?;
        let mut orb = CommandOrb::new(intparm, CCWS as u32);
        orb.lpm = lpm;
        self.put(ORB, &orb.emit().into_bytes()[..12])?;
        cc_of(self.css.ssch(&*self.mem, self.sid(), ORB), "SSCH")
    }

    /// TSCH into the IRB area; returns the condition code and the 64-byte IRB.
    fn tsch(&mut self) -> Result<(u8, Vec<u8>), String> {
        let cc = cc_of(self.css.tsch(&*self.mem, self.sid(), IRB), "TSCH")?;
        Ok((cc, self.get(IRB, 64)?))
    }

    /// A program to its end the way Linux runs one: SSCH, the interruption presented at
    /// 0xB8 (SID word and intparm checked), TSCH. Returns the IRB.
    async fn io(&mut self, ccws: &[[u8; 8]], intparm: u32) -> Result<Vec<u8>, String> {
        let cc = self.ssch(ccws, intparm, self.paths.pim)?;
        ensure!(cc == 0, "SSCH cc {cc}");
        let cr6 = ccw_types::cr6_isc_mask(ISC);
        self.wait_interruption(cr6).await?;
        let code = self.deliver(cr6)?;
        ensure!(
            (code.sid.get(), code.intparm.get()) == (self.sid() as u32, intparm),
            "interruption code {:02x?}",
            code.into_bytes()
        );
        let (cc, irb) = self.tsch()?;
        ensure!(cc == 0, "TSCH cc {cc}");
        Ok(irb)
    }
}

/// The condition code of a handler, or the program interruption it raised, as a failure.
fn cc_of(r: Result<ConditionCode, InstrError>, what: &str) -> Result<u8, String> {
    r.map(|c| c.value())
        .map_err(|e| format!("{what} raised {e}"))
}

/// A format-1 CCW.
fn ccw(cmd: u8, flags: u8, count: u16, cda: u64) -> [u8; 8] {
    let mut c = [cmd, flags, 0, 0, 0, 0, 0, 0];
    c[2..4].copy_from_slice(&count.to_be_bytes());
    c[4..8].copy_from_slice(&(cda as u32).to_be_bytes());
    c
}
const CC: u8 = 0x40;
const SLI: u8 = 0x20;

/// The final status of a clean end: primary + secondary + pending, CE + DE alone, no
/// subchannel status.
fn ends_ok(irb: &[u8]) -> Result<(), String> {
    ensure!(
        irb[3] & 0x17 == 0x07 && irb[8] == 0x0C && irb[9] == 0,
        "SCSW {:02x?} (want status control 07, CE+DE, no subchannel status)",
        &irb[..12]
    );
    Ok(())
}

fn bit(area: &[u8], n: usize) -> bool {
    area[n / 8] & (0x80 >> (n % 8)) != 0
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A Linux guest's bring-up of the channel subsystem and its device (module docs).
pub(crate) async fn bringup<B: Backend + 'static>(
    g: &mut Guest<B>,
    expect: Expect,
    checks: &mut Checks,
) {
    // css_bus_init: SCSC, then SDA op 2 (not installed in vcss: Linux keeps max_ssid 0).
    let fcs = checks
        .record("chsc-scsc", {
            (|| {
                let r = g.chsc(&[0x00, 0x10, 0x00, 0x10])?;
                ensure!(r[..4] == [0x0F, 0xF0, 0, 1], "response {}", hex(&r[..8]));
                let general = &r[8..2048];
                let fcs = bit(general, 46);
                ensure!(
                    bit(general, 6) && !bit(general, 88),
                    "general bits {}",
                    hex(&general[..16])
                );
                Ok((fcs, format!("general {}", hex(&general[..8]))))
            })()
        })
        .unwrap_or(false);
    checks.record("chsc-sda-not-installed", {
        let mut sda = vec![0u8; 0x400];
        sda[..8].copy_from_slice(&[0x04, 0x00, 0x00, 0x31, 0, 0, 0, 2]);
        g.chsc(&sda).and_then(|r| {
            ensure!(r[..4] == [0, 8, 0, 4], "response {}", hex(&r[..8]));
            ok("0x0004: Linux runs with subchannel set 0")
        })
    });

    // Slow path: STSCH over subchannel set 0 until the first cc 3.
    checks.record("stsch-scan", {
        (|| {
            let mut found = Vec::new();
            let mut end = None;
            for no in 0..=0xFFFFu16 {
                let (cc, schib) = g.stsch(no)?;
                match cc {
                    0 if schib[5] & 0x01 != 0 => {
                        found.push((no, u16::from_be_bytes([schib[6], schib[7]])));
                    }
                    0 => {}
                    3 => {
                        end = Some(no);
                        break;
                    }
                    other => return Err(format!("STSCH 0.0.{no:04x}: cc {other}")),
                }
            }
            ensure!(
                found == [(GUEST_SCH, g.devno)],
                "found {found:04x?}, want [({GUEST_SCH:04x}, {:04x})]",
                g.devno
            );
            ensure!(end == Some(GUEST_SCH + 1), "cc 3 at {end:?}");
            ok(format!(
                "0.0.{GUEST_SCH:04x} device 0.0.{:04x} (host device 0.0.{:04x}), cc 3 at 0.0.{:04x}",
                g.devno,
                g.host_devno,
                GUEST_SCH + 1
            ))
        })()
    });
    checks.record("schib-paths", {
        g.stsch(GUEST_SCH).and_then(|(cc, s)| {
            let p = g.paths;
            ensure!(cc == 0, "cc {cc}");
            ensure!(
                (s[8], s[11], s[14], s[15]) == (p.pim, p.pim, p.pom, p.pam & p.pim),
                "LPM/PIM/POM/PAM {:02x} {:02x} {:02x} {:02x}, host PIM {:02x} POM {:02x} PAM {:02x}",
                s[8],
                s[11],
                s[14],
                s[15],
                p.pim,
                p.pom,
                p.pam
            );
            ensure!(s[16..24] == p.chpids, "CHPIDs {}", hex(&s[16..24]));
            ensure!(s[5] & 0x80 == 0, "enabled before the guest's MSCH");
            ok(format!("PIM {:02x} CHPIDs {}", p.pim, hex(&s[16..24])))
        })
    });

    // css_update_ssd_info: SSD for the subchannel, then SCPD per path (chp_new).
    checks.record("chsc-ssd", {
        let [hi, lo] = GUEST_SCH.to_be_bytes();
        g.chsc(&[0, 0x10, 0, 0x04, 0, 0, hi, lo, 0, 0, hi, lo])
            .and_then(|r| {
                ensure!(r[..4] == [0, 0x28, 0, 1], "response {}", hex(&r[..8]));
                let e = &r[8..40];
                ensure!(
                    e[0] == 0xC0,
                    "flags {:02x} (want valid, devno valid, I/O)",
                    e[0]
                );
                ensure!(
                    u16::from_be_bytes([e[2], e[3]]) == g.devno
                        && e[4] == g.paths.pim
                        && e[6..8] == [hi, lo],
                    "entry {}",
                    hex(&e[..8])
                );
                for slot in 0..8 {
                    if g.paths.pim & (0x80 >> slot) != 0 {
                        ensure!(
                            e[8 + slot] == g.paths.chpids[slot],
                            "CHPIDs {}",
                            hex(&e[8..16])
                        );
                    }
                }
                ok(format!("entry {}", hex(&e[..16])))
            })
    });
    for (chpid, ty) in g.chpids.clone() {
        checks.record(&format!("chsc-scpd-{chpid:02x}"), {
            (|| {
                // Valid with the host's type; not valid (flags 0) for a path the host has no
                // description of, as the host's own channel subsystem answered it.
                let want = match ty {
                    Some(t) => [0x80, 0, t, chpid],
                    None => [0, 0, 0, chpid],
                };
                let d0 = g.chsc(&[0, 0x10, 0, 0x02, 0, 0, 0, chpid, 0, 0, 0, chpid])?;
                ensure!(
                    d0[..4] == [0, 0x10, 0, 1] && d0[8..12] == want,
                    "format 0: {}",
                    hex(&d0)
                );
                if fcs {
                    let d1 = g.chsc(&[0, 0x10, 0, 0x02, 0x10, 0, 1, chpid, 0, 0, 0, chpid])?;
                    ensure!(
                        d1.len() == 40 && d1[7] == 1 && d1[8..12] == want,
                        "format 1: {}",
                        hex(&d1)
                    );
                }
                let what = match ty {
                    Some(t) => format!("valid, type {t:02x}"),
                    None => format!(
                        "not valid: the host has no description (no /sys/devices/css0/chp0.{chpid:02x})"
                    ),
                };
                ok(format!(
                    "{what}{}",
                    if fcs { ", formats 0 and 1" } else { "" }
                ))
            })()
        });
    }
    checks.record("stcrw-empty", {
        cc_of(g.css.stcrw(&*g.mem, CRW), "STCRW").and_then(|cc| {
            let w = g.get(CRW, 4)?;
            ensure!(cc == 1 && w == [0; 4], "cc {cc}, word {}", hex(&w));
            ok("cc 1, zero word")
        })
    });

    // Recognition: MSCH enable with ISC 3 and the guest's interruption parameter.
    let intparm = 0x0F8A_1200;
    checks.record("msch-enable", {
        (|| {
            let (_, mut s) = g.stsch(GUEST_SCH)?;
            s[0..4].copy_from_slice(&u32::to_be_bytes(intparm));
            s[4] = ISC << 3;
            s[5] |= 0x80;
            g.put(SCHIB, &s)?;
            let cc = cc_of(g.css.msch(&*g.mem, g.sid(), SCHIB), "MSCH")?;
            ensure!(cc == 0, "MSCH cc {cc}");
            let (_, s) = g.stsch(GUEST_SCH)?;
            ensure!(
                s[0..4] == intparm.to_be_bytes()
                    && s[4] & 0x38 == ISC << 3
                    && s[5] & 0x81 == 0x81
                    && u16::from_be_bytes([s[6], s[7]]) == g.devno,
                "SCHIB after MSCH {}",
                hex(&s[..8])
            );
            ok(format!("ISC {ISC}, intparm {intparm:08x}"))
        })()
    });
    let sense_id = checks.record("sense-id", {
        g.put(DATA, &[POISON; 256]).ok();
        g.io(&[ccw(0xE4, SLI, 256, DATA)], intparm + 1)
            .await
            .and_then(|irb| {
                ends_ok(&irb)?;
                let id = g.get(DATA, 8)?;
                let want_cu: &[u8] = match expect {
                    Expect::VirtioBlk { .. } => &[0xFF, 0x38, 0x32, 0x02],
                    Expect::Dasd3390 { .. } => &[0xFF, 0x39, 0x90],
                };
                ensure!(id.starts_with(want_cu), "SENSE ID {}", hex(&id));
                if let Expect::Dasd3390 { .. } = expect {
                    ensure!(id[4..6] == [0x33, 0x90], "device type {}", hex(&id[4..6]));
                }
                Ok((
                    (),
                    format!(
                        "{} (interruption at 0xb8: {})",
                        hex(&id),
                        hex(&g.get(0xB8, 12)?)
                    ),
                ))
            })
    });
    let _ = sense_id;

    // Path verification: one NOP per available path, each interruption taken with TPI.
    checks.record("path-verification-tpi", {
        async {
            let cr6 = ccw_types::cr6_isc_mask(ISC);
            let mut done = Vec::new();
            for slot in 0..8 {
                let lpm = 0x80u8 >> slot;
                if g.paths.pam & g.paths.pim & lpm == 0 {
                    continue;
                }
                let ip = intparm + 0x10 + slot;
                let cc = g.ssch(&[ccw(0x03, SLI, 0, 0)], ip, lpm)?;
                ensure!(cc == 0, "NOP on path {lpm:02x}: SSCH cc {cc}");
                g.wait_interruption(cr6).await?;
                let cc = cc_of(g.css.tpi(&*g.mem, TPI_CODE, cr6, 0), "TPI")?;
                let code = g.get(TPI_CODE, 8)?;
                let mut want = (g.sid() as u32).to_be_bytes().to_vec();
                want.extend(ip.to_be_bytes());
                ensure!(cc == 1 && code == want, "TPI cc {cc}, code {}", hex(&code));
                let (cc, irb) = g.tsch()?;
                ensure!(cc == 0, "TSCH cc {cc}");
                ends_ok(&irb)?;
                done.push(format!("{lpm:02x}"));
            }
            ensure!(!done.is_empty(), "no available path");
            ok(format!("paths {}", done.join(" ")))
        }
        .await
    });

    match expect {
        Expect::VirtioBlk { sectors } => virtio_reads(g, sectors, intparm, checks).await,
        Expect::Dasd3390 { cylinders } => dasd_reads(g, cylinders, intparm, checks).await,
    }
    checks.record("nothing-left-pending", {
        let pending = g.css.interruption_pending(u64::MAX);
        if pending {
            Err("an interruption is still queued".to_string())
        } else {
            ok("")
        }
    });
}

/// virtio-ccw's reads at bring-up, as css-conformance's virtio group makes them.
async fn virtio_reads<B: Backend + 'static>(
    g: &mut Guest<B>,
    sectors: u64,
    intparm: u32,
    checks: &mut Checks,
) {
    const READ_FEAT: u8 = 0x12;
    const READ_CONF: u8 = 0x22;
    const READ_VQ_CONF: u8 = 0x32;
    const VDEV_RESET: u8 = 0x33;
    checks.record("virtio-read-feat", {
        async {
            g.put(DATA, &[POISON, POISON, POISON, POISON, 0])?;
            let irb = g
                .io(
                    &[ccw(VDEV_RESET, CC | SLI, 0, 0), ccw(READ_FEAT, 0, 5, DATA)],
                    intparm + 0x20,
                )
                .await?;
            ends_ok(&irb)?;
            let f = g.get(DATA, 5)?;
            ensure!(
                f[..4] != [POISON; 4] && f[..4] != [0; 4] && f[4] == 0,
                "features {}",
                hex(&f)
            );
            ok(format!("feature word 0 {}", hex(&f[..4])))
        }
        .await
    });
    checks.record("virtio-read-conf", {
        async {
            g.put(DATA, &[POISON; 9])?;
            let irb = g
                .io(&[ccw(READ_CONF, SLI, 8, DATA)], intparm + 0x21)
                .await?;
            ends_ok(&irb)?;
            let c = g.get(DATA, 9)?;
            ensure!(
                c[..8] == sectors.to_be_bytes() && c[8] == POISON,
                "configuration {} (want capacity {sectors})",
                hex(&c)
            );
            ok(format!("capacity {sectors} sectors"))
        }
        .await
    });
    checks.record("virtio-read-vq-conf", {
        async {
            g.put(DATA, &[0, 0, POISON, POISON])?;
            let irb = g
                .io(&[ccw(READ_VQ_CONF, 0, 4, DATA)], intparm + 0x22)
                .await?;
            ends_ok(&irb)?;
            let q = g.get(DATA, 4)?;
            ensure!(q == [0, 0, 1, 0], "queue 0: {}", hex(&q));
            ok("queue 0 size 256")
        }
        .await
    });
}

/// A 3390's reads at bring-up: Read Device Characteristics, then the record the lane's host
/// wrote, read as dasd_eckd reads a block (Define Extent, Locate Record, Read Data).
async fn dasd_reads<B: Backend + 'static>(
    g: &mut Guest<B>,
    cylinders: u16,
    intparm: u32,
    checks: &mut Checks,
) {
    use records::{READ_AT, READ_SEED, RECORD_LEN, pattern};
    checks.record("dasd-rdc", {
        async {
            g.put(DATA, &[POISON; 65])?;
            let irb = g.io(&[ccw(0x64, SLI, 64, DATA)], intparm + 0x30).await?;
            ends_ok(&irb)?;
            let r = g.get(DATA, 65)?;
            ensure!(
                r[0..2] == [0x39, 0x90]
                    && r[3..5] == [0x33, 0x90]
                    && u16::from_be_bytes([r[12], r[13]]) == cylinders
                    && u16::from_be_bytes([r[14], r[15]]) == 15
                    && r[64] == POISON,
                "RDC {}",
                hex(&r[..16])
            );
            ok(format!("3990/3390, {cylinders} cylinders of 15 tracks"))
        }
        .await
    });
    checks.record("dasd-read-record", {
        async {
            let (cyl, head, rec) = READ_AT;
            let len = RECORD_LEN as u16;
            // The record's cylinder, read only; Read Data (0x06) of one record.
            let de = ccw_dasd::define_extent(
                ccw_dasd::mask::READ_ONLY,
                TrackAddr::new(cyl.into(), 0),
                TrackAddr::new(cyl.into(), 14),
            );
            let lr = ccw_dasd::locate(0, 0x06, 1, TrackAddr::new(cyl.into(), head), rec, len);
            g.put(PARMS, &[de, lr].concat())?;
            g.put(DATA, &vec![POISON; RECORD_LEN + 1])?;
            let irb = g
                .io(
                    &[
                        ccw(0x63, CC, 16, PARMS),
                        ccw(0x47, CC, 16, PARMS + 16),
                        ccw(0x86, 0, len, DATA),
                    ],
                    intparm + 0x31,
                )
                .await?;
            ends_ok(&irb)?;
            let got = g.get(DATA, RECORD_LEN + 1)?;
            let want: Vec<u8> = (0..RECORD_LEN).map(|i| pattern(READ_SEED, i)).collect();
            if let Some(i) = (0..RECORD_LEN).find(|&i| got[i] != want[i]) {
                return Err(format!(
                    "byte {i} of c{cyl}h{head}r{rec} is {:02x}, the host wrote {:02x}",
                    got[i], want[i]
                ));
            }
            ensure!(got[RECORD_LEN] == POISON, "stored past the record");
            ok(format!(
                "c{cyl}h{head}r{rec}: the host's {RECORD_LEN} bytes"
            ))
        }
        .await
    });
}

/// Loads the lane 3390's IPL record chain with QEMU's firmware method through vcss's
/// handlers (module docs): the firmware's STSCH + MSCH enable (ISC 0), then each start with
/// SSCH, its interruption presented at 0xB8, TSCH.
pub(crate) async fn ipl<B: Backend + 'static>(g: &mut Guest<B>, checks: &mut Checks) {
    use ipl_chain::{IPL_LOAD, IPL_PSW, IPL2_ADDR, PAYLOAD_LEN, STAGE_ADDR, ipl_payload};
    let enabled = checks.record("ipl-enable", {
        (|| {
            let (cc, mut s) = g.stsch(GUEST_SCH)?;
            ensure!(cc == 0, "STSCH cc {cc}");
            s[5] |= 0x80;
            g.put(SCHIB, &s)?;
            let cc = cc_of(g.css.msch(&*g.mem, g.sid(), SCHIB), "MSCH")?;
            ensure!(cc == 0, "MSCH cc {cc}");
            ok(format!(
                "0.0.{GUEST_SCH:04x} device 0.0.{:04x}, ISC 0",
                g.devno
            ))
        })()
    });
    if enabled.is_none() {
        return;
    }
    let cr6 = ccw_types::cr6_isc_mask(0);
    let mut driver = PrefetchIpl::new(GUEST_SCH);
    let mut step = driver.begin(&*g.mem).map_err(|e| e.to_string());
    let mut starts = Vec::new();
    let psw = loop {
        let cpa = match step {
            Ok(IplStep::Loaded { psw }) => break Some(psw),
            Ok(IplStep::Start { cpa }) => cpa,
            Err(e) => {
                checks.record::<()>("ipl-method", Err(e));
                break None;
            }
        };
        starts.push(cpa);
        let r = async {
            g.put(ORB, &PrefetchIpl::orb(cpa).emit().into_bytes()[..12])?;
            let cc = cc_of(g.css.ssch(&*g.mem, g.sid(), ORB), "SSCH")?;
            ensure!(cc == 0, "SSCH cc {cc}");
            g.wait_interruption(cr6).await?;
            let code = g.deliver(cr6)?;
            ensure!(
                code.sid.get() == g.sid() as u32,
                "interruption of {:08x}",
                code.sid.get()
            );
            let (cc, irb) = g.tsch()?;
            ensure!(cc == 0, "TSCH cc {cc}");
            let scsw = Scsw::read_from(&irb[..12]).map_err(|e| format!("SCSW: {e}"))?;
            let next = driver.ended(&*g.mem, &scsw).map_err(|e| e.to_string())?;
            Ok((
                next,
                format!("program at {cpa:#x}: SCSW {}", hex(&irb[..12])),
            ))
        }
        .await;
        match checks.record(&format!("ipl-start-{}", starts.len()), r) {
            Some(next) => step = Ok(next),
            None => break None,
        }
    };
    let Some(psw) = psw else { return };
    checks.record("ipl-starts", {
        let want = [0, 8, IPL2_ADDR, STAGE_ADDR];
        if starts == want {
            ok(format!(
                "Read IPL, IPL1's READ behind the search loop, IPL2 ({IPL2_ADDR:#x}), the stage it read ({STAGE_ADDR:#x})"
            ))
        } else {
            Err(format!("starts at {starts:x?}, want {want:x?}"))
        }
    });
    checks.record("ipl-psw", {
        if psw == IPL_PSW {
            ok(hex(&psw))
        } else {
            Err(format!("PSW {} (want {})", hex(&psw), hex(&IPL_PSW)))
        }
    });
    checks.record("ipl-payload", {
        g.get(u64::from(IPL_LOAD), PAYLOAD_LEN).and_then(|got| {
            let want = ipl_payload();
            match (0..PAYLOAD_LEN).find(|&i| got[i] != want[i]) {
                None => ok(format!("{PAYLOAD_LEN} bytes at {IPL_LOAD:#x}")),
                Some(i) => Err(format!(
                    "byte {i} at {IPL_LOAD:#x} is {:02x}, the image holds {:02x}",
                    got[i], want[i]
                )),
            }
        })
    });
    checks.record("ipl-sid-at-b8", {
        g.get(0xB8, 4).and_then(|w| {
            ensure!(w == (g.sid() as u32).to_be_bytes(), "0xb8: {}", hex(&w));
            ok(hex(&w))
        })
    });
}

/// The type of host channel path `chpid` from sysfs (what QEMU reads for vfio-ccw,
/// vcss-reference §6.2).
///
/// The host kernel registers a channel path only when its own store-channel-path-description
/// succeeds; without it (Hercules 3.13 implements no CHSC 0x0002) there is no directory and
/// the path has no description: `None`.
pub(crate) fn sysfs_chpid_type(chpid: u8) -> Result<Option<u8>, String> {
    let dir = format!("/sys/devices/css0/chp0.{chpid:02x}");
    if !std::path::Path::new(&dir).exists() {
        return Ok(None);
    }
    let path = format!("{dir}/type");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let t = text.trim();
    u8::from_str_radix(t.trim_start_matches("0x"), 16)
        .map(Some)
        .map_err(|_| format!("{path}: `{t}`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mock_backend::MockBackend;
    use mock_backend::dasd::{CkdImage, CreateOptions, Model3390, Record, TrackAddr};
    use vcss::machine::Machine;

    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn scratch(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("vfio-guest-vcss-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    /// A guest over mock-backend's `machine` (device 0 passed through with `devno`); the host
    /// describes its CHPIDs when `described` (else as Hercules 3.13's host: no description).
    async fn guest(
        machine: &str,
        dir: &Scratch,
        devno: DevnoMapping,
        described: bool,
    ) -> Guest<MockBackend> {
        let m = Machine::parse(machine, &dir.0.join("m.machine")).unwrap();
        let mem =
            Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEMORY)]).unwrap());
        let backend = Arc::new(
            mock_backend::machine::builder(&m)
                .unwrap()
                .guest_memory(&*mem)
                .build()
                .unwrap(),
        );
        let css = Css::new(backend).unwrap();
        let types = m
            .chpids
            .values()
            .map(|c| (c.chpid, c.ty))
            .collect::<Vec<_>>();
        let ty = move |chpid: u8| {
            types
                .iter()
                .find(|(c, _)| *c == chpid)
                .map(|(_, t)| described.then_some(*t))
                .ok_or_else(|| format!("no CHPID {chpid:02x}"))
        };
        Guest::new(
            css,
            mem,
            SubchannelId::new(0, 0, m.devices[0].sch_no),
            devno,
            &ty,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn bringup_passes_on_the_simulated_virtio_disk_with_either_devno() {
        let dir = scratch("virtio");
        for (map, want) in [
            (DevnoMapping::Host, 0x0005),
            (DevnoMapping::Virtual(0x1234), 0x1234),
        ] {
            let mut g = guest(
                "chpid 00 type=32\n0005 virtio-blk-ccw chpids=00 sectors=131072\n",
                &dir,
                map,
                true,
            )
            .await;
            assert_eq!((g.devno, g.host_devno), (want, 0x0005));
            let mut c = Checks::new("vcss-bringup");
            bringup(&mut g, Expect::lane(Target::VirtioBlk), &mut c).await;
            assert_eq!((c.passed, c.failed), (14, 0), "{}", c.summary());
            g.shutdown().await.unwrap();
        }
    }

    /// A 20-cylinder 3390 as the Hercules lane's host prepares it: the record at `READ_AT`
    /// and the IPL chain on track 0 (R1, R2 over the labels' records, R4 and R5 after R3).
    fn lane_image(dir: &Scratch) -> std::path::PathBuf {
        let path = dir.0.join("lane.3390");
        let opts = CreateOptions {
            cylinders: Some(20),
            volser: Some("LNX001".into()),
        };
        let mut img = CkdImage::create(&path, Model3390::M3, &opts).unwrap();
        let (c, h, r) = records::READ_AT;
        let mut t = img.read_track(TrackAddr::new(c.into(), h)).unwrap();
        let data = (0..records::RECORD_LEN)
            .map(|i| records::pattern(records::READ_SEED, i))
            .collect();
        let [c0, c1] = c.to_be_bytes();
        let [h0, h1] = h.to_be_bytes();
        t.records
            .push(Record::new([c0, c1, h0, h1, r], Vec::new(), data));
        img.write_track(&t).unwrap();
        let mut t0 = img.read_track(TrackAddr::new(0, 0)).unwrap();
        for (r, data) in ipl_chain::ipl_records() {
            match t0.records.iter().position(|x| x.count.id()[4] == r) {
                Some(i) => {
                    let key = t0.records[i].key.clone();
                    t0.records[i] = Record::new([0, 0, 0, 0, r], key, data);
                }
                None => t0
                    .records
                    .push(Record::new([0, 0, 0, 0, r], Vec::new(), data)),
            }
        }
        img.write_track(&t0).unwrap();
        path
    }

    #[tokio::test]
    async fn bringup_and_ipl_pass_on_the_simulated_lane_3390() {
        let dir = scratch("dasd");
        let image = lane_image(&dir);
        let machine = format!(
            "chpid 01 type=11\n0120 3390 chpids=01 image={}\n",
            image.display()
        );
        let mut g = guest(&machine, &dir, "fe.0.0190".parse().unwrap(), false).await;
        let mut c = Checks::new("vcss-bringup");
        bringup(&mut g, Expect::Dasd3390 { cylinders: 20 }, &mut c).await;
        assert_eq!((c.passed, c.failed), (13, 0), "{}", c.summary());
        g.shutdown().await.unwrap();

        let mut g = guest(&machine, &dir, DevnoMapping::Host, false).await;
        let mut c = Checks::new("vcss-ipl");
        ipl(&mut g, &mut c).await;
        // Enable, four starts, then the starts, PSW, payload and SID word.
        assert_eq!((c.passed, c.failed), (9, 0), "{}", c.summary());
        g.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn an_ipl_without_a_chain_fails_its_check() {
        let dir = scratch("nochain");
        let path = dir.0.join("plain.3390");
        let opts = CreateOptions {
            cylinders: Some(1),
            volser: Some("PLAIN1".into()),
        };
        CkdImage::create(&path, Model3390::M3, &opts).unwrap();
        let machine = format!(
            "chpid 01 type=11\n0120 3390 chpids=01 image={}\n",
            path.display()
        );
        let mut g = guest(&machine, &dir, DevnoMapping::Host, false).await;
        let mut c = Checks::new("vcss-ipl");
        ipl(&mut g, &mut c).await;
        assert_eq!((c.passed, c.failed), (1, 1), "{}", c.summary());
        g.shutdown().await.unwrap();
    }
}
