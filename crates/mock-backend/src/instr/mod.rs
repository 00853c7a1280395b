// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The I/O instructions and the subchannel's status transitions, as pure functions: the
//! simulator runs the guest-facing channel subsystem's own ([`vcss::sch`]), so a VMM built on
//! vcss and this simulator answer every instruction the same way. Their exhaustive tests over
//! every FC × AC × SC state live with them in vcss.
//!
//! ```
//! use ccw_types::{CommandOrb, FunctionControl, ActivityControl};
//! use css_core::ConditionCode;
//! use mock_backend::instr::{self, SchState};
//! let mut s = SchState::new(0x0005);
//! s.schib.pmcw.flags.set_enabled(true);
//! let orb = CommandOrb::new(0x1234, 0x1000).emit();
//! assert_eq!(instr::ssch(&mut s, &orb), Ok(ConditionCode::Cc0));
//! assert_eq!(s.schib.scsw.ctrl.fc(), FunctionControl::START);
//! assert_eq!(s.schib.scsw.ctrl.ac(), ActivityControl::START_PENDING);
//! // A second start while the first is in progress: busy.
//! assert_eq!(instr::ssch(&mut s, &orb), Ok(ConditionCode::Cc2));
//! ```

pub use vcss::Ending;
pub use vcss::sch::*;
