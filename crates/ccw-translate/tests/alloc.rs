// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A warm translator allocates nothing: translate + release (and a failing translate) make
//! zero heap allocations once the scratch buffers and the program pool have grown.

mod common;

use std::sync::Arc;

use ccw_testkit::alloc::{CountingAlloc, allocations};

use ccw_translate::testing::RecordingMapper;
use ccw_translate::{Limits, Translator};
use ccw_types::IdawFormat;
use common::*;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn warm_translate_and_release_allocate_nothing() {
    let mem = mem(0x200000);
    // Program A at 0x1000: 255 reads of 4 KiB through format-2 IDALs.
    let mut ccws = Vec::new();
    for i in 0..255u64 {
        let flags = if i == 254 { IDA } else { IDA | CC };
        ccws.push(ccw1(0x02, flags, 4096, (0x10000 + 8 * i) as u32));
        idal(
            &mem,
            0x10000 + 8 * i,
            IdawFormat::Format2K4,
            &[0x100000 + 4096 * i],
        );
    }
    chain(&mem, 0x1000, &ccws);
    // Program B at 0x3000: two segments, direct data, a TIC back.
    chain(
        &mem,
        0x3000,
        &[ccw1(0x63, CC, 16, 0x20000), ccw1(0x08, 0, 0, 0x3800)],
    );
    chain(
        &mem,
        0x3800,
        &[ccw1(0x86, CC, 0x3000, 0x21000), ccw1(0x08, 0, 0, 0x3000)],
    );
    // Program C at 0x4000: fails (invalid command) after pinning.
    chain(
        &mem,
        0x4000,
        &[ccw1(0x02, CC, 0x100, 0x20000), ccw1(0x00, 0, 1, 0)],
    );

    let m = Arc::new(RecordingMapper::new());
    // The same programs through a mapper with half of program A's data premapped.
    let pre = Arc::new(RecordingMapper::new().with_premapped(0, 0x100000 + 4096 * 128));
    let mut t = Translator::new(Limits::default());
    let round = |t: &mut Translator| {
        for m in [&m, &pre] {
            for cpa in [0x1000u32, 0x3000] {
                let p = t.translate(&orb1(cpa), &mem, m.clone(), 0x80).unwrap();
                drop(p);
            }
            assert!(t.translate(&orb1(0x4000), &mem, m.clone(), 0x80).is_err());
        }
    };
    for _ in 0..3 {
        round(&mut t);
    }
    let before = allocations();
    assert!(before > 0, "the counting allocator counts");
    for _ in 0..50 {
        round(&mut t);
    }
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "heap allocations in 300 warm translations"
    );
    assert!(m.live_pins().is_empty() && pre.live_pins().is_empty());
    assert!(m.violations().is_empty() && pre.violations().is_empty());
}
