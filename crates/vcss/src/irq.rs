// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Floating I/O interruptions (one FIFO queue per ISC) and the channel-report-word queue
//! (vcss-reference §3, §4; s390-io-reference §6, §10.11, §10.12, §11).

use std::collections::VecDeque;

use ccw_types::{Crw, IoInterruptionCode, SubchannelId};

/// What vcss tells the VMM so that it can wake or interrupt a vCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notification {
    /// An I/O interruption was queued for this ISC. The VMM delivers it when a vCPU has the PSW
    /// I/O mask and the ISC's CR6 bit on, taking it with [`Vcss::take_interruption`](crate::Vcss::take_interruption)
    /// (or lets TPI take it).
    IoInterruption(IoInterruptionCode),
    /// A channel report became pending: the VMM injects one channel-report-pending machine check
    /// (MCIC bit 9), gated by CR14 bit 35. Sent once per batch; STCRW with cc 1 re-arms it.
    ChannelReportPending,
}

/// The VMM's hook: called with each [`Notification`] as it happens.
pub type Notifier = Box<dyn FnMut(Notification) + Send>;

/// One queue per ISC; lower ISC first, FIFO within an ISC. The ISC is fixed when queued
/// (vcss-reference §3.1): a later MSCH does not move a queued entry.
#[derive(Debug, Default, Clone)]
pub struct IrqQueues {
    queues: [VecDeque<IoInterruptionCode>; 8],
}

impl IrqQueues {
    /// Queues `code` on its ISC (from the interruption-identification word).
    pub fn push(&mut self, code: IoInterruptionCode) {
        self.queues[usize::from(code.id.isc() & 7)].push_back(code);
    }

    /// Takes the highest-priority interruption whose ISC is enabled in `cr6` (CR6 bits 32-39,
    /// ISC n = `0x8000_0000 >> n`).
    pub fn take(&mut self, cr6: u64) -> Option<IoInterruptionCode> {
        (0..8u8)
            .filter(|&isc| cr6 & ccw_types::cr6_isc_mask(isc) != 0)
            .find_map(|isc| self.queues[usize::from(isc)].pop_front())
    }

    /// Whether an interruption is pending for an ISC enabled in `cr6`.
    pub fn pending(&self, cr6: u64) -> bool {
        (0..8u8).any(|isc| {
            cr6 & ccw_types::cr6_isc_mask(isc) != 0 && !self.queues[usize::from(isc)].is_empty()
        })
    }

    /// Withdraws every queued interruption of `sch` (any ISC): TSCH cc 0, CSCH, unplug.
    pub fn withdraw(&mut self, sch: SubchannelId) {
        let word = sch.to_word();
        for q in &mut self.queues {
            q.retain(|c| c.sid.get() != word);
        }
    }

    /// How many interruptions are queued, over all ISCs.
    pub fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The channel-report words waiting for STCRW, bounded; a CRW that does not fit is lost and the
/// next one queued carries R = 1 (overflow), as QEMU does (vcss-reference §4.1).
#[derive(Debug, Clone)]
pub struct CrwQueue {
    queue: VecDeque<Crw>,
    capacity: usize,
    lost: bool,
    mchk_armed: bool,
}

impl CrwQueue {
    /// A queue holding at most `capacity` (at least 1) reports.
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            lost: false,
            mchk_armed: true,
        }
    }

    /// Queues `crw`. Returns whether a channel-report-pending machine check is to be made
    /// pending (the first report of a batch); `false` too when the report was lost.
    pub fn push(&mut self, mut crw: Crw) -> bool {
        if self.queue.len() >= self.capacity {
            self.lost = true;
            return false;
        }
        if self.lost {
            crw.set_overflow(true);
            self.lost = false;
        }
        self.queue.push_back(crw);
        std::mem::replace(&mut self.mchk_armed, false)
    }

    /// STORE CHANNEL REPORT WORD's queue part: the oldest report (cc 0) or `None` (cc 1, a zero
    /// word is stored), which re-arms the machine check.
    pub fn pop(&mut self) -> Option<Crw> {
        let crw = self.queue.pop_front();
        if crw.is_none() {
            self.mchk_armed = true;
        }
        crw
    }

    /// Puts `crw` back at the head (STCRW's store failed: the report is not consumed).
    pub fn unpop(&mut self, crw: Crw) {
        self.queue.push_front(crw);
    }

    /// How many reports are queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no report is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

impl Default for CrwQueue {
    /// 256 reports.
    fn default() -> Self {
        Self::new(256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(sch: u16, isc: u8) -> IoInterruptionCode {
        IoInterruptionCode::subchannel(SubchannelId::new(0, 0, sch), u32::from(sch), isc)
    }

    #[test]
    fn lower_isc_first_fifo_within_and_cr6_mask_respected() {
        let mut q = IrqQueues::default();
        q.push(code(1, 3));
        q.push(code(2, 1));
        q.push(code(3, 3));
        assert!(!q.pending(ccw_types::cr6_isc_mask(7)));
        assert_eq!(q.take(ccw_types::cr6_isc_mask(7)), None);
        let all = 0xFF00_0000;
        assert_eq!(q.take(all), Some(code(2, 1)));
        assert_eq!(q.take(ccw_types::cr6_isc_mask(3)), Some(code(1, 3)));
        q.withdraw(SubchannelId::new(0, 0, 3));
        assert!(q.is_empty());
    }

    #[test]
    fn crw_overflow_sets_r_on_the_next_report_and_mchk_is_once_per_batch() {
        let mut q = CrwQueue::new(1);
        let a = Crw::new().with_rsc(4).with_erc(2);
        assert!(q.push(a));
        assert!(
            !q.push(a),
            "second push while the first is queued: lost, no mchk"
        );
        assert_eq!(q.pop(), Some(a));
        assert!(!q.push(a), "not re-armed until an empty STCRW");
        // vcss-reference §7.7: after a lost CRW, RCHP CHPID 0 reads 64 02 00 00 when solicited.
        assert_eq!(q.pop().map(|c| c.into_bits().get()), Some(0x2402_0000));
        assert_eq!(q.pop(), None);
        assert!(q.push(a), "re-armed by the empty STCRW");
    }
}
