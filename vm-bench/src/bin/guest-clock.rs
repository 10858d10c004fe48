//! Runs inside a bench guest: prints the guest kernel's own view of its clocks as one JSON
//! line (CLOCK_TAI − CLOCK_REALTIME, the timex state, the leap state), so a scenario reads
//! what the kernel did rather than what a daemon says it did. busybox `adjtimex` prints
//! neither the TAI offset nor the leap state's name.

use std::process::ExitCode;

use tempora_sys_clock::{ClockState, StatusFlags, SystemClock};

fn state_name(state: ClockState) -> String {
    match state {
        ClockState::Ok => "TIME_OK".into(),
        ClockState::Insert => "TIME_INS".into(),
        ClockState::Delete => "TIME_DEL".into(),
        ClockState::InProgress => "TIME_OOP".into(),
        ClockState::Wait => "TIME_WAIT".into(),
        ClockState::Error => "TIME_ERROR".into(),
        ClockState::Other(n) => format!("{n}"),
    }
}

fn main() -> ExitCode {
    let clock = SystemClock::new();
    let read = || -> Result<serde_json::Value, tempora_sys_clock::Error> {
        let realtime = clock.now_realtime()?;
        let tai = clock.now_tai()?;
        let k = clock.state()?;
        Ok(serde_json::json!({
            "realtime_ns": realtime as f64,
            "tai_minus_realtime_s": ((tai - realtime) as f64 / 1e9).round(),
            "tai_offset": k.tai_offset,
            "state": state_name(k.state),
            "unsync": k.status.contains(StatusFlags::UNSYNC),
            "ins": k.status.contains(StatusFlags::INS),
            "del": k.status.contains(StatusFlags::DEL),
            "frequency_ppm": k.frequency_ppm,
            "offset_s": k.offset,
            "max_error_s": k.max_error,
            "est_error_s": k.est_error,
            "tick": k.tick,
        }))
    };
    match read() {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("guest-clock: {e}");
            ExitCode::FAILURE
        }
    }
}
