//! The simulated world: a seeded random number generator, clocks, and links.

use std::convert::Infallible;

use tempora_clock_types::LocalInstant;
use tempora_clock_types::{LeapAction, SteeredClock, SyncStatus};
use tempora_ntp_proto::{NtpTimestamp, UnixTime};

/// A small, fast, seeded generator (xoshiro256**): the same seed gives the same run.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator from a seed (expanded with splitmix64).
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }
}

/// The start of every simulation: 2026-01-01T00:00:00Z, as a Unix time in seconds.
pub const EPOCH_UNIX: i64 = 1_767_225_600;

/// How a simulated clock starts and behaves.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ClockSpec {
    /// Initial offset from the truth, seconds (positive: ahead).
    pub offset: f64,
    /// Initial frequency error, ppm (positive: runs fast).
    pub frequency_ppm: f64,
    /// Random-walk frequency wander: standard deviation of the frequency change per
    /// square root of a second, in seconds per second.
    pub wander: f64,
    /// Standard deviation of a reading's noise, seconds.
    pub read_noise: f64,
}

impl ClockSpec {
    /// A perfect clock.
    pub const PERFECT: Self = Self {
        offset: 0.0,
        frequency_ppm: 0.0,
        wander: 0.0,
        read_noise: 0.0,
    };
}

/// A simulated clock, steered by the same [`ClockAction`]s as a real one.
///
/// [`ClockAction`]: tempora_clock_types::ClockAction
#[derive(Clone, Debug)]
pub struct SimClock {
    spec: ClockSpec,
    /// True time, nanoseconds since the simulation start.
    now_ns: i64,
    /// Clock minus truth, seconds.
    offset: f64,
    /// The oscillator's own error, ppm.
    oscillator_ppm: f64,
    /// The correction set through `set_frequency`, ppm.
    correction_ppm: f64,
    /// Offset still to be slewed at 500 ppm.
    slew_left: f64,
    /// CLOCK_MONOTONIC_RAW minus truth, seconds: the oscillator without corrections.
    raw_offset: f64,
    /// Steps taken.
    steps: u32,
    /// Every step and jump so far, seconds: what moves the realtime clock against
    /// CLOCK_MONOTONIC (frequency corrections and slews move both alike).
    stepped: f64,
    leap: LeapAction,
    status: Option<SyncStatus>,
    /// Unix seconds of the run's start on this clock's timescale.
    epoch: i64,
    /// The leap second true UTC takes during the run: (run seconds of the midnight, +1
    /// for an inserted second, -1 for a deleted one). After it, UTC reads that much less
    /// than the continuous timescale the run counts.
    utc_leap: Option<(f64, f64)>,
    /// Leap seconds this clock's kernel took (inserted or deleted).
    leaps_taken: u32,
}

/// The kernel's limit on the frequency correction, as Linux with the tick: the tick moves
/// ±10% (100,000 ppm), `timex.freq` ±500 ppm within it.
const MAX_CORRECTION_PPM: f64 = 100_000.0;
/// The kernel's slew rate (adjtime).
const SLEW_RATE: f64 = 500e-6;

impl SimClock {
    /// A clock starting at simulation time 0.
    pub fn new(spec: ClockSpec) -> Self {
        Self {
            spec,
            now_ns: 0,
            offset: spec.offset,
            oscillator_ppm: spec.frequency_ppm,
            correction_ppm: 0.0,
            slew_left: 0.0,
            raw_offset: 0.0,
            steps: 0,
            stepped: 0.0,
            leap: LeapAction::None,
            status: None,
            epoch: EPOCH_UNIX,
            utc_leap: None,
            leaps_taken: 0,
        }
    }

    /// Starts the run at `epoch` (Unix seconds) on this clock's timescale, with true UTC
    /// taking `utc_leap` (run seconds of its midnight, +1 inserted / -1 deleted).
    pub fn set_epoch(&mut self, epoch: i64, utc_leap: Option<(f64, f64)>) {
        self.epoch = epoch;
        self.utc_leap = utc_leap;
    }

    /// Leap seconds this clock's kernel took.
    pub fn leaps_taken(&self) -> u32 {
        self.leaps_taken
    }

    /// The leap flag armed now.
    pub fn leap_armed(&self) -> LeapAction {
        self.leap
    }

    /// The clock's reading in Unix seconds (no noise), for the calendar.
    fn reading_seconds(&self) -> f64 {
        self.epoch as f64 + self.now_ns as f64 * 1e-9 + self.offset
    }

    /// Runs the clock forward to true time `to_ns`.
    pub fn advance(&mut self, to_ns: i64, rng: &mut Rng) {
        let dt = (to_ns - self.now_ns) as f64 * 1e-9;
        if dt <= 0.0 {
            return;
        }
        if self.spec.wander > 0.0 {
            self.oscillator_ppm += self.spec.wander * dt.sqrt() * rng.normal() * 1e6;
        }
        let mut slew = 0.0;
        if self.slew_left != 0.0 {
            slew = self.slew_left.clamp(-SLEW_RATE * dt, SLEW_RATE * dt);
            self.slew_left -= slew;
        }
        let before = self.reading_seconds();
        self.offset += (self.oscillator_ppm + self.correction_ppm) * 1e-6 * dt + slew;
        self.raw_offset += self.oscillator_ppm * 1e-6 * dt;
        self.now_ns = to_ns;
        // The kernel's leap second, armed for the end of the day: at midnight it reads
        // 23:59:59 again (insert), or skips it (delete, at 23:59:59).
        let after = self.reading_seconds();
        let day = |t: f64| (t / 86_400.0).floor();
        match self.leap {
            LeapAction::Insert if day(after) > day(before) => {
                self.offset -= 1.0;
                self.stepped -= 1.0;
                self.leap = LeapAction::None;
                self.leaps_taken += 1;
            }
            LeapAction::Delete if day(after + 1.0) > day(before + 1.0) => {
                self.offset += 1.0;
                self.stepped += 1.0;
                self.leap = LeapAction::None;
                self.leaps_taken += 1;
            }
            _ => {}
        }
    }

    /// Clock minus truth (UTC) now, seconds: the error every statistic is about.
    pub fn error(&self) -> f64 {
        match self.utc_leap {
            Some((at, second)) if self.now_ns as f64 * 1e-9 >= at => self.offset + second,
            _ => self.offset,
        }
    }

    /// Frequency error now (oscillator plus correction), ppm.
    pub fn frequency_error_ppm(&self) -> f64 {
        self.oscillator_ppm + self.correction_ppm
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// The last status reported through `set_status`.
    pub fn status(&self) -> Option<SyncStatus> {
        self.status
    }

    /// Jumps the clock (a reverted VM snapshot, a fault), outside any discipline.
    pub fn jump(&mut self, seconds: f64) {
        self.offset += seconds;
        self.stepped += seconds;
    }

    /// CLOCK_MONOTONIC, nanoseconds: the realtime clock without its steps (frequency
    /// corrections and slews move it too, as in the kernel), from the start's reading.
    pub fn monotonic_adjusted_ns(&self) -> i64 {
        self.now_ns + ((self.offset - self.stepped) * 1e9).round() as i64
    }

    /// CLOCK_REALTIME, nanoseconds since the Unix epoch, without read noise.
    pub fn realtime_ns(&self) -> i128 {
        self.read_unix(0.0).as_nanos()
    }

    /// Reads the clock as an NTP timestamp, with read noise.
    pub fn read_ntp(&self, rng: &mut Rng) -> NtpTimestamp {
        let noise = if self.spec.read_noise > 0.0 {
            self.spec.read_noise * rng.normal()
        } else {
            0.0
        };
        NtpTimestamp::from_unix(self.read_unix(noise))
    }

    /// The clock's reading, as Unix time.
    pub fn read_unix(&self, noise: f64) -> UnixTime {
        let nanos = i128::from(self.epoch) * 1_000_000_000
            + i128::from(self.now_ns)
            + ((self.offset + noise) * 1e9).round() as i128;
        UnixTime::from_nanos(nanos)
    }

    /// The clock's reading in nanoseconds since its epoch (for PTP), with noise of the
    /// given standard deviation.
    pub fn read_ns(&self, noise: f64, rng: &mut Rng) -> i128 {
        let n = if noise > 0.0 {
            noise * rng.normal()
        } else {
            0.0
        };
        i128::from(EPOCH_UNIX) * 1_000_000_000
            + i128::from(self.now_ns)
            + ((self.offset + n) * 1e9).round() as i128
    }

    /// CLOCK_MONOTONIC_RAW: steps and corrections do not move it.
    pub fn monotonic(&self) -> LocalInstant {
        LocalInstant(self.now_ns + (self.raw_offset * 1e9).round() as i64)
    }

    /// True time that the monotonic clock will show `at`, from now.
    pub fn true_time_of(&self, at: LocalInstant) -> i64 {
        let ahead = (at.as_nanos() - self.monotonic().as_nanos()) as f64;
        self.now_ns + (ahead / (1.0 + self.oscillator_ppm * 1e-6)).ceil() as i64
    }
}

impl SteeredClock for SimClock {
    type Error = Infallible;

    fn now(&self) -> Result<i128, Infallible> {
        Ok(self.read_unix(0.0).as_nanos())
    }

    fn step(&mut self, offset: f64) -> Result<(), Infallible> {
        self.offset += offset;
        self.stepped += offset;
        self.slew_left = 0.0;
        self.steps += 1;
        Ok(())
    }

    fn set_frequency(&mut self, ppm: f64) -> Result<(), Infallible> {
        self.correction_ppm = ppm.clamp(-MAX_CORRECTION_PPM, MAX_CORRECTION_PPM);
        Ok(())
    }

    fn frequency(&self) -> Result<f64, Infallible> {
        Ok(self.correction_ppm)
    }

    fn slew(&mut self, offset: f64) -> Result<(), Infallible> {
        self.slew_left += offset;
        Ok(())
    }

    fn set_leap(&mut self, leap: LeapAction) -> Result<(), Infallible> {
        self.leap = leap;
        Ok(())
    }

    fn set_status(&mut self, status: SyncStatus) -> Result<(), Infallible> {
        self.status = Some(status);
        Ok(())
    }
}

/// A one-way delay distribution: a base plus jitter.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Jitter {
    /// No jitter.
    Constant,
    /// Uniform in [0, width).
    Uniform(f64),
    /// |normal| with this standard deviation.
    Normal(f64),
    /// Exponential with this mean.
    Exponential(f64),
    /// Pareto (heavy-tailed) with this scale and shape.
    Pareto {
        /// Scale (the smallest value).
        scale: f64,
        /// Shape (smaller is heavier).
        shape: f64,
    },
}

impl Jitter {
    fn sample(&self, rng: &mut Rng) -> f64 {
        match *self {
            Self::Constant => 0.0,
            Self::Uniform(w) => w * rng.uniform(),
            Self::Normal(s) => (s * rng.normal()).abs(),
            Self::Exponential(m) => rng.exponential(m),
            Self::Pareto { scale, shape } => {
                let u = (1.0 - rng.uniform()).max(1e-12);
                scale * (u.powf(-1.0 / shape) - 1.0)
            }
        }
    }
}

/// One direction of a link.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Direction {
    /// Fixed delay, seconds.
    pub base: f64,
    /// Jitter on top.
    pub jitter: Jitter,
    /// Probability of losing a packet.
    pub loss: f64,
}

impl Direction {
    /// A direction with a fixed delay and jitter, no loss.
    pub const fn new(base: f64, jitter: Jitter) -> Self {
        Self {
            base,
            jitter,
            loss: 0.0,
        }
    }
}

/// A change in a link over time.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum LinkEvent {
    /// From `at` seconds on, both directions are `extra` seconds slower.
    DelayStep {
        /// When, seconds.
        at: f64,
        /// Extra delay.
        extra: f64,
    },
    /// Nothing gets through between `from` and `to` seconds.
    Outage {
        /// Start.
        from: f64,
        /// End.
        to: f64,
    },
}

/// A link between two nodes, each direction on its own (asymmetry is possible).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Link {
    /// Client to server.
    pub up: Direction,
    /// Server to client.
    pub down: Direction,
    /// Changes over time.
    pub events: Vec<LinkEvent>,
}

impl Link {
    /// The same in both directions.
    pub fn symmetric(direction: Direction) -> Self {
        Self {
            up: direction,
            down: direction,
            events: Vec::new(),
        }
    }

    /// The delay of a packet sent at `t` seconds, or `None` if it is lost.
    pub fn delay(&self, up: bool, t: f64, rng: &mut Rng) -> Option<f64> {
        let d = if up { &self.up } else { &self.down };
        let mut extra = 0.0;
        for e in &self.events {
            match *e {
                LinkEvent::Outage { from, to } if t >= from && t < to => return None,
                LinkEvent::DelayStep { at, extra: x } if t >= at => extra += x,
                _ => {}
            }
        }
        if d.loss > 0.0 && rng.uniform() < d.loss {
            return None;
        }
        Some(d.base + extra + d.jitter.sample(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_sane() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<u64> = (0..10).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..10).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let mut r = Rng::new(1);
        let n = 100_000;
        let mean: f64 = (0..n).map(|_| r.exponential(2.0)).sum::<f64>() / f64::from(n);
        assert!((mean - 2.0).abs() < 0.05, "{mean}");
        let var: f64 = (0..n).map(|_| r.normal().powi(2)).sum::<f64>() / f64::from(n);
        assert!((var - 1.0).abs() < 0.03, "{var}");
    }

    #[test]
    fn clock_runs_at_its_frequency_and_obeys_actions() {
        let mut rng = Rng::new(1);
        let mut c = SimClock::new(ClockSpec {
            frequency_ppm: 100.0,
            ..ClockSpec::PERFECT
        });
        c.advance(10_000_000_000, &mut rng);
        assert!((c.error() - 1e-3).abs() < 1e-12);
        c.set_frequency(-100.0).unwrap();
        c.advance(20_000_000_000, &mut rng);
        assert!((c.error() - 1e-3).abs() < 1e-12);
        c.step(-1e-3).unwrap();
        assert!(c.error().abs() < 1e-12);
        c.slew(0.001).unwrap();
        c.advance(21_000_000_000, &mut rng);
        assert!((c.error() - 500e-6).abs() < 1e-9, "slews at 500 ppm");
        // The monotonic clock ignores corrections, follows the oscillator.
        assert!((c.monotonic().as_nanos() - 21_000_000_000 - 2_100_000).abs() <= 1);
        let t = c.true_time_of(LocalInstant(c.monotonic().as_nanos() + 1_000_000_000));
        assert!((t - 21_000_000_000 - 999_900_010).abs() < 10, "{t}");
    }

    #[test]
    fn links_lose_step_and_go_down() {
        let mut rng = Rng::new(3);
        let mut link = Link::symmetric(Direction::new(0.001, Jitter::Constant));
        link.events.push(LinkEvent::DelayStep {
            at: 10.0,
            extra: 0.002,
        });
        link.events.push(LinkEvent::Outage {
            from: 20.0,
            to: 30.0,
        });
        assert_eq!(link.delay(true, 5.0, &mut rng), Some(0.001));
        assert_eq!(link.delay(true, 15.0, &mut rng), Some(0.003));
        assert_eq!(link.delay(false, 25.0, &mut rng), None);
        let lossy = Link::symmetric(Direction {
            loss: 1.0,
            ..Direction::new(0.0, Jitter::Constant)
        });
        assert_eq!(lossy.delay(true, 0.0, &mut rng), None);
    }
}
