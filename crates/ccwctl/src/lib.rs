// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `ccwctl` as a library: the channel-program text format, its assembler, block decoders and
//! the commands of the `ccwctl` tool, so they can be tested and fuzzed without a process.
//!
//! - [`program`]: the text format (lexer + parser, `file:line:column: reason` errors);
//! - [`assemble`]: lays a program out in a `vm-memory` guest memory with its ORB;
//! - [`decode`]: decoded views of every architected block (`--json` field names);
//! - [`senseid`]: SENSE ID data with CIWs, basic sense data.

pub mod assemble;
pub mod backends;
pub mod cli;
pub mod commands;
#[cfg(feature = "sim")]
pub mod dasd;
pub mod decode;
mod hex;
mod lexer;
pub mod program;
mod program_error;
pub mod senseid;
pub mod target;
