// SPDX-License-Identifier: Apache-2.0 OR MIT

//! css-core on the mock backend (zero device latency):
//! - `io_roundtrip`: one SENSE ID (count 8, data pinned in guest memory) through
//!   `Subchannel::submit` (state machine, translation, start, interrupt routing, completion,
//!   release) against the bare mock round trip (START SUBCHANNEL of a prebuilt host program +
//!   receiving its interruption, no css-core) in the same group, plus css-core with a
//!   pre-translated program (the driver's cost without translation and pinning);
//! - `scale`: probe + open of N subchannels, N = 16,384 .. 262,144 (4 subchannel sets x
//!   65,536, the architecture's limit), memory per subchannel at the largest N measured with
//!   a counting allocator;
//! - `crw_storm`: N subchannel reports processed (SCHIB refresh each), the same four N, to
//!   show the cost is linear (every report chained: the CSS has four subchannel sets).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use ccw_translate::Mapper;
use ccw_types::{CommandOrb, CrwReport, Orb, Scsw, SubchannelId, crw};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use css_core::{Backend, BackendEvent, Css, HostProgram, Translate, TranslateFailure};
use mock_backend::MockBackend;
use mock_backend::devices::TestDevice;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Counts live heap bytes, to report memory per subchannel.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const SCH: SubchannelId = SubchannelId::new(0, 0, 0);
const PROG: u64 = 0x1000;
const DATA: u64 = 0x2000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn guest() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).expect("guest memory")
}

/// A "translator" that hands out one host program built once in the arena (SENSE ID, count
/// 8, data in the arena): isolates the driver's cost from translation and pinning.
struct Prebuilt(Option<Orb>);

struct PrebuiltProgram(Orb);

impl HostProgram for PrebuiltProgram {
    fn host_orb(&self) -> Orb {
        self.0
    }
    fn update_scsw(&self, _: &mut Scsw) {}
    /// Its data lives in the arena, not in guest memory.
    fn is_pinned(&self, _: ccw_translate::GuestRange) -> bool {
        false
    }
}

#[derive(Debug, thiserror::Error)]
#[error("arena: {0}")]
struct ArenaError(String);

impl TranslateFailure for ArenaError {
    fn errno(&self) -> ccw_types::Errno {
        ccw_types::Errno::NoMemory
    }
    fn kind(&self) -> ccw_types::ErrorKind {
        ccw_types::ErrorKind::Limit
    }
    fn program_check(&self) -> Option<ccw_types::SubchannelStatus> {
        None
    }
}

impl Translate for Prebuilt {
    type Program = PrebuiltProgram;
    type Error = ArenaError;
    fn create() -> Self {
        Prebuilt(None)
    }
    fn translate<M: vm_memory::GuestMemory + ?Sized>(
        &mut self,
        _orb: &Orb,
        _mem: &M,
        mapper: Arc<dyn Mapper>,
        _lpm: u8,
    ) -> Result<PrebuiltProgram, ArenaError> {
        if let Some(orb) = self.0 {
            return Ok(PrebuiltProgram(orb));
        }
        let orb = host_sense_id(&*mapper).map_err(ArenaError)?;
        self.0 = Some(orb);
        Ok(PrebuiltProgram(orb))
    }
}

/// Writes a SENSE ID (SLI, count 8) with its data area into the arena; returns its ORB.
/// The area is never freed: it lives as long as the benchmark's backend.
fn host_sense_id(mapper: &dyn Mapper) -> Result<Orb, String> {
    let area = mapper.alloc_control(16).map_err(|e| e.to_string())?;
    let data = u32::try_from(area.addr + 8).map_err(|e| e.to_string())?;
    let [a, b, c, d] = data.to_be_bytes();
    let ccw = [0xE4, 0x20, 0, 8, a, b, c, d];
    mapper
        .write_control(&area, 0, &ccw)
        .map_err(|e| e.to_string())?;
    let cpa = u32::try_from(area.addr).map_err(|e| e.to_string())?;
    Ok(CommandOrb::new(1, cpa).emit())
}

fn io_roundtrip(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("io_roundtrip");
    g.throughput(Throughput::Elements(1));

    // Bare mock: host program built once in the arena; start + wait for the interruption.
    {
        let mem = guest();
        let backend = MockBackend::default_subsystem(&mem).expect("mock");
        let mut events = backend.take_events().expect("events");
        let mapper = backend.mapper(SCH).expect("mapper");
        let orb = host_sense_id(&*mapper).expect("arena");
        rt.block_on(backend.enable(SCH, 1)).expect("enable");
        g.bench_function("bare_mock_start_interrupt", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let t = Instant::now();
                    for _ in 0..iters {
                        backend.start(SCH, &orb).await.expect("start");
                        match events.recv().await {
                            Some(BackendEvent::Interrupt { irb, .. }) => {
                                black_box(irb);
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                    t.elapsed()
                })
            })
        });
    }

    // Through css-core: a guest program translated (data pinned) per submit, and the same
    // with translation taken out (the driver's own cost).
    bench_submit::<ccw_translate::Translator>(&mut g, &rt, "css_core_submit_complete");
    bench_submit::<Prebuilt>(&mut g, &rt, "css_core_submit_complete_pretranslated");
    g.finish();
}

/// submit -> completion of SENSE ID (count 8) through css-core with translator `T`.
fn bench_submit<T: Translate>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
) {
    let mem = guest();
    let prog = [0xE4, 0x20, 0, 8, 0, 0, (DATA >> 8) as u8, DATA as u8];
    mem.write_slice(&prog, GuestAddress(PROG)).expect("program");
    let backend = Arc::new(MockBackend::default_subsystem(&mem).expect("mock"));
    let (css, sub) = rt.block_on(async {
        let css: Css<MockBackend, T> = Css::new(backend.clone()).expect("css");
        css.probe().await.expect("probe");
        let sub = css.open(SCH).await.expect("open");
        (css, sub)
    });
    let orb = CommandOrb::new(1, PROG as u32).emit();
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(sub.submit(&orb, &mem).await.expect("submit"));
                }
                t.elapsed()
            })
        })
    });
    rt.block_on(sub.close()).expect("close");
    drop(css);
}

/// Whether criterion runs for measurement (`cargo bench` passes `--bench`); `cargo test`
/// runs every benchmark once as a smoke test, at a small scale so the test suite stays fast.
/// Read once: [`nth`] asks for every subchannel of a storm, inside the timed loop (reading
/// the arguments each time was a third of the storm's measured time).
fn measuring() -> bool {
    static MEASURING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MEASURING.get_or_init(|| std::env::args().any(|a| a == "--bench"))
}

/// The four subchannel counts of P3, up to the architecture's 4 sets x 65,536 = 262,144
/// when measuring; small ones as a smoke test.
fn scale_points() -> [u32; 4] {
    if measuring() {
        [16_384, 65_536, 131_072, 262_144]
    } else {
        [256, 512, 1_024, 2_048]
    }
}

/// Subchannels per set: the largest point fills all four sets (65,536 each when measuring;
/// the smoke test crosses sets too).
fn per_set() -> u32 {
    scale_points()[3] / 4
}

/// Subchannel `i` of a big configuration: set `i / per_set()`, number `i % per_set()`.
fn nth(i: u32) -> SubchannelId {
    SubchannelId::new(0, (i / per_set()) as u8, (i % per_set()) as u16)
}

fn big_backend(n: u32) -> Arc<MockBackend> {
    let mut b = MockBackend::builder();
    for i in 0..n {
        b = b.subchannel_at(nth(i), i as u16, Box::new(TestDevice::new(16)));
    }
    Arc::new(b.build().expect("mock"))
}

fn scale(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("scale");
    g.sample_size(10);
    let points = scale_points();
    let mut reported = false;
    for n in points {
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_function(format!("register_open_{n}"), |b| {
            if n == points[3] && !std::mem::replace(&mut reported, true) {
                report_memory(&rt, n);
            }
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let backend = big_backend(n);
                    total += rt.block_on(async {
                        let t = Instant::now();
                        let css: Css<MockBackend> = Css::new(backend).expect("css");
                        let ids = css.probe().await.expect("probe");
                        let mut subs = Vec::with_capacity(ids.len());
                        for sch in ids {
                            subs.push(css.open(sch).await.expect("open"));
                        }
                        let e = t.elapsed();
                        black_box(subs);
                        e
                    });
                }
                total
            })
        });
    }
    g.finish();
}

/// Heap bytes css-core holds per registered and opened subchannel (counting allocator),
/// printed and, when `CCW_BENCH_EXTRA` names a directory (`cargo xtask bench` does), written
/// there as `scale-memory.json` for the summary.
fn report_memory(rt: &tokio::runtime::Runtime, n: u32) {
    let backend = big_backend(n);
    let before = LIVE.load(Ordering::Relaxed);
    let (css, subs) = rt.block_on(async {
        let css: Css<MockBackend> = Css::new(backend.clone()).expect("css");
        let ids = css.probe().await.expect("probe");
        let mut subs = Vec::with_capacity(ids.len());
        for sch in ids {
            subs.push(css.open(sch).await.expect("open"));
        }
        (css, subs)
    });
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    let count = subs.len();
    assert_eq!(count, n as usize, "every subchannel registered");
    println!(
        "scale: {count} subchannels registered and opened: {:.1} MiB css-core heap, {} bytes per subchannel",
        bytes as f64 / (1 << 20) as f64,
        bytes / count as isize
    );
    if let Some(dir) = std::env::var_os("CCW_BENCH_EXTRA") {
        let dir = std::path::PathBuf::from(dir);
        let json = format!("{{\"subchannels\": {count}, \"heap_bytes\": {bytes}}}\n");
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("scale-memory.json"), json))
            .expect("write scale-memory.json");
    }
    drop(subs);
    drop(css);
}

fn crw_storm(c: &mut Criterion) {
    let rt = runtime();
    let points = scale_points();
    // Built on first use, so filtering other benchmarks does not pay for it.
    let css = std::cell::OnceCell::new();
    let css = || {
        css.get_or_init(|| {
            rt.block_on(async {
                let css: Css<MockBackend> = Css::new(big_backend(points[3])).expect("css");
                css.probe().await.expect("probe");
                css
            })
        })
    };
    let mut g = c.benchmark_group("crw_storm");
    g.sample_size(10);
    for n in points {
        g.throughput(Throughput::Elements(u64::from(n)));
        // The storm's channel subsystem has four subchannel sets at every point (it holds the
        // largest point's subchannels), so multiple subchannel sets are in use and the CSS
        // chains every subchannel report, also for set 0 (the second CRW carries CSSID and
        // SSID: `CrwReport`). Every point processes the same kind of report, so their costs
        // per report compare.
        g.bench_function(format!("subchannel_reports_{n}"), |b| {
            let css = css();
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let t = Instant::now();
                    for _ in 0..iters {
                        for i in 0..n {
                            let report = CrwReport::subchannel(crw::erc::PMOD, nth(i), true);
                            css.process_report(report.first).await;
                            if let Some(second) = report.second {
                                css.process_report(second).await;
                            }
                        }
                    }
                    t.elapsed()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, io_roundtrip, scale, crw_storm);
criterion_main!(benches);
