// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Fuzzes ccwctl's channel-program text parser and assembler: arbitrary text must parse or
//! fail with a positioned error, never panic; whatever parses must lay out in guest memory or
//! fail with a positioned error, and what it lays out must agree with what was parsed.

#![no_main]

use std::path::Path;

use ccwctl::assemble::Assembled;
use ccwctl::program::{Data, Program};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    // Data files exist and are small, so `file("...")` paths are exercised too.
    let mut files = |p: &Path| Ok(p.as_os_str().as_encoded_bytes().to_vec());
    let program = match Program::parse(&src, "fuzz.ccw", &mut files) {
        Ok(p) => p,
        Err(e) => {
            let line = e.to_string();
            assert!(line.starts_with("fuzz.ccw:"), "{line}");
            assert!(e.pos.line >= 1 && e.pos.column >= 1, "{line}");
            return;
        }
    };
    assert!(!program.ccws.is_empty());
    for c in &program.ccws {
        if let Some(t) = c.tic_target {
            assert!(t < program.ccws.len());
        }
        if let Data::Buffer { init, .. } = &c.data {
            assert!(init.len() <= usize::from(c.count));
        }
    }
    if let Ok(asm) = Assembled::new(&program) {
        assert_eq!(asm.placed.len(), program.ccws.len());
        for (p, c) in asm.placed.iter().zip(&program.ccws) {
            assert_eq!(
                (p.ccw.cmd, p.ccw.count, p.ccw.flags),
                (c.cmd, c.count, c.flags)
            );
            assert_eq!(
                asm.index_of(p.addr).map(|i| asm.placed[i].addr),
                Some(p.addr)
            );
        }
    }
});
