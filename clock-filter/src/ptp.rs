//! Sample filters for PTP path delay and offset: a moving median (linuxptp's default for
//! the path delay, length 10) and a minimum-delay window.

/// The longest window either filter takes.
pub(crate) const MAX_WINDOW: usize = 64;

/// Median of the last `length` samples. Non-finite samples are refused (`None`) and leave
/// the window as it was.
#[derive(Clone, Debug)]
pub struct MovingMedian {
    window: [f64; MAX_WINDOW],
    length: usize,
    next: usize,
    filled: usize,
}

impl MovingMedian {
    /// A filter over `length` samples (clamped to 1..=64; linuxptp uses 10).
    pub fn new(length: usize) -> Self {
        Self {
            window: [0.0; MAX_WINDOW],
            length: length.clamp(1, MAX_WINDOW),
            next: 0,
            filled: 0,
        }
    }

    /// Adds a sample and returns the median of the window.
    pub fn update(&mut self, sample: f64) -> Option<f64> {
        if !sample.is_finite() {
            return None;
        }
        self.window[self.next] = sample;
        self.next = (self.next + 1) % self.length;
        self.filled = (self.filled + 1).min(self.length);
        self.median()
    }

    /// The median of the window; the mean of the middle two for an even count.
    pub fn median(&self) -> Option<f64> {
        if self.filled == 0 {
            return None;
        }
        let mut sorted = [0.0; MAX_WINDOW];
        let values = &mut sorted[..self.filled];
        values.copy_from_slice(&self.window[..self.filled]);
        values.sort_unstable_by(f64::total_cmp);
        let mid = self.filled / 2;
        Some(if self.filled % 2 == 1 {
            values[mid]
        } else {
            (values[mid - 1] + values[mid]) / 2.0
        })
    }

    /// Empties the window.
    pub fn reset(&mut self) {
        self.next = 0;
        self.filled = 0;
    }
}

/// Keeps the last `length` (delay, offset) pairs and returns the offset of the one with
/// the smallest delay: the sample least disturbed by queuing.
#[derive(Clone, Debug)]
pub struct MinDelayWindow {
    window: [(f64, f64); MAX_WINDOW],
    length: usize,
    next: usize,
    filled: usize,
}

impl MinDelayWindow {
    /// A window of `length` samples (clamped to 1..=64).
    pub fn new(length: usize) -> Self {
        Self {
            window: [(0.0, 0.0); MAX_WINDOW],
            length: length.clamp(1, MAX_WINDOW),
            next: 0,
            filled: 0,
        }
    }

    /// Adds a sample; returns `(delay, offset)` of the minimum-delay sample in the window.
    /// Non-finite input is refused (`None`) and leaves the window as it was.
    pub fn update(&mut self, delay: f64, offset: f64) -> Option<(f64, f64)> {
        if !delay.is_finite() || !offset.is_finite() {
            return None;
        }
        self.window[self.next] = (delay, offset);
        self.next = (self.next + 1) % self.length;
        self.filled = (self.filled + 1).min(self.length);
        self.best()
    }

    /// The minimum-delay sample of the window.
    pub fn best(&self) -> Option<(f64, f64)> {
        self.window[..self.filled]
            .iter()
            .copied()
            .min_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// Empties the window.
    pub fn reset(&mut self) {
        self.next = 0;
        self.filled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn median_of_ten_ignores_spikes() {
        let mut filter = MovingMedian::new(10);
        for i in 0..10 {
            filter.update(100.0 + f64::from(i));
        }
        assert_eq!(filter.median(), Some(104.5));
        // Three spikes replace the oldest three samples: the median barely moves.
        filter.update(1e6);
        filter.update(1e6);
        assert_eq!(filter.update(-1e6), Some(106.5));
        assert_eq!(filter.update(f64::NAN), None);
        assert_eq!(filter.median(), Some(106.5));
        filter.reset();
        assert_eq!(filter.median(), None);
    }

    #[test]
    fn min_delay_window_slides() {
        let mut window = MinDelayWindow::new(3);
        assert_eq!(window.update(5.0, 0.5), Some((5.0, 0.5)));
        assert_eq!(window.update(2.0, 0.2), Some((2.0, 0.2)));
        assert_eq!(window.update(9.0, 0.9), Some((2.0, 0.2)));
        assert_eq!(window.update(8.0, 0.8), Some((2.0, 0.2)));
        // The 2.0 sample slides out.
        assert_eq!(window.update(7.0, 0.7), Some((7.0, 0.7)));
        assert_eq!(window.update(f64::INFINITY, 0.0), None);
    }

    proptest! {
        #[test]
        fn median_lies_within_the_window(samples in proptest::collection::vec(-1e9f64..1e9, 1..100), length in 1usize..20) {
            let mut filter = MovingMedian::new(length);
            for (i, &s) in samples.iter().enumerate() {
                let median = filter.update(s).unwrap();
                let start = (i + 1).saturating_sub(length);
                let window = &samples[start..=i];
                let min = window.iter().copied().fold(f64::INFINITY, f64::min);
                let max = window.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(min <= median && median <= max);
            }
        }
    }
}
