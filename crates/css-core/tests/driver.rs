// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Unit tests of the css-core driver over a mockall mock of [`Backend`] and a stand-in
//! translator that offsets channel-program addresses by a fixed amount (so the mapping back
//! to guest addresses is observable) and counts releases.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ccw_translate::testing::RecordingMapper;
use ccw_translate::{ControlArea, DeviceAddr, DmaAccess, GuestRange, MapError, Mapper};
use ccw_types::{
    ActivityControl, CommandOrb, Crw, FunctionControl, Irb, Orb, Schib, Scsw, StatusControl,
    SubchannelId, SubchannelStatus, crw,
};
use css_core::{
    Backend, BackendError, BackendErrorKind, BackendEvent, ConditionCode, Css, CssConfig, CssError,
    CssErrorKind, EventReceiver, EventSender, HostProgram, State, Subchannel, SubchannelEvent,
    Translate, TranslateFailure, event_channel,
};
use mockall::mock;
use tokio::sync::mpsc;
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap};

mock! {
    pub Be {}
    #[async_trait]
    impl Backend for Be {
        async fn probe(&self) -> Result<Vec<(SubchannelId, Schib)>, BackendError>;
        async fn enable(&self, sch: SubchannelId, intparm: u32) -> Result<ConditionCode, BackendError>;
        async fn disable(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError>;
        async fn start(&self, sch: SubchannelId, orb: &Orb) -> Result<ConditionCode, BackendError>;
        async fn halt(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError>;
        async fn clear(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError>;
        async fn cancel(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError>;
        async fn store_schib(&self, sch: SubchannelId) -> Result<Schib, BackendError>;
        fn mapper(&self, sch: SubchannelId) -> Result<Arc<dyn Mapper>, BackendError>;
        fn take_events(&self) -> Result<EventReceiver, BackendError>;
    }
}

const OFFSET: u32 = 0x10_0000;
const BAD_CPA: u32 = 0xDEA0;
static RELEASED: AtomicUsize = AtomicUsize::new(0);

struct NullMapper;
impl Mapper for NullMapper {
    fn pin(&self, range: GuestRange, _: DmaAccess) -> Result<DeviceAddr, MapError> {
        Ok(range.gpa)
    }
    fn unpin(&self, _: GuestRange) {}
    fn alloc_control(&self, len: usize) -> Result<ControlArea, MapError> {
        Ok(ControlArea {
            addr: 0,
            len,
            token: 0,
        })
    }
    fn write_control(&self, _: &ControlArea, _: usize, _: &[u8]) -> Result<(), MapError> {
        Ok(())
    }
    fn free_control(&self, _: ControlArea) {}
}

/// Offsets the cpa by `OFFSET`; each test uses its own counter via a thread-local id.
struct Prog {
    orb: Orb,
    counter: Arc<AtomicUsize>,
}
impl HostProgram for Prog {
    fn host_orb(&self) -> Orb {
        let mut o = self.orb;
        o.cpa = (o.cpa.get() + OFFSET).into();
        o
    }
    fn update_scsw(&self, scsw: &mut Scsw) {
        scsw.cpa = scsw.cpa.get().wrapping_sub(OFFSET).into();
    }
    /// The stand-in program "pins" the page of its channel program.
    fn is_pinned(&self, range: GuestRange) -> bool {
        range.overlaps(&GuestRange::new(
            u64::from(self.orb.cpa.get()) & !0xFFF,
            0x1000,
        ))
    }
}
/// Its release: the drop.
impl Drop for Prog {
    fn drop(&mut self) {
        self.counter.fetch_add(1, Ordering::SeqCst);
        RELEASED.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("guest address {0:#x} not readable")]
struct Fault(u32);
impl TranslateFailure for Fault {
    fn errno(&self) -> css_core::Errno {
        css_core::Errno::Fault
    }
    fn kind(&self) -> css_core::CssErrorKind {
        css_core::CssErrorKind::GuestFault
    }
    fn program_check(&self) -> Option<SubchannelStatus> {
        Some(SubchannelStatus::PROGRAM_CHECK)
    }
}

thread_local! {
    static COUNTER: std::cell::RefCell<Arc<AtomicUsize>> = std::cell::RefCell::new(Arc::new(AtomicUsize::new(0)));
}

struct Offset(Arc<AtomicUsize>);
impl Translate for Offset {
    type Program = Prog;
    type Error = Fault;
    fn create() -> Self {
        Offset(COUNTER.with(|c| c.borrow().clone()))
    }
    fn translate<M: GuestMemory + ?Sized>(
        &mut self,
        orb: &Orb,
        _mem: &M,
        _mapper: Arc<dyn Mapper>,
        _lpm: u8,
    ) -> Result<Prog, Fault> {
        if orb.cpa.get() == BAD_CPA {
            return Err(Fault(BAD_CPA));
        }
        Ok(Prog {
            orb: *orb,
            counter: self.0.clone(),
        })
    }
}

const SCH: SubchannelId = SubchannelId::new(0, 0, 0);

fn schib(devno: u16, dnv: bool) -> Schib {
    let mut s = Schib::from_bytes([0; 52]);
    s.pmcw.flags = s.pmcw.flags.with_dnv(dnv).with_devno(devno);
    s.pmcw.pim = 0xC0;
    s.pmcw.pam = 0xC0;
    s.pmcw.pom = 0xFF;
    s.pmcw.chpid = [0x10, 0x11, 0, 0, 0, 0, 0, 0];
    s
}

fn irb(fc: FunctionControl, ac: ActivityControl, sc: StatusControl, cpa: u32) -> Irb {
    let mut irb = Irb::read_from(&[0; 96]).unwrap();
    irb.scsw.ctrl = irb.scsw.ctrl.with_fc(fc).with_ac(ac).with_sc(sc);
    irb.scsw.cpa = cpa.into();
    irb.scsw.dstat = 0x0C;
    irb
}

fn final_irb(cpa: u32) -> Irb {
    irb(
        FunctionControl::START,
        ActivityControl::from_bits(0),
        StatusControl::PRIMARY | StatusControl::SECONDARY | StatusControl::PENDING,
        cpa,
    )
}

/// A mock with probe, events, mapper and enable already set up; returns the event sender.
/// The test's end of the backend's event queue: queues at once (the queue never fills here).
#[derive(Clone)]
struct Tx(EventSender);

impl Tx {
    fn send(&self, ev: BackendEvent) -> Result<(), BackendEvent> {
        match self.0.try_reserve() {
            Some(slot) => {
                slot.send(ev);
                Ok(())
            }
            None => Err(ev),
        }
    }
}

fn mock_base(list: Vec<(SubchannelId, Schib)>) -> (MockBe, Tx) {
    mock_with_mapper(list, Arc::new(NullMapper))
}

/// [`mock_base`] whose subchannels map through `mapper`.
fn mock_with_mapper(list: Vec<(SubchannelId, Schib)>, mapper: Arc<dyn Mapper>) -> (MockBe, Tx) {
    let (tx, rx) = event_channel(64);
    let tx = Tx(tx);
    let mut be = MockBe::new();
    let rx = std::sync::Mutex::new(Some(rx));
    be.expect_take_events().returning(move || {
        rx.lock()
            .unwrap()
            .take()
            .ok_or(BackendError::new(BackendErrorKind::Closed, "take_events"))
    });
    be.expect_probe().returning(move || Ok(list.clone()));
    be.expect_mapper().returning(move |_| Ok(mapper.clone()));
    be.expect_enable()
        .withf(|sch, intparm| *intparm == sch.to_word())
        .returning(|_, _| Ok(ConditionCode::Cc0));
    (be, tx)
}

/// HALT ends the running program: the backend presents final status with the halt
/// function (at guest cpa 0x1008) on the event stream.
fn halt_ends_program(be: &mut MockBe, tx: &Tx, times: usize) {
    let tx = tx.clone();
    be.expect_halt().times(times).returning(move |sch| {
        let mut i = final_irb(0x1008 + OFFSET);
        i.scsw.ctrl = i
            .scsw
            .ctrl
            .with_fc(FunctionControl::START | FunctionControl::HALT);
        tx.send(BackendEvent::Interrupt { sch, irb: i }).unwrap();
        Ok(ConditionCode::Cc0)
    });
}

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1_0000)]).unwrap()
}

fn counter() -> Arc<AtomicUsize> {
    let c = Arc::new(AtomicUsize::new(0));
    COUNTER.with(|x| *x.borrow_mut() = c.clone());
    c
}

fn orb(intparm: u32, cpa: u32) -> Orb {
    CommandOrb::new(intparm, cpa).emit()
}

async fn wait_state<T: Translate>(css: &Css<MockBe, T>, want: State) {
    for _ in 0..1000 {
        if css.state(SCH).unwrap() == want {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("state {want:?} not reached: {:?}", css.state(SCH));
}

/// Runs `then` while a SENSE-ID-like program (intparm 1, cpa 0x1000) is pending, and
/// returns the program's answer with `then`'s output.
async fn during_io<F: std::future::Future>(
    css: &Css<MockBe, Offset>,
    sub: &Subchannel<MockBe, Offset>,
    then: F,
) -> (Result<css_core::IoCompletion, CssError>, F::Output) {
    let m = mem();
    let o = orb(1, 0x1000);
    tokio::join!(sub.submit(&o, &m), async {
        wait_state(css, State::CpPending).await;
        then.await
    })
}

#[tokio::test]
async fn probe_registers_and_skips_qdio() {
    let mut qdio = schib(7, true);
    qdio.pmcw.flags = qdio.pmcw.flags.with_qdio(true);
    let (be, _tx) = mock_base(vec![
        (SCH, schib(5, true)),
        (SubchannelId::new(0, 0, 1), schib(6, false)),
        (SubchannelId::new(0, 0, 2), qdio),
    ]);
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    let ids = css.probe().await.unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(css.len(), 2);
    assert_eq!(css.state(SCH).unwrap(), State::Standby);
    assert_eq!(
        css.state(SubchannelId::new(0, 0, 1)).unwrap(),
        State::NotOper
    );
    assert!(matches!(
        css.open(SubchannelId::new(0, 0, 1)).await,
        Err(CssError::Gone(_))
    ));
    assert!(matches!(
        css.state(SubchannelId::new(0, 0, 2)),
        Err(CssError::Unknown(_))
    ));
    // A second probe does not duplicate.
    css.probe().await.unwrap();
    assert_eq!(css.len(), 2);
    // Taking the events twice fails.
    assert!(css.backend().take_events().is_err());
}

#[tokio::test]
async fn submit_completes_with_guest_cpa_and_releases_once() {
    let released = counter();
    let (mut be, tx) = mock_base(vec![(SCH, schib(5, true))]);
    be.expect_start()
        .withf(|_, orb| orb.cpa.get() == 0x1000 + OFFSET)
        .times(1)
        .returning(|_, _| Ok(ConditionCode::Cc0));
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    assert!(matches!(css.open(SCH).await, Err(CssError::AlreadyOpen(_))));
    assert_eq!(sub.state(), State::Idle);
    let m = mem();
    let o = orb(0xABCD, 0x1000);
    let (done, ()) = tokio::join!(sub.submit(&o, &m), async {
        wait_state(&css, State::CpPending).await;
        tx.send(BackendEvent::Interrupt {
            sch: SCH,
            irb: final_irb(0x1010 + OFFSET),
        })
        .unwrap();
    });
    let done = done.unwrap();
    assert_eq!(done.intparm, 0xABCD);
    assert_eq!(done.irb.scsw.cpa.get(), 0x1010);
    assert_eq!(released.load(Ordering::SeqCst), 1);
    assert_eq!(sub.state(), State::Idle);
}

#[tokio::test]
async fn start_condition_codes_and_busy() {
    let released = counter();
    let (mut be, tx) = mock_base(vec![(SCH, schib(5, true))]);
    let mut seq = mockall::Sequence::new();
    for cc in [
        ConditionCode::Cc0,
        ConditionCode::Cc2,
        ConditionCode::Cc3,
        ConditionCode::Cc3,
    ] {
        be.expect_start()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _| Ok(cc));
    }
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let m = mem();
    // Start while busy: EBUSY from the table, the first request still completes.
    let o = orb(1, 0x1000);
    let (first, second) = tokio::join!(sub.submit(&o, &m), async {
        wait_state(&css, State::CpPending).await;
        let r = sub.submit(&orb(2, 0x2000), &m).await;
        tx.send(BackendEvent::Interrupt {
            sch: SCH,
            irb: final_irb(0x1008 + OFFSET),
        })
        .unwrap();
        r
    });
    assert!(first.is_ok());
    let e = second.unwrap_err();
    assert_eq!((e.kind(), e.errno()), (CssErrorKind::Busy, 16), "{e}");
    // cc 2 -> EBUSY
    let e = sub.submit(&orb(3, 0x1000), &m).await.unwrap_err();
    assert_eq!((e.kind(), e.errno()), (CssErrorKind::Busy, 16), "{e}");
    // cc 3 on path 0x80 of 0xC0 -> EACCES, then on 0x40 -> ENODEV.
    let mut o = CommandOrb::new(4, 0x1000);
    o.lpm = 0x80;
    let e = sub.submit(&o.emit(), &m).await.unwrap_err();
    assert_eq!((e.kind(), e.errno()), (CssErrorKind::NoPath, 13), "{e}");
    o.lpm = 0x40;
    let e = sub.submit(&o.emit(), &m).await.unwrap_err();
    assert_eq!((e.kind(), e.errno()), (CssErrorKind::NoDevice, 19), "{e}");
    assert_eq!(released.load(Ordering::SeqCst), 4);
    assert_eq!(sub.state(), State::Idle);
}

#[tokio::test]
async fn translate_error_and_transport_mode() {
    let released = counter();
    let (mut be, _tx) = mock_base(vec![(SCH, schib(5, true))]);
    be.expect_start().never();
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let m = mem();
    let e = sub.submit(&orb(1, BAD_CPA), &m).await.unwrap_err();
    assert_eq!((e.kind(), e.errno()), (CssErrorKind::GuestFault, 14));
    assert_eq!(e.program_check(), Some(SubchannelStatus::PROGRAM_CHECK));
    assert_eq!(sub.state(), State::Idle);
    let mut tm = orb(1, 0x1000);
    tm.ctrl = tm.ctrl.with_transport(true);
    let e = sub.submit(&tm, &m).await.unwrap_err();
    assert_eq!((e.kind(), e.errno()), (CssErrorKind::Unsupported, 95));
    assert_eq!(sub.state(), State::Idle);
    assert_eq!(released.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn not_open_requests_get_eio() {
    let (be, _tx) = mock_base(vec![(SCH, schib(5, true))]);
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    assert!(matches!(css.close(SCH).await, Err(CssError::NotOpen(_))));
    assert!(matches!(
        css.open(SubchannelId::new(0, 0, 9)).await,
        Err(CssError::Unknown(_))
    ));
}

#[tokio::test]
async fn halt_during_io_completes_the_request() {
    let released = counter();
    let (mut be, tx) = mock_base(vec![(SCH, schib(5, true))]);
    be.expect_start().returning(|_, _| Ok(ConditionCode::Cc0));
    halt_ends_program(&mut be, &tx, 1);
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let (done, halted) = during_io(&css, &sub, async { sub.halt().await }).await;
    halted.unwrap();
    let done = done.unwrap();
    assert!(done.irb.scsw.ctrl.fc().contains(FunctionControl::HALT));
    assert_eq!(done.irb.scsw.cpa.get(), 0x1008);
    assert_eq!(released.load(Ordering::SeqCst), 1);
    drop(tx);
}

#[tokio::test]
async fn halt_and_clear_refusals() {
    let (mut be, _tx) = mock_base(vec![(SCH, schib(5, true))]);
    be.expect_halt().returning(|_| Ok(ConditionCode::Cc1));
    be.expect_clear().returning(|_| Ok(ConditionCode::Cc3));
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let e = sub.halt().await.unwrap_err();
    assert_eq!(e.errno(), 16);
    let e = sub.clear().await.unwrap_err();
    assert_eq!(e.errno(), 19);
}

#[tokio::test]
async fn close_with_io_outstanding_quiesces_and_answers_once() {
    let released = counter();
    let (mut be, tx) = mock_base(vec![(SCH, schib(5, true))]);
    be.expect_start().returning(|_, _| Ok(ConditionCode::Cc0));
    let mut seq = mockall::Sequence::new();
    be.expect_disable()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(ConditionCode::Cc2));
    be.expect_cancel()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|sch| Err(BackendError::unsupported("cancel").on(sch)));
    let tx2 = tx.clone();
    be.expect_halt()
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |sch| {
            let mut i = final_irb(0x1008 + OFFSET);
            i.scsw.ctrl = i.scsw.ctrl.with_fc(FunctionControl::HALT);
            tx2.send(BackendEvent::Interrupt { sch, irb: i }).unwrap();
            Ok(ConditionCode::Cc0)
        });
    be.expect_disable()
        .times(1..)
        .in_sequence(&mut seq)
        .returning(|_| Ok(ConditionCode::Cc0));
    let css: Css<MockBe, Offset> = Css::with_config(
        Arc::new(be),
        CssConfig {
            quiesce_retries: 4,
            quiesce_wait: Duration::from_secs(5),
        },
    )
    .unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let (done, closed) = during_io(&css, &sub, async { css.close(SCH).await }).await;
    closed.unwrap();
    assert!(matches!(done, Err(CssError::Closed(_))), "{done:?}");
    assert_eq!(released.load(Ordering::SeqCst), 1);
    assert_eq!(css.state(SCH).unwrap(), State::Standby);
    // It can be opened again.
    let sub2 = css.open(SCH).await.unwrap();
    assert_eq!(sub2.state(), State::Idle);
}

/// Issue #15 item 1: closing a subchannel whose start is still pending cancels it and returns
/// at once. After a successful CANCEL no interruption follows, so quiesce must not wait for one
/// (with the clock paused, a wait would advance it by the whole `quiesce_wait`).
#[tokio::test(start_paused = true)]
async fn close_of_a_start_pending_subchannel_does_not_wait() {
    let released = counter();
    let (mut be, _tx) = mock_base(vec![(SCH, schib(5, true))]);
    be.expect_start().returning(|_, _| Ok(ConditionCode::Cc0));
    let mut seq = mockall::Sequence::new();
    be.expect_disable()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(ConditionCode::Cc2));
    be.expect_cancel()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(ConditionCode::Cc0));
    be.expect_disable()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(ConditionCode::Cc0));
    // No halt or clear expectation: issuing either fails the test.
    let wait = Duration::from_secs(3);
    let css: Css<MockBe, Offset> = Css::with_config(
        Arc::new(be),
        CssConfig {
            quiesce_retries: 8,
            quiesce_wait: wait,
        },
    )
    .unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let (done, elapsed) = during_io(&css, &sub, async {
        let t0 = tokio::time::Instant::now();
        css.close(SCH).await.unwrap();
        t0.elapsed()
    })
    .await;
    assert!(matches!(done, Err(CssError::Closed(_))), "{done:?}");
    assert!(
        elapsed < wait,
        "close waited {elapsed:?} on the paused clock"
    );
    assert_eq!(released.load(Ordering::SeqCst), 1);
    assert_eq!(css.state(SCH).unwrap(), State::Standby);
}

#[tokio::test(start_paused = true)]
async fn quiesce_is_bounded() {
    let (mut be, _tx) = mock_base(vec![(SCH, schib(5, true))]);
    be.expect_disable()
        .times(3)
        .returning(|_| Ok(ConditionCode::Cc2));
    be.expect_cancel().returning(|_| Ok(ConditionCode::Cc2));
    be.expect_halt().returning(|_| Ok(ConditionCode::Cc2));
    be.expect_clear().returning(|_| Ok(ConditionCode::Cc0));
    let css: Css<MockBe, Offset> = Css::with_config(
        Arc::new(be),
        CssConfig {
            quiesce_retries: 3,
            quiesce_wait: Duration::from_millis(100),
        },
    )
    .unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let e = sub.close().await.unwrap_err();
    assert_eq!(e.kind(), CssErrorKind::Timeout, "{e}");
    // Closed anyway (released, not claimed): it can be opened again.
    assert_eq!(css.state(SCH).unwrap(), State::Standby);
}

#[tokio::test]
async fn intermediate_status_is_an_event() {
    let released = counter();
    let (mut be, tx) = mock_base(vec![(SCH, schib(5, true))]);
    be.expect_start().returning(|_, _| Ok(ConditionCode::Cc0));
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let mut events = sub.events();
    let (done, ()) = during_io(&css, &sub, async {
        let mut pci = irb(
            FunctionControl::START,
            ActivityControl::SUBCHANNEL_ACTIVE | ActivityControl::DEVICE_ACTIVE,
            StatusControl::INTERMEDIATE | StatusControl::PENDING,
            0x1008 + OFFSET,
        );
        pci.scsw.cstat = SubchannelStatus::PCI.bits();
        tx.send(BackendEvent::Interrupt { sch: SCH, irb: pci })
            .unwrap();
        tx.send(BackendEvent::Interrupt {
            sch: SCH,
            irb: final_irb(0x1010 + OFFSET),
        })
        .unwrap();
    })
    .await;
    assert_eq!(done.unwrap().irb.scsw.cpa.get(), 0x1010);
    match events.recv().await.unwrap() {
        SubchannelEvent::Status(i) => {
            assert_eq!(i.scsw.cpa.get(), 0x1008);
            assert!(!i.scsw.is_final());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(released.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn status_for_closed_subchannel_disables_it() {
    let (mut be, tx) = mock_base(vec![(SCH, schib(5, true))]);
    let (dtx, mut drx) = mpsc::unbounded_channel();
    be.expect_disable().returning(move |sch| {
        dtx.send(sch).unwrap();
        Ok(ConditionCode::Cc0)
    });
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    tx.send(BackendEvent::Interrupt {
        sch: SCH,
        irb: final_irb(0),
    })
    .unwrap();
    // Unknown subchannel: dropped (no disable for it).
    tx.send(BackendEvent::Interrupt {
        sch: SubchannelId::new(0, 0, 42),
        irb: final_irb(0),
    })
    .unwrap();
    assert_eq!(drx.recv().await.unwrap(), SCH);
}

fn sch_crw(sch_no: u16) -> Crw {
    Crw::new()
        .with_rsc(crw::rsc::SUBCHANNEL)
        .with_erc(crw::erc::IPI)
        .with_rsid(sch_no)
}

#[tokio::test]
async fn subchannel_reports_refresh_then_not_oper_then_gone() {
    let released = counter();
    let (mut be, _tx) = mock_base(vec![(SCH, schib(5, true))]);
    let mut seq = mockall::Sequence::new();
    be.expect_store_schib()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            let mut s = schib(5, true);
            s.pmcw.pom = 0x80;
            Ok(s)
        });
    be.expect_store_schib()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(schib(5, false)));
    be.expect_store_schib()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|sch| Err(BackendError::new(BackendErrorKind::NoDevice, "store_schib").on(sch)));
    be.expect_start().returning(|_, _| Ok(ConditionCode::Cc0));
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let mut reports = css.subscribe_reports();
    let sub = css.open(SCH).await.unwrap();
    let mut events = sub.events();
    css.process_report(sch_crw(0)).await;
    assert_eq!(reports.recv().await.unwrap(), sch_crw(0));
    assert!(matches!(
        events.recv().await,
        Some(SubchannelEvent::SchibRefreshed(_))
    ));
    assert_eq!(css.cached_schib(SCH).unwrap().pmcw.lpm, 0x80);
    // An I/O is outstanding when the device becomes invalid: it fails with Gone.
    let (done, ()) = during_io(&css, &sub, async {
        css.process_report(sch_crw(0)).await;
    })
    .await;
    assert!(matches!(done, Err(CssError::Gone(_))), "{done:?}");
    assert_eq!(released.load(Ordering::SeqCst), 1);
    assert!(matches!(
        events.recv().await,
        Some(SubchannelEvent::NotOperational)
    ));
    assert_eq!(css.state(SCH).unwrap(), State::NotOper);
    let e = sub.submit(&orb(1, 0x1000), &mem()).await.unwrap_err();
    assert_eq!(e.errno(), 5, "{e}");
    // Gone entirely: unregistered.
    css.process_report(sch_crw(0)).await;
    assert!(matches!(css.state(SCH), Err(CssError::Unknown(_))));
    assert!(matches!(
        events.recv().await,
        Some(SubchannelEvent::Removed)
    ));
}

#[tokio::test]
async fn chained_subchannel_report_names_the_subchannel_set() {
    let (mut be, _tx) = mock_base(vec![(SubchannelId::new(0, 1, 3), schib(5, true))]);
    be.expect_store_schib()
        .withf(|sch| *sch == SubchannelId::new(0, 1, 3))
        .times(1)
        .returning(|_| Ok(schib(5, true)));
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    css.process_report(sch_crw(3).with_chained(true)).await;
    css.process_report(sch_crw(1 << 4)).await;
    // A chain of three (the second also chained) is malformed: dropped, no STSCH (times(1)
    // above), and the next report is read afresh.
    css.process_report(sch_crw(3).with_chained(true)).await;
    css.process_report(sch_crw(1 << 4).with_chained(true)).await;
    css.process_report(sch_crw(1 << 4)).await;
}

/// Issue #15 item 7: a channel report with the overflow bit (reports were lost) makes css-core
/// re-read every registered subchannel, not only the one the report names.
#[tokio::test]
async fn overflow_report_rereads_every_subchannel() {
    let other = SubchannelId::new(0, 0, 7);
    let (mut be, _tx) = mock_base(vec![(SCH, schib(5, true)), (other, schib(6, true))]);
    let stored = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = stored.clone();
    be.expect_store_schib().returning(move |sch| {
        seen.lock().unwrap().push(sch);
        Ok(schib(if sch == SCH { 5 } else { 6 }, true))
    });
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let mut c = Crw::new()
        .with_rsc(crw::rsc::CHANNEL_PATH)
        .with_erc(crw::erc::INIT)
        .with_rsid(0x55);
    css.process_report(c).await;
    assert!(stored.lock().unwrap().is_empty());
    c.set_overflow(true);
    css.process_report(c).await;
    let mut got = stored.lock().unwrap().clone();
    got.sort_by_key(|s| s.sch_no);
    assert_eq!(got, vec![SCH, other]);
}

#[tokio::test]
async fn channel_path_reports_update_masks_and_are_forwarded() {
    let (be, _tx) = mock_base(vec![(SCH, schib(5, true))]);
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let mut events = sub.events();
    let path = |erc| {
        Crw::new()
            .with_rsc(crw::rsc::CHANNEL_PATH)
            .with_erc(erc)
            .with_rsid(0x11)
    };
    assert_eq!(css.cached_schib(SCH).unwrap().pmcw.lpm, 0xC0);
    // A path going away does not change the masks (only the operator's vary does).
    css.process_report(path(crw::erc::PERRN)).await;
    assert_eq!(css.cached_schib(SCH).unwrap().pmcw.lpm, 0xC0);
    match events.recv().await.unwrap() {
        SubchannelEvent::ChannelReport(c) => {
            assert_eq!((c.rsc(), c.erc(), c.rsid()), (4, crw::erc::PERRN, 0x11))
        }
        other => panic!("{other:?}"),
    }
    // Online only restores paths that are operational (opm): varied off paths stay off.
    css.vary_path(0x10, false).await;
    css.vary_path(0x11, false).await;
    assert_eq!(css.cached_schib(SCH).unwrap().pmcw.lpm, 0x00);
    css.process_report(path(crw::erc::INIT)).await;
    assert_eq!(css.cached_schib(SCH).unwrap().pmcw.lpm, 0x00);
    css.vary_path(0x11, true).await;
    css.vary_path(0x10, true).await;
    assert_eq!(css.cached_schib(SCH).unwrap().pmcw.lpm, 0xC0);
    match events.recv().await.unwrap() {
        SubchannelEvent::ChannelReport(c) => assert_eq!(c.erc(), crw::erc::INIT),
        other => panic!("{other:?}"),
    }
    // A path this subchannel does not use changes nothing.
    css.vary_path(0x55, false).await;
    assert_eq!(css.cached_schib(SCH).unwrap().pmcw.lpm, 0xC0);
}

/// Every path varied off: a start with ORB LPM 0 finds no logical path and ends as cc 3
/// (ENODEV) without reaching the backend, which could substitute its own mask (vfio-ccw
/// replaces LPM 0 with the kernel's); varied on again, the start reaches the backend.
#[tokio::test]
async fn start_with_every_path_varied_off_never_reaches_the_backend() {
    let (mut be, tx) = mock_base(vec![(SCH, schib(5, true))]);
    be.expect_start()
        .times(1)
        .returning(|_, _| Ok(ConditionCode::Cc0));
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let m = mem();
    css.vary_path(0x10, false).await;
    css.vary_path(0x11, false).await;
    let e = sub.submit(&orb(1, 0x1000), &m).await.unwrap_err();
    assert_eq!((e.kind(), e.errno()), (CssErrorKind::NoDevice, 19), "{e}");
    assert_eq!(sub.state(), State::Idle);
    css.vary_path(0x10, true).await;
    let o = orb(2, 0x1000);
    let (done, ()) = tokio::join!(sub.submit(&o, &m), async {
        wait_state(&css, State::CpPending).await;
        tx.send(BackendEvent::Interrupt {
            sch: SCH,
            irb: final_irb(0x1008 + OFFSET),
        })
        .unwrap();
    });
    done.unwrap();
}

/// Issue #15 item 2: a path that goes away and comes back is usable again, also after a start
/// on it ended with cc 3 (which removes it from the logical-path mask).
#[tokio::test]
async fn path_that_goes_and_comes_back_is_usable_again() {
    let released = counter();
    let (mut be, _tx) = mock_base(vec![(SCH, schib(5, true))]);
    let mut seq = mockall::Sequence::new();
    be.expect_start()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(ConditionCode::Cc3));
    be.expect_start()
        .times(1)
        .in_sequence(&mut seq)
        .withf(|_, orb| orb.ctrl.lpm() == 0x40)
        .returning(|_, _| Ok(ConditionCode::Cc3));
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let m = mem();
    let path = |erc| {
        Crw::new()
            .with_rsc(crw::rsc::CHANNEL_PATH)
            .with_erc(erc)
            .with_rsid(0x11)
    };
    css.process_report(path(crw::erc::PERRN)).await;
    let mut o = CommandOrb::new(1, 0x1000);
    o.lpm = 0x40;
    let e = sub.submit(&o.emit(), &m).await.unwrap_err();
    assert_eq!(e.kind(), CssErrorKind::NoPath, "{e}");
    assert_eq!(css.cached_schib(SCH).unwrap().pmcw.lpm, 0x80);
    css.process_report(path(crw::erc::INIT)).await;
    assert_eq!(css.cached_schib(SCH).unwrap().pmcw.lpm, 0xC0);
    // The path is offered again: the next start on it reaches the backend.
    let e = sub.submit(&o.emit(), &m).await.unwrap_err();
    assert_eq!(e.kind(), CssErrorKind::NoPath, "{e}");
    assert_eq!(released.load(Ordering::SeqCst), 2);
}

/// Issue #15 item 9: the VMM unmaps guest memory under a running program. The subchannel
/// is cleared, the request answered once with an error naming the reason, the program
/// released before the call returns; a program elsewhere runs on.
#[tokio::test]
async fn unmapping_a_pinned_range_clears_and_answers_once() {
    let released = counter();
    let (mut be, tx) = mock_base(vec![(SCH, schib(5, true))]);
    be.expect_start().returning(|_, _| Ok(ConditionCode::Cc0));
    let rel = released.clone();
    clear_ends_at_once(&mut be, &tx, move || {
        // The clear's interruption comes after the instruction; the program is still held.
        assert_eq!(
            rel.load(Ordering::SeqCst),
            0,
            "released before the clear ended"
        );
    });
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let mut events = sub.events();
    // A range the program does not use changes nothing.
    let (done, (other, cleared)) = during_io(&css, &sub, async {
        let other = css.unmap_guest_range(GuestRange::new(0x8000, 0x1000)).await;
        assert_eq!(released.load(Ordering::SeqCst), 0);
        let cleared = css.unmap_guest_range(GuestRange::new(0x1800, 0x1000)).await;
        // Before the call returned: answered and released.
        assert_eq!(released.load(Ordering::SeqCst), 1);
        (other, cleared)
    })
    .await;
    assert_eq!(other.unwrap(), vec![]);
    assert_eq!(cleared.unwrap(), vec![SCH]);
    let e = done.unwrap_err();
    assert!(
        matches!(e, CssError::Unmapped { sch, range } if sch == SCH && range.gpa == 0x1800),
        "{e}"
    );
    assert_eq!(e.kind(), CssErrorKind::Unmapped);
    assert!(e.to_string().contains("unmapped"), "{e}");
    // The clear's status went out as an event, and the subchannel works again.
    match events.recv().await.unwrap() {
        SubchannelEvent::Status(irb) => {
            assert!(irb.scsw.ctrl.fc().contains(FunctionControl::CLEAR))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sub.state(), State::Idle);
    let (done, ()) = during_io(&css, &sub, async {
        tx.send(BackendEvent::Interrupt {
            sch: SCH,
            irb: final_irb(0x1008 + OFFSET),
        })
        .unwrap();
    })
    .await;
    assert!(done.is_ok());
    assert_eq!(released.load(Ordering::SeqCst), 2);
}

/// A clear (at most one) that the channel ends at once: `check` runs when it is issued,
/// then its interruption (clear function) is queued.
fn clear_ends_at_once(be: &mut MockBe, tx: &Tx, check: impl Fn() + Send + 'static) {
    let tx = tx.clone();
    be.expect_clear().times(0..=1).returning(move |sch| {
        check();
        let mut i = final_irb(0);
        i.scsw.ctrl = i
            .scsw
            .ctrl
            .with_fc(FunctionControl::CLEAR)
            .with_sc(StatusControl::PENDING);
        tx.send(BackendEvent::Interrupt { sch, irb: i }).unwrap();
        Ok(ConditionCode::Cc0)
    });
}

/// ccw-translate's translator through the driver, over the recording mapper: whichever way
/// a request ends (completion; completion after its `submit` future was dropped; close;
/// remove; unmap), every range its program pinned is unpinned and its control area freed,
/// exactly once, by the program itself when the driver lets go of it.
#[tokio::test]
async fn every_pin_is_released_once_however_the_request_ends() {
    for end in ["complete", "dropped", "close", "remove", "unmap"] {
        let rec = Arc::new(RecordingMapper::new());
        let (mut be, tx) = mock_with_mapper(vec![(SCH, schib(5, true))], rec.clone());
        be.expect_start().returning(|_, _| Ok(ConditionCode::Cc0));
        be.expect_disable().returning(|_| Ok(ConditionCode::Cc0));
        clear_ends_at_once(&mut be, &tx, || {});
        let css: Css<MockBe> = Css::new(Arc::new(be)).unwrap();
        css.probe().await.unwrap();
        let sub = css.open(SCH).await.unwrap();
        let m = mem();
        // SENSE ID, SLI, 256 bytes at 0x2000.
        m.write_slice(
            &[0xE4, 0x20, 0x01, 0x00, 0x00, 0x00, 0x20, 0x00],
            GuestAddress(0x1000),
        )
        .unwrap();
        let o = orb(1, 0x1000);
        let final_status = || {
            tx.send(BackendEvent::Interrupt {
                sch: SCH,
                irb: final_irb(0),
            })
            .unwrap()
        };
        let running = |what: &str| {
            assert_eq!(
                rec.live_pins(),
                vec![GuestRange::new(0x2000, 256)],
                "{what}"
            );
            assert_eq!(rec.live_areas(), 1, "{what}");
        };
        if end == "dropped" {
            {
                let submit = sub.submit(&o, &m);
                tokio::pin!(submit);
                tokio::select! {
                    r = &mut submit => panic!("answered early: {r:?}"),
                    () = wait_state(&css, State::CpPending) => {}
                }
            }
            running(end);
            final_status();
            wait_state(&css, State::Idle).await;
        } else {
            let (done, ()) = tokio::join!(sub.submit(&o, &m), async {
                wait_state(&css, State::CpPending).await;
                running(end);
                match end {
                    "complete" => final_status(),
                    "close" => css.close(SCH).await.unwrap(),
                    "remove" => css.remove(SCH).await.unwrap(),
                    _ => {
                        let cleared = css.unmap_guest_range(GuestRange::new(0x2080, 1)).await;
                        assert_eq!(cleared.unwrap(), vec![SCH]);
                    }
                }
            });
            assert_eq!(done.is_ok(), end == "complete", "{end}: {done:?}");
        }
        let s = rec.stats();
        assert_eq!((s.pins, s.unpins, s.allocs, s.frees), (1, 1, 1, 1), "{end}");
        assert!(rec.live_pins().is_empty() && rec.live_areas() == 0, "{end}");
        assert!(rec.violations().is_empty(), "{end}: {:?}", rec.violations());
    }
}

#[tokio::test]
async fn remove_with_io_outstanding() {
    let released = counter();
    let (mut be, tx) = mock_base(vec![(SCH, schib(5, true))]);
    be.expect_start().returning(|_, _| Ok(ConditionCode::Cc0));
    be.expect_disable().returning(|_| Ok(ConditionCode::Cc0));
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let (done, removed) = during_io(&css, &sub, async { css.remove(SCH).await }).await;
    removed.unwrap();
    assert!(matches!(done, Err(CssError::Gone(_))), "{done:?}");
    assert_eq!(released.load(Ordering::SeqCst), 1);
    // Late status for the removed subchannel is dropped.
    tx.send(BackendEvent::Interrupt {
        sch: SCH,
        irb: final_irb(0),
    })
    .unwrap();
    tokio::task::yield_now().await;
    assert!(css.is_empty());
    let e = sub.submit(&orb(1, 0x1000), &mem()).await.unwrap_err();
    assert_eq!(e.kind(), CssErrorKind::NoDevice, "{e}");
}

#[tokio::test]
async fn release_request_is_an_event() {
    let (be, tx) = mock_base(vec![(SCH, schib(5, true))]);
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let mut events = sub.events();
    tx.send(BackendEvent::ReleaseRequest { sch: SCH }).unwrap();
    assert_eq!(
        events.recv().await.unwrap(),
        SubchannelEvent::ReleaseRequested
    );
}

#[tokio::test]
async fn vary_off_of_the_path_in_use_ends_the_program() {
    let released = counter();
    let mut s = schib(5, true);
    s.pmcw.lpum = 0x40; // the running program uses the second path, CHPID 0x11
    let (mut be, tx) = mock_base(vec![(SCH, s)]);
    be.expect_start().returning(|_, _| Ok(ConditionCode::Cc0));
    be.expect_cancel()
        .times(1)
        .returning(|sch| Err(BackendError::unsupported("cancel").on(sch)));
    halt_ends_program(&mut be, &tx, 1);
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    let (done, ()) = during_io(&css, &sub, async {
        // Another path's vary does not touch the program.
        css.vary_path(0x10, false).await;
        css.vary_path(0x11, false).await;
    })
    .await;
    let done = done.unwrap();
    assert!(done.irb.scsw.ctrl.fc().contains(FunctionControl::HALT));
    assert_eq!(css.cached_schib(SCH).unwrap().pmcw.lpm, 0x00);
    assert_eq!(released.load(Ordering::SeqCst), 1);
}

/// The interruption of a close's own halt can reach the event task after the close ended
/// (the quiesce's retry found the subchannel idle first). It must not disable the subchannel
/// again: that disable, issued outside any lock, could land after the next open's enable and
/// leave an "open" subchannel whose every START gets cc 3. Seen under qemu-user on the
/// conformance case `lifecycle::close_with_io_running`.
#[tokio::test(start_paused = true)]
async fn a_late_halt_interruption_does_not_disable_the_next_open() {
    let (mut be, tx) = mock_base(vec![(SCH, schib(5, true))]);
    be.expect_start().returning(|_, _| Ok(ConditionCode::Cc0));
    let disables = Arc::new(AtomicUsize::new(0));
    let d = disables.clone();
    be.expect_disable().returning(move |_| {
        // Busy while the program runs (first call), disabled on the quiesce's retry.
        Ok(if d.fetch_add(1, Ordering::SeqCst) == 0 {
            ConditionCode::Cc2
        } else {
            ConditionCode::Cc0
        })
    });
    be.expect_cancel()
        .returning(|sch| Err(BackendError::unsupported("cancel").on(sch)));
    // The halt is accepted; its interruption is held back until after the close.
    let held = Arc::new(std::sync::Mutex::new(None));
    let h = held.clone();
    be.expect_halt().times(1).returning(move |sch| {
        let mut i = final_irb(0x1008 + OFFSET);
        i.scsw.ctrl = i
            .scsw
            .ctrl
            .with_fc(FunctionControl::START | FunctionControl::HALT);
        *h.lock().unwrap() = Some(BackendEvent::Interrupt { sch, irb: i });
        Ok(ConditionCode::Cc0)
    });
    let css: Css<MockBe, Offset> = Css::with_config(
        Arc::new(be),
        CssConfig {
            quiesce_retries: 4,
            quiesce_wait: Duration::from_millis(100),
        },
    )
    .unwrap();
    css.probe().await.unwrap();
    let mut reports = css.subscribe_reports();
    let sub = css.open(SCH).await.unwrap();
    let (done, closed) = during_io(&css, &sub, async { css.close(SCH).await }).await;
    closed.unwrap();
    assert!(matches!(done, Err(CssError::Closed(_))), "{done:?}");
    assert_eq!(disables.load(Ordering::SeqCst), 2);
    // The late interruption, then a marker report: the event task handles events in order,
    // so once the marker is seen the interruption was handled, disable and all.
    // (With a real backend that disable takes a while, and an open in between loses its
    // enable to it; here it would show as a third disable.)
    let late = held.lock().unwrap().take().expect("the halt was issued");
    tx.send(late).unwrap();
    let marker = Crw::new()
        .with_rsc(crw::rsc::CHANNEL_PATH)
        .with_erc(crw::erc::INIT)
        .with_rsid(0x77);
    tx.send(BackendEvent::ChannelReport(marker)).unwrap();
    assert_eq!(reports.recv().await.unwrap(), marker);
    assert_eq!(
        disables.load(Ordering::SeqCst),
        2,
        "the late interruption of the close's halt disabled the subchannel a second time"
    );
    let sub = css.open(SCH).await.unwrap();
    assert_eq!(sub.state(), State::Idle);
}

/// Status for a subchannel nobody opened (and that may be enabled) is answered with a
/// disable, as Linux's `fsm_disabled_irq` does; an open that comes while that disable is
/// under way waits for it, so the enable is the last word.
#[tokio::test]
async fn an_open_waits_for_the_disable_of_unowned_status() {
    let (mut be, tx) = mock_base(vec![(SCH, schib(5, true))]);
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let c = calls.clone();
    be.expect_disable().returning(move |_| {
        c.lock().unwrap().push("disable");
        Ok(ConditionCode::Cc0)
    });
    let css: Css<MockBe, Offset> = Css::new(Arc::new(be)).unwrap();
    css.probe().await.unwrap();
    let mut reports = css.subscribe_reports();
    tx.send(BackendEvent::Interrupt {
        sch: SCH,
        irb: final_irb(0),
    })
    .unwrap();
    let marker = Crw::new()
        .with_rsc(crw::rsc::CHANNEL_PATH)
        .with_erc(crw::erc::INIT)
        .with_rsid(0x77);
    tx.send(BackendEvent::ChannelReport(marker)).unwrap();
    assert_eq!(reports.recv().await.unwrap(), marker);
    assert_eq!(*calls.lock().unwrap(), ["disable"]);
    // Known disabled now: a second stray status needs no second disable.
    tx.send(BackendEvent::Interrupt {
        sch: SCH,
        irb: final_irb(0),
    })
    .unwrap();
    tx.send(BackendEvent::ChannelReport(marker)).unwrap();
    assert_eq!(reports.recv().await.unwrap(), marker);
    assert_eq!(*calls.lock().unwrap(), ["disable"]);
    let sub = css.open(SCH).await.unwrap();
    assert_eq!(sub.state(), State::Idle);
}
