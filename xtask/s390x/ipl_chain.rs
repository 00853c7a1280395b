// SPDX-License-Identifier: Apache-2.0 OR MIT

// The tiny IPL record chain on the Hercules lane's 3390, both sides agree on: included by the
// host's Hercules lane (xtask/src/s390x/hercules.rs writes it into the image before boot) and
// by the guest's runner (crates/vfio-guest, `vcss-ipl` loads it through vcss over vfio-ccw and
// checks what arrived). The chain has the shape a loader such as zipl writes (vcss-reference
// §5.2) and keeps the record lengths `dasdinit -linux` gave track 0 (R1 24, R2 144, R4 and R5
// 4096 bytes), so the volume's layout, its label (R3) and every tool that reads it stay as they
// were:
//
// | record | data |
// |---|---|
// | R1 `IPL1` | the PSW, format-0 READ DATA of IPL2 (CC, SLI) to `IPL2_ADDR`, TIC to it |
// | R2 `IPL2` | SEEK 0/0, SEARCH ID EQUAL R4, TIC back to the search, READ DATA R4 to `STAGE_ADDR` (CC, SLI), TIC to it; the seek and search arguments at +0x40 and +0x48 |
// | R4 | the next stage: SEEK 0/0, SEARCH ID EQUAL R5, TIC back, READ DATA R5 to `IPL_LOAD` (no chaining); its arguments |
// | R5 | the payload: `ipl_payload()` |
//
// IPL2 ends in a READ -> TIC pair (it reads the CCWs it then branches to): one start on a
// channel that fetches CCWs as it goes, two starts behind vfio-ccw, which copies the program
// before it starts it.

/// The PSW IPL1 leaves at 0: ESA/390 format (mask bit 12), 31-bit, address `IPL_LOAD`.
pub(crate) const IPL_PSW: [u8; 8] = [0x00, 0x08, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00];
/// Where the payload (R5) is loaded.
pub(crate) const IPL_LOAD: u32 = 0x1_0000;
/// Where IPL1's READ puts IPL2.
pub(crate) const IPL2_ADDR: u32 = 0x2000;
/// Where IPL2's READ puts the next stage (R4).
pub(crate) const STAGE_ADDR: u32 = 0x3000;
/// Data lengths of R1, R2, R4 and R5 of track 0 as `dasdinit -linux` formats it.
pub(crate) const IPL1_LEN: usize = 24;
pub(crate) const IPL2_LEN: usize = 144;
pub(crate) const STAGE_LEN: usize = 4096;
pub(crate) const PAYLOAD_LEN: usize = 4096;

/// A format-0 CCW.
fn ipl_ccw0(cmd: u8, addr: u32, flags: u8, count: u16) -> [u8; 8] {
    let a = addr.to_be_bytes();
    let c = count.to_be_bytes();
    [cmd, a[1], a[2], a[3], flags, 0, c[0], c[1]]
}

/// SEEK 0/0, SEARCH ID EQUAL record `rec` of cylinder 0 head 0, TIC back to the search, READ
/// DATA of `len` bytes to `to` with `flags`, then `then`, placed at `at`, padded to `size`;
/// the seek argument at `at + 0x40`, the search argument at `at + 0x48`.
fn ipl_read_program(
    at: u32,
    rec: u8,
    to: u32,
    len: u16,
    flags: u8,
    then: &[u8],
    size: usize,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(size);
    p.extend_from_slice(&ipl_ccw0(0x07, at + 0x40, 0x40, 6));
    p.extend_from_slice(&ipl_ccw0(0x31, at + 0x48, 0x40, 5));
    p.extend_from_slice(&ipl_ccw0(0x08, at + 8, 0, 0));
    p.extend_from_slice(&ipl_ccw0(0x06, to, flags, len));
    p.extend_from_slice(then);
    p.resize(0x48, 0); // seek argument at 0x40: bin 0, cylinder 0, head 0
    p.extend_from_slice(&[0, 0, 0, 0, rec]); // search argument: CCHHR
    p.resize(size, 0);
    p
}

/// Byte `i` of the payload: position dependent, so a misplaced transfer cannot match.
pub(crate) fn ipl_payload() -> Vec<u8> {
    (0..PAYLOAD_LEN)
        .map(|i| ((i as u32).wrapping_mul(0x0101_0F1D) >> 16) as u8 ^ 0x3C ^ (i >> 8) as u8)
        .collect()
}

/// The data of R1, R2, R4 and R5 of cylinder 0 head 0: (record number, data).
pub(crate) fn ipl_records() -> [(u8, Vec<u8>); 4] {
    const CC_SLI: u8 = 0x60;
    let mut ipl1 = IPL_PSW.to_vec();
    ipl1.extend_from_slice(&ipl_ccw0(0x06, IPL2_ADDR, CC_SLI, IPL2_LEN as u16));
    ipl1.extend_from_slice(&ipl_ccw0(0x08, IPL2_ADDR, 0, 0));
    debug_assert_eq!(ipl1.len(), IPL1_LEN);
    let ipl2 = ipl_read_program(
        IPL2_ADDR,
        4,
        STAGE_ADDR,
        STAGE_LEN as u16,
        CC_SLI,
        &ipl_ccw0(0x08, STAGE_ADDR, 0, 0),
        IPL2_LEN,
    );
    let stage = ipl_read_program(
        STAGE_ADDR,
        5,
        IPL_LOAD,
        PAYLOAD_LEN as u16,
        0x20,
        &[],
        STAGE_LEN,
    );
    [(1, ipl1), (2, ipl2), (4, stage), (5, ipl_payload())]
}
