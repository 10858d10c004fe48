//! The clock error bound the daemons publish for applications: its configuration
//! (`[clock_bound]`) and the writer that keeps ClockBound's segment current.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tempora_clock_types::ErrorBound;
use tempora_sys_clock::clock_bound::{
    ClockBoundWriter, Rtc, SegmentOptions, realtime_minus_monotonic,
};

use crate::config::{ConfigError, invalid};

/// The clock error bound in shared memory for applications (`[clock_bound]`): ClockBound's
/// v2 segment, which `clock-bound-client` and `ntp-client now` read.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockBoundConfig {
    /// Where the segment is written (ClockBound's default path).
    pub path: PathBuf,
    /// The file's mode, octal (`"0644"`: every user may read it).
    pub mode: String,
    /// A group (name or number) to give the file; with mode `"0640"` only it reads.
    pub group: Option<String>,
    /// The oscillator's wander the bound allows beyond what is measured, ppm (1 ppm, as
    /// chrony's `maxclockerror` and ClockBound's default).
    pub max_drift_ppm: f64,
    /// Standard errors of the estimate the bound covers (3).
    pub confidence: f64,
    /// The hardware clock read once a second as a check (`""`: none): a VM's RTC runs on
    /// the host's time, so a reverted snapshot shows as the RTC moving seconds against
    /// the system clock, and the bound reads Disrupted.
    pub rtc: PathBuf,
}

impl Default for ClockBoundConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from(tempora_sys_clock::clock_bound::DEFAULT_PATH),
            mode: "0644".into(),
            group: None,
            max_drift_ppm: 1.0,
            confidence: 3.0,
            rtc: PathBuf::from("/dev/rtc0"),
        }
    }
}

impl ClockBoundConfig {
    /// The file's mode.
    pub fn mode_bits(&self) -> Option<u32> {
        u32::from_str_radix(self.mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
    }

    /// The group's ID, looked up by name where it is not a number.
    pub fn group_id(&self) -> Result<Option<u32>, String> {
        let Some(group) = &self.group else {
            return Ok(None);
        };
        if let Ok(gid) = group.parse::<u32>() {
            return Ok(Some(gid));
        }
        // /etc/group: name:password:gid:members. Read here rather than through getgrnam:
        // std has no binding, and the daemons leave libc (and unsafe) to sys-clock.
        let groups = std::fs::read_to_string("/etc/group")
            .map_err(|e| format!("reading /etc/group: {e}"))?;
        groups
            .lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let gid = f.nth(1)?.parse::<u32>().ok()?;
                (name == group).then_some(gid)
            })
            .next()
            .map(Some)
            .ok_or_else(|| format!("no group {group} in /etc/group"))
    }

    /// Checks the keys; `prefix` is where the table sits.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{prefix}clock_bound.{k}");
        if self.path.as_os_str().is_empty() {
            return Err(invalid(&key("path"), "is empty"));
        }
        if self.mode_bits().is_none() {
            return Err(invalid(
                &key("mode"),
                "must be an octal mode such as \"0644\"",
            ));
        }
        self.group_id().map_err(|e| invalid(&key("group"), e))?;
        if !(self.max_drift_ppm >= 0.0 && self.max_drift_ppm <= 1000.0) {
            return Err(invalid(&key("max_drift_ppm"), "must be 0 to 1000"));
        }
        if !(self.confidence >= 1.0 && self.confidence <= 10.0) {
            return Err(invalid(&key("confidence"), "must be 1 to 10"));
        }
        Ok(())
    }
}

/// How long a published bound stays trusted if the daemon stops writing: readers then
/// see FreeRunning after ClockBound's 5 s grace, and Unknown after this.
pub const BOUND_VALID: Duration = Duration::from_secs(10);

/// The segment's writer, and what it needs to notice a step the daemon did not make.
pub struct BoundPublisher {
    writer: ClockBoundWriter,
    last_write: Option<Instant>,
    last_updates: u64,
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC, nanoseconds, as this daemon's own steps
    /// left it.
    expected_realtime_offset: Option<i128>,
    /// The RTC, where it can be read.
    rtc: Option<Rtc>,
    /// The RTC minus CLOCK_REALTIME, nanoseconds, as this daemon's own steps left it.
    expected_rtc_offset: Option<i128>,
    /// The kernel's TAI offset at the last check (a leap second changes it).
    tai_offset: Option<i32>,
}

/// How far the RTC (whole seconds) may move against the system clock between two reads
/// a second apart before the clock counts as disrupted, nanoseconds.
const RTC_TOLERANCE_NS: i128 = 2_500_000_000;

impl BoundPublisher {
    /// Creates the segment (its directory too) with the configured mode and group.
    pub fn create(config: &ClockBoundConfig) -> Result<Self, tempora_sys_clock::Error> {
        let options = SegmentOptions {
            mode: config.mode_bits().unwrap_or(0o644),
            group: config.group_id().ok().flatten(),
        };
        let writer = ClockBoundWriter::create(&config.path, &options)?;
        tracing::info!(
            "publishing the clock error bound at {}",
            config.path.display()
        );
        let rtc = if config.rtc.as_os_str().is_empty() {
            None
        } else {
            match Rtc::open(&config.rtc).and_then(|r| r.read().map(|_| r)) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::info!(
                        "{}: {e}; reverted VM snapshots are found only from the next update",
                        config.rtc.display()
                    );
                    None
                }
            }
        };
        Ok(Self {
            writer,
            last_write: None,
            last_updates: 0,
            expected_realtime_offset: None,
            rtc,
            expected_rtc_offset: None,
            tai_offset: None,
        })
    }

    /// Whether a write is due: a second since the last, or an update since (`updates`
    /// counts them).
    pub fn due(&self, updates: u64) -> bool {
        updates != self.last_updates
            || self
                .last_write
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
    }

    /// The daemon stepped the clock by `offset` seconds itself.
    pub fn stepped_here(&mut self, offset: f64) {
        let nanos = (offset * 1e9).round() as i128;
        if let Some(expected) = self.expected_realtime_offset.as_mut() {
            *expected += nanos;
        }
        if let Some(expected) = self.expected_rtc_offset.as_mut() {
            *expected -= nanos;
        }
    }

    /// Whether the clock was stepped since the last call by someone else (another
    /// program, a VM snapshot reverted, a leap second): CLOCK_REALTIME moved against
    /// CLOCK_MONOTONIC by more than the daemon's own steps.
    pub fn stepped_elsewhere(&mut self) -> bool {
        let rtc = self.rtc_moved();
        let Ok(now) = realtime_minus_monotonic() else {
            return rtc;
        };
        let moved = self.expected_realtime_offset.map(|expected| now - expected);
        self.expected_realtime_offset = Some(now);
        // A leap second the kernel inserted or deleted moves the realtime clock by one
        // second too: no disruption (UTC itself did it).
        let leap = moved.is_some_and(|m| {
            (m.abs() - 1_000_000_000).abs()
                <= i128::from(tempora_clock_types::bound::STEP_TOLERANCE_NS)
        }) && tempora_sys_clock::SystemClock::new()
            .state()
            .is_ok_and(|k| {
                matches!(
                    k.state,
                    tempora_sys_clock::ClockState::InProgress | tempora_sys_clock::ClockState::Wait
                ) || k.tai_offset != self.tai_offset.unwrap_or(k.tai_offset)
            });
        if let Ok(k) = tempora_sys_clock::SystemClock::new().state() {
            self.tai_offset = Some(k.tai_offset);
        }
        if leap {
            return false;
        }
        match moved {
            Some(m) if m.abs() > i128::from(tempora_clock_types::bound::STEP_TOLERANCE_NS) => {
                tracing::warn!(
                    "the clock was stepped by {:+.6} s, not by this daemon: the error bound \
                     reads Disrupted until the next update",
                    m as f64 * 1e-9
                );
                true
            }
            _ => rtc,
        }
    }

    /// Whether the RTC moved against the system clock since the last read.
    fn rtc_moved(&mut self) -> bool {
        let Some(rtc) = &self.rtc else {
            return false;
        };
        let (Ok(seconds), Ok(real)) = (
            rtc.read(),
            tempora_sys_clock::SystemClock::new().now_realtime(),
        ) else {
            return false;
        };
        let now = i128::from(seconds) * 1_000_000_000 - real;
        let moved = self.expected_rtc_offset.map(|expected| now - expected);
        self.expected_rtc_offset = Some(now);
        match moved {
            Some(m) if m.abs() > RTC_TOLERANCE_NS => {
                tracing::warn!(
                    "the RTC moved {:+.1} s against the system clock (a reverted VM \
                     snapshot?): the error bound reads Disrupted until the next update",
                    m as f64 * 1e-9
                );
                true
            }
            _ => false,
        }
    }

    /// Writes `bound`, computed just now; `updates` as [`Self::due`] counts them.
    pub fn write(&mut self, bound: &ErrorBound, updates: u64) {
        match self.writer.publish(bound, BOUND_VALID) {
            Ok(_) => {
                self.last_write = Some(Instant::now());
                self.last_updates = updates;
            }
            Err(e) => tracing::warn!("writing the error bound: {e}"),
        }
    }
}
