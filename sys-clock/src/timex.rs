//! The kernel's clock state (`struct timex`) as a typed value, and the system clock.

use tempora_clock_types::{LeapAction, SteeredClock, SyncStatus};

use crate::Error;

/// Frequency units of `timex.freq`: 2^-16 ppm.
const FREQ_SCALE: f64 = 65_536.0;
/// The kernel's limit on `timex.freq`: ±500 ppm.
pub const MAX_FREQ_PPM: f64 = 500.0;

/// The kernel's clock status bits (`timex.status`), as a typed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct StatusFlags(pub i32);

impl StatusFlags {
    /// STA_PLL: the kernel PLL is on.
    pub const PLL: i32 = libc::STA_PLL;
    /// STA_PPSFREQ.
    pub const PPSFREQ: i32 = libc::STA_PPSFREQ;
    /// STA_PPSTIME.
    pub const PPSTIME: i32 = libc::STA_PPSTIME;
    /// STA_FLL.
    pub const FLL: i32 = libc::STA_FLL;
    /// STA_INS: insert a leap second at the end of the day.
    pub const INS: i32 = libc::STA_INS;
    /// STA_DEL: delete a leap second at the end of the day.
    pub const DEL: i32 = libc::STA_DEL;
    /// STA_UNSYNC: the clock is not synchronised (stops the 11-minute RTC update).
    pub const UNSYNC: i32 = libc::STA_UNSYNC;
    /// STA_FREQHOLD.
    pub const FREQHOLD: i32 = libc::STA_FREQHOLD;
    /// STA_NANO: `offset` is in nanoseconds (else microseconds).
    pub const NANO: i32 = libc::STA_NANO;

    /// Whether every bit of `flag` is set.
    pub const fn contains(self, flag: i32) -> bool {
        self.0 & flag == flag
    }

    /// The set with `flag` set or cleared.
    pub const fn with(self, flag: i32, on: bool) -> Self {
        if on {
            Self(self.0 | flag)
        } else {
            Self(self.0 & !flag)
        }
    }
}

/// What `adjtimex` returns: the clock's leap state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClockState {
    /// TIME_OK.
    Ok,
    /// TIME_INS: a leap second will be inserted.
    Insert,
    /// TIME_DEL: a leap second will be deleted.
    Delete,
    /// TIME_OOP: a leap second is in progress.
    InProgress,
    /// TIME_WAIT: a leap second has occurred.
    Wait,
    /// TIME_ERROR: the clock is not synchronised.
    Error,
    /// Anything else.
    Other(i32),
}

impl ClockState {
    fn from_return(value: i32) -> Self {
        match value {
            libc::TIME_OK => Self::Ok,
            libc::TIME_INS => Self::Insert,
            libc::TIME_DEL => Self::Delete,
            libc::TIME_OOP => Self::InProgress,
            libc::TIME_WAIT => Self::Wait,
            libc::TIME_ERROR => Self::Error,
            other => Self::Other(other),
        }
    }
}

/// The whole kernel clock state, read with modes 0 (a pure read).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelTime {
    /// Remaining PLL offset, seconds.
    pub offset: f64,
    /// Frequency correction, ppm (the tick adjustment included).
    pub frequency_ppm: f64,
    /// Maximum error, seconds.
    pub max_error: f64,
    /// Estimated error, seconds.
    pub est_error: f64,
    /// Status bits.
    pub status: StatusFlags,
    /// PLL time constant.
    pub time_constant: i64,
    /// Clock precision, seconds.
    pub precision: f64,
    /// Frequency tolerance, ppm.
    pub tolerance_ppm: f64,
    /// Microseconds between clock ticks.
    pub tick: i64,
    /// TAI - UTC, seconds.
    pub tai_offset: i32,
    /// The leap state.
    pub state: ClockState,
}

/// ppm per microsecond of tick change, for a nominal tick.
fn ppm_per_tick(nominal_tick: i64) -> f64 {
    1e6 / nominal_tick as f64
}

/// Splits a frequency correction into a tick and a `timex.freq` within ±500 ppm, as
/// chrony does for corrections beyond what `freq` alone can hold.
pub fn split_frequency(ppm: f64, nominal_tick: i64) -> (i64, i64) {
    let per_tick = ppm_per_tick(nominal_tick);
    let tick_delta = if ppm.abs() <= MAX_FREQ_PPM {
        0
    } else {
        (ppm / per_tick).round() as i64
    };
    let rest = (ppm - tick_delta as f64 * per_tick).clamp(-MAX_FREQ_PPM, MAX_FREQ_PPM);
    (
        nominal_tick + tick_delta,
        (rest * FREQ_SCALE).round() as i64,
    )
}

/// The frequency a tick and a `timex.freq` make together, ppm.
pub fn join_frequency(tick: i64, freq: i64, nominal_tick: i64) -> f64 {
    (tick - nominal_tick) as f64 * ppm_per_tick(nominal_tick) + freq as f64 / FREQ_SCALE
}

/// The nominal tick: 10^6 / USER_HZ microseconds.
pub fn nominal_tick() -> i64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { 1_000_000 / hz } else { 10_000 }
}

fn zeroed_timex() -> libc::timex {
    // SAFETY: timex is plain integers; all-zero is a valid value (modes 0: read only).
    unsafe { std::mem::zeroed() }
}

/// Calls clock_adjtime on `clock`, returning the state or the mapped error.
pub(crate) fn clock_adjtime(
    clock: libc::clockid_t,
    tx: &mut libc::timex,
    operation: &'static str,
) -> Result<ClockState, Error> {
    // SAFETY: `tx` is a valid, exclusive timex for the duration of the call.
    let r = unsafe { libc::clock_adjtime(clock, tx) };
    if r < 0 {
        return Err(Error::last_os(operation));
    }
    Ok(ClockState::from_return(r))
}

/// Reads the kernel state of `clock` (modes 0: changes nothing, needs no privilege).
// `c_long` is i64 here but i32 on 32-bit targets: the conversions are not useless there.
#[allow(clippy::useless_conversion)]
pub(crate) fn read_state(clock: libc::clockid_t, nominal: i64) -> Result<KernelTime, Error> {
    let mut tx = zeroed_timex();
    let state = clock_adjtime(clock, &mut tx, "clock_adjtime (read)")?;
    let status = StatusFlags(tx.status);
    let offset_unit = if status.contains(StatusFlags::NANO) {
        1e-9
    } else {
        1e-6
    };
    Ok(KernelTime {
        offset: tx.offset as f64 * offset_unit,
        frequency_ppm: join_frequency(i64::from(tx.tick), i64::from(tx.freq), nominal),
        max_error: tx.maxerror as f64 * 1e-6,
        est_error: tx.esterror as f64 * 1e-6,
        status,
        time_constant: i64::from(tx.constant),
        precision: tx.precision as f64 * 1e-6,
        tolerance_ppm: tx.tolerance as f64 / FREQ_SCALE,
        tick: i64::from(tx.tick),
        tai_offset: tx.tai,
        state,
    })
}

/// Reads a clock with clock_gettime: nanoseconds since its epoch.
pub(crate) fn gettime(clock: libc::clockid_t) -> Result<i128, Error> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, exclusive timespec for the duration of the call.
    if unsafe { libc::clock_gettime(clock, &mut ts) } < 0 {
        return Err(Error::last_os("clock_gettime"));
    }
    Ok(i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
}

/// The largest step, seconds: what a 64-bit nanosecond count holds (about 292 years), so
/// that a board without an RTC that boots at 1970 can be set to now in one step.
pub const MAX_STEP_SECONDS: f64 = i64::MAX as f64 / 1e9;

/// The `timex` of a step by `offset` seconds: ADJ_SETOFFSET with ADJ_NANO, whole seconds
/// rounded down and the nanoseconds in 0..10^9, as the kernel wants them.
fn step_timex(offset: f64) -> Result<libc::timex, Error> {
    if !offset.is_finite() || offset.abs() > MAX_STEP_SECONDS {
        return Err(Error::OutOfRange {
            what: "step",
            value: offset,
            limit: "finite and within 2^63 ns (about 292 years)".into(),
        });
    }
    // Whole seconds and the fraction apart: offset * 1e9 would lose the nanoseconds of a
    // step of 10^9 s (f64 holds 53 bits).
    let whole = offset.trunc();
    let nanos = whole as i128 * 1_000_000_000 + ((offset - whole) * 1e9).round() as i128;
    let mut tx = zeroed_timex();
    tx.modes = libc::ADJ_SETOFFSET | libc::ADJ_NANO;
    tx.time.tv_sec = nanos.div_euclid(1_000_000_000) as libc::time_t;
    // With ADJ_NANO the kernel reads tv_usec as nanoseconds (0..10^9).
    tx.time.tv_usec = nanos.rem_euclid(1_000_000_000) as libc::suseconds_t;
    Ok(tx)
}

/// Steps `clock` by `offset` seconds (ADJ_SETOFFSET with ADJ_NANO).
pub(crate) fn step(clock: libc::clockid_t, offset: f64) -> Result<(), Error> {
    let mut tx = step_timex(offset)?;
    clock_adjtime(clock, &mut tx, "clock_adjtime (step)")?;
    Ok(())
}

/// The system clock (CLOCK_REALTIME), steered through adjtimex.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    nominal_tick: i64,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemClock {
    /// The system clock.
    pub fn new() -> Self {
        Self {
            nominal_tick: nominal_tick(),
        }
    }

    /// CLOCK_REALTIME, nanoseconds since 1970 (UTC).
    pub fn now_realtime(&self) -> Result<i128, Error> {
        gettime(libc::CLOCK_REALTIME)
    }

    /// CLOCK_TAI, nanoseconds since 1970 (TAI): CLOCK_REALTIME plus the kernel's TAI offset.
    pub fn now_tai(&self) -> Result<i128, Error> {
        gettime(libc::CLOCK_TAI)
    }

    /// CLOCK_MONOTONIC_RAW: the timescale the algorithms measure intervals on (no steps,
    /// no slews).
    pub fn now_monotonic_raw(&self) -> Result<i128, Error> {
        gettime(libc::CLOCK_MONOTONIC_RAW)
    }

    /// The whole kernel state, read only.
    pub fn state(&self) -> Result<KernelTime, Error> {
        read_state(libc::CLOCK_REALTIME, self.nominal_tick)
    }

    fn write(&self, tx: &mut libc::timex, operation: &'static str) -> Result<(), Error> {
        clock_adjtime(libc::CLOCK_REALTIME, tx, operation).map(|_| ())
    }

    /// Sets the frequency correction (ppm), using the tick beyond ±500 ppm.
    pub fn set_frequency_ppm(&self, ppm: f64) -> Result<(), Error> {
        let limit = 0.1 * 1e6; // the kernel allows the tick to move 10%
        if !ppm.is_finite() || ppm.abs() >= limit {
            return Err(Error::OutOfRange {
                what: "frequency (ppm)",
                value: ppm,
                limit: "within ±100000 ppm".into(),
            });
        }
        let (tick, freq) = split_frequency(ppm, self.nominal_tick);
        let mut tx = zeroed_timex();
        tx.modes = libc::ADJ_FREQUENCY | libc::ADJ_TICK;
        tx.freq = freq as _;
        tx.tick = tick as _;
        self.write(&mut tx, "adjtimex (set frequency)")
    }

    /// Arms or disarms a leap second (STA_INS / STA_DEL), keeping the other status bits.
    pub fn set_leap_flag(&self, leap: LeapAction) -> Result<(), Error> {
        let status = self.state()?.status;
        let status = status
            .with(StatusFlags::INS, leap == LeapAction::Insert)
            .with(StatusFlags::DEL, leap == LeapAction::Delete);
        let mut tx = zeroed_timex();
        tx.modes = libc::ADJ_STATUS;
        tx.status = status.0;
        self.write(&mut tx, "adjtimex (leap flag)")
    }

    /// Sets the kernel's TAI offset (ADJ_TAI), which CLOCK_TAI and PTP need.
    pub fn set_tai_offset(&self, seconds: i32) -> Result<(), Error> {
        if !(0..=1000).contains(&seconds) {
            return Err(Error::OutOfRange {
                what: "TAI offset",
                value: f64::from(seconds),
                limit: "0 to 1000 s".into(),
            });
        }
        let mut tx = zeroed_timex();
        tx.modes = libc::ADJ_TAI;
        tx.constant = seconds as _;
        self.write(&mut tx, "adjtimex (TAI offset)")
    }

    /// Reports synchronisation: max and estimated error, and STA_UNSYNC cleared (so the
    /// kernel's 11-minute mode keeps the RTC) or set.
    pub fn set_sync_status(&self, status: SyncStatus) -> Result<(), Error> {
        let current = self.state()?.status;
        let micros = |s: f64| (s.clamp(0.0, 16.0) * 1e6) as i64;
        let mut tx = zeroed_timex();
        tx.modes = libc::ADJ_STATUS | libc::ADJ_MAXERROR | libc::ADJ_ESTERROR;
        tx.status = current.with(StatusFlags::UNSYNC, !status.synchronized).0;
        tx.maxerror = micros(status.max_error) as _;
        tx.esterror = micros(status.est_error) as _;
        self.write(&mut tx, "adjtimex (sync status)")
    }

    /// Turns the kernel's own PLL/FLL off, so only Tempora steers.
    pub fn disable_kernel_pll(&self) -> Result<(), Error> {
        let current = self.state()?.status;
        let status = current
            .with(StatusFlags::PLL, false)
            .with(StatusFlags::FLL, false)
            .with(StatusFlags::PPSFREQ, false)
            .with(StatusFlags::PPSTIME, false);
        let mut tx = zeroed_timex();
        tx.modes = libc::ADJ_STATUS;
        tx.status = status.0;
        self.write(&mut tx, "adjtimex (disable kernel PLL)")
    }

    /// Slews by `offset` seconds at the kernel's fixed 500 ppm (adjtime).
    pub fn slew_offset(&self, offset: f64) -> Result<(), Error> {
        if !offset.is_finite() || offset.abs() > 2000.0 {
            return Err(Error::OutOfRange {
                what: "slew",
                value: offset,
                limit: "within ±2000 s".into(),
            });
        }
        let mut tx = zeroed_timex();
        tx.modes = libc::ADJ_OFFSET_SINGLESHOT;
        tx.offset = (offset * 1e6).round() as _;
        self.write(&mut tx, "adjtimex (slew)")
    }
}

impl SteeredClock for SystemClock {
    type Error = Error;

    fn now(&self) -> Result<i128, Error> {
        self.now_realtime()
    }

    fn step(&mut self, offset: f64) -> Result<(), Error> {
        step(libc::CLOCK_REALTIME, offset)
    }

    fn set_frequency(&mut self, ppm: f64) -> Result<(), Error> {
        self.set_frequency_ppm(ppm)
    }

    fn frequency(&self) -> Result<f64, Error> {
        Ok(self.state()?.frequency_ppm)
    }

    fn slew(&mut self, offset: f64) -> Result<(), Error> {
        self.slew_offset(offset)
    }

    fn set_leap(&mut self, leap: LeapAction) -> Result<(), Error> {
        self.set_leap_flag(leap)
    }

    fn set_status(&mut self, status: SyncStatus) -> Result<(), Error> {
        self.set_sync_status(status)
    }
}

/// Whether this process may steer clocks: CAP_SYS_TIME (bit 25) in the effective set of
/// `/proc/self/status`. A daemon asks this once at start to choose observe-only mode with
/// one clear log line, instead of failing on its first adjtimex with EPERM.
pub fn has_cap_sys_time() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 25) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_from_1970_to_now_is_one_step() {
        // A board without an RTC at 1970-01-02 and the time at 2026: 1.78e9 s.
        let tx = step_timex(1_780_000_000.25).unwrap();
        assert_eq!(tx.time.tv_sec, 1_780_000_000);
        assert_eq!(tx.time.tv_usec, 250_000_000);
        let back = step_timex(-1_780_000_000.25).unwrap();
        assert_eq!(back.time.tv_sec, -1_780_000_001);
        assert_eq!(back.time.tv_usec, 750_000_000);
        assert!(step_timex(MAX_STEP_SECONDS * 1.01).is_err());
        assert!(step_timex(f64::NAN).is_err());
    }

    #[test]
    fn frequency_split_and_join() {
        let nominal = 10_000;
        assert_eq!(split_frequency(12.5, nominal), (10_000, 819_200));
        assert_eq!(split_frequency(-500.0, nominal), (10_000, -32_768_000));
        // 650 ppm: 6.5 ticks of 100 ppm round to 7, and freq takes the -50 ppm left.
        let (tick, freq) = split_frequency(650.0, nominal);
        assert_eq!((tick, freq), (10_007, -3_276_800));
        assert!((join_frequency(tick, freq, nominal) - 650.0).abs() < 1e-4);
        let (tick, freq) = split_frequency(-1234.5, nominal);
        assert!((join_frequency(tick, freq, nominal) + 1234.5).abs() < 1e-4);
        assert!((freq as f64 / FREQ_SCALE).abs() <= MAX_FREQ_PPM);
    }

    #[test]
    fn status_flags() {
        let s = StatusFlags(StatusFlags::UNSYNC | StatusFlags::PLL);
        assert!(s.contains(StatusFlags::UNSYNC));
        let s = s
            .with(StatusFlags::UNSYNC, false)
            .with(StatusFlags::INS, true);
        assert!(!s.contains(StatusFlags::UNSYNC) && s.contains(StatusFlags::INS));
    }
}
