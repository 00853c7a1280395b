// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The summary of `cargo xtask bench`: each target of issue 14 (P1..P4), its measured ratio
//! and met / not met, read from criterion's own output files of this run
//! (`target/criterion/**/new/benchmark.json` for the id, `estimates.json` beside it for the
//! median) and from `scale-memory.json` (heap per subchannel, written by the css bench).
//!
//! Every limit is a ratio of figures from the same run, or an absolute figure where the issue
//! sets one; the ratio printed is measured / limit, so at most 1.00 is met. A target whose
//! benchmark did not run in this run (filtered out, or older files) is `not run`, never met.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

/// Medians in nanoseconds per iteration, by criterion's full id (`group/function`).
pub(crate) type Medians = BTreeMap<String, f64>;

/// What the run showed for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    /// Measured, within the limit.
    Met,
    /// Measured, over the limit.
    NotMet,
    /// Not measured in this run; `measured` says why.
    NotRun,
}

impl Status {
    fn of(ratio: f64) -> Self {
        if ratio <= 1.0 {
            Self::Met
        } else {
            Self::NotMet
        }
    }
    fn label(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::NotMet => "NOT MET",
            Self::NotRun => "not run",
        }
    }
}

/// One line of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Row {
    /// P1 .. P4.
    pub target: &'static str,
    /// What is measured.
    pub what: String,
    /// The measured figure, with its context.
    pub measured: String,
    /// The limit, in words.
    pub limit: String,
    /// measured / limit (at most 1.0 is met); `None` when not run.
    pub ratio: Option<f64>,
    /// The verdict.
    pub status: Status,
}

fn row(target: &'static str, what: impl Into<String>, limit: impl Into<String>) -> Row {
    Row {
        target,
        what: what.into(),
        measured: "no result in this run".into(),
        limit: limit.into(),
        ratio: None,
        status: Status::NotRun,
    }
}

impl Row {
    /// Sets the measured figure and the verdict from `value / limit`.
    fn measured(mut self, value: f64, limit: f64, text: String) -> Row {
        let ratio = value / limit;
        self.measured = text;
        self.ratio = Some(ratio);
        self.status = Status::of(ratio);
        self
    }
}

/// Reads every benchmark of `dir` (criterion's output directory) whose `new/estimates.json`
/// was written at or after `since`: full id -> median (ns per iteration).
pub(crate) fn read_medians(dir: &Path, since: SystemTime) -> Result<Medians, String> {
    let mut out = Medians::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            if p.file_name().is_some_and(|n| n == "new") {
                let est = p.join("estimates.json");
                let fresh = std::fs::metadata(&est)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= since);
                if fresh {
                    let (id, median) = read_one(&p)?;
                    out.insert(id, median);
                }
            } else {
                stack.push(p);
            }
        }
    }
    Ok(out)
}

/// The full id and median of one criterion `new/` directory.
fn read_one(new: &Path) -> Result<(String, f64), String> {
    let read = |name: &str| -> Result<serde_json::Value, String> {
        let path = new.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let bench = read("benchmark.json")?;
    let est = read("estimates.json")?;
    let id = bench["full_id"]
        .as_str()
        .ok_or_else(|| format!("{}: no full_id", new.display()))?;
    let median = est["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("{}: no median", new.display()))?;
    Ok((id.to_string(), median))
}

/// The P1 chains: criterion case name, CCWs, what it is.
const P1_CHAINS: [(&str, f64, &str); 2] = [
    ("idal_255x4k", 255.0, "255 CCWs x 4 KiB IDAL"),
    ("dasd_de_lr_64x4k", 66.0, "DASD DE + LR + 64 x 4 KiB read"),
];
/// P1 budget: per CCW and per program, with the bare mapper (ns).
const P1_NS_PER_CCW: f64 = 10.0;
const P1_NS_PER_PROGRAM: f64 = 60.0;
/// P1: a real (bookkeeping) mapper may take this much more.
const P1_REAL_MAPPER: f64 = 1.5;
/// P1: the real mappers of the translate bench: the test-utils RecordingMapper and the mock
/// backend's own mapper of its simulated storage (the issue's "mock's real mapper").
const P1_REAL_MAPPERS: [(&str, &str); 2] = [
    ("recording", "recording mapper"),
    ("mock", "mock-backend mapper"),
];
/// P3: the four points of the scale benchmarks, and its limits.
pub(crate) const P3_POINTS: [u32; 4] = [16_384, 65_536, 131_072, 262_144];
const P3_BYTES_PER_SUBCHANNEL: f64 = 512.0;
const P3_TOTAL_BYTES: f64 = 128.0 * 1024.0 * 1024.0;
const P3_STORM_NS: f64 = 1e9;
/// "Linear": the cost per subchannel at the largest point at most this much of that at the
/// smallest.
const P3_LINEAR: f64 = 1.5;

/// Least-squares line `t = a * ccws + b` through the points: (ns per CCW, ns per program).
pub(crate) fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    if sxx == 0.0 {
        return None;
    }
    let a = sxy / sxx;
    Some((a, my - a * mx))
}

/// Heap of the scale benchmark: (subchannels, bytes).
pub(crate) type Memory = Option<(u64, u64)>;

/// Reads `scale-memory.json` written by the css bench, if this run wrote it.
pub(crate) fn read_memory(path: &Path, since: SystemTime) -> Memory {
    let fresh = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    Some((v["subchannels"].as_u64()?, v["heap_bytes"].as_u64()?))
}

/// Every target of the issue, judged from `m` (and the scale benchmark's `memory`).
pub(crate) fn evaluate(m: &Medians, memory: Memory) -> Vec<Row> {
    let mut rows = Vec::new();
    let get = |id: &str| m.get(id).copied();

    // P1: each chain against its budget, with the bare and the recording mapper.
    for (case, ccws, what) in P1_CHAINS {
        let budget = P1_NS_PER_CCW * ccws + P1_NS_PER_PROGRAM;
        let r = row(
            "P1",
            format!("translate+release {what}, bare mapper"),
            format!("<= {budget:.0} ns (10 ns/CCW + 60 ns)"),
        );
        rows.push(match get(&format!("translate/{case}/bare")) {
            Some(t) => {
                let memcpy = get(&format!("translate/{case}/memcpy"))
                    .map(|c| format!(", {:.0}x memcpy", t / c))
                    .unwrap_or_default();
                r.measured(
                    t,
                    budget,
                    format!("{t:.0} ns ({:.1} ns/CCW{memcpy})", t / ccws),
                )
            }
            None => r,
        });
        for (mapper, label) in P1_REAL_MAPPERS {
            let r = row(
                "P1",
                format!("translate+release {what}, {label}"),
                format!(
                    "<= {:.0} ns (1.5x the bare budget)",
                    budget * P1_REAL_MAPPER
                ),
            );
            rows.push(match get(&format!("translate/{case}/{mapper}")) {
                Some(t) => {
                    let bare = get(&format!("translate/{case}/bare"))
                        .map(|b| format!(", {:.2}x bare", t / b))
                        .unwrap_or_default();
                    r.measured(t, budget * P1_REAL_MAPPER, format!("{t:.0} ns{bare}"))
                }
                None => r,
            });
        }
    }
    // P1: per CCW and per program, the line through the bare cases of the issue's chains
    // and the 1-CCW SENSE ID.
    let points: Vec<(f64, f64)> = [("sense_id_1ccw", 1.0)]
        .into_iter()
        .chain(P1_CHAINS.iter().map(|(c, n, _)| (*c, *n)))
        .filter_map(|(c, n)| get(&format!("translate/{c}/bare")).map(|t| (n, t)))
        .collect();
    let r = row(
        "P1",
        "per CCW / per program (line through SENSE ID, DASD, 255 x 4 KiB; bare)",
        "<= 10 ns/CCW and <= 60 ns/program",
    );
    rows.push(match (points.len(), fit(&points)) {
        (3, Some((a, b))) => {
            // The worse of the two halves decides.
            let ratio = (a / P1_NS_PER_CCW).max(b / P1_NS_PER_PROGRAM);
            r.measured(ratio, 1.0, format!("{a:.1} ns/CCW + {b:.0} ns/program"))
        }
        _ => r,
    });

    // P2: css-core on the simulator.
    let bare = get("io_roundtrip/bare_mock_start_interrupt");
    let submit = get("io_roundtrip/css_core_submit_complete");
    let pre = get("io_roundtrip/css_core_submit_complete_pretranslated");
    let r = row(
        "P2",
        "bare mock round trip (START + interruption)",
        "<= 500 ns",
    );
    rows.push(match bare {
        Some(t) => r.measured(t, 500.0, format!("{t:.0} ns")),
        None => r,
    });
    let r = row(
        "P2",
        "css-core submit -> completion, SENSE ID with translation",
        "<= 1000 ns (>= 1,000,000 I/O per s)",
    );
    rows.push(match submit {
        Some(t) => r.measured(t, 1000.0, format!("{t:.0} ns ({:.0}k I/O/s)", 1e6 / t)),
        None => r,
    });
    let r = row(
        "P2",
        "css-core submit -> completion / bare round trip",
        "<= 1.50x",
    );
    rows.push(match (submit, bare) {
        (Some(s), Some(b)) => {
            let pre = pre
                .map(|p| format!("; pre-translated {:.2}x", p / b))
                .unwrap_or_default();
            r.measured(s / b, 1.5, format!("{:.2}x{pre}", s / b))
        }
        _ => r,
    });

    // P3: scale to 262,144 subchannels.
    let r = row(
        "P3",
        "css-core heap per registered and opened subchannel",
        "<= 512 B each, <= 128 MiB for 262,144",
    );
    rows.push(match memory {
        Some((n, bytes)) if n == u64::from(P3_POINTS[3]) => {
            let each = bytes as f64 / n as f64;
            let ratio = (each / P3_BYTES_PER_SUBCHANNEL).max(bytes as f64 / P3_TOTAL_BYTES);
            r.measured(
                ratio,
                1.0,
                format!(
                    "{each:.0} B each, {:.1} MiB for {n}",
                    bytes as f64 / (1 << 20) as f64
                ),
            )
        }
        _ => r,
    });
    rows.push(linear(
        m,
        "register + open",
        "scale/register_open",
        None::<(f64, &str)>,
    ));
    rows.push(linear(
        m,
        "CRW storm",
        "crw_storm/subchannel_reports",
        Some((P3_STORM_NS, "262,144 reports < 1 s")),
    ));

    // P4: needs a guest with a vfio-ccw device.
    let mut r = row(
        "P4",
        "vfio-backend vs raw pwrite/eventfd/pread loop (QEMU SENSE ID, Hercules 4 KiB DASD read)",
        "<= 1.10x (QEMU and Hercules lanes)",
    );
    r.measured = "not run here: needs the s390x guest lanes (cargo xtask s390x)".into();
    rows.push(r);
    rows
}

/// Fills the P4 row from the s390x lanes' bench lines (`<lane>: bench <what>: backend
/// median=..us raw median=..us ratio=R`, written by `cargo xtask s390x` to
/// `target/s390x-bench-<lane>.txt`): both medians come from one guest run, so the ratio is of
/// figures from the same run. The worst ratio is judged against the 1.10 limit. Without lines
/// the row stays "not run here".
pub(crate) fn p4_from_lanes(rows: &mut [Row], lines: &[String]) {
    let Some(r) = rows.iter_mut().find(|r| r.target == "P4") else {
        return;
    };
    let mut found: Vec<(String, f64)> = Vec::new();
    for l in lines {
        let Some(at) = l.find("ratio=") else { continue };
        let num: String = l[at + "ratio=".len()..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let (Ok(ratio), Some(head)) = (num.parse::<f64>(), l.split(": backend").next()) else {
            continue;
        };
        found.push((head.replace(": bench ", " "), ratio));
    }
    let Some(worst) = found.iter().map(|(_, x)| *x).reduce(f64::max) else {
        return;
    };
    let text = found
        .iter()
        .map(|(w, x)| format!("{w} {x:.2}x"))
        .collect::<Vec<_>>()
        .join(", ");
    *r = r
        .clone()
        .measured(worst, P4_RATIO, format!("{text} (last s390x lane runs)"));
}

/// The P4 limit: the backend's median round trip within this factor of the raw loop's.
const P4_RATIO: f64 = 1.10;

/// The linearity row of a P3 benchmark `prefix_N` over the four points; with `absolute`, the
/// largest point must also stay under that many ns.
fn linear(m: &Medians, what: &str, prefix: &str, absolute: Option<(f64, &str)>) -> Row {
    let limit = match absolute {
        Some((_, text)) => format!("{text}; per-item cost at 262,144 <= 1.5x at 16,384"),
        None => "per-item cost at 262,144 <= 1.5x at 16,384".to_string(),
    };
    let r = row(
        "P3",
        format!("{what} at {:?} subchannels", P3_POINTS),
        limit,
    );
    let times: Option<Vec<f64>> = P3_POINTS
        .iter()
        .map(|n| m.get(&format!("{prefix}_{n}")).copied())
        .collect();
    let Some(times) = times else {
        return r;
    };
    let per: Vec<f64> = times
        .iter()
        .zip(P3_POINTS)
        .map(|(t, n)| t / f64::from(n))
        .collect();
    let growth = per[3] / per[0];
    let mut ratio = growth / P3_LINEAR;
    let mut text = format!(
        "{} ns per item at the 4 points ({growth:.2}x)",
        per.iter()
            .map(|p| format!("{p:.0}"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    text.push_str(&format!(", {:.0} ms at 262,144", times[3] / 1e6));
    if let Some((ns, _)) = absolute {
        ratio = ratio.max(times[3] / ns);
    }
    r.measured(ratio, 1.0, text)
}

/// The table, as printed and written into benches/README.md.
pub(crate) fn render(rows: &[Row]) -> String {
    let mut s = String::from(
        "| target | what | measured | limit | measured/limit | status |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ratio = r.ratio.map(|x| format!("{x:.2}")).unwrap_or("-".into());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.target,
            r.what,
            r.measured,
            r.limit,
            ratio,
            r.status.label()
        ));
    }
    s
}

/// The JSON of `target/bench-summary.json`.
pub(crate) fn to_json(rows: &[Row], load: &str) -> String {
    let v = serde_json::json!({ "load": load, "targets": rows });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Medians {
        let mut m = Medians::new();
        for (k, v) in [
            ("translate/sense_id_1ccw/bare", 70.0),
            ("translate/dasd_de_lr_64x4k/bare", 700.0),
            ("translate/dasd_de_lr_64x4k/recording", 1000.0),
            ("translate/dasd_de_lr_64x4k/memcpy", 20.0),
            ("translate/idal_255x4k/bare", 3000.0),
            ("translate/idal_255x4k/recording", 3500.0),
            ("translate/idal_255x4k/mock", 4000.0),
            ("io_roundtrip/bare_mock_start_interrupt", 1000.0),
            ("io_roundtrip/css_core_submit_complete", 2000.0),
            (
                "io_roundtrip/css_core_submit_complete_pretranslated",
                1200.0,
            ),
        ] {
            m.insert(k.into(), v);
        }
        for n in P3_POINTS {
            let x = f64::from(n);
            m.insert(format!("scale/register_open_{n}"), 1000.0 * x);
            m.insert(format!("crw_storm/subchannel_reports_{n}"), 400.0 * x);
        }
        m
    }

    fn find<'a>(rows: &'a [Row], what: &str) -> &'a Row {
        rows.iter().find(|r| r.what.contains(what)).unwrap()
    }

    #[test]
    fn the_line_through_exact_points_is_found() {
        let (a, b) = fit(&[(1.0, 70.0), (66.0, 720.0), (255.0, 2610.0)]).unwrap();
        assert!(
            (a - 10.0).abs() < 1e-9 && (b - 60.0).abs() < 1e-9,
            "{a} {b}"
        );
        assert_eq!(fit(&[(1.0, 2.0)]), None);
        assert_eq!(fit(&[(3.0, 2.0), (3.0, 5.0)]), None);
    }

    #[test]
    fn p4_comes_from_the_lanes_bench_lines() {
        let mut rows = evaluate(&Medians::new(), None);
        p4_from_lanes(&mut rows, &[]);
        assert_eq!(find(&rows, "vfio-backend vs raw").status, Status::NotRun);
        let lines = [
            "qemu: bench sense-id: backend median=386.3us raw median=225.2us ratio=1.72"
                .to_string(),
            "hercules: bench dasd-read-4k: backend median=614.0us raw median=451.0us ratio=1.36"
                .to_string(),
            "hercules: bench dasd-read-4k: 200 iterations each".to_string(),
        ];
        p4_from_lanes(&mut rows, &lines);
        let r = find(&rows, "vfio-backend vs raw");
        assert_eq!(r.status, Status::NotMet);
        assert!((r.ratio.unwrap() - 1.72 / 1.10).abs() < 1e-9);
        assert!(
            r.measured
                .starts_with("qemu sense-id 1.72x, hercules dasd-read-4k 1.36x"),
            "{}",
            r.measured
        );
    }

    #[test]
    fn each_target_is_judged_by_its_ratio() {
        let rows = evaluate(&full(), Some((262_144, 100 * 262_144)));
        // DASD: 700 ns against 10 * 66 + 60 = 720 ns.
        let r = find(&rows, "DASD DE + LR + 64 x 4 KiB read, bare");
        assert_eq!(r.status, Status::Met);
        assert!((r.ratio.unwrap() - 700.0 / 720.0).abs() < 1e-9);
        assert!(r.measured.contains("35x memcpy"), "{}", r.measured);
        // 255 x 4 KiB: 3000 ns against 2610 ns.
        assert_eq!(
            find(&rows, "255 CCWs x 4 KiB IDAL, bare").status,
            Status::NotMet
        );
        // Recording 3500 ns against 1.5 x 2610 = 3915 ns.
        assert_eq!(
            find(&rows, "255 CCWs x 4 KiB IDAL, recording").status,
            Status::Met
        );
        // The mock's mapper: 4000 ns against 3915 ns; not run for the DASD chain.
        let r = find(&rows, "255 CCWs x 4 KiB IDAL, mock-backend");
        assert_eq!(r.status, Status::NotMet);
        assert!(r.measured.contains("1.33x bare"), "{}", r.measured);
        assert_eq!(
            find(&rows, "64 x 4 KiB read, mock-backend").status,
            Status::NotRun
        );
        assert_eq!(find(&rows, "bare mock round trip").status, Status::NotMet);
        let r = find(&rows, "/ bare round trip");
        assert_eq!(r.ratio, Some(2.0 / 1.5));
        assert!(
            r.measured.contains("pre-translated 1.20x"),
            "{}",
            r.measured
        );
        assert_eq!(find(&rows, "heap per").status, Status::Met);
        let r = find(&rows, "register + open");
        assert_eq!(r.status, Status::Met, "{r:?}");
        assert_eq!(find(&rows, "CRW storm").status, Status::Met);
        assert_eq!(find(&rows, "vfio-backend").status, Status::NotRun);
    }

    #[test]
    fn growth_beyond_linear_and_a_slow_storm_are_not_met() {
        let mut m = full();
        m.insert("scale/register_open_262144".into(), 2000.0 * 262_144.0);
        // Linear, but 5 us per report: 1.31 s for 262,144.
        for n in P3_POINTS {
            m.insert(
                format!("crw_storm/subchannel_reports_{n}"),
                5000.0 * f64::from(n),
            );
        }
        let rows = evaluate(&m, None);
        assert_eq!(find(&rows, "register + open").status, Status::NotMet);
        let storm = find(&rows, "CRW storm");
        assert_eq!(storm.status, Status::NotMet);
        assert!((storm.ratio.unwrap() - 1.31072).abs() < 1e-9, "{storm:?}");
        // No memory figure: not run, never met.
        assert_eq!(find(&rows, "heap per").status, Status::NotRun);
    }

    #[test]
    fn a_missing_benchmark_is_not_run_never_met() {
        let rows = evaluate(&Medians::new(), None);
        assert!(rows.iter().all(|r| r.status == Status::NotRun), "{rows:?}");
        assert!(rows.iter().all(|r| r.ratio.is_none()));
        let table = render(&rows);
        assert_eq!(table.lines().count(), rows.len() + 2);
        assert!(table.contains("| P4 |"));
        let json: serde_json::Value = serde_json::from_str(&to_json(&rows, "1.0")).unwrap();
        assert_eq!(json["targets"][0]["status"], "not_run");
        assert_eq!(json["targets"].as_array().unwrap().len(), rows.len());
    }

    #[test]
    fn medians_are_read_from_criterion_files_of_this_run_only() {
        let dir = std::env::temp_dir().join(format!("xtask-summary-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let new = dir.join("translate/sense_id_1ccw_bare/new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(
            new.join("benchmark.json"),
            r#"{"group_id":"translate","function_id":"sense_id_1ccw/bare","full_id":"translate/sense_id_1ccw/bare"}"#,
        )
        .unwrap();
        std::fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":250.0},"median":{"point_estimate":235.5}}"#,
        )
        .unwrap();
        let before = SystemTime::now() - std::time::Duration::from_secs(60);
        let m = read_medians(&dir, before).unwrap();
        assert_eq!(m.get("translate/sense_id_1ccw/bare"), Some(&235.5));
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        assert!(read_medians(&dir, later).unwrap().is_empty());
        std::fs::write(
            dir.join("scale-memory.json"),
            r#"{"subchannels": 4, "heap_bytes": 2048}"#,
        )
        .unwrap();
        assert_eq!(
            read_memory(&dir.join("scale-memory.json"), before),
            Some((4, 2048))
        );
        assert_eq!(read_memory(&dir.join("scale-memory.json"), later), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
