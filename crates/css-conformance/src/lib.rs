// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The backend conformance suite of ccw-rs: one set of channel-I/O cases, run on the simulator
//! (mock-backend) and on Linux's real vfio_ccw (vfio-backend, in an s390x guest).
//!
//! Every case is a generic async function over any [`Backend`] plus a [`Fixture`] (the devices
//! under test and what they answer). It runs through [`Css`] and [`Subchannel`] exactly as a
//! consumer would: it writes channel programs into a guest memory the suite creates and submits
//! them. Each case names the architecture rule or vfio-ccw behaviour it checks in its doc
//! comment; the README holds the table of every case.
//!
//! Two ways to run the cases:
//! - [`conformance_tests!`] expands to one `#[test]` per case (as rustls compiles one test
//!   module per crypto provider), so `cargo test` lists, filters and reports each case. A case
//!   the target cannot run prints `skipped: <reason>` and returns.
//! - A counting runner (the `vfio-guest` binary) walks [`cases`] over one [`Ctx`] and prints
//!   `group: N passed, M failed, K skipped` lines. This crate prints nothing.
//!
//! ```no_run
//! use std::sync::Arc;
//! use css_conformance::{conformance_tests, Fixture};
//! use mock_backend::MockBackend;
//! use vm_memory::GuestMemoryMmap;
//!
//! fn make(mem: Arc<GuestMemoryMmap>) -> Result<Arc<MockBackend>, css_core::BackendError> {
//!     Ok(Arc::new(MockBackend::default_subsystem(&*mem)?))
//! }
//! fn fixture() -> Fixture {
//!     Fixture::virtio_blk("0.0.0000".parse().unwrap(), 0x0005).named("mock")
//! }
//! conformance_tests!(make, fixture());
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ccw_types::SubchannelId;
use css_core::{Backend, BackendError, Css, CssErrorKind, Subchannel};
use vm_memory::{GuestAddress, GuestMemoryMmap};

mod cases;
mod fixture;
mod prog;

pub use fixture::{Device, DeviceKind, Fixture, RawChannel, RawOutcome};

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    /// Passed.
    Passed,
    /// Failed, with what went wrong.
    Failed(String),
    /// Not run, or not decidable on this target, with the reason. Never counted as passed.
    Skipped(String),
}

/// Why a case failed (anything displayable converts into it).
#[derive(Debug)]
pub struct Failure(pub String);

impl<E: fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

/// What a case that did not fail concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The rule holds.
    Pass,
    /// The target cannot run the case (no such device, no raw access, ...) or the property
    /// could not be observed (a race the target decided the other way): skipped, with why.
    Skip(String),
}

/// The result of one case.
pub type CaseResult = Result<Verdict, Failure>;

/// A case's future.
pub type CaseFuture<'a> = Pin<Box<dyn Future<Output = CaseResult> + Send + 'a>>;

/// A case: borrows the context, returns its future.
pub type CaseFn<B> = for<'a> fn(&'a Ctx<B>) -> CaseFuture<'a>;

/// One case of the suite.
pub struct Case<B: Backend> {
    /// Its group (e.g. `basic`, `multi-idaw`).
    pub group: &'static str,
    /// Its name, unique in the suite.
    pub name: &'static str,
    /// The case itself.
    pub run: CaseFn<B>,
}

impl<B: Backend> fmt::Debug for Case<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.group, self.name)
    }
}

/// Fails the case with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::Failure(format!($($fmt)+)));
        }
    };
}
pub(crate) use ensure;

/// The state every case gets: the channel subsystem over the backend, the guest memory the
/// programs live in, and the fixture.
pub struct Ctx<B: Backend> {
    /// The channel subsystem under test.
    pub css: Css<B>,
    /// The guest memory (at guest address 0, [`Fixture::memory_size`] bytes).
    pub mem: Arc<GuestMemoryMmap>,
    /// The devices under test.
    pub fx: Fixture,
}

impl<B: Backend> fmt::Debug for Ctx<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("fx", &self.fx.name).finish()
    }
}

impl<B: Backend> Ctx<B> {
    /// Creates the guest memory, builds the backend with `make` (which attaches the memory),
    /// probes, and checks the fixture's devices are there. Must run inside a tokio runtime.
    pub async fn setup<F>(make: F, fixture: &Fixture) -> Result<Self, String>
    where
        F: FnOnce(Arc<GuestMemoryMmap>) -> Result<Arc<B>, BackendError>,
    {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), fixture.memory_size)])
            .map_err(|e| format!("guest memory: {e}"))?;
        let mem = Arc::new(mem);
        let backend = make(mem.clone()).map_err(|e| format!("backend: {e}"))?;
        let css = Css::new(backend).map_err(|e| format!("css: {e}"))?;
        let ids = css.probe().await.map_err(|e| format!("probe: {e}"))?;
        if !ids.contains(&fixture.primary.sch) {
            return Err(format!(
                "probe found {ids:?}, not the device under test {}",
                fixture.primary.sch
            ));
        }
        let mut fx = fixture.clone();
        // Devices the fixture names but the probe did not find are dropped: their cases skip.
        fx.others.retain(|d| ids.contains(&d.sch));
        Ok(Ctx { css, mem, fx })
    }

    /// Leaves every device of the fixture closed for the next case; a failure to close is
    /// returned (a subchannel that cannot be closed is a finding of the case that left it).
    pub async fn after_case(&self) -> Result<(), String> {
        let mut out = Ok(());
        for sch in self.fx.all_schs() {
            if let Err(e) = self.css.close(sch).await {
                if !matches!(e.kind(), CssErrorKind::NotOpen) && out.is_ok() {
                    out = Err(format!("closing {sch} after the case: {e}"));
                }
            }
        }
        out
    }

    /// Opens the primary device.
    pub async fn open(&self) -> Result<Subchannel<B>, Failure> {
        Ok(self.css.open(self.fx.primary.sch).await?)
    }

    /// Opens `sch`.
    pub async fn open_sch(&self, sch: SubchannelId) -> Result<Subchannel<B>, Failure> {
        Ok(self.css.open(sch).await?)
    }
}

/// Asks a backend after a passing case whether it holds nothing any more (pins, control
/// areas); the error names what leaked.
pub type IdleCheck<B> = fn(&B) -> Result<(), String>;

/// Every case of the suite, in group order.
pub fn cases<B: Backend>() -> Vec<Case<B>> {
    let mut v = Vec::new();
    macro_rules! collect {
        ($(($group:ident, $label:literal) { $($(#[$m:meta])* $case:ident),* $(,)? })*) => {
            $($(
                v.push(Case {
                    group: $label,
                    name: stringify!($case),
                    run: |c| Box::pin(cases::$group::$case(c)),
                });
            )*)*
        };
    }
    __suite!(@local collect);
    v
}

/// Runs one case on a fresh target: builds a multi-threaded tokio runtime, sets up the
/// context with `make`, runs the case named `group`/`name` within the fixture's timeout,
/// closes the subchannels, and asks `idle` (if given) whether the backend holds nothing
/// (pins, control areas) any more. What [`conformance_tests!`] calls; prints nothing.
pub fn run_case<B, F>(
    group: &str,
    name: &str,
    make: F,
    fixture: Fixture,
    idle: Option<IdleCheck<B>>,
) -> TestOutcome
where
    B: Backend,
    F: FnOnce(Arc<GuestMemoryMmap>) -> Result<Arc<B>, BackendError>,
{
    let Some(case) = cases::<B>()
        .into_iter()
        .find(|c| c.group == group && c.name == name)
    else {
        return TestOutcome::Failed(format!("no case {group}/{name} in the suite"));
    };
    if let Some(why) = fixture.skip_reason(case.group, case.name) {
        return TestOutcome::Skipped(why.to_string());
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return TestOutcome::Failed(format!("tokio runtime: {e}")),
    };
    rt.block_on(async move {
        let ctx = match Ctx::setup(make, &fixture).await {
            Ok(c) => c,
            Err(e) => return TestOutcome::Failed(format!("setup: {e}")),
        };
        let r = tokio::time::timeout(fixture.test_timeout, (case.run)(&ctx)).await;
        let closed = ctx.after_case().await;
        let outcome = match r {
            Ok(Ok(Verdict::Pass)) => TestOutcome::Passed,
            Ok(Ok(Verdict::Skip(why))) => TestOutcome::Skipped(why),
            Ok(Err(Failure(m))) => TestOutcome::Failed(m),
            Err(_) => TestOutcome::Failed(format!("timed out after {:?}", fixture.test_timeout)),
        };
        if outcome == TestOutcome::Passed {
            if let Err(e) = closed {
                return TestOutcome::Failed(e);
            }
            if let Some(idle) = idle {
                if let Err(e) = idle(ctx.css.backend()) {
                    return TestOutcome::Failed(format!("after the case: {e}"));
                }
            }
        }
        outcome
    })
}

/// Expands to one `#[test]` per case of the suite, in one module per group, each running
/// [`run_case`] on a backend from `$make` and the fixture `$fixture` (an expression evaluated
/// per test). An optional third argument, `fn(&B) -> Result<(), String>`, checks after each
/// passing case that the backend holds nothing any more.
///
/// A skipped case prints `skipped: <reason>` and returns (libtest has no skipped state; the
/// line shows with `--nocapture`); a failed case panics with its message.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr, $fixture:expr $(,)?) => {
        $crate::conformance_tests!($make, $fixture, None);
    };
    ($make:expr, $fixture:expr, $idle:expr $(,)?) => {
        $crate::__suite!(@tests ($make) ($fixture) ($idle));
    };
}

/// Internal: the expansion of [`conformance_tests!`] for the list [`__suite!`] hands it.
#[doc(hidden)]
#[macro_export]
macro_rules! __expand_tests {
    (($make:expr) ($fixture:expr) ($idle:expr) $(($group:ident, $label:literal) { $($(#[$m:meta])* $case:ident),* $(,)? })*) => {
        $(
            #[allow(non_snake_case)]
            mod $group {
                #[allow(unused_imports)]
                use super::*;
                $(
                    #[test]
                    $(#[$m])*
                    fn $case() {
                        match $crate::run_case(
                            $label,
                            stringify!($case),
                            $make,
                            $fixture,
                            $idle,
                        ) {
                            $crate::TestOutcome::Passed => {}
                            $crate::TestOutcome::Skipped(why) => {
                                ::std::println!("skipped: {why}");
                            }
                            $crate::TestOutcome::Failed(m) => {
                                ::std::panic!("{}/{}: {m}", $label, stringify!($case));
                            }
                        }
                    }
                )*
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_are_unique_and_groups_are_known() {
        let all = cases::<mock_backend::MockBackend>();
        let mut names: Vec<&str> = all.iter().map(|c| c.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate case names");
        assert!(n >= 100, "{n} cases");
    }

    #[test]
    fn the_readme_table_lists_every_case_with_its_group() {
        let readme = include_str!("../README.md");
        for c in cases::<mock_backend::MockBackend>() {
            let row = format!("| `{}` | {} |", c.name, c.group);
            assert!(readme.contains(&row), "README has no row for {c:?}");
        }
    }
}
