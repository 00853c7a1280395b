// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The fast path (see the parent module): one pass over the ORB's segment, handing over to
//! the general passes at a TIC or a data error.

use super::*;

/// How the fast path ended.
#[derive(Debug)]
pub(super) enum Fast {
    /// The program is translated.
    Done(ControlArea),
    /// The general path takes over (see [`Translator::fast`]).
    Resume(Resume),
}

/// Where the general path takes over from the fast path.
#[derive(Debug)]
pub(super) struct Resume {
    /// CCWs of the ORB's segment the fast path copied, parsed and checked the data of.
    pub(super) at: usize,
    /// The data chaining into CCW `at`.
    pub(super) incoming: Option<Exec>,
    /// The data error of CCW `at`, reported once discovery has found no earlier error.
    pub(super) data_err: Option<TranslateError>,
}

impl Translator {
    /// The fast path: one pass over the ORB's chain segment that copies each CCW once,
    /// parses it (`parse_ccw`), checks and records its data pieces (`ccw_data`) and appends
    /// its host CCW; at the end of a segment without TICs, it pins the pieces outside the
    /// mapper's premapped span, in order, and allocates and writes the control area once.
    ///
    /// The mapper is not called until the whole program is known. When the pass meets
    /// what only the general path handles, a TIC or a data error (after which the general
    /// path goes on discovering), it hands over ([`Fast::Resume`]): the CCWs so far stay
    /// in `entries` with their data recorded, the CCW it stopped at stays in `snap`, so
    /// the general path reads no control block a second time. An error the general path
    /// would report before pinning anything (a CCW it cannot fetch or parse, a segment too
    /// long) is returned as it would report it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fast<M: GuestMemory + ?Sized>(
        &mut self,
        guest: &CommandOrb,
        mem: &M,
        mapper: &dyn Mapper,
        pre: Option<Premapped>,
        bufs: &mut Buffers,
        snap: &mut Snapshot,
        data_snap: &mut Snapshot,
    ) -> Result<Fast, TranslateError> {
        let cpa = guest.cpa as u64;
        let max_addr = match guest.format {
            CcwFormat::Format0 => MAX_24,
            CcwFormat::Format1 => MAX_31,
        };
        let max_len = self.limits.max_segment_len();
        self.pending.clear();
        self.pin_req.clear();
        let (mut addr, mut incoming) = (cpa, None);
        let resume = |at: usize, incoming, data_err| {
            Ok(Fast::Resume(Resume {
                at,
                incoming,
                data_err,
            }))
        };
        if cpa % 8 != 0 || cpa > max_addr || self.limits.max_segments == 0 {
            return resume(0, None, None);
        }
        data_snap.reset();
        self.image.clear();
        let window_end = cpa.saturating_add(8 * max_len as u64);
        self.raw.clear();
        loop {
            let n = self.raw.len();
            // As `discover` checks and reports for a CCW of the ORB's segment before any TIC.
            let at = |e: TranslateError| Err(e.at(n, addr));
            if n >= max_len {
                return at(K::SegmentTooLong { limit: max_len }.into());
            }
            if addr + 8 > max_addr + 1 {
                return at(K::AddressRange {
                    what: Block::Ccw,
                    addr,
                    len: 8,
                    max: max_addr,
                }
                .into());
            }
            let Some(raw) = snap.fetch_n::<_, 8>(mem, addr, window_end) else {
                return at(K::GuestFault {
                    what: Block::Ccw,
                    addr,
                    len: 8,
                }
                .into());
            };
            let e = match parse_ccw(raw, addr, guest, incoming) {
                Ok(e) if matches!(e.host, HostCda::Tic(_)) => {
                    self.rebuild_entries(guest)?;
                    return resume(n, incoming, None);
                }
                Ok(e) => e,
                Err(e) => return at(e),
            };
            // Which CCWs move data: as in `data`.
            let skip = e.flags.contains(CcwFlags::SKIP) && e.exec.class.honours_skip();
            let no_data = e.count == 0 || e.exec.nop || (skip && !e.flags.contains(CcwFlags::IDA));
            let (flags, idal) = if no_data {
                (e.flags.difference(CcwFlags::IDA), 0)
            } else {
                let first = self.idaws.len();
                let sink = Record {
                    pre,
                    pins: &mut bufs.pins,
                    pending: &mut self.pending,
                    pin_req: &mut self.pin_req,
                    ccw: n,
                };
                let checked = Self::ccw_data(
                    self.limits.max_idaws,
                    &mut self.idal,
                    &e,
                    guest,
                    mem,
                    data_snap,
                    skip,
                    &mut self.idaws,
                    sink,
                );
                if let Err(err) = checked {
                    // The general path reports it once it has discovered the rest.
                    self.rebuild_entries(guest)?;
                    return resume(n, incoming, Some(err));
                }
                if skip {
                    (e.flags.difference(CcwFlags::IDA), 0)
                } else {
                    // The IDAL's offset inside the area, completed once it is known.
                    (e.flags | CcwFlags::IDA, 8 * first as u32)
                }
            };
            self.raw.push(raw);
            let ccw = Ccw1 {
                cmd: e.cmd,
                flags: flags.bits(),
                count: U16::new(e.count),
                cda: U32::new(idal),
            };
            self.image.extend_from_slice(&ccw.into_bytes());
            if !e.flags.intersects(CcwFlags::CC | CcwFlags::CD) {
                break;
            }
            incoming = e.passes();
            addr += 8;
        }
        // One segment without TICs, every check passed.
        self.pin_pending(mapper, bufs, cpa)?;
        let n = self.raw.len();
        bufs.segments.push(Segment {
            guest: cpa,
            len: n,
            host_off: 0,
        });
        // The layout of `emit` for one segment: CCWs, a zero doubleword, the IDAL.
        self.image.extend_from_slice(&[0; 8]);
        let idal_off = self.image.len();
        let total = idal_off + 8 * self.idaws.len();
        let area = alloc_area(mapper, total)?;
        let idal_base = (area.addr + idal_off as u64) as u32;
        for ccw in self.image[..8 * n].chunks_exact_mut(8) {
            if ccw[1] & CcwFlags::IDA.bits() != 0 {
                let rel = u32::from_be_bytes([ccw[4], ccw[5], ccw[6], ccw[7]]);
                // Below 2 GiB: checked by `alloc_area`.
                ccw[4..].copy_from_slice(&(idal_base + rel).to_be_bytes());
            }
        }
        for idaw in &self.idaws {
            self.image.extend_from_slice(&idaw.to_be_bytes());
        }
        debug_assert_eq!(self.image.len(), total);
        write_area(mapper, area, &self.image).map(Fast::Done)
    }

    /// The general path's entries for the CCWs the fast path did, from the fast path's own
    /// copies (`raw`, parsed again: the same bytes give the same entry) and its host CCWs
    /// (which tell where each IDAL starts); the general path goes on from them.
    pub(super) fn rebuild_entries(&mut self, guest: &CommandOrb) -> Result<(), TranslateError> {
        let mut incoming = None;
        for (i, (raw, host)) in self.raw.iter().zip(self.image.chunks_exact(8)).enumerate() {
            let addr = guest.cpa as u64 + 8 * i as u64;
            let mut e = parse_ccw(*raw, addr, guest, incoming).map_err(|e| e.at(i, addr))?;
            if host[1] & CcwFlags::IDA.bits() != 0 {
                let rel = u32::from_be_bytes([host[4], host[5], host[6], host[7]]);
                e.host = HostCda::Idal(rel as usize / 8);
            }
            incoming = e.passes();
            self.entries.push(e);
        }
        Ok(())
    }
}
