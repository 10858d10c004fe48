//! PTP hardware clocks (`/dev/ptpN`): capabilities, reading, steering, and the offset
//! between a PHC and the system clock (the path a VM guest takes with ptp_kvm).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};

use tempora_clock_types::{LeapAction, SteeredClock, SyncStatus};

use crate::Error;
use crate::timex::{KernelTime, clock_adjtime, gettime, nominal_tick, read_state, step};

/// What a PHC can do (PTP_CLOCK_GETCAPS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PhcCapabilities {
    /// Largest frequency adjustment, ppb.
    pub max_adj_ppb: i32,
    /// Programmable alarms.
    pub alarms: i32,
    /// External timestamp channels.
    pub external_timestamps: i32,
    /// Periodic output channels.
    pub periodic_outputs: i32,
    /// Whether it can produce a PPS event for the system.
    pub pps: bool,
    /// Programmable pins.
    pub pins: i32,
    /// Whether it supports precise cross-timestamping (PTP_SYS_OFFSET_PRECISE).
    pub cross_timestamping: bool,
    /// Whether it supports phase adjustment (ADJ_OFFSET).
    pub adjust_phase: bool,
}

impl PhcCapabilities {
    fn from_caps(caps: &libc::ptp_clock_caps) -> Self {
        Self {
            max_adj_ppb: caps.max_adj,
            alarms: caps.n_alarm,
            external_timestamps: caps.n_ext_ts,
            periodic_outputs: caps.n_per_out,
            pps: caps.pps != 0,
            pins: caps.n_pins,
            cross_timestamping: caps.cross_timestamping != 0,
            adjust_phase: caps.adjust_phase != 0,
        }
    }
}

/// How a PHC-to-system offset was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OffsetMethod {
    /// PTP_SYS_OFFSET_PRECISE: a hardware cross-timestamp (ptp_kvm has it).
    Precise,
    /// PTP_SYS_OFFSET_EXTENDED: system reads right before and after each PHC read.
    Extended,
    /// PTP_SYS_OFFSET: alternating system and PHC reads.
    Basic,
}

/// The offset of the system clock from a PHC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PhcOffset {
    /// System clock (CLOCK_REALTIME) minus PHC, nanoseconds.
    pub offset_ns: i64,
    /// Width of the reading window, nanoseconds (0 for a precise cross-timestamp): the
    /// delay whose half bounds the error.
    pub delay_ns: i64,
    /// When it was taken, on the system clock (nanoseconds since 1970).
    pub system_time_ns: i128,
    /// How it was measured.
    pub method: OffsetMethod,
}

fn ptp_time_ns(t: &libc::ptp_clock_time) -> i128 {
    i128::from(t.sec) * 1_000_000_000 + i128::from(t.nsec)
}

/// Of `(before, phc, after)` readings, the one with the shortest window, as phc2sys does.
pub fn best_reading(readings: &[(i128, i128, i128)]) -> Option<(i64, i64, i128)> {
    readings
        .iter()
        .filter(|(before, _, after)| after >= before)
        .min_by_key(|(before, _, after)| after - before)
        .map(|&(before, phc, after)| {
            let window = after - before;
            let midpoint = before + window / 2;
            let offset = (midpoint - phc).clamp(i128::from(i64::MIN), i128::from(i64::MAX));
            (
                offset as i64,
                window.min(i128::from(i64::MAX)) as i64,
                midpoint,
            )
        })
}

/// The dynamic clock ID of an open PHC (the kernel's FD_TO_CLOCKID).
pub fn fd_to_clockid(fd: i32) -> libc::clockid_t {
    ((!fd) << 3) | 3
}

/// An open PTP hardware clock.
#[derive(Debug)]
pub struct PhcClock {
    fd: OwnedFd,
    clock: libc::clockid_t,
    caps: PhcCapabilities,
    path: String,
}

impl PhcClock {
    /// Opens `/dev/ptpN` (read-write when `writable`: steering needs it).
    pub fn open(path: &str, writable: bool) -> Result<Self, Error> {
        let file: File = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NoSuchDevice { path: path.into() },
                _ => Error::from_io("open PHC", e),
            })?;
        let fd = OwnedFd::from(file);
        let mut caps: libc::ptp_clock_caps = zeroed();
        // SAFETY: PTP_CLOCK_GETCAPS writes one ptp_clock_caps into the pointer, which is
        // valid and exclusive for the call; `fd` is open.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::PTP_CLOCK_GETCAPS, &mut caps) };
        if r < 0 {
            return Err(Error::Unsupported {
                what: "PTP_CLOCK_GETCAPS",
                detail: format!(
                    "{path} is not a PTP clock: {}",
                    std::io::Error::last_os_error()
                ),
            });
        }
        let clock = fd_to_clockid(fd.as_raw_fd());
        Ok(Self {
            fd,
            clock,
            caps: PhcCapabilities::from_caps(&caps),
            path: path.into(),
        })
    }

    /// Opens the PHC of a network interface (ETHTOOL_GET_TS_INFO).
    pub fn of_interface(interface: &str, writable: bool) -> Result<Self, Error> {
        let index = phc_index(interface)?;
        Self::open(&format!("/dev/ptp{index}"), writable)
    }

    /// The device path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The capabilities.
    pub fn capabilities(&self) -> PhcCapabilities {
        self.caps
    }

    /// The dynamic clock ID.
    pub fn clock_id(&self) -> libc::clockid_t {
        self.clock
    }

    /// The PHC's time, nanoseconds since its epoch (usually TAI).
    pub fn read(&self) -> Result<i128, Error> {
        gettime(self.clock)
    }

    /// The PHC's kernel state, read only.
    pub fn state(&self) -> Result<KernelTime, Error> {
        read_state(self.clock, nominal_tick())
    }

    /// Sets the frequency correction, ppb, within the clock's max_adj.
    pub fn set_frequency_ppb(&self, ppb: f64) -> Result<(), Error> {
        let max = f64::from(self.caps.max_adj_ppb);
        if !ppb.is_finite() || ppb.abs() > max {
            return Err(Error::OutOfRange {
                what: "PHC frequency (ppb)",
                value: ppb,
                limit: format!("within ±{max} ppb (max_adj of {})", self.path),
            });
        }
        let mut tx: libc::timex = zeroed();
        tx.modes = libc::ADJ_FREQUENCY;
        tx.freq = (ppb * 65.536).round() as _;
        clock_adjtime(self.clock, &mut tx, "clock_adjtime (PHC frequency)").map(|_| ())
    }

    /// Steps the PHC by `offset` seconds.
    pub fn step(&self, offset: f64) -> Result<(), Error> {
        step(self.clock, offset)
    }

    /// Measures the system clock against the PHC: PTP_SYS_OFFSET_PRECISE where the clock
    /// has cross-timestamping, else PTP_SYS_OFFSET_EXTENDED, else PTP_SYS_OFFSET, with
    /// `samples` readings (1..=25) of which the shortest window wins.
    pub fn system_offset(&self, samples: u32) -> Result<PhcOffset, Error> {
        let samples = samples.clamp(1, libc::PTP_MAX_SAMPLES);
        if self.caps.cross_timestamping {
            if let Ok(offset) = self.offset_precise() {
                return Ok(offset);
            }
        }
        match self.offset_extended(samples) {
            Ok(offset) => Ok(offset),
            Err(_) => self.offset_basic(samples),
        }
    }

    fn offset_precise(&self) -> Result<PhcOffset, Error> {
        let mut req: libc::ptp_sys_offset_precise = zeroed();
        // SAFETY: the ioctl fills one ptp_sys_offset_precise; the pointer is valid and
        // exclusive for the call.
        if unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::PTP_SYS_OFFSET_PRECISE, &mut req) } < 0 {
            return Err(Error::last_os("PTP_SYS_OFFSET_PRECISE"));
        }
        let system = ptp_time_ns(&req.sys_realtime);
        let offset =
            (system - ptp_time_ns(&req.device)).clamp(i128::from(i64::MIN), i128::from(i64::MAX));
        Ok(PhcOffset {
            offset_ns: offset as i64,
            delay_ns: 0,
            system_time_ns: system,
            method: OffsetMethod::Precise,
        })
    }

    fn offset_extended(&self, samples: u32) -> Result<PhcOffset, Error> {
        let mut req: libc::ptp_sys_offset_extended = zeroed();
        req.n_samples = samples;
        // SAFETY: the ioctl reads n_samples and fills ts[..n_samples]; the pointer is
        // valid and exclusive for the call.
        if unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::PTP_SYS_OFFSET_EXTENDED, &mut req) } < 0
        {
            return Err(Error::last_os("PTP_SYS_OFFSET_EXTENDED"));
        }
        let readings: Vec<_> = req.ts[..samples as usize]
            .iter()
            .map(|[before, phc, after]| (ptp_time_ns(before), ptp_time_ns(phc), ptp_time_ns(after)))
            .collect();
        Self::offset_of(&readings, OffsetMethod::Extended)
    }

    fn offset_basic(&self, samples: u32) -> Result<PhcOffset, Error> {
        let mut req: libc::ptp_sys_offset = zeroed();
        req.n_samples = samples;
        // SAFETY: the ioctl reads n_samples and fills ts[..2 * n_samples + 1]; the
        // pointer is valid and exclusive for the call.
        if unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::PTP_SYS_OFFSET, &mut req) } < 0 {
            return Err(Error::last_os("PTP_SYS_OFFSET"));
        }
        let ts = &req.ts;
        let readings: Vec<_> = (0..samples as usize)
            .map(|i| {
                (
                    ptp_time_ns(&ts[2 * i]),
                    ptp_time_ns(&ts[2 * i + 1]),
                    ptp_time_ns(&ts[2 * i + 2]),
                )
            })
            .collect();
        Self::offset_of(&readings, OffsetMethod::Basic)
    }

    fn offset_of(
        readings: &[(i128, i128, i128)],
        method: OffsetMethod,
    ) -> Result<PhcOffset, Error> {
        let (offset_ns, delay_ns, system_time_ns) =
            best_reading(readings).ok_or(Error::Unsupported {
                what: "PHC offset",
                detail: "no reading had its system times in order".into(),
            })?;
        Ok(PhcOffset {
            offset_ns,
            delay_ns,
            system_time_ns,
            method,
        })
    }
}

impl SteeredClock for PhcClock {
    type Error = Error;

    fn now(&self) -> Result<i128, Error> {
        self.read()
    }

    fn step(&mut self, offset: f64) -> Result<(), Error> {
        PhcClock::step(self, offset)
    }

    fn set_frequency(&mut self, ppm: f64) -> Result<(), Error> {
        self.set_frequency_ppb(ppm * 1000.0)
    }

    fn frequency(&self) -> Result<f64, Error> {
        Ok(self.state()?.frequency_ppm)
    }

    fn slew(&mut self, offset: f64) -> Result<(), Error> {
        // PHCs have no kernel slew: a step of a small offset is what linuxptp does too.
        PhcClock::step(self, offset)
    }

    fn set_leap(&mut self, _leap: LeapAction) -> Result<(), Error> {
        // A PHC runs on TAI: it has no leap seconds.
        Ok(())
    }

    fn set_status(&mut self, _status: SyncStatus) -> Result<(), Error> {
        Ok(())
    }
}

fn zeroed<T: PlainData>() -> T {
    // SAFETY: `PlainData` is implemented only for kernel structs made of integers, for
    // which all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

/// Kernel structs of plain integers (all-zero is a valid value).
trait PlainData {}
impl PlainData for libc::timex {}
impl PlainData for libc::ptp_clock_caps {}
impl PlainData for libc::ptp_sys_offset {}
impl PlainData for libc::ptp_sys_offset_extended {}
impl PlainData for libc::ptp_sys_offset_precise {}
impl PlainData for EthtoolTsInfo {}
impl PlainData for libc::ifreq {}

/// SIOCETHTOOL (linux/sockios.h): the ethtool ioctl.
const SIOCETHTOOL: libc::c_ulong = 0x8946;
/// ETHTOOL_GET_TS_INFO (linux/ethtool.h): the command that reports timestamping.
const ETHTOOL_GET_TS_INFO: u32 = 0x41;

/// `struct ethtool_ts_info` (linux/ethtool.h).
#[repr(C)]
#[derive(Debug)]
struct EthtoolTsInfo {
    cmd: u32,
    so_timestamping: u32,
    phc_index: i32,
    tx_types: u32,
    tx_reserved: [u32; 3],
    rx_filters: u32,
    rx_reserved: [u32; 3],
}

/// What an interface's driver reports about timestamping (ETHTOOL_GET_TS_INFO).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimestampingInfo {
    /// SOF_TIMESTAMPING_* capabilities.
    pub so_timestamping: u32,
    /// The PHC index, if the interface has one.
    pub phc_index: Option<u32>,
    /// Bit set of HWTSTAMP_TX_* types.
    pub tx_types: u32,
    /// Bit set of HWTSTAMP_FILTER_* filters.
    pub rx_filters: u32,
}

impl TimestampingInfo {
    /// Whether the interface can timestamp in hardware, both ways.
    pub fn hardware(&self) -> bool {
        let need = libc::SOF_TIMESTAMPING_RAW_HARDWARE
            | libc::SOF_TIMESTAMPING_TX_HARDWARE
            | libc::SOF_TIMESTAMPING_RX_HARDWARE;
        self.so_timestamping & need == need
    }
}

/// Asks the driver of `interface` about timestamping.
pub fn timestamping_info(interface: &str) -> Result<TimestampingInfo, Error> {
    let name = interface.as_bytes();
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(&0) {
        return Err(Error::NoSuchInterface {
            interface: interface.into(),
        });
    }
    let mut info: EthtoolTsInfo = zeroed();
    info.cmd = ETHTOOL_GET_TS_INFO;
    let mut ifr: libc::ifreq = zeroed();
    for (dst, &src) in ifr.ifr_name.iter_mut().zip(name) {
        *dst = src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&raw mut info).cast();
    // SAFETY: a datagram socket with no special arguments.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(Error::last_os("socket (ethtool)"));
    }
    // SAFETY: `sock` was just opened and is owned by nobody else.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(sock) };
    // SAFETY: SIOCETHTOOL reads the ifreq, whose data pointer points at `info`, a valid
    // ethtool_ts_info that outlives the call; both are exclusive for the call.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut ifr) };
    if r < 0 {
        let err = std::io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::ENODEV) => Error::NoSuchInterface {
                interface: interface.into(),
            },
            Some(libc::EOPNOTSUPP) => Error::Unsupported {
                what: "ETHTOOL_GET_TS_INFO",
                detail: format!("the driver of {interface} does not report timestamping"),
            },
            _ => Error::from_io("ETHTOOL_GET_TS_INFO", err),
        });
    }
    Ok(TimestampingInfo {
        so_timestamping: info.so_timestamping,
        phc_index: u32::try_from(info.phc_index).ok(),
        tx_types: info.tx_types,
        rx_filters: info.rx_filters,
    })
}

/// The index N of `/dev/ptpN` of an interface.
pub fn phc_index(interface: &str) -> Result<u32, Error> {
    timestamping_info(interface)?
        .phc_index
        .ok_or_else(|| Error::NoPhc {
            interface: interface.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clockid_encoding() {
        // The kernel's FD_TO_CLOCKID: ((~fd) << 3) | CLOCKFD (3).
        assert_eq!(fd_to_clockid(3), -29);
        assert_eq!(fd_to_clockid(0), -5);
        assert_eq!(fd_to_clockid(3) & 7, 3);
    }

    #[test]
    fn ioctl_numbers_and_struct_sizes() {
        // _IOR('=', 1, struct ptp_clock_caps) with an 80-byte struct.
        assert_eq!(std::mem::size_of::<libc::ptp_clock_caps>(), 80);
        assert_eq!(libc::PTP_CLOCK_GETCAPS, 0x8050_3d01);
        assert_eq!(std::mem::size_of::<libc::ptp_sys_offset_precise>(), 64);
        assert_eq!(
            std::mem::size_of::<libc::ptp_sys_offset_extended>(),
            16 + 25 * 3 * 16
        );
        assert_eq!(std::mem::size_of::<EthtoolTsInfo>(), 44);
    }

    #[test]
    fn shortest_window_wins() {
        let readings = [
            (100, 1_000, 180),
            (200, 1_100, 210),
            (300, 1_200, 290),
            (400, 1_300, 450),
        ];
        // (200, 210): window 10, midpoint 205, offset 205 - 1100.
        assert_eq!(best_reading(&readings), Some((205 - 1_100, 10, 205)));
        assert_eq!(
            best_reading(&[(5, 0, 4)]),
            None,
            "times out of order are ignored"
        );
        assert_eq!(best_reading(&[]), None);
    }

    #[test]
    fn missing_device_says_so() {
        let err = PhcClock::open("/dev/ptp-does-not-exist", false).unwrap_err();
        assert!(matches!(err, Error::NoSuchDevice { .. }), "{err}");
        assert!(err.to_string().contains("ptp_kvm"), "{err}");
    }

    #[test]
    fn interfaces_without_a_phc_say_so() {
        match phc_index("lo") {
            Err(Error::NoPhc { interface }) => assert_eq!(interface, "lo"),
            Err(Error::Unsupported { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            phc_index("no-such-if0"),
            Err(Error::NoSuchInterface { .. })
        ));
        assert!(matches!(phc_index(""), Err(Error::NoSuchInterface { .. })));
        let info = timestamping_info("lo").unwrap();
        assert!(info.so_timestamping & libc::SOF_TIMESTAMPING_RX_SOFTWARE != 0);
        assert!(!info.hardware());
    }
}
