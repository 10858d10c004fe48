//! Leap smearing: serving time that absorbs a leap second over a window instead of
//! repeating (or skipping) one, as Google's and AWS's public servers do.
//!
//! The clock underneath inserts or deletes the second at midnight as usual (its kernel
//! does); the smear is an offset added to what is served. Counted on a continuous
//! timescale (the clock's time with the leap taken back out), the served time moves by
//! the leap second gradually: a fraction `f` of it, from 0 where the window starts to 1
//! where it ends, the window centred on the leap.
//!
//! Shapes: `linear` (Google's: the default, 24 h noon to noon, so that the served
//! frequency is off by 11.6 ppm throughout) and `cosine` (half a cosine: the frequency
//! eases in and out, twice the peak rate of the linear). chrony's `smoothtime` is a third
//! kind: it feeds the leap to a frequency-limited servo (`smoothtime 400 0.001 leaponly`),
//! so its curve is quadratic at each end and its length follows from the two limits.

use tempora_clock_types::Leap;

/// How the served time moves through the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SmearShape {
    /// Evenly: the fraction grows in proportion to time.
    #[default]
    Linear,
    /// Half a cosine: slow at the ends, fastest at the leap.
    Cosine,
}

/// A smear of one leap second over `duration` seconds, centred on the leap.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LeapSmear {
    /// The shape.
    pub shape: SmearShape,
    /// The window, seconds (86400 for Google's noon-to-noon).
    pub duration: f64,
}

impl Default for LeapSmear {
    fn default() -> Self {
        Self {
            shape: SmearShape::Linear,
            duration: 86_400.0,
        }
    }
}

impl LeapSmear {
    /// The window around the leap at `leap_unix` (the midnight it happens at), Unix
    /// seconds on the continuous timescale.
    pub fn window(&self, leap_unix: i64) -> (f64, f64) {
        let half = self.duration.max(0.0) / 2.0;
        (leap_unix as f64 - half, leap_unix as f64 + half)
    }

    /// The fraction of the leap second smeared in at continuous time `t`, 0 to 1.
    fn fraction(&self, t: f64, leap_unix: i64) -> f64 {
        let (start, end) = self.window(leap_unix);
        // A window of no width (or NaN): the whole second at the leap.
        if end.partial_cmp(&start) != Some(core::cmp::Ordering::Greater) {
            return if t < leap_unix as f64 { 0.0 } else { 1.0 };
        }
        let x = ((t - start) / (end - start)).clamp(0.0, 1.0);
        match self.shape {
            SmearShape::Linear => x,
            SmearShape::Cosine => (1.0 - libm::cos(core::f64::consts::PI * x)) / 2.0,
        }
    }

    /// What to add, in seconds, to the clock's time `clock_unix` (the kernel's, which
    /// inserts or deletes the second at `leap_unix`) to serve smeared time. Zero outside
    /// the window, and for no leap. `inserted` says the kernel is in or past an inserted
    /// second (adjtimex's TIME_OOP or TIME_WAIT): during it the clock reads the second
    /// before midnight again, which its value alone cannot tell from the first time.
    pub fn offset(&self, clock_unix: f64, leap_unix: i64, leap: Leap, inserted: bool) -> f64 {
        let after = clock_unix >= leap_unix as f64
            || (inserted && leap == Leap::Insert && clock_unix >= leap_unix as f64 - 1.0);
        match leap {
            Leap::Insert => {
                // The kernel repeated a second: continuous time is one ahead after it.
                let t = clock_unix + if after { 1.0 } else { 0.0 };
                let f = self.fraction(t, leap_unix);
                if after { 1.0 - f } else { -f }
            }
            Leap::Delete => {
                let t = clock_unix - if after { 1.0 } else { 0.0 };
                let f = self.fraction(t, leap_unix);
                if after { f - 1.0 } else { f }
            }
            Leap::None | Leap::Unsynchronized => 0.0,
        }
    }

    /// Whether `clock_unix` lies in the window of the leap at `leap_unix`.
    pub fn in_window(&self, clock_unix: f64, leap_unix: i64) -> bool {
        let (start, end) = self.window(leap_unix);
        clock_unix >= start && clock_unix < end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2017-01-01T00:00:00Z: the last leap second so far ended 2016 at it.
    const LEAP: i64 = 1_483_228_800;

    #[test]
    fn googles_linear_smear_of_an_inserted_second() {
        let s = LeapSmear::default();
        let l = LEAP as f64;
        assert_eq!(s.offset(l - 43_201.0, LEAP, Leap::Insert, false), 0.0);
        // Noon before: the start. Midnight: half a second behind. Noon after: done.
        assert!((s.offset(l - 43_200.0, LEAP, Leap::Insert, false)).abs() < 1e-12);
        assert!((s.offset(l - 1e-3, LEAP, Leap::Insert, false) + 0.5).abs() < 1e-6);
        // The kernel's 23:59:60 reads 23:59:59 again: told so, the smear goes on.
        let in_leap = s.offset(l - 0.5, LEAP, Leap::Insert, true);
        assert!(
            (in_leap - (1.0 - 43_200.5 / 86_400.0)).abs() < 1e-9,
            "{in_leap}"
        );
        assert!((s.offset(l, LEAP, Leap::Insert, true) - (1.0 - 43_201.0 / 86_400.0)).abs() < 1e-9);
        assert!(s.offset(l + 43_199.0, LEAP, Leap::Insert, true).abs() < 1e-9);
        assert_eq!(s.offset(l + 50_000.0, LEAP, Leap::Insert, true), 0.0);
        // 11.6 ppm: a second over a day.
        let rate = s.offset(l - 1000.0, LEAP, Leap::Insert, false)
            - s.offset(l - 1001.0, LEAP, Leap::Insert, false);
        assert!((rate + 1.0 / 86_400.0).abs() < 1e-12);
    }

    #[test]
    fn served_time_never_jumps_through_an_inserted_or_deleted_second() {
        for shape in [SmearShape::Linear, SmearShape::Cosine] {
            let s = LeapSmear {
                shape,
                duration: 86_400.0,
            };
            // Served time along the kernel clock: before the leap T + offset; the
            // kernel steps back a second at LEAP (insert) or forward (delete).
            for (leap, kernel_step) in [(Leap::Insert, -1.0), (Leap::Delete, 1.0)] {
                let l = LEAP as f64;
                let before = (l - 0.001) + s.offset(l - 0.001, LEAP, leap, false);
                let after_kernel = l - 0.001 + 0.002 + kernel_step;
                let after = after_kernel + s.offset(after_kernel, LEAP, leap, true);
                assert!(
                    (after - before - 0.002).abs() < 1e-6,
                    "{shape:?} {leap:?}: {before} {after}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn the_offset_stays_within_a_second(t in -200_000.0f64..200_000.0, d in 0.0f64..200_000.0, cos in any::<bool>(), ins in any::<bool>()) {
            let s = LeapSmear { shape: if cos { SmearShape::Cosine } else { SmearShape::Linear }, duration: d };
            let leap = if ins { Leap::Insert } else { Leap::Delete };
            let o = s.offset(LEAP as f64 + t, LEAP, leap, t >= -1.0);
            prop_assert!(o.abs() <= 1.0 + 1e-12);
        }
    }
}
