// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Guest control bytes copied out of guest memory once, and the guest spans verified per pass.

use super::*;

/// Guest control bytes copied out of guest memory by one read and served to the control
/// blocks inside them: every CCW and IDAW is parsed from exactly one copy, never from live
/// guest memory and never from two reads. Refills never cross a 4 KiB page nor the `end`
/// the caller allows (the segment window for CCWs); when the read-ahead is not backed by
/// guest memory, exactly the requested bytes are read instead.
///
/// It also remembers, for one pass, the guest spans already verified readable and writable
/// (see [`Snapshot::verify`]), so pinning 4 KiB pieces of one buffer checks guest memory once
/// per window instead of once per piece.
pub(super) struct Snapshot {
    pub(super) buf: [u8; SNAPSHOT_MAX],
    pub(super) addr: u64,
    pub(super) len: usize,
    pub(super) next: usize,
    /// `[start, end)` verified readable in this pass (empty: `(0, 0)`).
    pub(super) ok_read: (u64, u64),
    /// `[start, end)` verified writable in this pass.
    pub(super) ok_write: (u64, u64),
}

/// The guest span [`Snapshot::verify`] tries on a miss: the aligned 1 MiB around the piece.
const VERIFY_WINDOW: u64 = 1 << 20;

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("addr", &self.addr)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// Boxed once per translator: the buffers are zeroed here only, not per translation.
    /// The first serves CCWs, the second IDALs and the guest-memory checks of data, so the
    /// fast path, which reads both in one pass, does not make them evict each other.
    pub(super) fn boxed_pair() -> Box<[Self; 2]> {
        Box::new([Self::new(), Self::new()])
    }

    pub(super) fn new() -> Self {
        Self {
            buf: [0; SNAPSHOT_MAX],
            addr: 0,
            len: 0,
            next: SNAPSHOT_MIN,
            ok_read: (0, 0),
            ok_write: (0, 0),
        }
    }

    /// Forgets every byte held: a pass starts from guest memory, never from bytes copied by
    /// an earlier pass or translation.
    pub(super) fn reset(&mut self) {
        self.addr = 0;
        self.len = 0;
        self.next = SNAPSHOT_MIN;
        self.ok_read = (0, 0);
        self.ok_write = (0, 0);
    }

    /// Whether guest memory backs `[gpa, gpa + len)` (`len` at least 1) with `perm`. A hit
    /// in the span verified last costs two compares; a miss verifies the aligned
    /// [`VERIFY_WINDOW`] around the range in one `check_range` (kept when it holds), else
    /// exactly the range. Every answer comes from `check_range` of a span containing the
    /// range, within one pass over one `&M`, which cannot change under it.
    #[inline]
    pub(super) fn verify<M: GuestMemory + ?Sized>(
        &mut self,
        mem: &M,
        gpa: u64,
        len: u64,
        perm: Permissions,
    ) -> bool {
        let span = if perm == Permissions::Write {
            &self.ok_write
        } else {
            &self.ok_read
        };
        match gpa.checked_add(len) {
            Some(end) if gpa >= span.0 && end <= span.1 => true,
            _ => self.verify_miss(mem, gpa, len, perm),
        }
    }

    /// [`Self::verify`] outside the span verified last.
    #[inline(never)]
    pub(super) fn verify_miss<M: GuestMemory + ?Sized>(
        &mut self,
        mem: &M,
        gpa: u64,
        len: u64,
        perm: Permissions,
    ) -> bool {
        let span = if perm == Permissions::Write {
            &mut self.ok_write
        } else {
            &mut self.ok_read
        };
        let Some(end) = gpa.checked_add(len) else {
            return false;
        };
        let lo = gpa & !(VERIFY_WINDOW - 1);
        // No let chains: the workspace's MSRV (1.85, the s390x lane's rustc) lacks them.
        if let Some(hi) = lo.checked_add(VERIFY_WINDOW) {
            if end <= hi && mem.check_range(GuestAddress(lo), VERIFY_WINDOW as usize, perm) {
                *span = (lo, hi);
                return true;
            }
        }
        let ok = usize::try_from(len).is_ok_and(|n| mem.check_range(GuestAddress(gpa), n, perm));
        if ok {
            *span = (gpa, end);
        }
        ok
    }

    /// Copies the `out.len()` (at most 272) guest bytes at `addr` into `out`; `false` if
    /// guest memory does not back them.
    #[inline]
    pub(super) fn fetch<M: GuestMemory + ?Sized>(
        &mut self,
        mem: &M,
        addr: u64,
        out: &mut [u8],
        end: u64,
    ) -> bool {
        let n = out.len();
        let have = addr >= self.addr && addr - self.addr + n as u64 <= self.len as u64;
        if !have && !self.refill(mem, addr, n, end) {
            return false;
        }
        let off = (addr - self.addr) as usize;
        out.copy_from_slice(&self.buf[off..off + n]);
        true
    }

    /// [`Self::fetch`] of a fixed-size block (a CCW, an IDAW): the copy is one load.
    #[inline]
    pub(super) fn fetch_n<M: GuestMemory + ?Sized, const N: usize>(
        &mut self,
        mem: &M,
        addr: u64,
        end: u64,
    ) -> Option<[u8; N]> {
        let have = addr >= self.addr && addr - self.addr + N as u64 <= self.len as u64;
        if !have && !self.refill(mem, addr, N, end) {
            return None;
        }
        let off = (addr - self.addr) as usize;
        self.buf[off..off + N].try_into().ok()
    }

    /// Reads guest bytes at `addr` into the buffer: the doubling read-ahead (within the
    /// page and `end`), else exactly `n` bytes; `false` when not even those are backed.
    #[inline(never)]
    pub(super) fn refill<M: GuestMemory + ?Sized>(
        &mut self,
        mem: &M,
        addr: u64,
        n: usize,
        end: u64,
    ) -> bool {
        let to_page = 4096 - addr % 4096;
        let want = (self.next as u64)
            .min(to_page)
            .min(end.saturating_sub(addr));
        let want = (want as usize).max(n);
        self.next = (self.next * 2).min(SNAPSHOT_MAX);
        self.addr = addr;
        self.len = if mem
            .read_slice(&mut self.buf[..want], GuestAddress(addr))
            .is_ok()
        {
            want
        } else if want > n
            && mem
                .read_slice(&mut self.buf[..n], GuestAddress(addr))
                .is_ok()
        {
            n
        } else {
            self.len = 0;
            return false;
        };
        true
    }
}
