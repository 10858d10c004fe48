//! clock-filter and clock-discipline hot paths.
//!
//! Run: `cargo bench -p tempora-benches --bench algorithms`

#![allow(missing_docs)]
// Benchmark set-up panics on a broken fixture, which is what it should do.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tempora_clock_discipline::{
    Discipline, DisciplineConfig, DisciplineInput, PiServo, PiServoConfig, RfcConfig, RfcDiscipline,
};
use tempora_clock_filter::{
    Candidate, CandidateVerdict, ClockFilter, Measurement, OffsetKalman, OffsetKalmanConfig,
    RegressionConfig, RegressionFilter, SelectionConfig, select,
};
use tempora_clock_types::{Leap, LocalInstant};

fn measurement(i: u32) -> Measurement {
    // Deterministic scatter: offsets within ±50 µs, delays 100-300 µs.
    let x = f64::from(i.wrapping_mul(2_654_435_761) % 1000) / 1000.0;
    Measurement {
        offset: (x - 0.5) * 100e-6,
        delay: 100e-6 + x * 200e-6,
        dispersion: 1e-6,
        root_delay: 0.001,
        root_dispersion: 0.001,
        stratum: 2,
        leap: Leap::None,
        time: LocalInstant::from_seconds_f64(f64::from(i) * 16.0),
    }
}

fn candidates(n: usize) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            let m = measurement(i as u32);
            Candidate {
                offset: m.offset,
                delay: m.delay,
                dispersion: 1e-5,
                jitter: 2e-5,
                root_delay: m.root_delay,
                root_dispersion: m.root_dispersion,
                stratum: 2,
                leap: Leap::None,
                time: LocalInstant(0),
                frequency: Some((1e-7, 1e-8)),
            }
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    c.bench_function("filter/rfc_update", |b| {
        let mut filter = ClockFilter::new(1e-7);
        let mut i = 0u32;
        b.iter(|| {
            i += 1;
            filter.update(black_box(&measurement(i)), 16.0).unwrap()
        })
    });
    for n in [32usize, 128] {
        c.bench_function(&format!("filter/regression_update_{n}"), |b| {
            let mut filter = RegressionFilter::new(RegressionConfig {
                max_samples: n,
                ..RegressionConfig::default()
            });
            let mut i = 0u32;
            b.iter(|| {
                i += 1;
                filter.update(black_box(&measurement(i))).unwrap()
            })
        });
    }
    for n in [8usize, 32] {
        let cands = candidates(n);
        c.bench_function(&format!("select/select_cluster_combine_{n}"), |b| {
            let mut verdicts = vec![CandidateVerdict::None; n];
            b.iter(|| {
                select(
                    black_box(&cands),
                    &mut verdicts,
                    None,
                    &SelectionConfig::default(),
                    LocalInstant(0),
                )
                .unwrap()
            })
        });
    }
    c.bench_function("discipline/update", |b| {
        b.iter_batched(
            || (Discipline::new(DisciplineConfig::default()), 0i64),
            |(mut d, _)| {
                for i in 1..=8i64 {
                    let input = DisciplineInput {
                        offset: 1e-4,
                        offset_error: 1e-6,
                        frequency: Some((1e-7, 1e-9)),
                        root_distance: 0.01,
                        step_quorum: true,
                    };
                    black_box(d.update(&input, LocalInstant(i * 16_000_000_000)).unwrap());
                }
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("discipline/rfc_update", |b| {
        let mut d = RfcDiscipline::new(RfcConfig::default(), Some(0.0), 1e-7);
        let mut t = 0i64;
        b.iter(|| {
            t += 16_000_000_000;
            d.update(black_box(1e-4), LocalInstant(t)).unwrap()
        })
    });
    c.bench_function("filter/ptp_offset_kalman_update", |b| {
        let mut kalman = OffsetKalman::new(OffsetKalmanConfig::default());
        let mut t = 0i64;
        b.iter(|| {
            t += 250_000_000;
            let jitter = ((t / 250_000_000) % 7) as f64 * 40.0;
            kalman.update(black_box(jitter), 0.0, LocalInstant(t))
        })
    });
    c.bench_function("servo/pi_sample", |b| {
        let mut servo = PiServo::new(PiServoConfig::HARDWARE, 1.0, 0.0);
        let mut t = 0i64;
        b.iter(|| {
            t += 1_000_000_000;
            servo.sample(black_box(1e-8), LocalInstant(t)).unwrap()
        })
    });
}

criterion_group!(algorithms, benches);
criterion_main!(algorithms);
