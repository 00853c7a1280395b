// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The counting runner: walks css-conformance's cases group by group over one [`Ctx`],
//! turns a panicking case into that case's failure and a hung one into a timeout, and prints
//! one line per case and `group: N passed, M failed, K skipped` per group (the lines the s390x
//! lane's verdict reads).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use css_conformance::{Case, CaseFuture, CaseResult, Ctx, Failure, TestOutcome, Verdict};
use css_core::Backend;

/// The results of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupReport {
    /// The group's name.
    pub(crate) name: &'static str,
    /// Every case with its outcome, in order.
    pub(crate) results: Vec<(&'static str, TestOutcome)>,
}

impl GroupReport {
    fn count(&self, f: impl Fn(&TestOutcome) -> bool) -> usize {
        self.results.iter().filter(|(_, o)| f(o)).count()
    }
    pub(crate) fn passed(&self) -> usize {
        self.count(|o| *o == TestOutcome::Passed)
    }
    pub(crate) fn failed(&self) -> usize {
        self.count(|o| matches!(o, TestOutcome::Failed(_)))
    }
    pub(crate) fn skipped(&self) -> usize {
        self.count(|o| matches!(o, TestOutcome::Skipped(_)))
    }
}

impl fmt::Display for GroupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, o) in &self.results {
            match o {
                TestOutcome::Passed => writeln!(f, "  ok      {}/{name}", self.name)?,
                TestOutcome::Failed(m) => writeln!(f, "  FAILED  {}/{name}: {m}", self.name)?,
                TestOutcome::Skipped(r) => {
                    writeln!(f, "  skipped {}/{name}: skipped: {r}", self.name)?
                }
            }
        }
        write!(
            f,
            "{}: {} passed, {} failed, {} skipped",
            self.name,
            self.passed(),
            self.failed(),
            self.skipped()
        )
    }
}

/// Runs `cases` (in order, grouped by consecutive group names) and prints each group's
/// report as it ends.
pub(crate) async fn run_groups<B: Backend>(ctx: &Ctx<B>, cases: &[Case<B>]) -> Vec<GroupReport> {
    let mut out: Vec<GroupReport> = Vec::new();
    for case in cases {
        if out.last().is_none_or(|g| g.name != case.group) {
            if let Some(g) = out.last() {
                println!("{g}");
            }
            out.push(GroupReport {
                name: case.group,
                results: Vec::new(),
            });
        }
        let outcome = match ctx.fx.skip_reason(case.group, case.name) {
            Some(why) => TestOutcome::Skipped(why.to_string()),
            None => run_one(ctx, case).await,
        };
        if let Some(g) = out.last_mut() {
            g.results.push((case.name, outcome));
        }
    }
    if let Some(g) = out.last() {
        println!("{g}");
    }
    out
}

async fn run_one<B: Backend>(ctx: &Ctx<B>, case: &Case<B>) -> TestOutcome {
    let r = tokio::time::timeout(ctx.fx.test_timeout, CatchPanic((case.run)(ctx))).await;
    // Whatever happened, leave every subchannel closed for the next case.
    let closed = ctx.after_case().await;
    let outcome = outcome(r.map_err(|_| ctx.fx.test_timeout));
    match (outcome, closed) {
        (TestOutcome::Passed, Err(e)) => TestOutcome::Failed(e),
        (o, _) => o,
    }
}

/// How a case's result maps to an outcome: a pass, a skip (with why), a failure, a panic
/// (failure), or a timeout (failure).
fn outcome(r: Result<Result<CaseResult, Panicked>, std::time::Duration>) -> TestOutcome {
    match r {
        Ok(Ok(Ok(Verdict::Pass))) => TestOutcome::Passed,
        Ok(Ok(Ok(Verdict::Skip(why)))) => TestOutcome::Skipped(why),
        Ok(Ok(Err(Failure(m)))) => TestOutcome::Failed(m),
        Ok(Err(Panicked(m))) => TestOutcome::Failed(format!("panicked: {m}")),
        Err(t) => TestOutcome::Failed(format!("timed out after {t:?}")),
    }
}

/// A case that panicked: a failure of that case, never the end of the whole run (a suite run
/// in a guest must still print every group's line).
#[derive(Debug)]
struct Panicked(String);

/// Polls a case's future and turns a panic inside it into [`Panicked`].
///
/// Written by hand because the only dependency offering it (`futures`' `catch_unwind`) is not
/// otherwise needed here.
struct CatchPanic<'a>(CaseFuture<'a>);

impl Future for CatchPanic<'_> {
    type Output = Result<CaseResult, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_string());
                Poll::Ready(Err(Panicked(msg)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_case_is_a_failure_not_the_end_of_the_run() {
        let fut: CaseFuture<'static> = Box::pin(async {
            let v: Vec<u8> = Vec::new();
            // Index an empty slice, as the unknown-command case once did with QEMU's IRB.
            Ok(Verdict::Skip(format!("{}", v[0])))
        });
        match CatchPanic(fut).await {
            Err(Panicked(msg)) => assert!(msg.contains("index out of bounds"), "{msg}"),
            Ok(_) => panic!("the panic was not caught"),
        }
        let fine: CaseFuture<'static> = Box::pin(async { Ok(Verdict::Pass) });
        assert!(matches!(CatchPanic(fine).await, Ok(Ok(Verdict::Pass))));
    }

    #[test]
    fn outcomes_count_skips_and_timeouts_honestly() {
        use std::time::Duration;
        assert_eq!(outcome(Ok(Ok(Ok(Verdict::Pass)))), TestOutcome::Passed);
        assert_eq!(
            outcome(Ok(Ok(Ok(Verdict::Skip("no device".into()))))),
            TestOutcome::Skipped("no device".into())
        );
        assert!(
            matches!(outcome(Err(Duration::from_secs(1))), TestOutcome::Failed(m) if m.contains("timed out"))
        );
        assert!(
            matches!(outcome(Ok(Err(Panicked("x".into())))), TestOutcome::Failed(m) if m.contains("panicked"))
        );
        let g = GroupReport {
            name: "basic",
            results: vec![
                ("a", TestOutcome::Passed),
                ("b", TestOutcome::Failed("x".into())),
                ("c", TestOutcome::Skipped("y".into())),
            ],
        };
        let text = g.to_string();
        assert!(
            text.ends_with("basic: 1 passed, 1 failed, 1 skipped"),
            "{text}"
        );
        assert!(text.contains("skipped basic/c: skipped: y"), "{text}");
    }

    /// The whole suite through the counting runner on the simulator: every group prints its
    /// line, nothing fails, and the kernel-torture group is all skipped (no raw region).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_runner_counts_the_suite_on_the_simulator() {
        use css_conformance::{Device, DeviceKind, Fixture, cases};
        use mock_backend::MockBackend;
        let fx = Fixture::virtio_blk("0.0.0000".parse().unwrap(), 5)
            .with_device(Device {
                kind: DeviceKind::TestDevice,
                sch: "0.0.0001".parse().unwrap(),
                devno: 6,
            })
            .unsupported("offline_online_restores", "fixed on branch rel");
        let ctx = Ctx::setup(
            |mem| Ok(std::sync::Arc::new(MockBackend::default_subsystem(&*mem)?)),
            &fx,
        )
        .await
        .unwrap();
        let all = cases::<MockBackend>();
        let groups = run_groups(&ctx, &all).await;
        let names: Vec<&str> = groups.iter().map(|g| g.name).collect();
        assert_eq!(
            names,
            [
                "basic",
                "idal",
                "multi-idaw",
                "async",
                "lifecycle",
                "schib-paths",
                "bad-programs",
                "kernel-torture",
                "virtio-blk",
                "test-device",
                "eckd-3390"
            ]
        );
        let failed: Vec<String> = groups
            .iter()
            .filter(|g| g.failed() > 0)
            .map(|g| g.to_string())
            .collect();
        assert!(failed.is_empty(), "{failed:?}");
        // No raw region and no 3390 here: those groups skip every case, counted as skipped.
        for name in ["kernel-torture", "eckd-3390"] {
            let g = groups.iter().find(|g| g.name == name).unwrap();
            assert_eq!((g.skipped(), g.passed()), (g.results.len(), 0), "{g}");
        }
        let passed: usize = groups.iter().map(GroupReport::passed).sum();
        assert!(passed >= 100, "{passed} passed");
        assert!(ctx.css.backend().mapping_stats().is_idle());
    }
}
