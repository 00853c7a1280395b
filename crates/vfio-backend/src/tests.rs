// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The backend's logic against the fake kernel: opening with both APIs and every failure on
//! the way, the io region protocol, errno mapping, interrupts, the mapper and teardown.

use std::sync::Arc;
use std::time::Duration;

use ccw_translate::{DmaAccess, GuestRange, MapError, Mapper};
use ccw_types::{CommandOrb, Crw, DeviceStatus, Irb, SubchannelId, SubchannelStatus};
use css_core::{Backend, BackendErrorKind, BackendEvent, ConditionCode, EventReceiver};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::fake::{FakeSys, UUID};
use crate::{Api, ApiChoice, VfioBackend, VfioDevice, VfioOptions, uapi};

const SCH: SubchannelId = SubchannelId::new(0, 0, 0);

fn open(fake: &FakeSys, api: ApiChoice) -> Result<VfioDevice, css_core::BackendError> {
    VfioDevice::open_with(fake.sys(), UUID, api)
}

fn backend(fake: &FakeSys, api: ApiChoice) -> VfioBackend {
    let dev = open(fake, api).expect("open");
    VfioBackend::from_device(dev, &VfioOptions::default()).expect("backend")
}

async fn next(rx: &mut EventReceiver) -> BackendEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("event within 5 s")
        .expect("channel open")
}

/// SCSW after SENSE ID on the guest's virtio-blk device (s390x-guest.md).
fn sense_id_irb() -> [u8; 96] {
    let mut irb = [0u8; 96];
    irb[..12].copy_from_slice(&[
        0x00, 0x80, 0x40, 0x07, 0x7f, 0xf0, 0x00, 0x08, 0x0c, 0, 0, 0,
    ]);
    irb
}

#[test]
fn opens_legacy_like_the_guest_device() {
    let fake = FakeSys::vfio_ccw();
    let dev = open(&fake, ApiChoice::Legacy).unwrap();
    assert_eq!(dev.api(), Api::Legacy);
    assert_eq!(dev.subchannel(), SCH);
    assert_eq!(dev.uuid(), UUID);
    assert_eq!(dev.info().flags, 0x11);
    let r = dev.regions();
    assert_eq!((r.io.size, r.io.offset), (124, 0));
    assert_eq!(r.async_cmd.unwrap().offset, 0x400);
    assert_eq!(r.schib.unwrap().offset, 0x800);
    assert_eq!(r.crw.unwrap().offset, 0xC00);
    assert_eq!(dev.irqs().len(), 3);
    assert_eq!(fake.state().iommu_type, Some(3), "type1v2 preferred");
    assert_eq!(dev.read_schib().unwrap().pmcw.flags.devno(), 5);
    drop(dev);
    fake.assert_clean();
}

#[test]
fn legacy_falls_back_to_type1() {
    let fake = FakeSys::vfio_ccw();
    fake.state().extensions.remove(&3);
    let dev = open(&fake, ApiChoice::Legacy).unwrap();
    assert_eq!(fake.state().iommu_type, Some(1));
    drop(dev);
    fake.state().extensions.clear();
    let e = open(&fake, ApiChoice::Legacy).unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::Unsupported);
    assert!(e.detail.contains("type1"), "{e}");
    fake.assert_clean();
}

#[test]
fn opens_cdev_and_tears_down() {
    let fake = FakeSys::vfio_ccw();
    let dev = open(&fake, ApiChoice::Cdev).unwrap();
    assert_eq!(dev.api(), Api::Cdev);
    {
        let st = fake.state();
        assert!(st.bound && st.attached && st.ioas.is_some());
    }
    dev.dma_map(0x1000_0000, 0x10000, 0x1000).unwrap();
    drop(dev);
    fake.assert_clean();
    assert!(
        fake.state()
            .calls
            .contains(&"VFIO_DEVICE_DETACH_IOMMUFD_PT")
    );
}

/// The owning handles release in the kernel's order: interrupts, the device fd (detached from
/// its IOAS first), the DMA mappings, then the IOMMU context (group out of the container
/// before either closes; the IOAS destroyed before the iommufd closes).
#[test]
fn teardown_releases_in_order() {
    for (api, want) in [
        (
            ApiChoice::Legacy,
            &[
                "VFIO_DEVICE_SET_IRQS",
                "close device",
                "VFIO_IOMMU_UNMAP_DMA",
                "VFIO_GROUP_UNSET_CONTAINER",
                "close group",
                "close container",
            ][..],
        ),
        (
            ApiChoice::Cdev,
            &[
                "VFIO_DEVICE_SET_IRQS",
                "VFIO_DEVICE_DETACH_IOMMUFD_PT",
                "close cdev",
                "IOMMU_IOAS_UNMAP",
                "IOMMU_DESTROY",
                "close iommufd",
            ][..],
        ),
    ] {
        let fake = FakeSys::vfio_ccw();
        let dev = open(&fake, api).unwrap();
        dev.dma_map(0x1000_0000, 0x10000, 0x1000).unwrap();
        let efd = vmm_sys_util::eventfd::EventFd::new(libc::EFD_NONBLOCK).unwrap();
        dev.set_irq(uapi::VFIO_CCW_IO_IRQ_INDEX, Some(&efd))
            .unwrap();
        let before = fake.state().calls.len();
        drop(dev);
        let calls = fake.state().calls[before..].to_vec();
        assert_eq!(calls, want, "{api:?}");
        fake.assert_clean();
    }
}

#[test]
fn auto_prefers_cdev_and_falls_back_to_legacy() {
    let fake = FakeSys::vfio_ccw();
    assert_eq!(open(&fake, ApiChoice::Auto).unwrap().api(), Api::Cdev);
    fake.assert_clean();

    fake.remove_node("/dev/iommu");
    assert_eq!(open(&fake, ApiChoice::Auto).unwrap().api(), Api::Legacy);
    fake.assert_clean();

    fake.remove_node("/dev/vfio/vfio");
    let e = open(&fake, ApiChoice::Auto).unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::NoDevice);
    assert!(
        e.detail.contains("cdev API"),
        "both failures are named: {e}"
    );
    fake.assert_clean();
}

#[test]
fn cdev_without_vfio_dev_directory_is_unsupported_or_missing() {
    let fake = FakeSys::vfio_ccw();
    fake.remove_dir(&format!("/sys/bus/mdev/devices/{UUID}/vfio-dev"));
    let e = open(&fake, ApiChoice::Cdev).unwrap_err();
    assert_eq!(e.errno, Some(libc::ENOENT));
    fake.assert_clean();
}

/// Every system call of opening fails once in turn: each failure is a typed error and leaves
/// nothing behind.
#[test]
fn every_open_failure_cleans_up() {
    let legacy = [
        "readlink",
        "open container",
        "VFIO_GET_API_VERSION",
        "VFIO_CHECK_EXTENSION",
        "open group",
        "VFIO_GROUP_GET_STATUS",
        "VFIO_GROUP_SET_CONTAINER",
        "VFIO_SET_IOMMU",
        "VFIO_GROUP_GET_DEVICE_FD",
        "VFIO_DEVICE_GET_INFO",
        "VFIO_DEVICE_GET_REGION_INFO",
        "VFIO_DEVICE_GET_IRQ_INFO",
    ];
    let cdev = [
        "read_dir",
        "open iommufd",
        "open cdev",
        "VFIO_DEVICE_BIND_IOMMUFD",
        "IOMMU_IOAS_ALLOC",
        "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
        "VFIO_DEVICE_GET_INFO",
        "VFIO_DEVICE_GET_REGION_INFO",
        "VFIO_DEVICE_GET_IRQ_INFO",
    ];
    for (api, ops) in [
        (ApiChoice::Legacy, &legacy[..]),
        (ApiChoice::Cdev, &cdev[..]),
    ] {
        for op in ops {
            let fake = FakeSys::vfio_ccw();
            fake.fail(op, libc::EIO);
            let e = open(&fake, api).expect_err(op);
            assert_eq!(e.errno, Some(libc::EIO), "{op}: {e}");
            fake.assert_clean();
        }
    }
}

#[test]
fn rejects_non_ccw_and_non_viable() {
    let fake = FakeSys::vfio_ccw();
    fake.state().info.flags = 0x3; // a PCI device
    let e = open(&fake, ApiChoice::Legacy).unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::Unsupported);
    assert!(e.detail.contains("not a vfio-ccw device"), "{e}");
    fake.assert_clean();

    let fake = FakeSys::vfio_ccw();
    fake.state().group_flags = 0;
    let e = open(&fake, ApiChoice::Legacy).unwrap_err();
    assert!(e.detail.contains("not viable"), "{e}");
    fake.assert_clean();

    let fake = FakeSys::vfio_ccw();
    fake.state().irqs.clear();
    fake.state().info.num_irqs = 0;
    let e = open(&fake, ApiChoice::Legacy).unwrap_err();
    assert!(e.detail.contains("io interrupt"), "{e}");
    fake.assert_clean();
}

#[test]
fn names_by_uuid_or_sysfs_path() {
    let fake = FakeSys::vfio_ccw();
    let path = format!("/sys/bus/mdev/devices/{UUID}/");
    assert_eq!(
        VfioDevice::open_with(fake.sys(), &path, ApiChoice::Legacy)
            .unwrap()
            .uuid(),
        UUID
    );
    for bad in ["nope", "/sys/bus/mdev/devices/xyz", ""] {
        let e = VfioDevice::open_with(fake.sys(), bad, ApiChoice::Legacy).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::InvalidArgument, "{bad}");
    }
    let e = VfioDevice::open_with(
        fake.sys(),
        "00000000-0000-0000-0000-000000000000",
        ApiChoice::Auto,
    )
    .unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::NoDevice);
    fake.assert_clean();
}

#[test]
fn short_region_reads_are_typed_errors() {
    let fake = FakeSys::vfio_ccw();
    let dev = open(&fake, ApiChoice::Legacy).unwrap();
    fake.state().short_read.insert(2, 40);
    let e = dev.read_schib().unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::Io);
    assert!(e.detail.contains("short read: 40 of 52"), "{e}");
    fake.state().short_read.insert(0, 100);
    assert!(dev.read_io().unwrap_err().detail.contains("short read"));
}

#[test]
fn absent_optional_regions_are_unsupported() {
    let fake = FakeSys::vfio_ccw();
    fake.keep_regions(&[0]);
    let dev = open(&fake, ApiChoice::Legacy).unwrap();
    assert_eq!(
        dev.read_schib().unwrap_err().kind,
        BackendErrorKind::Unsupported
    );
    assert_eq!(
        dev.read_crw().unwrap_err().kind,
        BackendErrorKind::Unsupported
    );
    assert_eq!(
        dev.async_cmd(1).unwrap_err().kind,
        BackendErrorKind::Unsupported
    );
}

#[tokio::test]
async fn absent_regions_make_backend_ops_unsupported() {
    let fake = FakeSys::vfio_ccw();
    fake.keep_regions(&[0]);
    let b = backend(&fake, ApiChoice::Legacy);
    b.enable(SCH, 1).await.unwrap();
    assert_eq!(
        b.halt(SCH).await.unwrap_err().kind,
        BackendErrorKind::Unsupported
    );
    assert_eq!(
        b.clear(SCH).await.unwrap_err().kind,
        BackendErrorKind::Unsupported
    );
    assert_eq!(
        b.store_schib(SCH).await.unwrap_err().kind,
        BackendErrorKind::Unsupported
    );
    assert_eq!(
        b.probe().await.unwrap_err().kind,
        BackendErrorKind::Unsupported
    );
    assert_eq!(
        b.cancel(SCH).await.unwrap_err().kind,
        BackendErrorKind::Unsupported
    );
    assert_eq!(
        b.resume(SCH).await.unwrap_err().kind,
        BackendErrorKind::Unsupported
    );
    // The crw interrupt is not armed without the crw region.
    assert!(!fake.state().irq_fds.contains_key(&1));
    b.shutdown().await;
    fake.assert_clean();
}

#[tokio::test]
async fn start_writes_the_io_region_and_reports_the_irb() {
    let fake = FakeSys::vfio_ccw();
    let b = backend(&fake, ApiChoice::Legacy);
    let mut rx = b.take_events().unwrap();
    assert_eq!(b.take_events().unwrap_err().kind, BackendErrorKind::Closed);
    let (sch, schib) = b.probe().await.unwrap().remove(0);
    assert_eq!((sch, schib.pmcw.flags.devno()), (SCH, 5));

    assert_eq!(b.enable(SCH, 0xfeed).await.unwrap(), ConditionCode::Cc0);
    let orb = CommandOrb::new(0x1234_5678, 0x7ff0_0000).emit();
    assert_eq!(b.start(SCH, &orb).await.unwrap(), ConditionCode::Cc0);
    {
        let st = fake.state();
        let req = st.starts.last().unwrap();
        assert_eq!(req.orb_area, orb.short_bytes());
        assert_eq!(req.scsw_area, [0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
    fake.complete_io(sense_id_irb());
    let BackendEvent::Interrupt { sch, irb } = next(&mut rx).await else {
        panic!()
    };
    assert_eq!(sch, SCH);
    assert_eq!(irb, Irb::read_from(&sense_id_irb()).unwrap());
    assert_eq!(
        irb.scsw.device_status(),
        DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END
    );
    b.shutdown().await;
    fake.assert_clean();
}

#[test]
fn start_request_drops_the_orb_extension() {
    let mut orb = CommandOrb::new(0x1234_5678, 0x1000);
    orb.priorities = Some(ccw_types::OrbPriorities { css: 1, cu: 2 });
    let r = crate::start_request(&orb.emit());
    // Reference §13.2 ORB word 1 (F, P, H, LPM 0xFF) without X, and SCSW word 0 = 0x00004000.
    assert_eq!(
        r.orb_area,
        [
            0x12, 0x34, 0x56, 0x78, 0x00, 0xC2, 0xFF, 0x00, 0, 0, 0x10, 0
        ]
    );
    assert_eq!(&r.scsw_area[..4], &[0, 0, 0x40, 0]);
    assert_eq!(r.ret_code(), 0);
}

#[tokio::test]
async fn region_errnos_become_condition_codes() {
    let fake = FakeSys::vfio_ccw();
    let b = backend(&fake, ApiChoice::Legacy);
    let orb = CommandOrb::new(1, 0x7ff0_0000).emit();
    assert_eq!(
        b.start(SCH, &orb).await.unwrap(),
        ConditionCode::Cc3,
        "not enabled"
    );
    b.enable(SCH, 1).await.unwrap();
    let other = SubchannelId::new(0, 0, 9);
    assert_eq!(b.start(other, &orb).await.unwrap(), ConditionCode::Cc3);
    assert_eq!(
        b.store_schib(other).await.unwrap_err().kind,
        BackendErrorKind::NoDevice
    );
    assert!(b.mapper(other).is_err());

    for (errno, cc) in [
        (libc::EBUSY, ConditionCode::Cc2),
        (libc::ENODEV, ConditionCode::Cc3),
        (libc::EACCES, ConditionCode::Cc3),
    ] {
        fake.fail_next("write io", &[errno]);
        assert_eq!(b.start(SCH, &orb).await.unwrap(), cc, "errno {errno}");
        fake.fail_next("write cmd", &[errno]);
        assert_eq!(b.halt(SCH).await.unwrap(), cc, "halt errno {errno}");
    }
    // EAGAIN is retried.
    fake.fail_next("write io", &[libc::EAGAIN; 3]);
    let before = fake.state().starts.len();
    assert_eq!(b.start(SCH, &orb).await.unwrap(), ConditionCode::Cc0);
    assert_eq!(fake.state().starts.len(), before + 1);
    // ... but not forever.
    fake.fail("write io", libc::EAGAIN);
    let e = b.start(SCH, &orb).await.unwrap_err();
    assert_eq!((e.kind, e.sch), (BackendErrorKind::Again, Some(SCH)));
    // Anything else is a typed error that keeps the errno.
    fake.fail("write io", libc::EOPNOTSUPP);
    let e = b.start(SCH, &orb).await.unwrap_err();
    assert_eq!(
        (e.kind, e.errno),
        (BackendErrorKind::Unsupported, Some(libc::EOPNOTSUPP))
    );
    fake.fail("write io", libc::EINVAL);
    assert_eq!(
        b.start(SCH, &orb).await.unwrap_err().kind,
        BackendErrorKind::InvalidArgument
    );

    // The start that went through is still in progress: disable is cc 2 (busy), failed
    // starts did not change that.
    let mut rx = b.take_events().unwrap();
    assert_eq!(b.disable(SCH).await.unwrap(), ConditionCode::Cc2);
    // Its final status arrives: idle, disable works, and a disabled subchannel is cc 3.
    fake.complete_io(sense_id_irb());
    next(&mut rx).await;
    assert_eq!(b.disable(SCH).await.unwrap(), ConditionCode::Cc0);
    assert_eq!(b.clear(SCH).await.unwrap(), ConditionCode::Cc3);
    b.shutdown().await;
    fake.assert_clean();
}

#[tokio::test]
async fn busy_until_final_status() {
    let fake = FakeSys::vfio_ccw();
    let b = backend(&fake, ApiChoice::Legacy);
    let mut rx = b.take_events().unwrap();
    b.enable(SCH, 1).await.unwrap();
    // A failed start leaves an idle subchannel idle.
    fake.fail_next("write io", &[libc::EBUSY]);
    let orb = CommandOrb::new(1, 0x7ff0_0000).emit();
    assert_eq!(b.start(SCH, &orb).await.unwrap(), ConditionCode::Cc2);
    assert_eq!(b.disable(SCH).await.unwrap(), ConditionCode::Cc0);
    b.enable(SCH, 1).await.unwrap();
    // Intermediate status (subchannel and device still active) does not end the function.
    assert_eq!(b.start(SCH, &orb).await.unwrap(), ConditionCode::Cc0);
    let mut irb = sense_id_irb();
    // Word 0: FC start; AC subchannel + device active; SC intermediate + pending (PCI).
    irb[2..4].copy_from_slice(&[0x40, 0xC9]);
    fake.complete_io(irb);
    let BackendEvent::Interrupt { irb, .. } = next(&mut rx).await else {
        panic!()
    };
    assert!(!irb.scsw.is_final());
    assert_eq!(b.disable(SCH).await.unwrap(), ConditionCode::Cc2);
    // Halt: the function goes on until the halt's final status.
    assert_eq!(b.halt(SCH).await.unwrap(), ConditionCode::Cc0);
    assert_eq!(b.disable(SCH).await.unwrap(), ConditionCode::Cc2);
    fake.complete_io(sense_id_irb());
    next(&mut rx).await;
    assert_eq!(b.disable(SCH).await.unwrap(), ConditionCode::Cc0);
    b.shutdown().await;
    fake.assert_clean();
}

#[tokio::test]
async fn halt_and_clear_use_the_async_region() {
    let fake = FakeSys::vfio_ccw();
    let b = backend(&fake, ApiChoice::Cdev);
    b.enable(SCH, 1).await.unwrap();
    assert_eq!(b.halt(SCH).await.unwrap(), ConditionCode::Cc0);
    assert_eq!(b.clear(SCH).await.unwrap(), ConditionCode::Cc0);
    assert_eq!(
        fake.state().cmds,
        vec![uapi::VFIO_CCW_ASYNC_CMD_HSCH, uapi::VFIO_CCW_ASYNC_CMD_CSCH]
    );
    b.shutdown().await;
    fake.assert_clean();
}

#[tokio::test]
async fn unreadable_irb_becomes_a_channel_control_check() {
    let fake = FakeSys::vfio_ccw();
    let b = backend(&fake, ApiChoice::Legacy);
    let mut rx = b.take_events().unwrap();
    fake.state().short_read.insert(0, 60);
    fake.complete_io(sense_id_irb());
    let BackendEvent::Interrupt { irb, .. } = next(&mut rx).await else {
        panic!()
    };
    assert!(
        irb.scsw
            .subchannel_status()
            .contains(SubchannelStatus::CHANNEL_CONTROL_CHECK)
    );
    assert!(irb.scsw.is_final());
    // The next interruption is read normally again.
    fake.state().short_read.clear();
    fake.complete_io(sense_id_irb());
    let BackendEvent::Interrupt { irb, .. } = next(&mut rx).await else {
        panic!()
    };
    assert_eq!(irb.scsw.cstat, 0);
    b.shutdown().await;
}

#[tokio::test]
async fn channel_reports_and_release_requests() {
    let fake = FakeSys::vfio_ccw();
    let b = backend(&fake, ApiChoice::Legacy);
    let mut rx = b.take_events().unwrap();
    // Reference §13.4: subchannel, installed parameters modified, rsid 5.
    let crw = u32::from_be_bytes([0x03, 0x02, 0x00, 0x05]);
    fake.push_crw(crw);
    fake.push_crw(crw | 0x4000_0000);
    let mut got = Vec::new();
    for _ in 0..2 {
        let BackendEvent::ChannelReport(c) = next(&mut rx).await else {
            panic!()
        };
        got.push(c);
    }
    assert_eq!(got[0], Crw::from_bytes(crw.to_be_bytes()));
    assert_eq!(got[0].rsid(), 5);
    assert!(got[1].solicited());
    fake.request_release();
    assert_eq!(
        next(&mut rx).await,
        BackendEvent::ReleaseRequest { sch: SCH }
    );
    b.shutdown().await;
    fake.assert_clean();
}

/// Waits (yielding, bounded) until the interrupt task has read every queued channel report.
async fn crws_read(fake: &FakeSys) {
    for _ in 0..100_000 {
        if fake.state().crws.is_empty() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("channel reports never read");
}

/// Issue #15 item 7: a bounded event queue. A report storm overflows with the R bit and
/// the lost reports counted; interruptions wait for room and each IRB is read once.
#[tokio::test]
async fn bounded_events_overflow_reports_and_hold_back_interruptions() {
    let fake = FakeSys::vfio_ccw();
    let dev = open(&fake, ApiChoice::Legacy).unwrap();
    let options = VfioOptions {
        event_capacity: 3,
        ..VfioOptions::default()
    };
    let b = VfioBackend::from_device(dev, &options).unwrap();
    let mut rx = b.take_events().unwrap();
    // The interrupt task holds one slot for the next interruption: two reports fit.
    for rsid in 1..=6u32 {
        fake.push_crw(0x0302_0000 | rsid);
    }
    crws_read(&fake).await;
    let mut got = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        let BackendEvent::ChannelReport(c) = ev else {
            panic!("{ev:?}")
        };
        got.push((c.rsid(), c.overflow()));
    }
    assert_eq!(got, [(1, false), (2, false), (6, true)]);
    assert_eq!(rx.lost_reports(), 3);

    // Interruptions while the queue fills up: each IRB once, in order, none lost.
    let irb = |count: u8| {
        let mut i = sense_id_irb();
        i[11] = count;
        i
    };
    fake.push_crw(0x0302_0007);
    crws_read(&fake).await;
    for count in 1..=3 {
        fake.complete_io(irb(count));
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }
    assert!(matches!(next(&mut rx).await, BackendEvent::ChannelReport(c) if c.rsid() == 7));
    let mut counts = Vec::new();
    while counts.len() < 3 {
        match next(&mut rx).await {
            BackendEvent::Interrupt { irb, .. } => counts.push(irb.scsw.count.get()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(counts, [1, 2, 3]);
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(rx.try_recv().is_err(), "an IRB was read twice");
    b.shutdown().await;
    fake.assert_clean();
}

#[tokio::test]
async fn mapper_control_memory_and_guest_memory() {
    let fake = FakeSys::vfio_ccw();
    let b = backend(&fake, ApiChoice::Legacy);
    let m = b.mapper(SCH).unwrap();
    let vm = b.vfio_mapper().clone();
    let (win, win_len) = vm.control_window();
    assert_eq!(fake.state().dma.get(&win), Some(&(win_len as u64)));

    let area = m.alloc_control(24).unwrap();
    assert_eq!(area.addr % 8, 0);
    assert!(area.addr >= win && area.addr + 24 + 2048 <= win + win_len as u64);
    assert!(area.addr + area.len as u64 <= 1 << 31);
    m.write_control(&area, 8, &[1, 2, 3, 4]).unwrap();
    let mut back = [0u8; 12];
    vm.read_control(&area, 4, &mut back).unwrap();
    assert_eq!(back, [0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0]);
    assert!(matches!(
        m.write_control(&area, 22, &[0; 4]),
        Err(MapError::Invalid(_))
    ));

    // The 2 KiB read-ahead is never handed out.
    let big = m.alloc_control(win_len - 2048 - 24).unwrap();
    assert!(matches!(m.alloc_control(8), Err(MapError::Exhausted(_))));
    assert_eq!(big.addr + big.len as u64 + 2048, win + win_len as u64);
    m.free_control(big);
    let stale = ccw_translate::ControlArea {
        addr: area.addr,
        len: area.len,
        token: area.token,
    };
    m.free_control(area);
    m.free_control(stale); // double free: logged, not a panic
    assert_eq!(vm.outstanding_control(), 0);

    // Guest memory: identity IOVA, pins counted.
    let mem =
        Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0x10000), 0x20000)]).unwrap());
    b.attach_memory(mem.clone()).unwrap();
    assert_eq!(fake.state().dma.get(&0x10000), Some(&0x20000));
    let r = GuestRange::new(0x10100, 0x100);
    assert_eq!(m.pin(r, DmaAccess::Write).unwrap(), 0x10100);
    assert_eq!(vm.outstanding_pins(), 1);
    m.unpin(r);
    assert_eq!(vm.outstanding_pins(), 0);
    assert!(matches!(
        m.pin(GuestRange::new(0x8000, 8), DmaAccess::Read),
        Err(MapError::NotMapped(_))
    ));
    assert!(matches!(
        m.pin(GuestRange::new(0x10ff8, 16), DmaAccess::Read),
        Err(MapError::Invalid(_))
    ));
    // Overlapping memory is refused.
    let again =
        Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0x20000), 0x1000)]).unwrap());
    assert_eq!(
        b.attach_memory(again).unwrap_err().kind,
        BackendErrorKind::InvalidArgument
    );
    let in_window =
        Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(win), 0x1000)]).unwrap());
    assert!(b.attach_memory(in_window).is_err());

    // Teardown: the device lives until the last mapper handle is gone.
    drop(m);
    b.shutdown().await;
    assert!(
        fake.open_fd_count() > 0,
        "the mapper still holds the device"
    );
    drop(vm);
    fake.assert_clean();
}

#[tokio::test]
async fn failed_dma_map_of_memory_unmaps_what_was_mapped() {
    let fake = FakeSys::vfio_ccw();
    let b = backend(&fake, ApiChoice::Legacy);
    let mem = Arc::new(
        GuestMemoryMmap::<()>::from_ranges(&[
            (GuestAddress(0), 0x1000),
            (GuestAddress(0x4000), 0x1000),
        ])
        .unwrap(),
    );
    // The first region maps, the second fails.
    fake.script("VFIO_IOMMU_MAP_DMA", &[None, Some(libc::ENOMEM)]);
    let before = fake.state().dma.len();
    assert!(b.attach_memory(mem.clone()).is_err());
    assert_eq!(
        fake.state().dma.len(),
        before,
        "nothing of the failed attach stays mapped"
    );
    b.attach_memory(mem).unwrap();
    assert_eq!(fake.state().dma.len(), before + 2);
    b.shutdown().await;
    fake.assert_clean();
}

#[tokio::test]
async fn backend_setup_failures_clean_up() {
    for op in [
        "alloc_dma",
        "VFIO_IOMMU_MAP_DMA",
        "eventfd",
        "VFIO_DEVICE_SET_IRQS",
    ] {
        let fake = FakeSys::vfio_ccw();
        let dev = open(&fake, ApiChoice::Legacy).unwrap();
        fake.fail(op, libc::ENOMEM);
        let e = VfioBackend::from_device(dev, &VfioOptions::default()).expect_err(op);
        assert_eq!(e.errno, Some(libc::ENOMEM), "{op}: {e}");
        fake.state().fail.clear();
        fake.assert_clean();
    }
    let fake = FakeSys::vfio_ccw();
    let dev = open(&fake, ApiChoice::Legacy).unwrap();
    let bad = VfioOptions {
        control_iova: 0x8000_0000,
        ..VfioOptions::default()
    };
    let e = VfioBackend::from_device(dev, &bad).unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::InvalidArgument);
    fake.assert_clean();
}

#[tokio::test]
async fn reset_needs_the_reset_flag() {
    let fake = FakeSys::vfio_ccw();
    let b = backend(&fake, ApiChoice::Legacy);
    b.reset().unwrap();
    assert_eq!(fake.state().resets, 1);
    b.shutdown().await;

    let fake = FakeSys::vfio_ccw();
    fake.state().info.flags = 0x10;
    let dev = open(&fake, ApiChoice::Legacy).unwrap();
    assert_eq!(dev.reset().unwrap_err().kind, BackendErrorKind::Unsupported);
}

#[test]
fn dma_map_rejects_overlaps_and_unknown_unmaps() {
    let fake = FakeSys::vfio_ccw();
    let dev = open(&fake, ApiChoice::Legacy).unwrap();
    dev.dma_map(0x1000, 0x10000, 0x2000).unwrap();
    assert!(dev.dma_map(0x1000, 0x11000, 0x1000).is_err());
    assert!(dev.dma_map(0x1000, 0xf000, 0x2000).is_err());
    assert!(dev.dma_map(0x1000, 0, 0).is_err());
    dev.dma_map(0x1000, 0x12000, 0x1000).unwrap();
    assert!(dev.dma_unmap(0x10000, 0x1000).is_err());
    dev.dma_unmap(0x10000, 0x2000).unwrap();
    assert_eq!(dev.dma_mappings(), vec![(0x12000, 0x1000)]);
    drop(dev);
    fake.assert_clean();
}

#[test]
fn api_choice_parses() {
    assert_eq!("cdev".parse::<ApiChoice>().unwrap(), ApiChoice::Cdev);
    assert_eq!("legacy".parse::<ApiChoice>().unwrap(), ApiChoice::Legacy);
    assert_eq!("auto".parse::<ApiChoice>().unwrap(), ApiChoice::Auto);
    assert!("pci".parse::<ApiChoice>().is_err());
    assert_eq!(Api::Cdev.to_string(), "cdev");
}

#[test]
fn backend_outside_a_runtime_is_a_typed_error() {
    let fake = FakeSys::vfio_ccw();
    let dev = open(&fake, ApiChoice::Legacy).unwrap();
    let e = VfioBackend::from_device(dev, &VfioOptions::default()).unwrap_err();
    assert!(e.detail.contains("tokio runtime"), "{e}");
    fake.assert_clean();
}

/// css-core's driver over the backend and the fake kernel: probe, open (enable), submit a
/// program, completion with the SCSW mapped back, halt, close. The translator here is the
/// identity (the guest program already lives in IOVA space): what is tested is the
/// backend's side of the contract the conformance suite relies on.
mod css_driver {
    use super::*;
    use css_core::{Css, HostProgram, Translate, TranslateFailure};
    use vm_memory::GuestMemory;

    struct Identity(Orb);
    impl HostProgram for Identity {
        fn host_orb(&self) -> Orb {
            self.0
        }
        fn update_scsw(&self, _scsw: &mut ccw_types::Scsw) {}
        fn is_pinned(&self, _range: ccw_translate::GuestRange) -> bool {
            false
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;
    impl TranslateFailure for Never {
        fn errno(&self) -> ccw_types::Errno {
            ccw_types::Errno::Invalid
        }
        fn kind(&self) -> ccw_types::ErrorKind {
            ccw_types::ErrorKind::InvalidProgram
        }
        fn program_check(&self) -> Option<SubchannelStatus> {
            None
        }
    }

    struct Id;
    impl Translate for Id {
        type Program = Identity;
        type Error = Never;
        fn create() -> Self {
            Id
        }
        fn translate<M: GuestMemory + ?Sized>(
            &mut self,
            orb: &Orb,
            _mem: &M,
            _mapper: std::sync::Arc<dyn ccw_translate::Mapper>,
            _lpm: u8,
        ) -> Result<Identity, Never> {
            Ok(Identity(*orb))
        }
    }

    use ccw_types::Orb;

    #[tokio::test]
    async fn probe_open_submit_halt_close() {
        let fake = FakeSys::vfio_ccw();
        fake.state().auto_complete = Some(sense_id_irb());
        let b = Arc::new(backend(&fake, ApiChoice::Cdev));
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
        let css: Css<VfioBackend, Id> = Css::new(b.clone()).unwrap();
        assert_eq!(css.probe().await.unwrap(), vec![SCH]);
        let sch = css.open(SCH).await.unwrap();
        let done = sch
            .submit(&CommandOrb::new(0xabc, 0x1000).emit(), &mem)
            .await
            .unwrap();
        assert_eq!(done.intparm, 0xabc);
        assert_eq!(done.irb.scsw.cpa.get(), 0x1008);
        assert_eq!(
            done.irb.scsw.device_status(),
            DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END
        );
        assert_eq!(sch.schib().await.unwrap().pmcw.flags.devno(), 5);
        sch.close().await.unwrap();
        drop(css);
        let b = Arc::try_unwrap(b).expect("css released the backend");
        b.shutdown().await;
        fake.assert_clean();
    }
}

/// Issue #15 item 9 against the fake kernel: css-core with the real translator pins the
/// guest's data through the VFIO mapper; the VMM unmaps that range while the program runs.
/// The subchannel is cleared (CSCH through the async region), the request answered once with
/// `Unmapped`, and the pins and control memory are back before the call returns.
#[tokio::test]
async fn unmap_under_a_running_program_clears_and_unpins() {
    use ccw_translate::GuestRange;
    use css_core::{Css, CssErrorKind, State};
    use vm_memory::Bytes;

    let fake = FakeSys::vfio_ccw();
    let b = Arc::new(backend(&fake, ApiChoice::Cdev));
    let mem =
        Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0x10000), 0x20000)]).unwrap());
    b.attach_memory(mem.clone()).unwrap();
    let vm = b.vfio_mapper().clone();
    let css: Css<VfioBackend> = Css::new(b.clone()).unwrap();
    css.probe().await.unwrap();
    let sub = css.open(SCH).await.unwrap();
    // READ 16 bytes into 0x12000 (format 1, SLI).
    let ccw = [0x02, 0x20, 0x00, 0x10, 0x00, 0x01, 0x20, 0x00];
    mem.write_slice(&ccw, GuestAddress(0x11000)).unwrap();
    let orb = CommandOrb::new(5, 0x11000).emit();
    let (done, cleared) = tokio::join!(sub.submit(&orb, &*mem), async {
        while css.state(SCH).unwrap() != State::CpPending {
            tokio::task::yield_now().await;
        }
        assert_eq!(vm.outstanding_pins(), 1);
        let kernel = async {
            while !fake.state().cmds.contains(&uapi::VFIO_CCW_ASYNC_CMD_CSCH) {
                tokio::task::yield_now().await;
            }
            // The clear function completes: FC clear, status pending.
            let mut irb = [0u8; 96];
            irb[..4].copy_from_slice(&[0x00, 0x80, 0x10, 0x01]);
            fake.complete_io(irb);
        };
        let (cleared, ()) = tokio::join!(
            css.unmap_guest_range(GuestRange::new(0x12000, 0x1000)),
            kernel
        );
        assert_eq!(
            vm.outstanding_pins(),
            0,
            "pins released before the call returned"
        );
        assert_eq!(vm.outstanding_control(), 0);
        cleared
    });
    assert_eq!(cleared.unwrap(), vec![SCH]);
    assert_eq!(done.unwrap_err().kind(), CssErrorKind::Unmapped);
    assert_eq!(sub.state(), State::Idle);
    sub.close().await.unwrap();
    drop((css, vm));
    let b = Arc::try_unwrap(b).expect("css released the backend");
    b.shutdown().await;
    fake.assert_clean();
}

#[tokio::test]
async fn failed_setup_on_a_shared_device_leaves_no_trigger() {
    let fake = FakeSys::vfio_ccw();
    let dev = Arc::new(open(&fake, ApiChoice::Legacy).unwrap());
    // io and crw connect, req fails.
    fake.script("VFIO_DEVICE_SET_IRQS", &[None, None, Some(libc::EINVAL)]);
    let e = VfioBackend::from_device(dev.clone(), &VfioOptions::default()).unwrap_err();
    assert_eq!(e.errno, Some(libc::EINVAL));
    assert!(
        fake.state().irq_fds.is_empty(),
        "{:?}",
        fake.state().irq_fds.keys()
    );
    assert!(dev.dma_mappings().is_empty(), "control memory unmapped");
    drop(dev);
    fake.assert_clean();
}

/// Issue #17 step 6: an IOAS shared by several devices (QEMU's `-object iommufd`). The guest
/// memory is mapped once in it and every device reaches it; a device going away leaves the
/// IOAS and the guest mapping to the others; the last holder destroys it.
#[tokio::test]
async fn a_shared_ioas_maps_guest_memory_once_and_outlives_its_devices() {
    let fake = FakeSys::vfio_ccw();
    let ioas = crate::SharedIoas::open_with(&fake.sys()).unwrap();
    let mem = Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap());
    ioas.map_guest_memory(mem.clone()).unwrap();
    let e = ioas.map_guest_memory(mem.clone()).unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::InvalidArgument, "{e}");
    assert_eq!(fake.state().dma.get(&0), Some(&0x10000), "mapped once");

    for round in 0..2 {
        let dev = VfioDevice::open_in_with(fake.sys(), UUID, &ioas).unwrap();
        assert_eq!(dev.api(), Api::Cdev);
        assert_eq!(dev.shared_ioas().map(|s| s.id()), Some(ioas.id()));
        let b = VfioBackend::from_device(dev, &VfioOptions::default()).unwrap();
        let m = b.vfio_mapper().clone();
        // Guest memory is reachable through the shared mapping, nothing else is.
        assert_eq!(
            m.pin(GuestRange::new(0x2000, 0x100), DmaAccess::Read),
            Ok(0x2000)
        );
        m.unpin(GuestRange::new(0x2000, 0x100));
        assert!(matches!(
            m.pin(GuestRange::new(0x2_0000, 0x100), DmaAccess::Read),
            Err(MapError::NotMapped(_))
        ));
        // Mapping it again per device would collide in the IOAS: refused with the reason.
        let e = m.attach_memory(mem.clone()).unwrap_err();
        assert!(e.detail.contains("SharedIoas::map_guest_memory"), "{e}");
        drop(m);
        b.shutdown().await;
        let st = fake.state();
        assert!(
            st.ioas.is_some(),
            "round {round}: the IOAS went with its device"
        );
        assert_eq!(
            st.dma.len(),
            1,
            "round {round}: only the guest mapping stays: {:?}",
            st.dma
        );
        assert!(!st.calls.contains(&"IOMMU_DESTROY"));
        assert!(!st.attached, "round {round}: device still attached");
    }
    let before = fake.state().calls.len();
    drop(ioas);
    assert_eq!(
        fake.state().calls[before..],
        ["IOMMU_IOAS_UNMAP", "IOMMU_DESTROY", "close iommufd"]
    );
    fake.assert_clean();
}

/// Two devices in one IOAS with the same control window: the second map collides, and the
/// error says how to fix it.
#[tokio::test]
async fn devices_sharing_an_ioas_need_their_own_control_windows() {
    let fake = FakeSys::vfio_ccw();
    let ioas = crate::SharedIoas::open_with(&fake.sys()).unwrap();
    let a = VfioDevice::open_in_with(fake.sys(), UUID, &ioas).unwrap();
    let a = VfioBackend::from_device(a, &VfioOptions::default()).unwrap();
    let b = VfioDevice::open_in_with(fake.sys(), UUID, &ioas).unwrap();
    let e = VfioBackend::from_device(b, &VfioOptions::default()).unwrap_err();
    assert_eq!(e.errno, Some(libc::EEXIST), "{e}");
    assert!(e.detail.contains("control_iova"), "{e}");
    a.shutdown().await;
    drop(ioas);
    fake.assert_clean();
}

/// Pre-opened descriptors (a management layer passed them, as QEMU's `fd=` and `iommufd=`
/// take them): a cdev with an iommufd and IOAS of its own, and a cdev in an IOAS allocated
/// in the caller's iommufd. Everything adopted is closed with the device.
#[test]
fn devices_open_from_pre_opened_descriptors() {
    use std::os::fd::OwnedFd;
    let stand_in = || -> OwnedFd { std::fs::File::open("/dev/null").unwrap().into() };
    let fake = FakeSys::vfio_ccw();
    fake.state().adopt.push_back(crate::fake::Node::Cdev);
    let dev = VfioDevice::from_cdev_fd_with(fake.sys(), stand_in(), SCH, None).unwrap();
    assert_eq!(
        (dev.api(), dev.subchannel(), dev.uuid()),
        (Api::Cdev, SCH, "")
    );
    assert_eq!(dev.read_schib().unwrap().pmcw.flags.devno(), 5);
    drop(dev);
    fake.assert_clean();

    fake.state()
        .adopt
        .extend([crate::fake::Node::Iommufd, crate::fake::Node::Cdev]);
    let ioas = crate::SharedIoas::from_iommufd_with(&fake.sys(), stand_in()).unwrap();
    let dev = VfioDevice::from_cdev_fd_with(fake.sys(), stand_in(), SCH, Some(&ioas)).unwrap();
    assert!(dev.shared_ioas().is_some());
    drop(dev);
    drop(ioas);
    fake.assert_clean();

    // A descriptor the kernel does not know: a clean error, nothing left open.
    let e = VfioDevice::from_cdev_fd_with(fake.sys(), stand_in(), SCH, None).unwrap_err();
    assert_eq!(e.errno, Some(libc::EBADF), "{e}");
    fake.assert_clean();
}
