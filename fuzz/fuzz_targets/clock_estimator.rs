//! The per-source estimator over arbitrary exchanges, corrections and resets: never a
//! panic, and every estimate it gives is finite.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_clock_filter::{Measurement, RegressionConfig, RegressionFilter};
use tempora_clock_types::{ClockCorrection, Leap, LocalInstant};

fuzz_target!(|data: &[u8]| {
    let mut filter = RegressionFilter::new(RegressionConfig {
        max_samples: 128,
        ..RegressionConfig::default()
    });
    let mut time = 0i64;
    for c in data.chunks_exact(13).take(400) {
        let offset = f64::from(i32::from_le_bytes(c[0..4].try_into().unwrap())) * 1e-9;
        let delay = f64::from(u32::from_le_bytes(c[4..8].try_into().unwrap())) * 1e-9;
        time += i64::from(u32::from_le_bytes(c[8..12].try_into().unwrap()) % 100_000) * 1_000_000;
        let at = LocalInstant(time);
        match c[12] % 16 {
            0 => filter.apply_correction(ClockCorrection::Step { offset, at }),
            1 => filter.apply_correction(ClockCorrection::Frequency {
                delta: offset * 1e-3,
                at,
            }),
            2 => filter.reset(),
            _ => {
                let m = Measurement {
                    offset,
                    delay,
                    dispersion: 1e-7 + 15e-6 * delay,
                    root_delay: 0.0,
                    root_dispersion: 0.0,
                    stratum: 1,
                    leap: Leap::None,
                    time: at,
                };
                if let Ok(e) = filter.update(&m) {
                    assert!(e.offset.is_finite() && e.frequency.is_finite());
                    assert!(e.offset_error.is_finite() && e.frequency_error.is_finite());
                    assert!(e.offset_at(at).is_finite());
                }
            }
        }
    }
});
