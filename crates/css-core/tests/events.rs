// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The bounded backend event queue (issue #15 item 7): memory stays bounded, interruptions
//! wait for room (their status stays pending), channel reports overflow as the architecture
//! does (R bit, lost reports counted), and nothing is lost while there is room.

use ccw_types::{Crw, Irb, SubchannelId};
use css_core::{BackendEvent, event_channel};

fn report(rsid: u16) -> Crw {
    Crw::new().with_rsc(3).with_erc(3).with_rsid(rsid)
}

fn crw_of(ev: Option<BackendEvent>) -> Crw {
    match ev {
        Some(BackendEvent::ChannelReport(c)) => c,
        other => panic!("{other:?}"),
    }
}

fn interrupt() -> BackendEvent {
    BackendEvent::Interrupt {
        sch: SubchannelId::new(0, 0, 1),
        irb: Irb::read_from(&[0; 96]).unwrap(),
    }
}

#[tokio::test]
async fn a_report_storm_keeps_the_queue_bounded_and_says_what_was_lost() {
    let (tx, mut rx) = event_channel(2);
    for rsid in 1..=6 {
        tx.report(report(rsid));
    }
    // Two fit; 3, 4 and 5 are lost; 6 comes last with R.
    let got: Vec<(u16, bool)> = (0..3)
        .map(|_| crw_of(rx.try_recv().ok()))
        .map(|c| (c.rsid(), c.overflow()))
        .collect();
    assert_eq!(got, [(1, false), (2, false), (6, true)]);
    assert_eq!(rx.lost_reports(), 3);
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn a_held_report_is_not_lost_when_the_queue_drains_in_time() {
    let (tx, mut rx) = event_channel(1);
    tx.report(report(1));
    tx.report(report(2)); // held back
    assert_eq!(crw_of(rx.recv().await).rsid(), 1);
    tx.report(report(3)); // 2 goes in first, 3 is held
    let a = crw_of(rx.recv().await);
    let b = crw_of(rx.recv().await);
    assert_eq!(
        (a.rsid(), a.overflow(), b.rsid(), b.overflow()),
        (2, false, 3, false)
    );
    assert_eq!(rx.lost_reports(), 0);
}

#[tokio::test]
async fn interruptions_wait_for_room_instead_of_growing_the_queue() {
    let (tx, mut rx) = event_channel(1);
    tx.try_reserve().unwrap().send(interrupt());
    assert!(tx.try_reserve().is_none(), "full: the status stays pending");
    // A waiting sender gets its slot when the consumer takes an event.
    let waiter = {
        let tx = tx.clone();
        tokio::spawn(async move { tx.send(interrupt()).await })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    assert!(matches!(
        rx.recv().await,
        Some(BackendEvent::Interrupt { .. })
    ));
    waiter.await.unwrap().unwrap();
    assert!(matches!(
        rx.recv().await,
        Some(BackendEvent::Interrupt { .. })
    ));
    // Reports never wait: with the queue full one is held and delivered afterwards.
    tx.try_reserve().unwrap().send(interrupt());
    tx.report(report(9));
    assert!(matches!(
        rx.recv().await,
        Some(BackendEvent::Interrupt { .. })
    ));
    assert_eq!(crw_of(rx.recv().await).rsid(), 9);
    drop(tx);
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn a_held_report_wakes_a_waiting_receiver() {
    let (tx, mut rx) = event_channel(1);
    tx.try_reserve().unwrap().send(interrupt());
    tx.report(report(4)); // held
    assert!(matches!(
        rx.recv().await,
        Some(BackendEvent::Interrupt { .. })
    ));
    assert_eq!(crw_of(rx.recv().await).rsid(), 4);
    let recv = tokio::spawn(async move { (rx.recv().await, rx) });
    tokio::task::yield_now().await;
    tx.report(report(5));
    let (ev, _rx) = recv.await.unwrap();
    assert_eq!(crw_of(ev).rsid(), 5);
}

#[tokio::test]
async fn a_report_held_back_by_a_reserved_slot_wakes_the_receiver_of_the_empty_queue() {
    // The queue is empty but full: its one slot is reserved and not used yet. A receiver
    // waiting on it must still get the report that is held back meanwhile.
    let (tx, mut rx) = event_channel(1);
    let slot = tx.try_reserve().unwrap();
    let recv = tokio::spawn(async move { (rx.recv().await, rx) });
    tokio::task::yield_now().await;
    assert!(!recv.is_finished());
    tx.report(report(7)); // held: no room
    let (ev, mut rx) = tokio::time::timeout(std::time::Duration::from_secs(5), recv)
        .await
        .expect("the held report wakes the receiver")
        .unwrap();
    assert_eq!(crw_of(ev).rsid(), 7);
    slot.send(interrupt());
    assert!(matches!(
        rx.recv().await,
        Some(BackendEvent::Interrupt { .. })
    ));
}
