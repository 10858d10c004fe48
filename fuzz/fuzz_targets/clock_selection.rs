//! Selection over arbitrary candidates: never a panic, and any estimate is finite and
//! inside its own intersection interval.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_clock_filter::{Candidate, CandidateVerdict, SelectionConfig, select};
use tempora_clock_types::{Leap, LocalInstant};

fuzz_target!(|data: &[u8]| {
    let cands: Vec<Candidate> = data
        .chunks_exact(17)
        .take(64)
        .map(|c| Candidate {
            offset: f64::from_le_bytes(c[0..8].try_into().unwrap()),
            delay: f64::from(u32::from_le_bytes(c[8..12].try_into().unwrap())) * 1e-9,
            dispersion: 1e-6,
            jitter: f64::from(u32::from_le_bytes(c[12..16].try_into().unwrap())) * 1e-9,
            root_delay: 0.0,
            root_dispersion: 0.0,
            stratum: c[16] % 20,
            leap: Leap::None,
            time: LocalInstant(0),
            frequency: None,
        })
        .collect();
    let mut verdicts = vec![CandidateVerdict::None; cands.len()];
    if let Ok(est) = select(
        &cands,
        &mut verdicts,
        None,
        &SelectionConfig::default(),
        LocalInstant(0),
    ) {
        assert!(est.offset.is_finite());
        assert!(est.interval.0 <= est.offset && est.offset <= est.interval.1);
    }
});
