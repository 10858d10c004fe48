//! The offsets and frequencies every exchange allows, and where in that region the truth
//! most likely is.
//!
//! An NTP exchange bounds the true offset hard: whatever the two legs' delays were, the
//! offset at that moment lies within half the round trip of the measured one. With the
//! clock's offset a line `offset + frequency * t` over the window, each exchange is a strip
//! in the (offset, frequency) plane and the lines consistent with all of them form a
//! convex polygon. Its edges are set by the exchanges whose one leg happened to be fastest,
//! so they close in as one over the number of exchanges, where a weighted mean of short
//! exchanges improves only as one over its root; and the frequency comes out of the same
//! region, so old exchanges are carried to now no further than the data allows.
//!
//! Where in the polygon: each leg is modelled as a common fixed latency plus exponential
//! queueing with its own mean, both means learnt from the window (they do not depend on
//! the offset: shifting it moves every leg by the same amount). The likelihood of a line
//! is then flat in neither direction: it peaks where the fastest outbound and the fastest
//! return leg are equal (the fixed latency is shared), falls off on either side at a rate
//! set by that leg's queueing, and leans toward the side of the leg that queues less. The
//! posterior is integrated over slices across the frequency axis. With both legs alike and
//! few exchanges it is close to the polygon's centroid; with many it closes on the middle
//! of the fastest legs; with one leg far busier than the other (a loaded uplink) it sits
//! near the bound the quiet leg sets, which is where the truth is.

use crate::MAX_SAMPLES;

/// Largest frequency difference considered, s/s: beyond the fastest the kernel can run a
/// clock (the tick moves it 10%, which a fast slew uses: the samples, carried across it,
/// lie on a line that steep) plus its oscillator's error. At 0.01 the region could not
/// hold a line through samples carried across an 83,333 ppm slew, and the estimate lagged
/// the clock until the slew overshot by a quarter of a second (found by the VM bench).
const MAX_FREQUENCY: f64 = 0.2;

/// Vertices a polygon can reach: the starting box plus one per clipping half-plane.
const CAPACITY: usize = 4 + 2 * MAX_SAMPLES;

/// Slices across the frequency axis the posterior is integrated over.
const SLICES: usize = 32;

/// One exchange as the region sees it: when (seconds relative to the newest), the measured
/// offset, and the half-width of the strip around it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bound {
    pub(crate) at: f64,
    pub(crate) offset: f64,
    pub(crate) half_width: f64,
}

/// A prior on the frequency: value and standard deviation, s/s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FrequencyPrior {
    pub(crate) frequency: f64,
    pub(crate) error: f64,
}

/// The posterior mean and spread over the feasible region.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Region {
    /// Offset at the newest exchange's time.
    pub(crate) offset: f64,
    /// Posterior standard deviation of the offset.
    pub(crate) offset_error: f64,
    /// Frequency: how fast the offset grows, s/s.
    pub(crate) frequency: f64,
    /// Posterior standard deviation of the frequency.
    pub(crate) frequency_error: f64,
    /// What every half-width had to be widened by for the region not to be empty: zero
    /// for exchanges that fit one line, more when the source or the local clock wanders.
    pub(crate) tolerance: f64,
}

/// How the likelihood varies across the region (see the module documentation), in the
/// polygon's coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Legs {
    /// Rate (1/s) at which the likelihood falls below the peak, toward low offsets:
    /// twice the exchanges over the outbound leg's mean queueing.
    below: f64,
    /// The same above the peak, from the return leg.
    above: f64,
    /// Exchanges times the difference of the legs' queueing rates (1/s): the lean.
    lean: f64,
    /// Exchanges times the sum of the legs' queueing rates: how much a wider slice (more
    /// room for the shared latency) is preferred.
    room: f64,
    /// Mean time of the exchanges, seconds relative to the newest.
    mean_at: f64,
}

/// A convex polygon in (offset, frequency) coordinates, without allocation.
struct Polygon {
    vertices: [(f64, f64); CAPACITY],
    len: usize,
}

/// First three moments of `exp(-rate x)` over `[0, length]`.
fn exponential_moments(rate: f64, length: f64) -> (f64, f64, f64) {
    let rl = rate * length;
    if rl < 1e-2 {
        // Series: the closed forms below lose everything to cancellation here.
        let l2 = length * length;
        return (
            length * (1.0 - rl / 2.0 + rl * rl / 6.0),
            l2 * (0.5 - rl / 3.0 + rl * rl / 8.0),
            l2 * length * (1.0 / 3.0 - rl / 4.0 + rl * rl / 10.0),
        );
    }
    let e = libm::exp(-rl);
    let r2 = rate * rate;
    (
        -libm::expm1(-rl) / rate,
        (1.0 - e * (1.0 + rl)) / r2,
        (2.0 - e * (rl * rl + 2.0 * rl + 2.0)) / (r2 * rate),
    )
}

impl Polygon {
    fn rectangle(x: (f64, f64), y: (f64, f64)) -> Self {
        let mut vertices = [(0.0, 0.0); CAPACITY];
        vertices[..4].copy_from_slice(&[(x.0, y.0), (x.1, y.0), (x.1, y.1), (x.0, y.1)]);
        Self { vertices, len: 4 }
    }

    /// Keeps the part where `a x + b y <= c` (Sutherland-Hodgman against one half-plane).
    fn clip(&mut self, scratch: &mut [(f64, f64); CAPACITY], a: f64, b: f64, c: f64) {
        let mut out = 0;
        for i in 0..self.len {
            let p = self.vertices[i];
            let q = self.vertices[(i + 1) % self.len];
            let vp = a * p.0 + b * p.1 - c;
            let vq = a * q.0 + b * q.1 - c;
            if vp <= 0.0 && out < CAPACITY {
                scratch[out] = p;
                out += 1;
            }
            if ((vp < 0.0 && vq > 0.0) || (vp > 0.0 && vq < 0.0)) && out < CAPACITY {
                let t = vp / (vp - vq);
                scratch[out] = (p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1));
                out += 1;
            }
        }
        self.vertices[..out].copy_from_slice(&scratch[..out]);
        self.len = out;
    }

    /// The range of offsets the polygon allows at frequency `y`.
    fn slice(&self, y: f64) -> Option<(f64, f64)> {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for i in 0..self.len {
            let p = self.vertices[i];
            let q = self.vertices[(i + 1) % self.len];
            if (p.1 <= y && y <= q.1) || (q.1 <= y && y <= p.1) {
                if q.1 == p.1 {
                    lo = lo.min(p.0.min(q.0));
                    hi = hi.max(p.0.max(q.0));
                } else {
                    let x = p.0 + (y - p.1) / (q.1 - p.1) * (q.0 - p.0);
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
            }
        }
        (hi >= lo).then_some((lo, hi))
    }

    /// Posterior mean and variance of (offset, frequency) over the polygon, by slices
    /// across the frequency axis: flat without `legs`, times a Gaussian `prior` on the
    /// frequency when given (ignored if it leaves no weight on the polygon).
    fn posterior(
        &self,
        legs: Option<Legs>,
        prior: Option<FrequencyPrior>,
    ) -> Option<((f64, f64), (f64, f64))> {
        if self.len == 0 {
            return None;
        }
        let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(_, y) in &self.vertices[..self.len] {
            low = low.min(y);
            high = high.max(y);
        }
        let mut prior = prior.filter(|p| p.error > 0.0 && p.error.is_finite());
        if let Some(p) = prior {
            let (l, h) = (
                low.max(p.frequency - 6.0 * p.error),
                high.min(p.frequency + 6.0 * p.error),
            );
            if h > l {
                (low, high) = (l, h);
            } else {
                prior = None;
            }
        }
        // Log-weight, mass, and the first two moments of the offset, per slice.
        let mut rows = [(0.0, 0.0, 0.0, 0.0, 0.0); SLICES];
        let mut count = 0;
        let mut peak = f64::NEG_INFINITY;
        let step = (high - low) / SLICES as f64;
        for k in 0..SLICES {
            let y = if step > 0.0 {
                low + (k as f64 + 0.5) * step
            } else {
                low
            };
            let Some((lo, hi)) = self.slice(y) else {
                continue;
            };
            let (middle, half) = (0.5 * (lo + hi), 0.5 * (hi - lo));
            let mut log_weight = 0.0;
            let (mass, mean, square) = match legs {
                Some(l) => {
                    log_weight += l.room * half - l.lean * (middle + y * l.mean_at);
                    let (b0, b1, b2) = exponential_moments(l.below, half);
                    let (a0, a1, a2) = exponential_moments(l.above, half);
                    let mass = b0 + a0;
                    if mass.is_nan() || mass <= 0.0 {
                        continue;
                    }
                    let shift = (a1 - b1) / mass;
                    (
                        mass,
                        middle + shift,
                        middle * middle + 2.0 * middle * shift + (a2 + b2) / mass,
                    )
                }
                None => (hi - lo, middle, (lo * lo + lo * hi + hi * hi) / 3.0),
            };
            if let Some(p) = prior {
                let z = (y - p.frequency) / p.error;
                log_weight -= 0.5 * z * z;
            }
            if !log_weight.is_finite() || !mass.is_finite() {
                continue;
            }
            peak = peak.max(log_weight);
            rows[count] = (log_weight, mass, mean, square, y);
            count += 1;
            if step <= 0.0 {
                break;
            }
        }
        let (mut total, mut mx, mut mxx, mut my, mut myy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &(log_weight, mass, mean, square, y) in &rows[..count] {
            let w = libm::exp(log_weight - peak) * mass;
            total += w;
            mx += w * mean;
            mxx += w * square;
            my += w * y;
            myy += w * y * y;
        }
        if total.is_nan() || total <= 0.0 || !total.is_finite() {
            return None;
        }
        let (cx, cy) = (mx / total, my / total);
        let (vx, mut vy) = (
            (mxx / total - cx * cx).max(0.0),
            (myy / total - cy * cy).max(0.0),
        );
        // A slice stands for its width in frequency.
        vy += step * step / 12.0;
        Some(((cx, cy), (vx, vy)))
    }
}

/// Intersects the strips of `bounds` (times relative to the newest exchange, which may
/// have been left out), each widened by `tolerance`, in coordinates relative to the last
/// bound's offset; `None` when nothing is left.
fn intersect(
    bounds: &[Bound],
    tolerance: f64,
    scratch: &mut [(f64, f64); CAPACITY],
) -> Option<Polygon> {
    let newest = bounds.last()?;
    let origin = newest.offset;
    // The newest strip bounds the offset at time 0 within its half-width, and within the
    // largest frequency times its age if it is not at time 0 (the newest exchange was
    // left out as a spike).
    let half = newest.half_width + tolerance + MAX_FREQUENCY * newest.at.abs();
    let mut polygon = Polygon::rectangle((-half, half), (-MAX_FREQUENCY, MAX_FREQUENCY));
    let clipped = if newest.at == 0.0 {
        &bounds[..bounds.len() - 1]
    } else {
        bounds
    };
    // Newest first: recent exchanges cut the region down fastest, and the older ones
    // then clip a small polygon.
    for b in clipped.iter().rev() {
        let centre = b.offset - origin;
        let half = b.half_width + tolerance;
        // centre - half <= x + y * at <= centre + half
        polygon.clip(scratch, 1.0, b.at, centre + half);
        polygon.clip(scratch, -1.0, -b.at, half - centre);
        if polygon.len == 0 {
            return None;
        }
    }
    Some(polygon)
}

/// Marks in `outlier` the exchanges that disagree with the rest: brought to time 0 along
/// `frequency` (give or take `spread` per second of age), each exchange's strip is an
/// interval, and those that miss the point most intervals share are marked (Marzullo's
/// intersection, over one source's samples). Returns how many were marked; marks nothing
/// when there are fewer than eight, or when the dissenters are more than a quarter or
/// include the two newest exchanges (not spikes, then, but a change that has begun).
pub(crate) fn mark_outliers(
    bounds: &[Bound],
    frequency: f64,
    spread: f64,
    outlier: &mut [bool],
) -> usize {
    let n = bounds.len();
    if n < 8 || outlier.len() < n || n > MAX_SAMPLES || !frequency.is_finite() {
        return 0;
    }
    let spread = if spread.is_finite() {
        spread.abs()
    } else {
        0.0
    };
    let interval = |b: &Bound| {
        let centre = b.offset - frequency * b.at;
        let half = b.half_width + spread * b.at.abs();
        (centre - half, centre + half)
    };
    // Ends of the intervals; at equal values starts sort first, so touching intervals
    // share their end point.
    let mut ends = [(0.0f64, 0i8); 2 * MAX_SAMPLES];
    for (i, b) in bounds.iter().enumerate() {
        let (lo, hi) = interval(b);
        if !(lo.is_finite() && hi.is_finite()) {
            return 0;
        }
        ends[2 * i] = (lo, 1);
        ends[2 * i + 1] = (hi, -1);
    }
    let ends = &mut ends[..2 * n];
    ends.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
    let (mut depth, mut best, mut point) = (0i32, 0i32, 0.0);
    for k in 0..ends.len() {
        depth += i32::from(ends[k].1);
        if depth > best {
            best = depth;
            point = 0.5 * (ends[k].0 + ends.get(k + 1).map_or(ends[k].0, |e| e.0));
        }
    }
    let missing = |b: &Bound| {
        let (lo, hi) = interval(b);
        point < lo || point > hi
    };
    let count = bounds.iter().filter(|b| missing(b)).count();
    if count == 0 || count * 4 > n || (missing(&bounds[n - 1]) && missing(&bounds[n - 2])) {
        return 0;
    }
    for (mark, b) in outlier.iter_mut().zip(bounds) {
        *mark = missing(b);
    }
    count
}

/// The legs' queueing, learnt from the exchanges at frequency `y` (see [`Legs`]).
fn legs(bounds: &[Bound], origin: f64, y: f64, floor: f64) -> Legs {
    let n = bounds.len() as f64;
    let (mut out_min, mut out_sum, mut back_min, mut back_sum, mut at_sum) =
        (f64::INFINITY, 0.0, f64::INFINITY, 0.0, 0.0);
    for b in bounds {
        let centre = b.offset - origin - y * b.at;
        // The outbound leg's delay is the distance from the line up to the strip's top,
        // the return leg's from the strip's bottom up to the line; each up to the common
        // offset of the line, which the queueing means do not depend on.
        let out = centre + b.half_width;
        let back = b.half_width - centre;
        out_min = out_min.min(out);
        out_sum += out;
        back_min = back_min.min(back);
        back_sum += back;
        at_sum += b.at;
    }
    let out_rate = 1.0 / (out_sum / n - out_min).max(floor);
    let back_rate = 1.0 / (back_sum / n - back_min).max(floor);
    Legs {
        below: 2.0 * n * out_rate,
        above: 2.0 * n * back_rate,
        lean: n * (back_rate - out_rate),
        room: n * (out_rate + back_rate),
        mean_at: at_sum / n,
    }
}

/// The posterior over the region the exchanges allow. When they allow none (the source or
/// the local clock wandered off a line by more than the round trips), every strip is
/// widened, starting from `tolerance` and doubling, until they do. `floor` is the
/// smallest queueing a leg is credited with (the clocks' precision).
pub(crate) fn feasible_region(
    bounds: &[Bound],
    tolerance: f64,
    floor: f64,
    prior: Option<FrequencyPrior>,
) -> Option<Region> {
    if bounds.is_empty() || bounds.len() > MAX_SAMPLES {
        return None;
    }
    if bounds
        .iter()
        .any(|b| !(b.at.is_finite() && b.offset.is_finite() && b.half_width.is_finite()))
    {
        return None;
    }
    let origin = bounds[bounds.len() - 1].offset;
    let floor = if floor.is_finite() && floor > 0.0 {
        floor
    } else {
        1e-9
    };
    let mut scratch = [(0.0, 0.0); CAPACITY];
    let mut widen = 0.0;
    let mut step = if tolerance.is_finite() && tolerance > 0.0 {
        tolerance
    } else {
        floor
    };
    // 100 doublings reach past any finite offset this filter accepts.
    for _ in 0..100 {
        if let Some(polygon) = intersect(bounds, widen, &mut scratch) {
            // The flat posterior first: its frequency is where the legs are measured.
            let flat = polygon.posterior(None, prior)?;
            let ((x, y), (vx, vy)) = if bounds.len() >= 3 {
                let legs = legs(bounds, origin, flat.0.1, floor);
                polygon.posterior(Some(legs), prior).unwrap_or(flat)
            } else {
                flat
            };
            return Some(Region {
                offset: origin + x,
                offset_error: libm::sqrt(vx),
                frequency: y,
                frequency_error: libm::sqrt(vy),
                tolerance: widen,
            });
        }
        widen = step;
        step *= 2.0;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bound(at: f64, offset: f64, half_width: f64) -> Bound {
        Bound {
            at,
            offset,
            half_width,
        }
    }

    #[test]
    fn a_single_exchange_gives_its_offset_and_no_frequency() {
        let r = feasible_region(&[bound(0.0, 0.25, 0.001)], 1e-9, 1e-9, None).unwrap();
        assert!((r.offset - 0.25).abs() < 1e-12, "{r:?}");
        assert!(r.frequency.abs() < 1e-12, "{r:?}");
        // Uniform over +/- 1 ms: standard deviation 1 ms / sqrt(3).
        assert!((r.offset_error - 0.001 / 3f64.sqrt()).abs() < 1e-9, "{r:?}");
        assert!(r.frequency_error > 1e-3, "frequency unknown: {r:?}");
    }

    #[test]
    fn symmetric_strips_around_a_line_give_the_line() {
        let bounds: Vec<Bound> = (0..16)
            .map(|i| {
                let at = -16.0 * f64::from(15 - i);
                bound(at, 0.001 + 20e-6 * at, 0.0005)
            })
            .collect();
        let r = feasible_region(&bounds, 1e-9, 1e-9, None).unwrap();
        assert!((r.offset - 0.001).abs() < 1e-12, "{r:?}");
        assert!((r.frequency - 20e-6).abs() < 1e-14, "{r:?}");
        assert_eq!(r.tolerance, 0.0);
    }

    #[test]
    fn the_fastest_legs_set_the_edges() {
        // Truth: 1 ms and 5 ppm. The outbound leg queues 0-2 ms, the return 0-0.5 ms, one
        // exchange a second for two minutes: the region's centroid is far closer to the
        // truth than the shortest exchange, and it finds the frequency.
        let mut state = 12345u64;
        let mut uniform = |hi: f64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            hi * ((state >> 11) as f64 / (1u64 << 53) as f64)
        };
        let mut bounds = Vec::new();
        for i in 0..120 {
            let at = f64::from(i) - 119.0;
            let (out, back) = (20e-6 + uniform(2e-3), 20e-6 + uniform(5e-4));
            bounds.push(bound(
                at,
                0.001 + 5e-6 * at + (out - back) / 2.0,
                (out + back) / 2.0,
            ));
        }
        let shortest = bounds
            .iter()
            .min_by(|a, b| a.half_width.total_cmp(&b.half_width))
            .unwrap();
        let shortest_error = (shortest.offset - 5e-6 * shortest.at - 0.001).abs();
        let r = feasible_region(&bounds, 1e-9, 1e-9, None).unwrap();
        assert!((r.offset - 0.001).abs() < 30e-6, "{r:?}");
        assert!(
            (r.offset - 0.001).abs() < shortest_error,
            "{r:?} vs {shortest_error}"
        );
        assert!((r.frequency - 5e-6).abs() < 0.5e-6, "{r:?}");
        assert!(
            r.offset_error < 30e-6 && r.frequency_error < 0.5e-6,
            "{r:?}"
        );
    }

    #[test]
    fn the_legs_model_beats_the_centroid_when_one_leg_queues_more() {
        // Truth 0. Outbound queueing 0-2 ms, return 0-0.5 ms: the truth sits near the
        // region's lower edge (the quiet leg's bound), not in its middle.
        let (mut legs_error, mut flat_error) = (0.0, 0.0);
        for seed in 1..=20u64 {
            let mut state = seed;
            let mut uniform = |hi: f64| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                hi * ((state >> 11) as f64 / (1u64 << 53) as f64)
            };
            let bounds: Vec<Bound> = (0..40)
                .map(|i| {
                    let (out, back) = (20e-6 + uniform(2e-3), 20e-6 + uniform(5e-4));
                    bound(f64::from(i) - 39.0, (out - back) / 2.0, (out + back) / 2.0)
                })
                .collect();
            let r = feasible_region(&bounds, 1e-9, 1e-9, None).unwrap();
            let polygon = intersect(&bounds, 0.0, &mut [(0.0, 0.0); CAPACITY]).unwrap();
            let ((flat, _), _) = polygon.posterior(None, None).unwrap();
            legs_error += r.offset * r.offset;
            let flat = flat + bounds[39].offset;
            flat_error += flat * flat;
        }
        assert!(
            legs_error < 0.5 * flat_error,
            "RMS {:e} with the legs model, {:e} flat",
            (legs_error / 20.0).sqrt(),
            (flat_error / 20.0).sqrt()
        );
    }

    #[test]
    fn a_frequency_prior_pins_a_short_window() {
        // Two exchanges a second apart leave the frequency open by hundreds of ppm; a
        // prior of 50 +/- 1 ppm (what was known before a reset) settles it.
        let bounds = [bound(-1.0, -50e-6, 200e-6), bound(0.0, 0.0, 200e-6)];
        let open = feasible_region(&bounds, 1e-9, 1e-9, None).unwrap();
        assert!(open.frequency_error > 50e-6, "{open:?}");
        let prior = FrequencyPrior {
            frequency: 50e-6,
            error: 1e-6,
        };
        let r = feasible_region(&bounds, 1e-9, 1e-9, Some(prior)).unwrap();
        assert!((r.frequency - 50e-6).abs() < 0.5e-6, "{r:?}");
        assert!(r.frequency_error < 2e-6, "{r:?}");
        // A prior the data exclude is ignored.
        let wrong = FrequencyPrior {
            frequency: 0.005,
            error: 1e-6,
        };
        let r = feasible_region(&bounds, 1e-9, 1e-9, Some(wrong)).unwrap();
        assert!(r.frequency.abs() < 1e-3, "{r:?}");
    }

    #[test]
    fn exchanges_that_fit_no_line_widen_the_strips() {
        let bounds = [
            bound(-2.0, 0.0, 1e-6),
            bound(-1.0, 0.01, 1e-6),
            bound(0.0, 0.0, 1e-6),
        ];
        let r = feasible_region(&bounds, 1e-7, 1e-9, None).unwrap();
        assert!(r.tolerance > 1e-3, "{r:?}");
        assert!(r.offset.is_finite() && r.frequency.is_finite());
    }

    #[test]
    fn non_finite_input_is_refused() {
        assert!(feasible_region(&[], 1e-9, 1e-9, None).is_none());
        assert!(feasible_region(&[bound(0.0, f64::NAN, 1e-3)], 1e-9, 1e-9, None).is_none());
    }

    proptest! {
        /// The truth is inside every strip, so it is inside the region, the region is
        /// never empty, and the centroid lies within the newest strip.
        #[test]
        fn the_truth_stays_feasible(
            offset in -1.0f64..1.0,
            frequency in -5e-4f64..5e-4,
            legs in proptest::collection::vec(
                (0f64..2e-3, 0f64..5e-4, 0.5f64..64.0),
                1..MAX_SAMPLES,
            ),
        ) {
            let mut at = 0.0;
            let mut bounds: Vec<Bound> = Vec::new();
            for &(out, back, gap) in legs.iter().rev() {
                let truth = offset + frequency * at;
                bounds.push(bound(at, truth + (out - back) / 2.0, (out + back) / 2.0 + 1e-12));
                at -= gap;
            }
            bounds.reverse();
            let r = feasible_region(&bounds, 1e-9, 1e-9, None).unwrap();
            prop_assert_eq!(r.tolerance, 0.0);
            let newest = bounds[bounds.len() - 1];
            prop_assert!((r.offset - newest.offset).abs() <= newest.half_width + 1e-12);
            prop_assert!(r.offset_error.is_finite() && r.frequency_error.is_finite());
        }

        /// Any finite input gives a finite answer.
        #[test]
        fn any_finite_input_gives_a_finite_region(
            raw in proptest::collection::vec(
                (-1e6f64..1e6, 0f64..100.0, 0f64..1e4),
                1..MAX_SAMPLES,
            ),
        ) {
            let mut at = 0.0;
            let mut bounds: Vec<Bound> = raw
                .iter()
                .rev()
                .map(|&(offset, delay, gap)| {
                    let b = bound(at, offset, delay / 2.0);
                    at -= gap;
                    b
                })
                .collect();
            bounds.reverse();
            let r = feasible_region(&bounds, 1e-9, 1e-9, None).unwrap();
            prop_assert!(r.offset.is_finite() && r.frequency.is_finite());
            prop_assert!(r.offset_error.is_finite() && r.frequency_error.is_finite());
        }
    }
}
