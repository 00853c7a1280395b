// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The ECKD 3390 through the whole simulated path: programs shaped like Linux `dasd_eckd`'s
//! (Define Extent + Locate Record + data commands, IDALs, data chaining) laid out in guest
//! memory, translated by ccw-translate, run by the mock channel on the device, final status
//! checked in the SCSW.

use std::sync::Arc;

use ccw_dasd::{
    DasdSession, EckdProgram, LayoutOptions, Payload, ProgramCcw, ProgramOutcome, SessionErrorKind,
    lay_out_native,
};
use ccw_types::eckd::TrackAddr;
use ccw_types::{CcwFlags, SubchannelId, SubchannelStatus};
use css_core::{Backend, BackendEvent, ConditionCode};
use mock_backend::MockBackend;
use mock_backend::dasd::{CkdImage, CreateOptions, Eckd, Model3390, parse_vol1, sense};
use vm_memory::{GuestAddress, GuestMemoryMmap};

mod common;
use common::Scratch;

type Session = DasdSession<MockBackend>;

fn memory() -> Arc<GuestMemoryMmap> {
    Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap())
}

/// The image on a simulated subsystem as device `devno` of subchannel 0.0.0000.
async fn attach(img: CkdImage, devno: u16) -> Session {
    let mem = memory();
    let backend = MockBackend::builder()
        .subchannel(devno, Box::new(Eckd::new(img, devno)))
        .guest_memory(&*mem)
        .build()
        .unwrap();
    DasdSession::open(Arc::new(backend), mem, Some(SubchannelId::new(0, 0, 0)))
        .await
        .unwrap()
}

async fn session(dir: &Scratch, cyls: u32) -> Session {
    let opts = CreateOptions {
        cylinders: Some(cyls),
        volser: Some("LNX001".into()),
    };
    let img = CkdImage::create(&dir.file("d.3390"), Model3390::M1, &opts).unwrap();
    attach(img, 0x0300).await
}

/// Runs `prog` the way a driver on the channel subsystem itself does (no guest, no
/// translation): CCWs and IDALs in control memory, data pinned through the backend's mapper
/// ([`lay_out_native`]), started on the backend directly.
async fn run_native(
    backend: &MockBackend,
    events: &mut css_core::EventReceiver,
    mem: &GuestMemoryMmap,
    prog: &EckdProgram,
) -> ProgramOutcome {
    let sch = SubchannelId::new(0, 0, 0);
    let mapper = backend.mapper(sch).unwrap();
    let native = lay_out_native(prog, mem, ccw_dasd::PROGRAM_BASE, mapper, false).unwrap();
    assert_eq!(
        backend.start(sch, &native.orb.emit()).await.unwrap(),
        ConditionCode::Cc0
    );
    let irb = loop {
        match events.recv().await {
            Some(BackendEvent::Interrupt { sch: s, irb }) if s == sch && irb.scsw.is_final() => {
                break irb;
            }
            Some(_) => {}
            None => panic!("event stream ended"),
        }
    };
    let inputs = native.read_inputs(mem).unwrap();
    drop(native); // unpins and frees
    ProgramOutcome { irb, inputs }
}

const IDAL_CD: LayoutOptions = LayoutOptions {
    idal: true,
    data_chain_reads: true,
};

/// The sense of a unit check: concurrent sense from the IRB's ECW when the subchannel
/// presented it there, otherwise a basic Sense command.
async fn sense_of(s: &mut Session, out: &ProgramOutcome) -> [u8; 32] {
    if out.irb.ecw != [0; 32] {
        return out.irb.ecw;
    }
    s.sense().await.unwrap()
}

/// Compares transferred blocks without printing kilobytes on failure.
fn same(got: &[Vec<u8>], want: &[Vec<u8>]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} blocks, expected {}", got.len(), want.len()));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            let at = g.iter().zip(w).position(|(a, b)| a != b);
            return Err(format!(
                "block {i}: {} bytes vs {}, first difference at {at:?}",
                g.len(),
                w.len()
            ));
        }
    }
    Ok(())
}

fn block(track: u64, r: u8) -> Vec<u8> {
    (0..4096u32)
        .map(|i| (i as u8) ^ r ^ (track as u8).wrapping_mul(31))
        .collect()
}

#[tokio::test]
async fn format_write_read_back_like_dasd_eckd() {
    let dir = Scratch::new("rw");
    let mut s = session(&dir, 2).await;
    // Format cylinder 1 heads 0-2 with 12 x 4 KiB blocks per track (dasdfmt's layout).
    for head in 0..3u16 {
        let t = TrackAddr::new(1, head);
        let recs = vec![vec![0u8; 4096]; 12];
        let out = s
            .run(&EckdProgram::format_track(t, &recs), IDAL_CD)
            .await
            .unwrap();
        assert!(out.ok(), "format {t}: {}", out.irb);
    }
    // Write 14 blocks starting at record 11 of head 0: crosses onto head 1 (multitrack).
    let t = TrackAddr::new(1, 0);
    let data: Vec<Vec<u8>> = (0..14u8).map(|i| block(t.index(), i)).collect();
    let out = s
        .run(&EckdProgram::write_data(t, 11, &data), IDAL_CD)
        .await
        .unwrap();
    assert!(out.ok(), "write: {}", out.irb);
    assert_eq!(out.irb.scsw.count.get(), 0);
    // Read them back with IDALs and data-chained reads, then without either.
    for opts in [IDAL_CD, LayoutOptions::default()] {
        let out = s
            .run(&EckdProgram::read_data(t, 11, 14, 4096), opts)
            .await
            .unwrap();
        assert!(out.ok(), "read ({opts:?}): {}", out.irb);
        same(&out.inputs, &data).unwrap();
    }
    // Untouched blocks are still zero.
    let out = s
        .run(
            &EckdProgram::read_data(TrackAddr::new(1, 2), 3, 1, 4096),
            IDAL_CD,
        )
        .await
        .unwrap();
    same(&out.inputs, &[vec![0; 4096]]).unwrap();
}

#[tokio::test]
async fn label_and_counts_through_the_channel() {
    let dir = Scratch::new("label");
    let mut s = session(&dir, 1).await;
    let t0 = TrackAddr::new(0, 0);
    let out = s
        .run(&EckdProgram::read_key_data(t0, 3, 4, 80), IDAL_CD)
        .await
        .unwrap();
    assert!(out.ok(), "{}", out.irb);
    assert_eq!(parse_vol1(&out.inputs[0][4..]).as_deref(), Some("LNX001"));
    let out = s
        .run(&EckdProgram::read_counts(t0, 3), LayoutOptions::default())
        .await
        .unwrap();
    assert!(out.ok(), "{}", out.irb);
    let rec: Vec<u8> = out.inputs.iter().map(|c| c[4]).collect();
    assert_eq!(rec, [1, 2, 3]);
    let out = s.run(&EckdProgram::rcd(), IDAL_CD).await.unwrap();
    assert!(out.ok());
    assert_eq!(out.inputs[0][0], 0xC4);
}

/// Seek, Search ID Equal, TIC back to the search, Read Data: the loop pre-ECKD code (and IPL)
/// uses; the channel skips the TIC when the search presents status modifier. Runs the
/// programs as guest programs through css-core.
async fn tic_loop(tag: &str) {
    let dir = Scratch::new(tag);
    let mut s = session(&dir, 1).await;
    let t = TrackAddr::new(0, 4);
    let recs: Vec<Vec<u8>> = (1..=6u8).map(|r| vec![r; 512]).collect();
    let opts = LayoutOptions::default();
    assert!(
        s.run(&EckdProgram::format_track(t, &recs), opts)
            .await
            .unwrap()
            .ok()
    );
    let out = s
        .run(&EckdProgram::search_read(t, 5, 512), opts)
        .await
        .unwrap();
    assert!(out.ok(), "{}", out.irb);
    same(&out.inputs, &[vec![5; 512]]).unwrap();
    // A record that is not there: the loop ends with unit check, no record found.
    let out = s
        .run(&EckdProgram::search_read(t, 9, 512), opts)
        .await
        .unwrap();
    assert!(out.unit_check(), "{}", out.irb);
    let sns = sense_of(&mut s, &out).await;
    assert_eq!(sns[1], sense::NO_RECORD_FOUND);
    // Nothing stays pinned or allocated.
    let backend = s.backend().clone();
    s.close().await.unwrap();
    assert_eq!(
        backend.mapping_stats(),
        mock_backend::MappingStats::default()
    );
}

/// The same loop with CCWs in control memory (no translation): the channel's own TIC.
#[tokio::test]
async fn search_id_equal_tic_loop() {
    let dir = Scratch::new("tic");
    let opts = CreateOptions {
        cylinders: Some(1),
        volser: Some("LNX001".into()),
    };
    let img = CkdImage::create(&dir.file("d.3390"), Model3390::M1, &opts).unwrap();
    let mem = memory();
    let backend = MockBackend::builder()
        .subchannel(0x0300, Box::new(Eckd::new(img, 0x0300)))
        .guest_memory(&*mem)
        .build()
        .unwrap();
    let mut events = backend.take_events().unwrap();
    let sch = SubchannelId::new(0, 0, 0);
    backend.enable(sch, 0xD5D0_0000).await.unwrap();
    let t = TrackAddr::new(0, 4);
    let recs: Vec<Vec<u8>> = (1..=6u8).map(|r| vec![r; 512]).collect();
    let out = run_native(
        &backend,
        &mut events,
        &mem,
        &EckdProgram::format_track(t, &recs),
    )
    .await;
    assert!(out.ok(), "{}", out.irb);
    let out = run_native(
        &backend,
        &mut events,
        &mem,
        &EckdProgram::search_read(t, 5, 512),
    )
    .await;
    assert!(out.ok(), "{}", out.irb);
    same(&out.inputs, &[vec![5; 512]]).unwrap();
    let out = run_native(
        &backend,
        &mut events,
        &mem,
        &EckdProgram::search_read(t, 9, 512),
    )
    .await;
    assert!(out.unit_check(), "{}", out.irb);
    assert_eq!(
        backend.mapping_stats(),
        mock_backend::MappingStats::default()
    );
}

/// The same loop as a guest program through ccw-translate.
#[tokio::test]
async fn search_id_equal_tic_loop_translated() {
    tic_loop("tic-tr").await;
}

#[tokio::test]
async fn errors_present_unit_check_with_the_right_sense() {
    let dir = Scratch::new("err");
    let mut s = session(&dir, 2).await;
    // No such record.
    let out = s
        .run(
            &EckdProgram::read_data(TrackAddr::new(1, 2), 1, 1, 4096),
            IDAL_CD,
        )
        .await
        .unwrap();
    assert!(out.unit_check(), "{}", out.irb);
    let sns = sense_of(&mut s, &out).await;
    assert_eq!(sns[1], sense::NO_RECORD_FOUND);
    // Outside the extent: a Locate Record seeking past what Define Extent allowed.
    let mut prog = EckdProgram::read_data(TrackAddr::new(0, 3), 1, 1, 4096);
    let Payload::Out(lr) = &mut prog.ccws[1].payload else {
        panic!("read_data's second CCW is Locate Record");
    };
    lr[4..8].copy_from_slice(&TrackAddr::new(1, 0).to_cchh());
    let out = s.run(&prog, IDAL_CD).await.unwrap();
    assert!(out.unit_check());
    assert_eq!(sense_of(&mut s, &out).await[1], sense::FILE_PROTECTED);
    // Write under a read-only extent mask: command reject, file protected.
    let mut prog = EckdProgram::write_data(TrackAddr::new(0, 0), 3, &[vec![0x40; 80]]);
    let Payload::Out(de) = &mut prog.ccws[0].payload else {
        panic!("write_data's first CCW is Define Extent");
    };
    de[0] = ccw_dasd::mask::READ_ONLY;
    let out = s.run(&prog, IDAL_CD).await.unwrap();
    assert!(out.unit_check());
    let sns = sense_of(&mut s, &out).await;
    assert_eq!((sns[0], sns[1]), (sense::CMD_REJECT, sense::FILE_PROTECTED));
}

#[tokio::test]
async fn read_only_volume_is_write_inhibited() {
    let dir = Scratch::new("ro");
    drop(session(&dir, 1).await);
    let img = CkdImage::open(&dir.file("d.3390"), true).unwrap();
    let mut s = attach(img, 0x0301).await;
    let prog = EckdProgram::write_data(TrackAddr::new(0, 0), 3, &[vec![0x40; 80]]);
    let out = s.run(&prog, IDAL_CD).await.unwrap();
    assert!(out.unit_check());
    let sns = sense_of(&mut s, &out).await;
    assert_eq!(
        (sns[0], sns[1]),
        (sense::CMD_REJECT, sense::WRITE_INHIBITED)
    );
}

#[tokio::test]
async fn short_read_without_sli_is_incorrect_length() {
    let dir = Scratch::new("il");
    let mut s = session(&dir, 1).await;
    let t = TrackAddr::new(0, 1);
    assert!(
        s.run(&EckdProgram::format_track(t, &[vec![7; 4096]]), IDAL_CD)
            .await
            .unwrap()
            .ok()
    );
    let mut prog = EckdProgram::read_data(t, 1, 1, 4096);
    prog.ccws[2].payload = Payload::In(4000);
    let out = s.run(&prog, LayoutOptions::default()).await.unwrap();
    assert!(
        SubchannelStatus::from_bits(out.irb.scsw.cstat)
            .contains(SubchannelStatus::INCORRECT_LENGTH)
    );
    same(&out.inputs, &[vec![7; 4000]]).unwrap();
    // With SLI the same transfer ends normally.
    prog.ccws[2].flags = CcwFlags::SLI;
    let out = s.run(&prog, LayoutOptions::default()).await.unwrap();
    assert!(out.ok(), "{}", out.irb);
}

#[tokio::test]
async fn chained_write_is_durable_when_the_channel_ends_the_program() {
    let dir = Scratch::new("pgm");
    let mut s = session(&dir, 1).await;
    let t = TrackAddr::new(0, 3);
    let mut prog = EckdProgram::format_track(t, &[vec![9; 1000], vec![8; 1000]]);
    // A no-op with the suspend flag after the last write, in a program whose ORB does not
    // allow suspension: the channel ends the program with a program check when it fetches
    // that CCW, without asking the device again.
    prog.ccws.push(ProgramCcw {
        cmd: 0x03,
        flags: CcwFlags::S,
        payload: Payload::Out(vec![0; 8]),
    });
    let out = s.run(&prog, IDAL_CD).await.unwrap();
    assert!(
        SubchannelStatus::from_bits(out.irb.scsw.cstat).contains(SubchannelStatus::PROGRAM_CHECK),
        "{}",
        out.irb
    );
    // The records written before the check are in the image file now.
    let img = CkdImage::open(&dir.file("d.3390"), true).unwrap();
    let track = img.read_track(t).unwrap();
    assert_eq!(track.records.len(), 3);
    assert!(track.records[2].data == vec![8; 1000]);
}

/// Issue #15 item 8: the same program when the image cannot be written (its journal path is
/// a directory, so the journalled write fails): the track kept in memory after the chained
/// write does not reach the image, and the program ends in unit check with equipment-check
/// sense (besides the channel's program check), never as if the write had happened.
#[tokio::test]
async fn failed_write_back_at_the_end_of_the_chain_is_unit_check() {
    let dir = Scratch::new("wbfail");
    let mut s = session(&dir, 1).await;
    let t = TrackAddr::new(0, 3);
    std::fs::create_dir(dir.file("d.3390.journal")).unwrap();
    let mut prog = EckdProgram::format_track(t, &[vec![9; 1000], vec![8; 1000]]);
    prog.ccws.push(ProgramCcw {
        cmd: 0x03,
        flags: CcwFlags::S,
        payload: Payload::Out(vec![0; 8]),
    });
    let out = s.run(&prog, IDAL_CD).await.unwrap();
    assert!(out.unit_check(), "{}", out.irb);
    assert!(!out.ok());
    assert!(
        SubchannelStatus::from_bits(out.irb.scsw.cstat).contains(SubchannelStatus::PROGRAM_CHECK),
        "{}",
        out.irb
    );
    let sense = sense_of(&mut s, &out).await;
    assert_ne!(sense[0] & sense::EQUIPMENT_CHECK, 0, "{sense:02x?}");
    // Bytes 8-11 name the track (CCHH).
    assert_eq!(&sense[8..12], &t.to_cchh());
    // Nothing of the program reached the image.
    drop(s);
    std::fs::remove_dir(dir.file("d.3390.journal")).unwrap();
    let img = CkdImage::open(&dir.file("d.3390"), true).unwrap();
    assert_ne!(img.read_track(t).unwrap().records.len(), 3);
}

#[tokio::test]
async fn session_errors_have_a_kind() {
    let dir = Scratch::new("kind");
    let mut s = session(&dir, 1).await;
    let mut prog = EckdProgram::rdc();
    prog.ccws[0].cmd = 0x00; // invalid command code: the translator refuses it
    let e = s.run(&prog, LayoutOptions::default()).await.unwrap_err();
    assert_eq!(e.kind(), SessionErrorKind::Translate, "{e}");
}

#[tokio::test]
async fn multi_track_format_count_and_record_zero() {
    let dir = Scratch::new("mt");
    let mut s = session(&dir, 2).await;
    let first = TrackAddr::new(1, 2);
    let prog = EckdProgram::format_tracks(first, 4, 12, 4096);
    assert_eq!(prog.ccws.len(), 1 + 4 * 14);
    let out = s.run(&prog, IDAL_CD).await.unwrap();
    assert!(out.ok(), "{}", out.irb);
    for head in 2..6 {
        let t = TrackAddr::new(1, head);
        let out = s
            .run(&EckdProgram::read_count_of(t, 12), LayoutOptions::default())
            .await
            .unwrap();
        assert!(out.ok(), "{}", out.irb);
        let c = &out.inputs[0];
        assert_eq!(&c[..4], &t.to_cchh());
        assert_eq!(
            (c[4], c[5], u16::from_be_bytes([c[6], c[7]])),
            (12, 0, 4096)
        );
        // SLI, so no data chaining (SLI is ignored on a CCW that chains data).
        let idal = LayoutOptions {
            idal: true,
            data_chain_reads: false,
        };
        let out = s.run(&EckdProgram::read_r0(t, 64), idal).await.unwrap();
        assert!(out.ok(), "{}", out.irb);
        assert_eq!(&out.inputs[0][..8], &[0, 1, 0, head as u8, 0, 0, 0, 8]);
    }
    // Record 13 does not exist: Read Count wraps past the index and then finds nothing.
    let out = s
        .run(
            &EckdProgram::read_count_of(first, 14),
            LayoutOptions::default(),
        )
        .await
        .unwrap();
    assert!(out.unit_check(), "{}", out.irb);
}
