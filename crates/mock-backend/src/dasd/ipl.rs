// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A tiny IPL record chain on cylinder 0 head 0, the shape a loader such as zipl writes:
//!
//! | record | key | data |
//! |---|---|---|
//! | R1 `IPL1` | 4 bytes | 24 bytes: the PSW, format-0 READ DATA of IPL2 (CC, SLI) to [`IplChain::IPL2_ADDR`], TIC to it |
//! | R2 `IPL2` | 4 bytes | a format-0 program: SEEK 0/0, SEARCH ID EQUAL R4, TIC back to the search, READ DATA R4 to [`IplChain::STAGE3_ADDR`] (CC), TIC to it; then its seek and search arguments |
//! | R3 `VOL1` | 4 bytes | the volume label (kept as the image had it) |
//! | R4 | none | the next stage, read by IPL2: SEEK 0/0, SEARCH ID EQUAL R5, TIC back, READ DATA R5 to the load address (no chaining); then its arguments |
//! | R5 | none | the payload |
//!
//! IPL2 ends in a READ → TIC pair: it reads the CCWs it then branches to, which a channel that
//! fetches CCWs as it goes runs in one start, and which vfio-ccw (it copies the program
//! before starting it) cannot: QEMU's firmware runs such a pair as two starts.
//!
//! ```
//! use mock_backend::dasd::IplChain;
//! let chain = IplChain::new(0x0008_0000_8001_0000u64.to_be_bytes(), 0x1_0000, vec![0xC1; 64])?;
//! let recs = chain.records();
//! assert_eq!(recs.len(), 4); // R1, R2, R4, R5
//! assert_eq!(&recs[0].data[8..16], &[0x06, 0x00, 0x20, 0x00, 0x60, 0x00, 0x00, 0x50]);
//! // IPL2 searches for R4 with the argument after its CCWs.
//! assert_eq!(&recs[1].data[8..16], &[0x31, 0x00, 0x20, 0x48, 0x40, 0x00, 0x00, 0x05]);
//! assert_eq!(&recs[1].data[0x48..0x4D], &[0, 0, 0, 0, 4]);
//! # Ok::<(), mock_backend::dasd::IplChainError>(())
//! ```

use ccw_types::eckd::{TrackAddr, ascii_to_ebcdic};

use super::image::{CkdImage, ImageError};
use super::track::Record;

/// Format-0 CCW flags: command chaining, suppress incorrect length.
const CC: u8 = 0x40;
const SLI: u8 = 0x20;

fn ccw0(cmd: u8, addr: u32, flags: u8, count: u16) -> [u8; 8] {
    let a = addr.to_be_bytes();
    let c = count.to_be_bytes();
    [cmd, a[1], a[2], a[3], flags, 0, c[0], c[1]]
}

/// SEEK 0/0, SEARCH ID EQUAL record `rec` of cylinder 0 head 0, TIC back to the search, READ
/// DATA of `len` bytes to `to` (with `read_flags`), then `then` (a TIC, or nothing), placed at
/// `at`; the arguments follow the CCWs at `at + 0x40` (seek, 6 bytes) and `at + 0x48`
/// (search, 5 bytes).
fn read_program(at: u32, rec: u8, to: u32, len: u16, read_flags: u8, then: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(0x50);
    p.extend_from_slice(&ccw0(0x07, at + 0x40, CC, 6));
    p.extend_from_slice(&ccw0(0x31, at + 0x48, CC, 5));
    p.extend_from_slice(&ccw0(0x08, at + 8, 0, 0));
    p.extend_from_slice(&ccw0(0x06, to, read_flags, len));
    p.extend_from_slice(then);
    p.resize(0x40, 0);
    p.extend_from_slice(&[0; 6]); // seek: bin 0, cylinder 0, head 0
    p.resize(0x48, 0);
    p.extend_from_slice(&[0, 0, 0, 0, rec]); // search: CCHHR
    p.resize(0x50, 0);
    p
}

/// The chain cannot be expressed in format-0 CCWs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IplChainError {
    /// The load address is not below 16 MiB or overlaps 0-0x3FFF (lowcore and the IPL
    /// programs).
    #[error("IPL load address {0:#x} must lie in 0x4000..0x1000000")]
    LoadAddress(u32),
    /// The payload does not fit one CCW count (a 3390 track holds less still: installing a
    /// payload longer than a track fails with the image's error).
    #[error("IPL payload of {0} bytes is longer than one CCW can read (65535)")]
    PayloadTooLong(usize),
}

/// A PSW and a payload, laid down as the IPL records of cylinder 0 head 0 (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IplChain {
    psw: [u8; 8],
    load_addr: u32,
    payload: Vec<u8>,
    len: u16,
}

impl IplChain {
    /// Where IPL1's READ DATA puts IPL2.
    pub const IPL2_ADDR: u32 = 0x2000;
    /// Where IPL2's READ DATA puts the next stage (R4).
    pub const STAGE3_ADDR: u32 = 0x3000;
    /// Length of IPL2 and of R4 (four CCWs, or five, and the arguments).
    const PROGRAM_LEN: u16 = 0x50;

    /// A chain loading `payload` at `load_addr` (in 0x4000..16 MiB, past the IPL programs)
    /// and leaving `psw` at 0.
    pub fn new(psw: [u8; 8], load_addr: u32, payload: Vec<u8>) -> Result<Self, IplChainError> {
        let len = u16::try_from(payload.len())
            .map_err(|_| IplChainError::PayloadTooLong(payload.len()))?;
        let end = u64::from(load_addr) + u64::from(len);
        if load_addr < 0x4000 || end > 0x100_0000 {
            return Err(IplChainError::LoadAddress(load_addr));
        }
        Ok(Self {
            psw,
            load_addr,
            payload,
            len,
        })
    }

    /// IPL1, IPL2, R4 and R5 with their cylinder-0 head-0 ids (R3, the volume label, is the
    /// image's).
    pub fn records(&self) -> Vec<Record> {
        let key = |s: &str| s.bytes().map(ascii_to_ebcdic).collect::<Vec<u8>>();
        let mut ipl1 = self.psw.to_vec();
        ipl1.extend_from_slice(&ccw0(0x06, Self::IPL2_ADDR, CC | SLI, Self::PROGRAM_LEN));
        ipl1.extend_from_slice(&ccw0(0x08, Self::IPL2_ADDR, 0, 0));
        let ipl2 = read_program(
            Self::IPL2_ADDR,
            4,
            Self::STAGE3_ADDR,
            Self::PROGRAM_LEN,
            CC | SLI,
            &ccw0(0x08, Self::STAGE3_ADDR, 0, 0),
        );
        let stage3 = read_program(Self::STAGE3_ADDR, 5, self.load_addr, self.len, SLI, &[]);
        vec![
            Record::new([0, 0, 0, 0, 1], key("IPL1"), ipl1),
            Record::new([0, 0, 0, 0, 2], key("IPL2"), ipl2),
            Record::new([0, 0, 0, 0, 4], Vec::new(), stage3),
            Record::new([0, 0, 0, 0, 5], Vec::new(), self.payload.clone()),
        ]
    }

    /// Writes the chain onto cylinder 0 head 0 of `image`: R1 and R2 are replaced, a volume
    /// label in R3 is kept, R4 and R5 follow it and any later records are dropped. Without
    /// an R3 an empty one is written so that the record numbers stay consecutive.
    pub fn install(&self, image: &mut CkdImage) -> Result<(), ImageError> {
        let t0 = TrackAddr::new(0, 0);
        let mut track = image.read_track(t0)?;
        let r0 = track.records.first().cloned();
        let r3 = track
            .records
            .iter()
            .find(|r| r.count.id() == [0, 0, 0, 0, 3])
            .cloned()
            .unwrap_or_else(|| Record::new([0, 0, 0, 0, 3], Vec::new(), Vec::new()));
        let recs = self.records();
        track.records = r0.into_iter().collect();
        track.records.extend_from_slice(&recs[..2]);
        track.records.push(r3);
        track.records.extend_from_slice(&recs[2..]);
        image.write_track(&track)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dasd::image::tests::Scratch;
    use crate::dasd::{CreateOptions, ImageErrorKind, Model3390};

    #[test]
    fn chains_that_cannot_be_loaded_are_refused() {
        let psw = [0; 8];
        assert_eq!(
            IplChain::new(psw, 0x1000, vec![0; 8]),
            Err(IplChainError::LoadAddress(0x1000))
        );
        assert_eq!(
            IplChain::new(psw, 0xFF_FFF0, vec![0; 32]),
            Err(IplChainError::LoadAddress(0xFF_FFF0))
        );
        assert_eq!(
            IplChain::new(psw, 0x4000, vec![0; 65536]),
            Err(IplChainError::PayloadTooLong(65536))
        );
        // Fits a CCW, not a track: the image says so and keeps its track 0.
        let dir = Scratch::new("ipl-long");
        let opts = CreateOptions {
            cylinders: Some(1),
            volser: Some("LONG01".into()),
        };
        let mut img = CkdImage::create(&dir.file("l.3390"), Model3390::M1, &opts).unwrap();
        let before = img.read_track(TrackAddr::new(0, 0)).unwrap();
        let chain = IplChain::new(psw, 0x4000, vec![0; 60_000]).unwrap();
        let e = chain.install(&mut img).unwrap_err();
        assert_eq!(e.kind(), ImageErrorKind::InvalidTrack, "{e}");
        assert_eq!(img.read_track(TrackAddr::new(0, 0)).unwrap(), before);
    }
}
