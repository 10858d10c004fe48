//! The real kernel, read-only or setting a value to what it already is. Nothing here steps
//! or slews the machine's clock.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::process::Command;

use tempora_sys_clock::{ClockState, Error, PhcClock, SystemClock, nominal_tick};

/// Whether this process has CAP_SYS_TIME (bit 25 of CapEff).
fn has_cap_sys_time() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 25) != 0)
}

#[test]
fn timex_state_reads_back_consistent_values() {
    let clock = SystemClock::new();
    let a = clock.state().unwrap();
    let b = clock.state().unwrap();
    let nominal = nominal_tick();
    assert!(
        (a.tick - nominal).abs() <= nominal / 10,
        "tick {} nominal {nominal}",
        a.tick
    );
    assert!(a.frequency_ppm.abs() < 100_000.0);
    assert!(a.max_error >= 0.0 && a.est_error >= 0.0);
    assert!(a.tai_offset >= 0 && a.tai_offset < 1000);
    assert!(a.precision >= 0.0 && a.tolerance_ppm > 0.0);
    assert!(matches!(
        a.state,
        ClockState::Ok
            | ClockState::Error
            | ClockState::Insert
            | ClockState::Delete
            | ClockState::Wait
    ));
    // Nothing changes the frequency between two reads in a test.
    assert_eq!(a.frequency_ppm, b.frequency_ppm);
    assert_eq!(a.tai_offset, b.tai_offset);
}

#[test]
fn clock_tai_is_realtime_plus_the_kernel_tai_offset() {
    let clock = SystemClock::new();
    let tai_offset = clock.state().unwrap().tai_offset;
    let r1 = clock.now_realtime().unwrap();
    let tai = clock.now_tai().unwrap();
    let r2 = clock.now_realtime().unwrap();
    let difference = tai - (r1 + r2) / 2;
    let expected = i128::from(tai_offset) * 1_000_000_000;
    assert!(
        (difference - expected).abs() < 10_000_000,
        "TAI - UTC = {difference} ns, kernel says {tai_offset} s"
    );
}

#[test]
fn setting_the_frequency_to_its_current_value_changes_nothing() {
    if !has_cap_sys_time() {
        eprintln!("skipped: needs CAP_SYS_TIME (the EPERM test covers the unprivileged path)");
        return;
    }
    let clock = SystemClock::new();
    let before = clock.state().unwrap();
    if before.tick != nominal_tick() || before.frequency_ppm.abs() > 500.0 {
        eprintln!(
            "skipped: the tick is adjusted ({}), a rewrite could change its split",
            before.tick
        );
        return;
    }
    // Written back exactly as read, whatever the assertions below say.
    struct Restore(SystemClock, f64);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = self.0.set_frequency_ppm(self.1);
        }
    }
    let _restore = Restore(clock, before.frequency_ppm);
    clock.set_frequency_ppm(before.frequency_ppm).unwrap();
    let after = clock.state().unwrap();
    assert_eq!(after.frequency_ppm, before.frequency_ppm);
    assert_eq!(after.tick, before.tick);
}

const CHILD: &str = "TEMPORA_EPERM_CHILD";

/// Runs in a child that has no CAP_SYS_TIME (see `eperm_without_cap_sys_time`).
#[test]
fn eperm_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    assert!(
        !has_cap_sys_time(),
        "the child must run without CAP_SYS_TIME"
    );
    let clock = SystemClock::new();
    let current = clock.state().unwrap().frequency_ppm;
    // Setting the value it already has: even if it were allowed, nothing would change.
    let err = clock.set_frequency_ppm(current).unwrap_err();
    assert!(err.is_permission_denied(), "{err:?}");
    assert_eq!(err.errno(), Some(libc::EPERM));
    let text = err.to_string();
    assert!(
        text.contains("CAP_SYS_TIME") && text.contains("observe-only"),
        "{text}"
    );
    assert!(!text.contains("--privileged,"), "{text}");
    // Reading needs no privilege.
    clock.state().unwrap();
    println!("EPERM path ok: {text}");
}

#[test]
fn eperm_without_cap_sys_time() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: setpriv (util-linux) is not installed");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args(["--bounding-set=-sys_time", "--inh-caps=-sys_time", "--"])
        .arg(exe)
        .args(["--exact", "eperm_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("EPERM path ok"), "{stdout}");
}

#[test]
fn phc_paths_run_when_a_phc_exists() {
    let phcs: Vec<_> = std::fs::read_dir("/dev")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("ptp"))
        })
        .collect();
    if phcs.is_empty() {
        eprintln!(
            "skipped: this machine has no /dev/ptp* (PHC reads, caps and offsets untested here)"
        );
        assert!(matches!(
            PhcClock::open("/dev/ptp0", false),
            Err(Error::NoSuchDevice { .. })
        ));
        return;
    }
    for path in phcs {
        let phc = PhcClock::open(&path.to_string_lossy(), false).unwrap();
        let caps = phc.capabilities();
        assert!(caps.max_adj_ppb > 0, "{caps:?}");
        let t1 = phc.read().unwrap();
        let t2 = phc.read().unwrap();
        assert!(t2 >= t1);
        let offset = phc.system_offset(5).unwrap();
        assert!(offset.delay_ns >= 0, "{offset:?}");
    }
}
