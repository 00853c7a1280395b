// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Round-trip measurement loops for the in-guest benchmark (`vfio-guest bench`): the same
//! channel program started through a [`Backend`] (the [`vfio_backend::VfioBackend`]) and
//! through a raw pwrite / eventfd / pread loop on the same [`VfioDevice`]. The backend loop is
//! generic, so its unit test runs on the simulator; the raw loop runs only against a kernel.

use std::time::{Duration, Instant};

use ccw_types::{Irb, Orb, SubchannelId};
use css_core::{Backend, BackendError, BackendErrorKind, BackendEvent, ConditionCode};
use vfio_backend::{VfioDevice, poll_readable, start_request, uapi};

fn error(kind: BackendErrorKind, op: &'static str, detail: impl Into<String>) -> BackendError {
    BackendError::new(kind, op).with_detail(detail)
}

/// One measured I/O: its round-trip time and the IRB it ended with.
#[derive(Debug, Clone)]
pub(crate) struct RoundTrip {
    /// From the start request to the IRB in hand.
    pub(crate) elapsed: Duration,
    /// The IRB.
    pub(crate) irb: Irb,
}

/// Runs `orb` `n` times on `device` with the least possible machinery: write the io region,
/// block on an eventfd connected to the io interrupt, read the io region. Each I/O may take
/// at most `timeout`.
///
/// Connects its own eventfd to the io interrupt (replacing any other) and disconnects it at
/// the end.
pub(crate) fn raw_round_trips(
    device: &VfioDevice,
    orb: &Orb,
    n: usize,
    timeout: Duration,
) -> Result<Vec<RoundTrip>, BackendError> {
    const OP: &str = "raw round trip";
    let efd = device.eventfd(false)?;
    device.set_irq(uapi::VFIO_CCW_IO_IRQ_INDEX, Some(&efd))?;
    let req = start_request(orb);
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let mut out = Vec::with_capacity(n);
    let result = (|| {
        for _ in 0..n {
            let t0 = Instant::now();
            device.write_io(&req)?;
            let ready = poll_readable(&efd, ms).map_err(|e| {
                BackendError::new(BackendErrorKind::Io, "poll")
                    .with_errno(e.errno())
                    .with_detail(e.to_string())
            })?;
            if !ready {
                return Err(error(
                    BackendErrorKind::Io,
                    OP,
                    format!("no interruption within {timeout:?}"),
                ));
            }
            efd.read()
                .map_err(|e| error(BackendErrorKind::Io, "eventfd read", e.to_string()))?;
            let region = device.read_io()?;
            let elapsed = t0.elapsed();
            let irb = Irb::read_from(&region.irb_area)
                .map_err(|e| error(BackendErrorKind::Io, "decode IRB", e.to_string()))?;
            out.push(RoundTrip { elapsed, irb });
        }
        Ok(())
    })();
    let disarm = device.set_irq(uapi::VFIO_CCW_IO_IRQ_INDEX, None);
    result?;
    disarm?;
    Ok(out)
}

/// Runs `orb` `n` times on `sch` through `backend` (START, then the interrupt event from its
/// tokio task). The subchannel must be enabled; `events` is the backend's event stream. The
/// whole run may take at most `n * timeout`.
pub(crate) async fn backend_round_trips<B: Backend>(
    backend: &B,
    sch: SubchannelId,
    events: &mut css_core::EventReceiver,
    orb: &Orb,
    n: usize,
    timeout: Duration,
) -> Result<Vec<RoundTrip>, BackendError> {
    const OP: &str = "backend round trip";
    let mut out = Vec::with_capacity(n);
    // One deadline for the whole run (n x timeout), so the measured path has no per-I/O
    // timer: what a consumer awaiting its completion pays.
    let limit = timeout.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    for _ in 0..n {
        let t0 = Instant::now();
        let cc = backend.start(sch, orb).await?;
        if cc != ConditionCode::Cc0 {
            return Err(
                error(BackendErrorKind::Io, OP, format!("START cc {}", cc.value())).on(sch),
            );
        }
        let irb = loop {
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Some(BackendEvent::Interrupt { irb, .. }) => break irb,
                    Some(_) => continue,
                    None => return Err(error(BackendErrorKind::Closed, OP, "event stream closed")),
                },
                () = &mut deadline => {
                    return Err(error(BackendErrorKind::Io, OP, format!("no interruption within {limit:?}")));
                }
            }
        };
        out.push(RoundTrip {
            elapsed: t0.elapsed(),
            irb,
        });
    }
    Ok(out)
}

/// The median of `v` (the upper one for an even count); `None` when empty.
pub(crate) fn median(v: &mut [Duration]) -> Option<Duration> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ccw_types::{CcwFlags, CcwFormat, CcwRepr, CommandOrb};
    use mock_backend::MockBackend;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    /// The backend loop on the simulator: each round trip ends with its IRB; without an
    /// interruption it gives up with a typed error instead of hanging. (The raw loop needs a
    /// kernel: the s390x lane runs it.)
    #[tokio::test]
    async fn backend_loop_runs_and_gives_up_cleanly() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let b = MockBackend::default_subsystem(&mem).unwrap();
        let sch = "0.0.0000".parse().unwrap();
        let mut rx = b.take_events().unwrap();
        b.enable(sch, 0).await.unwrap();
        let ccw = CcwRepr {
            cmd: 0xE4,
            flags: CcwFlags::SLI,
            count: 256,
            cda: 0x2000,
        }
        .emit(CcwFormat::Format1)
        .unwrap();
        mem.write_slice(&ccw, GuestAddress(0x1000)).unwrap();
        let orb = CommandOrb::new(7, 0x1000).emit();
        let trips = backend_round_trips(&b, sch, &mut rx, &orb, 5, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(trips.len(), 5);
        assert!(
            trips
                .iter()
                .all(|t| t.irb.scsw.is_final() && t.irb.scsw.cpa.get() == 0x1008)
        );
        let mut times: Vec<Duration> = trips.iter().map(|t| t.elapsed).collect();
        assert!(median(&mut times).is_some());
        assert_eq!(median(&mut []), None);
        // Disabled: START is cc 3, a typed error.
        b.disable(sch).await.unwrap();
        let e = backend_round_trips(&b, sch, &mut rx, &orb, 1, Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(e.detail.contains("cc"), "{e}");
    }
}
