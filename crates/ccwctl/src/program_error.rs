// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Where and why a program file is malformed: shared by the lexer, the parser and the
//! assembler (re-exported as `ccwctl::program::{Pos, ProgramError, Reason}`), in a module of
//! its own so that none of them imports another for it.

use std::fmt;

/// The largest number of CCWs a program file may hold (bounds memory on hostile input).
pub const MAX_CCWS: usize = 4096;

/// A 1-based position in a program file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
}

/// What is wrong with a program file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// A character that starts no token.
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    /// A malformed or too large integer.
    #[error("bad number `{0}`")]
    BadNumber(String),
    /// A backslash escape the format does not know.
    #[error("bad escape in string (known: \\n \\r \\t \\0 \\\\ \\\" \\' \\xNN)")]
    BadEscape,
    /// A string runs to the end of the line.
    #[error("unterminated string")]
    UnterminatedString,
    /// A hex string with an odd number of digits.
    #[error("hex string has an odd number of digits")]
    OddHexDigits,
    /// A character in a hex string that is not a hex digit.
    #[error("{0:?} is not a hex digit")]
    BadHexDigit(char),
    /// The parser expected something else here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What would have been valid.
        expected: &'static str,
        /// What was there.
        found: String,
    },
    /// A command name that is not in the table (use a number for any other code).
    #[error("unknown command `{0}` (give other command codes as numbers, e.g. 0x27)")]
    UnknownCommand(String),
    /// An operand a CCW line does not take.
    #[error("unknown operand `{0}`")]
    UnknownOperand(String),
    /// An ORB option that does not exist.
    #[error("unknown orb option `{0}`")]
    UnknownOrbOption(String),
    /// The same operand twice on one line.
    #[error("`{0}` given twice")]
    Duplicate(&'static str),
    /// A value does not fit its field.
    #[error("{what} {value:#x} out of range (max {max:#x})")]
    OutOfRange {
        /// The field.
        what: &'static str,
        /// The value given.
        value: u64,
        /// The largest allowed value.
        max: u64,
    },
    /// The initial data is longer than the CCW's count.
    #[error("data is {data} bytes but count={count}")]
    DataLongerThanCount {
        /// The count given.
        count: u16,
        /// The data length.
        data: usize,
    },
    /// The command has no default count and none was given.
    #[error("`count=` is required for command {0:#04x} (or give `data=`)")]
    MissingCount(u8),
    /// A label defined twice.
    #[error("label `{0}` defined twice")]
    DuplicateLabel(String),
    /// A TIC names a label that does not exist.
    #[error("no label `{0}`")]
    UnknownLabel(String),
    /// A label at the end of the file, with no CCW after it.
    #[error("label `{0}` is not followed by a CCW")]
    DanglingLabel(String),
    /// A label that is also a keyword (flag or operand name).
    #[error("label `{0}` is a reserved word")]
    ReservedLabel(String),
    /// More than one `orb` line.
    #[error("only one `orb` line is allowed")]
    DuplicateOrb,
    /// A TIC without a target label or `cda=`.
    #[error("tic needs a target label (or `cda=`)")]
    TicWithoutTarget,
    /// A TIC with `data=` or `at=`.
    #[error("tic transfers no data: `data=`/`at=` do not apply")]
    TicWithData,
    /// `cda=` together with `data=` or `at=`.
    #[error("`cda=` gives a raw address: it excludes `data=` and `at=`")]
    CdaWithBuffer,
    /// A data file could not be read.
    #[error("cannot read `{path}`: {error}")]
    File {
        /// The path as written.
        path: String,
        /// The OS error.
        error: String,
    },
    /// A file without any CCW.
    #[error("the program has no CCW")]
    Empty,
    /// More than [`MAX_CCWS`] CCWs.
    #[error("more than {MAX_CCWS} CCWs")]
    TooManyCcws,
    /// The assembler cannot place something where the program asks.
    #[error("{what} at {addr:#x}: {problem}")]
    Placement {
        /// What was being placed ("data buffer", "IDAW list", ...).
        what: &'static str,
        /// The guest address asked for.
        addr: u64,
        /// Why it cannot go there.
        problem: &'static str,
    },
}

/// A malformed program file: where and why. Displays as `file:line:column: reason`.
///
/// ```
/// use ccwctl::program::{no_files, Program, Reason};
/// let err = Program::parse("read count=8\nbogus\n", "p.ccw", &mut no_files).unwrap_err();
/// assert_eq!(err.to_string(), "p.ccw:2:1: unknown command `bogus` (give other command codes as numbers, e.g. 0x27)");
/// assert!(matches!(err.reason, Reason::UnknownCommand(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramError {
    /// The file name as given.
    pub file: String,
    /// Where.
    pub pos: Pos,
    /// Why.
    pub reason: Reason,
}

impl ProgramError {
    pub(crate) fn at(pos: Pos, reason: Reason) -> Self {
        Self {
            file: String::new(),
            pos,
            reason,
        }
    }
}

impl fmt::Display for ProgramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.pos.line, self.pos.column, self.reason
        )
    }
}

impl std::error::Error for ProgramError {}
