// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The DASD differential check (issue 12): the same ECKD channel programs run on a real 3390
//! (Hercules, through vfio-ccw, in the guest) and on mock-backend's ECKD model over a copy of
//! the same image (on the host, `--features replay`). Each program's answer is one compact line
//!
//! ```text
//! diff <name> cpa=<hex> cnt=<hex> ds=<hex> cs=<hex> sense=<bytes 0-2 hex or -> data=<hash>
//! ```
//!
//! (the final SCSW's CCW address, residual count, device and subchannel status; after a unit
//! check the architected sense bytes 0-2 (s390-io-reference §4.5: byte 0 common, bytes 1-2
//! ECKD); a 64-bit FNV-1a hash of the data area, poisoned before each program). Lines stay under
//! the 3215 console's limit. Programs run in order on one image, writes included, so both sides
//! must see the same image state: in the guest this runs before any other payload touches the
//! disk. xtask compares the two sets of lines (`differential: N identical, M differ`).

use ccw_types::{CcwFlags, CcwFormat, CcwRepr, CommandOrb, DeviceStatus, SubchannelId};
use css_core::{Backend, Css};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest memory the programs use (at guest address 0).
pub(crate) const MEMORY: usize = 1 << 20;
const PROG: u32 = 0x1000;
const SENSE_PROG: u32 = 0x1800;
const PARMS: u32 = 0x2000;
const SENSE_DATA: u32 = 0x3000;
/// The data area: three records of a track and their count fields fit.
const DATA: u32 = 0x10000;
const DATA_LEN: usize = 0x4000;
const POISON: u8 = 0xA5;
/// Record length of `dasdinit -linux` (R1-R12 of 4096 bytes per track).
const BLK: u16 = 4096;
/// Where the lane's host writes a known record before boot (xtask/s390x/dasd_records.rs).
const READ_AT: (u16, u16, u8) = (0, 2, 1);
/// The cylinder the writing programs use (nothing else in the lane touches it before).
const WRITE_CYL: u16 = 3;

mod op {
    pub(super) const SENSE: u8 = 0x04;
    pub(super) const SEEK: u8 = 0x07;
    pub(super) const TIC: u8 = 0x08;
    pub(super) const READ_COUNT: u8 = 0x12;
    pub(super) const READ_CKD: u8 = 0x1E;
    pub(super) const SEARCH_ID_EQ: u8 = 0x31;
    pub(super) const LOCATE: u8 = 0x47;
    pub(super) const DEFINE_EXTENT: u8 = 0x63;
    pub(super) const RDC: u8 = 0x64;
    pub(super) const WRITE_DATA_MT: u8 = 0x85;
    pub(super) const READ_DATA_MT: u8 = 0x86;
    pub(super) const SENSE_ID: u8 = 0xE4;
    /// Locate Record operations.
    pub(super) const LR_WRITE_DATA: u8 = 0x01;
    pub(super) const LR_READ_DATA: u8 = 0x06;
    /// Define Extent file masks (write control).
    pub(super) const MASK_INHIBIT_ALL: u8 = 0x40;
    pub(super) const MASK_UPDATE: u8 = 0x80;
}

/// Bytes a program needs in guest memory before its start: (guest address, bytes).
type Setup = Vec<(u32, Vec<u8>)>;

/// One program: its name, CCWs (at `PROG`) and the parameter/data bytes it needs.
struct Program {
    name: &'static str,
    ccws: Vec<[u8; 8]>,
    /// Written before the start.
    setup: Setup,
    /// Bytes of the data area also shown in hex (identity data: SENSE ID, RDC), 32 a line,
    /// each line an answer of its own (`<name>+<offset>`).
    show: usize,
}

fn ccw(cmd: u8, flags: CcwFlags, count: u16, cda: u32) -> [u8; 8] {
    CcwRepr {
        cmd,
        flags,
        count,
        cda,
    }
    .emit(CcwFormat::Format1)
    .expect("31-bit data addresses")
}

fn cchh(cyl: u16, head: u16) -> [u8; 4] {
    let [a, b] = cyl.to_be_bytes();
    let [h, l] = head.to_be_bytes();
    [a, b, h, l]
}

/// Define Extent: file mask, ECKD global attributes (as Linux's dasd_eckd), tracks
/// (cyl, beg)..=(cyl, end).
fn define_extent(mask: u8, cyl: u16, beg: u16, end: u16) -> Vec<u8> {
    let mut p = vec![0u8; 16];
    p[0] = mask;
    p[1] = 0xC0;
    p[8..12].copy_from_slice(&cchh(cyl, beg));
    p[12..16].copy_from_slice(&cchh(cyl, end));
    p
}

/// Locate Record: count orientation, `op`, `count` records from (cyl, head, rec), transfer
/// length factor `BLK`.
fn locate(op: u8, count: u8, (cyl, head, rec): (u16, u16, u8)) -> Vec<u8> {
    let mut p = vec![0u8; 16];
    p[0] = op;
    p[1] = 0x80;
    p[3] = count;
    p[4..8].copy_from_slice(&cchh(cyl, head));
    p[8..12].copy_from_slice(&cchh(cyl, head));
    p[12] = rec;
    p[14..16].copy_from_slice(&BLK.to_be_bytes());
    p
}

/// Byte `i` of the record the writing programs store: position dependent.
fn written(seed: u8) -> Vec<u8> {
    (0..usize::from(BLK))
        .map(|i| (i as u8).wrapping_mul(13) ^ seed ^ (i >> 8) as u8)
        .collect()
}

/// Define Extent + Locate Record as the first two CCWs (parameters at `PARMS`).
fn domain(mask: u8, extent: (u16, u16, u16), lr: Vec<u8>) -> (Vec<[u8; 8]>, Setup) {
    let cc = CcwFlags::CC;
    (
        vec![
            ccw(op::DEFINE_EXTENT, cc, 16, PARMS),
            ccw(op::LOCATE, cc, 16, PARMS + 16),
        ],
        vec![
            (PARMS, define_extent(mask, extent.0, extent.1, extent.2)),
            (PARMS + 16, lr),
        ],
    )
}

fn read_data(name: &'static str, count: u8, at: (u16, u16, u8), len: u16, sli: bool) -> Program {
    let (mut ccws, setup) = domain(
        op::MASK_INHIBIT_ALL,
        (at.0, 0, 14),
        locate(op::LR_READ_DATA, count, at),
    );
    for k in 0..count {
        let mut f = if sli { CcwFlags::SLI } else { CcwFlags::NONE };
        if k + 1 < count {
            f |= CcwFlags::CC;
        }
        ccws.push(ccw(
            op::READ_DATA_MT,
            f,
            len,
            DATA + u32::from(k) * u32::from(BLK),
        ));
    }
    Program {
        name,
        ccws,
        setup,
        show: 0,
    }
}

/// Seek, Search ID Equal (with the TIC back to it), then `then` (reading after the count of
/// record `at`), as programs without Locate Record orient.
fn search_then(name: &'static str, at: (u16, u16, u8), then: [u8; 8]) -> Program {
    let cc = CcwFlags::CC;
    let (c, h, r) = at;
    let mut seek = vec![0u8, 0];
    seek.extend_from_slice(&cchh(c, h));
    let mut id = cchh(c, h).to_vec();
    id.push(r);
    Program {
        name,
        ccws: vec![
            ccw(op::DEFINE_EXTENT, cc, 16, PARMS),
            ccw(op::SEEK, cc, 6, PARMS + 16),
            ccw(op::SEARCH_ID_EQ, cc, 5, PARMS + 24),
            ccw(op::TIC, CcwFlags::NONE, 0, PROG + 16),
            then,
        ],
        setup: vec![
            (PARMS, define_extent(op::MASK_INHIBIT_ALL, c, 0, 14)),
            (PARMS + 16, seek),
            (PARMS + 24, id),
        ],
        show: 0,
    }
}

fn write_data(name: &'static str, mask: u8, at: (u16, u16, u8), seed: u8) -> Program {
    let (mut ccws, mut setup) = domain(mask, (at.0, 0, 14), locate(op::LR_WRITE_DATA, 1, at));
    ccws.push(ccw(op::WRITE_DATA_MT, CcwFlags::NONE, BLK, DATA));
    setup.push((DATA, written(seed)));
    Program {
        name,
        ccws,
        setup,
        show: 0,
    }
}

/// The programs, in the order both sides run them.
fn programs() -> Vec<Program> {
    let none = CcwFlags::NONE;
    let (c0, h2, _) = READ_AT;
    let w = WRITE_CYL;
    let mut v = vec![
        Program {
            name: "sense-id",
            ccws: vec![ccw(op::SENSE_ID, CcwFlags::SLI, 256, DATA)],
            setup: vec![],
            show: 12,
        },
        Program {
            name: "rdc",
            ccws: vec![ccw(op::RDC, CcwFlags::SLI, 64, DATA)],
            setup: vec![],
            show: 64,
        },
        read_data("read-record", 1, READ_AT, BLK, false),
        read_data("read-3-records-across-tracks", 3, (c0, 5, 12), BLK, false),
        read_data("read-short-count-sli", 1, READ_AT, 100, true),
        read_data("read-short-count", 1, READ_AT, 100, false),
        read_data("read-no-record-found", 1, (c0, h2, 99), BLK, false),
        search_then(
            "search-read-ckd",
            READ_AT,
            ccw(op::READ_CKD, CcwFlags::SLI, 8 + BLK, DATA),
        ),
        search_then(
            "search-read-count",
            READ_AT,
            ccw(op::READ_COUNT, none, 8, DATA),
        ),
    ];
    // Out of extent: the extent holds heads 0-1, the Locate Record seeks head 2.
    let (ccws, setup) = domain(
        op::MASK_INHIBIT_ALL,
        (c0, 0, 1),
        locate(op::LR_READ_DATA, 1, READ_AT),
    );
    let mut ccws = ccws;
    ccws.push(ccw(op::READ_DATA_MT, none, BLK, DATA));
    v.push(Program {
        name: "read-out-of-extent",
        ccws,
        setup,
        show: 0,
    });
    v.extend([
        write_data("write-record", op::MASK_UPDATE, (w, 0, 1), 0x3C),
        read_data("read-written-record", 1, (w, 0, 1), BLK, false),
        // Last, as they meet named Hercules 3.13 defects (a write that goes through).
        write_data("write-inhibited", op::MASK_INHIBIT_ALL, (w, 1, 1), 0x77),
        read_data("read-after-write-inhibited", 1, (w, 1, 1), BLK, false),
    ]);
    v.push(Program {
        name: "define-extent-twice",
        ccws: vec![
            ccw(op::DEFINE_EXTENT, CcwFlags::CC, 16, PARMS),
            ccw(op::DEFINE_EXTENT, none, 16, PARMS),
        ],
        setup: vec![(PARMS, define_extent(op::MASK_INHIBIT_ALL, c0, 0, 14))],
        show: 0,
    });
    v
}

/// Bytes of the identity answers that follow from the control unit's model, a configuration
/// and not behaviour: the simulator presents a 3990 model E9 (3990-6 class: SENSE ID byte 3,
/// RDC byte 2 `e9`, SD facilities, CU type code 0x15), Hercules 3.13's default `3990` a model
/// C2 (RDC facilities `d0000000`, CU type code 0x10, no feature-buffer limits). A difference in
/// these bytes alone is named; any other byte of the same line is not.
#[cfg(any(test, feature = "replay"))]
const CU_MODEL_BYTES: &[(&str, &[usize])] = &[
    ("sense-id", &[3]),
    // RDC: CU model, SD facilities 6-9, CU type code 42, feature buffer limits 51-53,
    // functions/features 54, real CU type code 56, and the 32-bit cylinder count 60-63
    // (Linux's `long_no_cyl`, filled by the newer control units the simulator stands for,
    // reserved on a 3990-2; Linux reads it only when bytes 12-13 say 0xfffe).
    (
        "rdc",
        &[2, 6, 7, 8, 9, 42, 51, 52, 53, 54, 56, 60, 61, 62, 63],
    ),
];

/// Why a difference confined to [`CU_MODEL_BYTES`] is no defect.
#[cfg(any(test, feature = "replay"))]
const CU_MODEL: &str = "control-unit model, a configuration: the simulator is a 3990-E9, \
     Hercules 3.13's default 3990 a model C2";

/// Whether two shown-data lines (`diff <program>+<offset> <hex>`) differ only in bytes that
/// follow from the control unit's model.
#[cfg(any(test, feature = "replay"))]
fn only_cu_model_bytes(name: &str, guest: &str, host: &str) -> bool {
    let Some((program, offset)) = name.split_once('+') else {
        return false;
    };
    let Some((_, bytes)) = CU_MODEL_BYTES.iter().find(|(p, _)| *p == program) else {
        return false;
    };
    let Ok(offset) = offset.parse::<usize>() else {
        return false;
    };
    let hex_of = |l: &str| l.split_whitespace().nth(2).map(str::to_string);
    let (Some(g), Some(h)) = (hex_of(guest), hex_of(host)) else {
        return false;
    };
    if g.len() != h.len() {
        return false;
    }
    g.as_bytes()
        .chunks(2)
        .zip(h.as_bytes().chunks(2))
        .enumerate()
        .all(|(i, (a, b))| a == b || bytes.contains(&(offset + i)))
}

/// The program names whose answers differ because of a named Hercules 3.13 defect (decided in
/// issue 11, see `fixtures.rs`), with the defect.
#[cfg(any(test, feature = "replay"))]
pub(crate) const NAMED: &[(&str, &str)] = &[
    (
        "write-inhibited",
        "Hercules 3.13 writes through a file mask that inhibits all writes",
    ),
    (
        "read-after-write-inhibited",
        "Hercules 3.13 wrote the record a write-inhibiting file mask protects",
    ),
    (
        "define-extent-twice",
        "Hercules 3.13 accepts a second Define Extent in one program",
    ),
];

/// The comparison of the guest's answers with the model's.
#[cfg(any(test, feature = "replay"))]
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Comparison {
    /// Programs whose answers are identical.
    pub(crate) identical: usize,
    /// Differences explained by a named defect: (what differs, the defect).
    pub(crate) named: Vec<(String, &'static str)>,
    /// Differences nobody has decided yet: each fails the lane.
    pub(crate) unnamed: Vec<String>,
}

#[cfg(any(test, feature = "replay"))]
impl Comparison {
    /// The lane's summary line.
    pub(crate) fn summary(&self) -> String {
        format!(
            "differential: {} identical, {} differ ({} named, {} unnamed)",
            self.identical,
            self.named.len() + self.unnamed.len(),
            self.named.len(),
            self.unnamed.len()
        )
    }
}

/// The program name of an answer line (`diff <name> ...`).
#[cfg(any(test, feature = "replay"))]
fn name_of(line: &str) -> Option<&str> {
    line.trim().strip_prefix("diff ")?.split_whitespace().next()
}

/// Compares the guest's answer lines with the model's (`host`), program by program (the model
/// runs every program; a program the guest did not answer is a difference).
#[cfg(any(test, feature = "replay"))]
pub(crate) fn compare(guest: &[String], host: &[String]) -> Comparison {
    let mut c = Comparison::default();
    for h in host {
        let Some(name) = name_of(h) else { continue };
        let g = guest.iter().find(|g| name_of(g) == Some(name));
        match g {
            Some(g) if g.trim() == h.trim() => c.identical += 1,
            _ => {
                let what = format!(
                    "{name}: guest `{}` | model `{}`",
                    g.map_or("(no answer)", |g| g.trim()),
                    h.trim()
                );
                match NAMED.iter().find(|(n, _)| *n == name) {
                    Some((_, why)) => c.named.push((what, why)),
                    None if g.is_some_and(|g| only_cu_model_bytes(name, g, h)) => {
                        c.named.push((what, CU_MODEL))
                    }
                    None => c.unnamed.push(what),
                }
            }
        }
    }
    c
}

/// 64-bit FNV-1a.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs every program on `sch` through `css` (whose backend works on `mem`) and returns one
/// answer line each; an I/O that cannot be run at all is its own line (`error=...`).
pub(crate) async fn run<B: Backend>(
    css: &Css<B>,
    mem: &GuestMemoryMmap,
    sch: SubchannelId,
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, p) in programs().iter().enumerate() {
        match run_one(css, mem, sch, p, i as u32).await {
            Ok(l) => {
                out.push(l);
                let mut data = vec![0u8; p.show];
                if mem
                    .read_slice(&mut data, GuestAddress(u64::from(DATA)))
                    .is_ok()
                {
                    for (k, chunk) in data.chunks(32).enumerate() {
                        out.push(format!("diff {}+{} {}", p.name, k * 32, hex(chunk)));
                    }
                }
            }
            Err(e) => out.push(format!("diff {} error={}", p.name, e.replace(' ', "_"))),
        }
    }
    out
}

async fn run_one<B: Backend>(
    css: &Css<B>,
    mem: &GuestMemoryMmap,
    sch: SubchannelId,
    p: &Program,
    n: u32,
) -> Result<String, String> {
    let w = |addr: u32, b: &[u8]| {
        mem.write_slice(b, GuestAddress(u64::from(addr)))
            .map_err(|e| e.to_string())
    };
    w(DATA, &[POISON; DATA_LEN])?;
    for (addr, b) in &p.setup {
        w(*addr, b)?;
    }
    let prog: Vec<u8> = p.ccws.iter().flatten().copied().collect();
    w(PROG, &prog)?;
    let sub = css.open(sch).await.map_err(|e| e.to_string())?;
    let r = async {
        let done = sub
            .submit(&CommandOrb::new(0xD1F0 + n, PROG).emit(), mem)
            .await
            .map_err(|e| e.to_string())?;
        let s = done.irb.scsw;
        let sense = if s.device_status().contains(DeviceStatus::UNIT_CHECK) {
            let concurrent = done
                .irb
                .concurrent_sense_lenient()
                .filter(|c| c.len() >= 3)
                .map(|c| c[..3].to_vec());
            match concurrent {
                Some(c) => hex(&c),
                None => {
                    w(SENSE_DATA, &[0; 32])?;
                    w(SENSE_PROG, &ccw(op::SENSE, CcwFlags::SLI, 32, SENSE_DATA))?;
                    sub.submit(&CommandOrb::new(0x5E45, SENSE_PROG).emit(), mem)
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut b = [0u8; 3];
                    mem.read_slice(&mut b, GuestAddress(u64::from(SENSE_DATA)))
                        .map_err(|e| e.to_string())?;
                    hex(&b)
                }
            }
        } else {
            "-".to_string()
        };
        let mut data = vec![0u8; DATA_LEN];
        mem.read_slice(&mut data, GuestAddress(u64::from(DATA)))
            .map_err(|e| e.to_string())?;
        // Identity data is shown byte by byte on lines of its own instead of hashed.
        let data = if p.show > 0 {
            "shown".to_string()
        } else {
            format!("{:016x}", fnv(&data))
        };
        Ok::<_, String>(format!(
            "diff {} cpa={:08x} cnt={:04x} ds={:02x} cs={:02x} sense={sense} data={data}",
            p.name,
            s.cpa.get(),
            s.count.get(),
            s.dstat,
            s.cstat,
        ))
    }
    .await;
    let closed = sub.close().await.map_err(|e| e.to_string());
    let line = r?;
    closed?;
    Ok(line)
}

/// The host side: the same programs on mock-backend's ECKD model over `image` (a copy of the
/// guest's disk as it was before boot), at the device number of the lane's DASD.
#[cfg(feature = "replay")]
pub(crate) async fn replay(image: &std::path::Path, devno: u16) -> Result<Vec<String>, String> {
    use mock_backend::MockBackend;
    use mock_backend::dasd::{CkdImage, Eckd};
    use std::sync::Arc;
    let mem = Arc::new(
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEMORY)]).map_err(|e| e.to_string())?,
    );
    let ckd = CkdImage::open(image, false).map_err(|e| format!("{}: {e}", image.display()))?;
    let backend = MockBackend::builder()
        .guest_memory(&*mem)
        .subchannel(devno, Box::new(Eckd::new(ckd, devno)))
        .build()
        .map_err(|e| e.to_string())?;
    let sch = backend
        .subchannel_ids()
        .first()
        .copied()
        .ok_or("no subchannel")?;
    let css = Css::new(Arc::new(backend)).map_err(|e| e.to_string())?;
    css.probe().await.map_err(|e| e.to_string())?;
    Ok(run(&css, &mem, sch).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_counts_identical_named_and_unnamed() {
        let l = |s: &str| s.to_string();
        let host = [
            l("diff rdc cpa=1 ds=0c data=aa"),
            l("diff write-inhibited cpa=2 ds=0e data=bb"),
            l("diff read-record cpa=3 ds=0c data=cc"),
            l("diff search-read-ckd cpa=4 ds=0c data=dd"),
        ];
        let guest = [
            l("diff rdc cpa=1 ds=0c data=aa\r"),
            l("diff write-inhibited cpa=2 ds=0c data=bb"),
            l("diff read-record cpa=3 ds=0c data=ff"),
        ];
        let c = compare(&guest, &host);
        assert_eq!(c.identical, 1);
        assert_eq!(c.named.len(), 1);
        assert!(c.named[0].1.contains("file mask"));
        assert_eq!(c.unnamed.len(), 2, "{:?}", c.unnamed);
        assert!(c.unnamed[1].contains("(no answer)"));
        assert_eq!(
            c.summary(),
            "differential: 1 identical, 3 differ (1 named, 2 unnamed)"
        );
    }

    #[test]
    fn control_unit_model_bytes_alone_are_named() {
        let l = |s: &str| s.to_string();
        let host = [
            l("diff sense-id+0 ff3990e93390020040fa0100"),
            l("diff rdc+0 3990e93390021000003020260014000fe000e5a2059402221309067400000000"),
        ];
        let guest = [
            l("diff sense-id+0 ff3990c23390020040fa0100"),
            // RDC: CU model and facilities differ (named), and the cylinders (byte 13) too.
            l("diff rdc+0 3990c2339002d000000020260015000fe000e5a2059402221309067400000000"),
        ];
        let c = compare(&guest, &host);
        assert_eq!(c.named.len(), 1, "{c:?}");
        assert_eq!(c.named[0].1, CU_MODEL);
        assert_eq!(c.unnamed.len(), 1, "{c:?}");
        assert!(c.unnamed[0].starts_with("rdc+0"));
        assert!(!only_cu_model_bytes(
            "read-record",
            "diff read-record a",
            "diff read-record b"
        ));
    }

    #[test]
    fn lines_fit_the_console_and_names_are_unique() {
        let ps = programs();
        let mut names: Vec<&str> = ps.iter().map(|p| p.name).collect();
        let longest = "diff  cpa=00000000 cnt=0000 ds=00 cs=00 sense=000000 data=0000000000000000"
            .len()
            + names.iter().map(|n| n.len()).max().unwrap_or(0);
        assert!(longest < 120, "{longest}");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ps.len());
        for (n, _) in NAMED {
            assert!(names.contains(n), "{n}");
        }
        // Every program fits below the sense program and its parameters below the data.
        for p in &ps {
            assert!(PROG + 8 * p.ccws.len() as u32 <= SENSE_PROG, "{}", p.name);
            for (a, b) in &p.setup {
                assert!(
                    *a as usize + b.len() <= DATA as usize + DATA_LEN,
                    "{}",
                    p.name
                );
            }
        }
    }

    /// The whole differential on the simulator over an image made by Hercules' `dasdinit
    /// -linux` (as the lane's): every program answers, reads see the record written before,
    /// and the file mask protects. Skips without Hercules' tools unless CCW_REQUIRE_HERCULES.
    #[cfg(feature = "replay")]
    #[tokio::test]
    async fn the_replay_answers_every_program() {
        use std::process::Command;
        let dir = std::env::temp_dir().join(format!("vfio-guest-diff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = Command::new("dasdinit")
            .current_dir(&dir)
            .args(["-linux", "d.3390", "3390", "LNX001", "5"])
            .output();
        if !made.as_ref().is_ok_and(|o| o.status.success()) {
            let msg = "Hercules' dasdinit not found: `cargo xtask host-tools install hercules`";
            assert!(std::env::var_os("CCW_REQUIRE_HERCULES").is_none(), "{msg}");
            eprintln!("SKIPPED: {msg}");
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        let lines = replay(&dir.join("d.3390"), 0x0120).await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let shown: usize = programs().iter().map(|p| p.show.div_ceil(32)).sum();
        assert_eq!(lines.len(), programs().len() + shown);
        let get = |n: &str| {
            lines
                .iter()
                .find(|l| l.starts_with(&format!("diff {n} ")))
                .unwrap()
                .clone()
        };
        for ok in [
            "sense-id",
            "rdc",
            "read-record",
            "read-3-records-across-tracks",
            "write-record",
        ] {
            assert!(get(ok).contains("ds=0c cs=00 sense=-"), "{}", get(ok));
        }
        assert!(
            get("read-short-count").contains("cs=40"),
            "{}",
            get("read-short-count")
        );
        assert!(
            get("read-no-record-found").contains("ds=0e"),
            "{}",
            get("read-no-record-found")
        );
        assert!(
            get("write-inhibited").contains("sense=80"),
            "{}",
            get("write-inhibited")
        );
        assert!(
            get("define-extent-twice").contains("sense=80"),
            "{}",
            get("define-extent-twice")
        );
        // The written record reads back; the inhibited one still holds what dasdinit wrote.
        let data = |n: &str| get(n).rsplit_once("data=").unwrap().1.to_string();
        assert_ne!(
            data("read-written-record"),
            data("read-after-write-inhibited")
        );
        assert!(!lines.iter().any(|l| l.contains("error=")), "{lines:?}");
    }
}
