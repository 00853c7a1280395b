// SPDX-License-Identifier: Apache-2.0 OR MIT

//! DIAGNOSE 0x500 subcode 3: the virtio-ccw queue notification hook.

use ccw_types::CommandOrb;

use super::*;
use crate::{EINVAL, InstrError, ProgramInterruption, VirtioNotify};

/// A virtio-like device with one queue (index 0) that answers each notification with
/// `interrupt` and counts them.
#[derive(Debug)]
struct OneQueue {
    interrupt: bool,
    seen: Arc<Mutex<Vec<u16>>>,
}

impl Device for OneQueue {
    fn start(&mut self, _mem: &dyn GuestIo, _orb: &CommandOrb, _path: u8) -> Outcome {
        Outcome::NoPath { pnom: 0x80 }
    }
    fn resume(&mut self, _mem: &dyn GuestIo, _cpa: u32) -> Outcome {
        Outcome::NoPath { pnom: 0x80 }
    }
    fn halt(&mut self) -> u32 {
        0
    }
    fn clear(&mut self) {}
    fn virtio_notify(&mut self, _mem: &dyn GuestIo, queue: u16) -> VirtioNotify {
        self.seen.lock().unwrap().push(queue);
        if queue == 0 {
            VirtioNotify::Processed {
                interrupt: self.interrupt,
            }
        } else {
            VirtioNotify::NoQueue
        }
    }
}

fn with_queue(interrupt: bool) -> (Vcss, Arc<Mutex<Vec<u16>>>) {
    let mut css = Vcss::new();
    css.add_chpid(0x00, 0x32);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let dev = OneQueue {
        interrupt,
        seen: seen.clone(),
    };
    css.add_subchannel(0, 0x0005, 0x00, Box::new(dev)).unwrap();
    let p = &mut css.subchannel_mut(0).unwrap().schib.pmcw;
    p.flags.set_enabled(true);
    p.flags.set_isc(3);
    p.intparm.set(0xC0DE_0001);
    (css, seen)
}

#[test]
fn notify_on_a_non_virtio_subchannel_is_einval() {
    let (mut css, _) = one_device(Mode::Run);
    let mem = memory();
    assert_eq!(css.virtio_notify(&mem, sid(0), 0), EINVAL);
    assert!(!css.interruption_pending(cr6(0)));
    assert!(!css.subchannel(0).unwrap().status_pending());
}

#[test]
fn notify_of_a_missing_subchannel_or_bad_word_is_einval() {
    let (mut css, _) = with_queue(true);
    let mem = memory();
    assert_eq!(css.virtio_notify(&mem, sid(1), 0), EINVAL);
    // Bit 47 (the "one" bit of the word) clear: not a subchannel-identification word.
    assert_eq!(css.virtio_notify(&mem, 0, 0), EINVAL);
    // Subchannel set 1: valid word, not visible.
    assert_eq!(css.virtio_notify(&mem, 0x0003_0000, 0), EINVAL);
}

#[test]
fn notify_reaches_the_device_and_raises_its_interruption() {
    let (mut css, seen) = with_queue(true);
    let mem = memory();
    // Upper 32 bits of GR2 are ignored (the word is bits 32-63).
    assert_eq!(
        css.virtio_notify(&mem, 0xFFFF_FFFF_0000_0000 | sid(0), 0),
        0
    );
    assert_eq!(*seen.lock().unwrap(), [0]);
    let code = css.take_interruption(cr6(3)).expect("interruption queued");
    assert_eq!(code.intparm.get(), 0xC0DE_0001);
    // TSCH: alert status pending, no device status.
    assert_eq!(
        css.tsch(&mem, sid(0), 0x4000),
        Ok(crate::ConditionCode::Cc0)
    );
    let irb = get(&mem, 0x4000, 12);
    assert_eq!(irb[3] & 0x1F, 0x11, "alert + status pending: {irb:02x?}");
    assert_eq!(irb[8], 0, "no device status");
    // A queue the device does not have.
    assert_eq!(css.virtio_notify(&mem, sid(0), 5), EINVAL);
}

#[test]
fn notify_while_status_pending_adds_no_second_interruption() {
    let (mut css, _) = with_queue(true);
    let mem = memory();
    assert_eq!(css.virtio_notify(&mem, sid(0), 0), 0);
    assert_eq!(css.virtio_notify(&mem, sid(0), 0), 0);
    assert!(css.take_interruption(cr6(3)).is_some());
    assert!(css.take_interruption(cr6(3)).is_none());
}

#[test]
fn notify_without_indicator_raises_nothing() {
    let (mut css, seen) = with_queue(false);
    let mem = memory();
    assert_eq!(css.virtio_notify(&mem, sid(0), 0), 0);
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(!css.interruption_pending(cr6(3)));
}

#[test]
fn diag500_dispatches_subcode_3_only() {
    let (mut css, seen) = with_queue(false);
    let mem = memory();
    assert_eq!(css.diag500(&mem, 3, sid(0), 0), Ok(0));
    assert_eq!(css.diag500(&mem, 3, sid(0), 1), Ok(EINVAL));
    for sub in [0u64, 1, 2, 4, 0x1_0000_0003] {
        assert_eq!(
            css.diag500(&mem, sub, sid(0), 0),
            Err(InstrError::Program(ProgramInterruption::Specification(
                "DIAGNOSE 0x500 subcode"
            )))
        );
    }
    assert_eq!(*seen.lock().unwrap(), [0, 1]);
}
