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
}

criterion_group!(sys_clock, benches);
criterion_main!(sys_clock);
