// SPDX-License-Identifier: Apache-2.0 OR MIT

//! What the DASD integration tests share.

use std::path::PathBuf;

use ccw_dasd::{EckdProgram, Payload, ProgramError};
use ccw_types::DeviceStatus;
use mock_backend::dasd::{Eckd, SliceData};

/// A scratch directory, removed on drop.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory named after `tag` and the process.
    pub(crate) fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("ccw-dasd-it-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    /// A path inside it.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `prog` directly against `dev`, without a channel (offline, as Hercules' tools do):
/// command chaining, a TIC jumps, status modifier skips the next command, unit check ends the
/// program. Returns the bytes of each `In` command in order. Incorrect length is not checked.
#[allow(dead_code)]
pub(crate) fn run_direct(prog: &EckdProgram, dev: &mut Eckd) -> Result<Vec<Vec<u8>>, ProgramError> {
    dev.start_chain();
    let mut out = Vec::new();
    let mut i = 0;
    let mut steps = 0usize;
    while i < prog.ccws.len() {
        steps += 1;
        if steps > 10_000 {
            return Err(ProgramError {
                index: i,
                cmd: prog.ccws[i].cmd,
                status: DeviceStatus::NONE,
                sense: b"program does not terminate".to_vec(),
            });
        }
        let c = &prog.ccws[i];
        let (status, input) = match &c.payload {
            Payload::Tic(to) => {
                i = *to;
                continue;
            }
            Payload::Out(bytes) => {
                let mut b = bytes.clone();
                (dev.execute(c.cmd, &mut SliceData::new(&mut b)).status, None)
            }
            Payload::In(n) => {
                let mut b = vec![0u8; *n];
                let st = dev.execute(c.cmd, &mut SliceData::new(&mut b)).status;
                (st, Some(b))
            }
        };
        if status.contains(DeviceStatus::UNIT_CHECK) {
            return Err(ProgramError {
                index: i,
                cmd: c.cmd,
                status,
                sense: dev.sense_bytes().to_vec(),
            });
        }
        if let Some(b) = input {
            out.push(b);
        }
        i += if status.contains(DeviceStatus::STATUS_MODIFIER) {
            2
        } else {
            1
        };
    }
    Ok(out)
}
