//! Reading clocks through the kernel: what every timestamp and every poll costs.
//!
//! Run: `cargo bench -p tempora-benches --bench sys_clock`. The PHC offset benchmark runs
//! only where a /dev/ptp0 exists (it says so otherwise).

#![allow(missing_docs)]
// Benchmark set-up panics on a broken fixture, which is what it should do.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use tempora_sys_clock::{PhcClock, SystemClock};

fn benches(c: &mut Criterion) {
    let clock = SystemClock::new();
    c.bench_function("sys/clock_gettime_realtime", |b| {
        b.iter(|| clock.now_realtime().unwrap())
    });
    c.bench_function("sys/clock_gettime_monotonic_raw", |b| {
        b.iter(|| clock.now_monotonic_raw().unwrap())
    });
    c.bench_function("sys/adjtimex_read", |b| b.iter(|| clock.state().unwrap()));
    match PhcClock::open("/dev/ptp0", false) {
        Ok(phc) => {
            c.bench_function("sys/phc_system_offset_5", |b| {
                b.iter(|| phc.system_offset(5).unwrap())
            });
        }
        Err(e) => eprintln!("sys/phc_system_offset_5 skipped: {e}"),
    }
    clock_bound(c);
}

/// Reading the clock error bound: ours ([`ClockBoundReader::now`]: the seqlock read and two
/// `clock_gettime`s) and AWS's `clock-bound-client` on the same segment, beside one
/// `clock_gettime` (above).
fn clock_bound(c: &mut Criterion) {
    use std::time::Duration;
    use tempora_clock_types::{ClockStatus, ErrorBound};
    use tempora_sys_clock::clock_bound::{ClockBoundReader, ClockBoundWriter, SegmentOptions};
    let path = std::env::temp_dir().join(format!("tempora-bench-shm0-{}", std::process::id()));
    let mut writer = ClockBoundWriter::create(&path, &SegmentOptions::default()).unwrap();
    writer
        .publish(
            &ErrorBound {
                bound: 100e-6,
                drift: 1e-6,
                status: ClockStatus::Synchronized,
            },
            Duration::from_secs(3600),
        )
        .unwrap();
    let ours = ClockBoundReader::open(&path).unwrap();
    c.bench_function("clock_bound/tempora_now", |b| {
        b.iter(|| ours.now().unwrap())
    });
    c.bench_function("clock_bound/tempora_snapshot", |b| {
        b.iter(|| ours.snapshot().unwrap())
    });
    let mut theirs =
        clock_bound_client::ClockBoundClient::new_with_path(path.to_str().unwrap()).unwrap();
    c.bench_function("clock_bound/clock_bound_client_now", |b| {
        b.iter(|| theirs.now().unwrap())
    });
    let _ = std::fs::remove_file(&path);
}

criterion_group!(sys_clock, benches);
criterion_main!(sys_clock);
