//! The clock error bound in shared memory, in ClockBound's v2 layout: the daemon writes it,
//! applications read it without a system call beyond two `clock_gettime`s.
//!
//! The segment is a small file (by default ClockBound's `/var/run/clockbound/shm0`) that
//! both sides map. An unmodified `clock-bound-client` reads it; so does
//! [`ClockBoundReader`]. Updates are guarded by a seqlock on the generation counter: odd
//! while the writer is mid-update, even after, never 0 once written (it wraps to 2).
//!
//! After ClockBound's 80 bytes, Tempora appends 16 of its own, which ClockBound's readers
//! skip (they map the segment size the header gives, and read only their part): the
//! distance of CLOCK_REALTIME from CLOCK_MONOTONIC when the bound was computed. A reader
//! that finds the distance moved knows the clock was stepped since (another program, a
//! reverted VM snapshot, a leap second) and reads the status as Disrupted at once, where
//! ClockBound's own reader trusts the bound until the daemon writes again.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering, fence};
use std::time::{Duration, Instant};

use tempora_clock_types::{BoundReading, BoundSnapshot, ClockStatus, ErrorBound};

use crate::Error;
use crate::timex::gettime;

/// ClockBound's default segment path.
pub const DEFAULT_PATH: &str = "/var/run/clockbound/shm0";

/// The layout version this module reads and writes.
pub const VERSION: u16 = 2;

/// ClockBound's magic, as two native-endian u32s.
pub const MAGIC: [u32; 2] = [0x414D_5A4E, 0x4342_0200];

/// Tempora's extension's magic ("TMPR" as a little-endian u32).
pub const EXTENSION_MAGIC: u32 = u32::from_le_bytes(*b"TMPR");

/// ClockBound's part: the header and its ClockErrorBound.
pub const CLOCKBOUND_LEN: usize = 80;

/// The whole segment this module writes.
pub const SEGMENT_LEN: usize = 96;

/// Byte offsets in the segment (native endian throughout).
pub mod field {
    /// Magic, two u32.
    pub const MAGIC: usize = 0;
    /// Segment size, u32.
    pub const SEGMENT_SIZE: usize = 8;
    /// Layout version, u16.
    pub const VERSION: usize = 12;
    /// Generation counter, u16: odd while writing.
    pub const GENERATION: usize = 14;
    /// As-of, timespec (i64 seconds, i64 nanoseconds) on CLOCK_MONOTONIC_COARSE.
    pub const AS_OF: usize = 16;
    /// Void-after, timespec on CLOCK_MONOTONIC_COARSE.
    pub const VOID_AFTER: usize = 32;
    /// Bound at as-of, i64 nanoseconds.
    pub const BOUND: usize = 48;
    /// Disruption marker, u64.
    pub const DISRUPTION_MARKER: usize = 56;
    /// Max drift, u32 ppb.
    pub const MAX_DRIFT: usize = 64;
    /// Clock status, i32.
    pub const CLOCK_STATUS: usize = 68;
    /// Clock disruption support, u8 (0: no VMClock to check).
    pub const DISRUPTION_SUPPORT: usize = 72;
    /// Tempora's extension: magic, u32.
    pub const EXTENSION_MAGIC: usize = 80;
    /// Tempora's extension: flags, u32 (bit 0: the realtime distance is set).
    pub const EXTENSION_FLAGS: usize = 84;
    /// Tempora's extension: CLOCK_REALTIME minus CLOCK_MONOTONIC at as-of, i64 ns.
    pub const REALTIME_MINUS_MONOTONIC: usize = 88;
}

/// How the segment file is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentOptions {
    /// The file's mode (0o644 by default: every user may read it).
    pub mode: u32,
    /// A group to give the file (with mode 0o640, only that group reads it).
    pub group: Option<u32>,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            mode: 0o644,
            group: None,
        }
    }
}

/// A mapping of the segment, unmapped on drop.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every access goes through volatile reads and
// writes or atomics at aligned offsets, and the seqlock makes torn reads detectable.
unsafe impl Send for Mapping {}
// SAFETY: as above; readers only read, and a writer is `&mut`.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are those mmap returned, unmapped once.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

impl Mapping {
    fn map(path: &Path, writable: bool, len: usize) -> Result<Self, Error> {
        let c = cstring(path)?;
        let flags = if writable {
            libc::O_RDWR
        } else {
            libc::O_RDONLY
        } | libc::O_CLOEXEC;
        // SAFETY: `c` is a valid NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), flags) };
        if fd < 0 {
            return Err(Error::last_os("open ClockBound segment"));
        }
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh shared mapping of `len` bytes of an open file; the result is
        // checked against MAP_FAILED.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0) };
        let mapped = Error::last_os("mmap ClockBound segment");
        // SAFETY: `fd` is ours; the mapping keeps the file.
        unsafe {
            libc::close(fd);
        }
        if ptr == libc::MAP_FAILED {
            return Err(mapped);
        }
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    fn generation(&self) -> &AtomicU16 {
        // SAFETY: offset 14 lies inside the mapping (at least 80 bytes) and is 2-aligned
        // (the mapping is page-aligned); AtomicU16 has u16's layout.
        unsafe { &*self.ptr.add(field::GENERATION).cast::<AtomicU16>() }
    }

    /// Reads a value at `offset` (which must be aligned for `T` and inside the mapping).
    fn read<T: Copy>(&self, offset: usize) -> T {
        debug_assert!(offset + size_of::<T>() <= self.len);
        // SAFETY: every caller passes a constant offset of `field` that is aligned for `T`
        // and inside the mapping; the memory is initialised file content.
        unsafe { self.ptr.add(offset).cast::<T>().read_volatile() }
    }

    /// Writes a value at `offset` (aligned for `T`, inside the mapping, writable).
    fn write<T: Copy>(&self, offset: usize, value: T) {
        debug_assert!(offset + size_of::<T>() <= self.len);
        // SAFETY: as `read`; only the writer, through `&mut ClockBoundWriter`, calls it,
        // on a writable mapping.
        unsafe { self.ptr.add(offset).cast::<T>().write_volatile(value) }
    }
}

fn cstring(path: &Path) -> Result<CString, Error> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::SegmentInvalid {
        path: path.display().to_string(),
        reason: "the path holds a NUL byte".into(),
    })
}

fn split(nanos: i64) -> (i64, i64) {
    (
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000),
    )
}

fn join(seconds: i64, nanos: i64) -> i64 {
    seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
}

fn clock_ns(clock: libc::clockid_t) -> Result<i64, Error> {
    gettime(clock).map(|n| n as i64)
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC now, nanoseconds. Steps (and leap seconds) move
/// it; frequency corrections and slews move both clocks alike. A daemon compares it from
/// one write to the next to find steps it did not make.
pub fn realtime_minus_monotonic() -> Result<i128, Error> {
    let real = gettime(libc::CLOCK_REALTIME)?;
    let mono = gettime(libc::CLOCK_MONOTONIC)?;
    Ok(real - mono)
}

/// The hardware real-time clock (`/dev/rtc0`), read as a check on the system clock: in a
/// VM the hypervisor keeps it on the host's time, so when a snapshot is reverted (and the
/// guest's clocks with it) the RTC moves against the system clock by the time lost, which
/// nothing inside the guest otherwise sees.
pub struct Rtc {
    file: std::fs::File,
}

/// `struct rtc_time` of `<linux/rtc.h>`.
#[repr(C)]
#[derive(Default)]
struct RtcTime {
    sec: libc::c_int,
    min: libc::c_int,
    hour: libc::c_int,
    mday: libc::c_int,
    mon: libc::c_int,
    year: libc::c_int,
    wday: libc::c_int,
    yday: libc::c_int,
    isdst: libc::c_int,
}

/// `RTC_RD_TIME`: `_IOR('p', 0x09, struct rtc_time)`.
const RTC_RD_TIME: libc::c_ulong = 0x8024_7009;

impl Rtc {
    /// Opens the RTC device (`/dev/rtc0` usually; it takes root or the device's group).
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file =
            std::fs::File::open(path).map_err(|e| Error::from_io("open the RTC device", e))?;
        Ok(Self { file })
    }

    /// The RTC's time, seconds since the Unix epoch (as UTC; an RTC kept in local time
    /// reads a constant offset away, which a comparison over time does not mind).
    pub fn read(&self) -> Result<i64, Error> {
        use std::os::fd::AsRawFd as _;
        let mut tm = RtcTime::default();
        // SAFETY: RTC_RD_TIME fills one `struct rtc_time`, which `tm` is, exclusively.
        if unsafe { libc::ioctl(self.file.as_raw_fd(), RTC_RD_TIME as _, &mut tm) } < 0 {
            return Err(Error::last_os("RTC_RD_TIME"));
        }
        let days = tempora_clock_types::days_from_civil(
            i64::from(tm.year) + 1900,
            u32::try_from(tm.mon + 1).unwrap_or(1),
            u32::try_from(tm.mday).unwrap_or(1),
        );
        Ok(days * 86_400 + i64::from(tm.hour) * 3600 + i64::from(tm.min) * 60 + i64::from(tm.sec))
    }
}

/// The daemon's side: creates the segment and publishes bounds into it.
pub struct ClockBoundWriter {
    map: Mapping,
    path: PathBuf,
}

impl ClockBoundWriter {
    /// Creates (or replaces) the segment at `path`: its directory if missing, then the
    /// file, whole and initialised (status Unknown) before it appears under its name, so
    /// that a reader never maps a short or blank file.
    pub fn create(path: &Path, options: &SegmentOptions) -> Result<Self, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::from_io("create the ClockBound segment's directory", e))?;
        }
        let mut initial = [0u8; SEGMENT_LEN];
        initial[field::MAGIC..field::MAGIC + 4].copy_from_slice(&MAGIC[0].to_ne_bytes());
        initial[field::MAGIC + 4..field::MAGIC + 8].copy_from_slice(&MAGIC[1].to_ne_bytes());
        initial[field::SEGMENT_SIZE..field::SEGMENT_SIZE + 4]
            .copy_from_slice(&(SEGMENT_LEN as u32).to_ne_bytes());
        initial[field::VERSION..field::VERSION + 2].copy_from_slice(&VERSION.to_ne_bytes());
        initial[field::GENERATION..field::GENERATION + 2].copy_from_slice(&2u16.to_ne_bytes());
        initial[field::EXTENSION_MAGIC..field::EXTENSION_MAGIC + 4]
            .copy_from_slice(&EXTENSION_MAGIC.to_ne_bytes());
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".tmp.{}", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let made = (|| -> std::io::Result<()> {
            use std::io::Write as _;
            use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(options.mode)
                .open(&temporary)?;
            file.write_all(&initial)?;
            // The mode given, whatever the umask.
            file.set_permissions(std::fs::Permissions::from_mode(options.mode))?;
            if let Some(group) = options.group {
                std::os::unix::fs::fchown(&file, None, Some(group))?;
            }
            std::fs::rename(&temporary, path)
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_file(&temporary);
            return Err(Error::from_io("create the ClockBound segment", e));
        }
        Ok(Self {
            map: Mapping::map(path, true, SEGMENT_LEN)?,
            path: path.to_owned(),
        })
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a snapshot under the seqlock.
    pub fn write(&mut self, snapshot: &BoundSnapshot) {
        let generation = self.map.generation();
        let current = generation.load(Ordering::Relaxed);
        let odd = current | 1;
        generation.store(odd, Ordering::Relaxed);
        fence(Ordering::Release);
        let (s, n) = split(snapshot.as_of_ns);
        self.map.write(field::AS_OF, s);
        self.map.write(field::AS_OF + 8, n);
        let (s, n) = split(snapshot.void_after_ns);
        self.map.write(field::VOID_AFTER, s);
        self.map.write(field::VOID_AFTER + 8, n);
        self.map.write(field::BOUND, snapshot.bound_ns);
        self.map
            .write(field::DISRUPTION_MARKER, snapshot.disruption_marker);
        self.map.write(field::MAX_DRIFT, snapshot.max_drift_ppb);
        self.map.write(field::CLOCK_STATUS, snapshot.status as i32);
        self.map.write(field::DISRUPTION_SUPPORT, 0u8);
        self.map.write(
            field::EXTENSION_FLAGS,
            u32::from(snapshot.realtime_minus_monotonic_ns.is_some()),
        );
        self.map.write(
            field::REALTIME_MINUS_MONOTONIC,
            snapshot.realtime_minus_monotonic_ns.unwrap_or(0),
        );
        let next = match odd.wrapping_add(1) {
            0 => 2,
            n => n,
        };
        generation.store(next, Ordering::Release);
    }

    /// Publishes `bound`, computed just now: stamps it with CLOCK_MONOTONIC_COARSE (as
    /// ClockBound's readers measure age on it), trusted for `valid_for`, with the realtime
    /// clock's distance from CLOCK_MONOTONIC. Returns what was written.
    pub fn publish(
        &mut self,
        bound: &ErrorBound,
        valid_for: Duration,
    ) -> Result<BoundSnapshot, Error> {
        let as_of = clock_ns(libc::CLOCK_MONOTONIC_COARSE)?;
        let real = gettime(libc::CLOCK_REALTIME)?;
        let mono = clock_ns(libc::CLOCK_MONOTONIC)?;
        let snapshot = BoundSnapshot::publish(
            bound,
            as_of,
            i64::try_from(valid_for.as_nanos()).unwrap_or(i64::MAX),
            Some((real - i128::from(mono)) as i64),
        );
        self.write(&snapshot);
        Ok(snapshot)
    }
}

/// The application's side: maps the segment read-only and reads bounds from it.
pub struct ClockBoundReader {
    map: Mapping,
    path: PathBuf,
}

/// Reads of a segment mid-update before giving up.
const READ_RETRIES: u32 = 1_000;

impl ClockBoundReader {
    /// Opens the segment at `path` (ClockBound's [`DEFAULT_PATH`] usually): checks the
    /// magic, the version, the size and that it was written, then maps it.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let invalid = |reason: String| Error::SegmentInvalid {
            path: path.display().to_string(),
            reason,
        };
        let header = {
            use std::io::Read as _;
            let mut file = std::fs::File::open(path)
                .map_err(|e| Error::from_io("open ClockBound segment", e))?;
            let mut header = [0u8; 16];
            file.read_exact(&mut header)
                .map_err(|_| invalid("shorter than its 16-byte header".into()))?;
            let len = file
                .metadata()
                .map_err(|e| Error::from_io("stat ClockBound segment", e))?
                .len();
            (header, len)
        };
        let (header, file_len) = header;
        let u32_at =
            |o: usize| u32::from_ne_bytes([header[o], header[o + 1], header[o + 2], header[o + 3]]);
        if [u32_at(0), u32_at(4)] != MAGIC {
            return Err(invalid("no ClockBound magic".into()));
        }
        let version = u16::from_ne_bytes([header[12], header[13]]);
        if version != VERSION {
            return Err(invalid(format!(
                "layout version {version}, this reader knows {VERSION}"
            )));
        }
        let size = u32_at(8) as usize;
        if size < CLOCKBOUND_LEN || size as u64 > file_len {
            return Err(invalid(format!(
                "segment size {size} (at least {CLOCKBOUND_LEN}, at most the file's {file_len})"
            )));
        }
        if u16::from_ne_bytes([header[14], header[15]]) == 0 {
            return Err(invalid("never written (generation 0)".into()));
        }
        Ok(Self {
            map: Mapping::map(path, false, size)?,
            path: path.to_owned(),
        })
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The snapshot the writer published last, read under the seqlock (lock-free).
    pub fn snapshot(&self) -> Result<BoundSnapshot, Error> {
        let generation = self.map.generation();
        for _ in 0..READ_RETRIES {
            let first = generation.load(Ordering::Acquire);
            if first & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let as_of = join(self.map.read(field::AS_OF), self.map.read(field::AS_OF + 8));
            let void_after = join(
                self.map.read(field::VOID_AFTER),
                self.map.read(field::VOID_AFTER + 8),
            );
            let bound_ns: i64 = self.map.read(field::BOUND);
            let disruption_marker: u64 = self.map.read(field::DISRUPTION_MARKER);
            let max_drift_ppb: u32 = self.map.read(field::MAX_DRIFT);
            let status: i32 = self.map.read(field::CLOCK_STATUS);
            let extension = self.map.len >= SEGMENT_LEN
                && self.map.read::<u32>(field::EXTENSION_MAGIC) == EXTENSION_MAGIC
                && self.map.read::<u32>(field::EXTENSION_FLAGS) & 1 == 1;
            let realtime = if extension {
                Some(self.map.read::<i64>(field::REALTIME_MINUS_MONOTONIC))
            } else {
                None
            };
            fence(Ordering::Acquire);
            if generation.load(Ordering::Relaxed) != first {
                continue;
            }
            return Ok(BoundSnapshot {
                as_of_ns: as_of,
                void_after_ns: void_after,
                bound_ns,
                disruption_marker,
                max_drift_ppb,
                // A status this reader does not know is not one to trust.
                status: ClockStatus::from_i32(status).unwrap_or(ClockStatus::Unknown),
                realtime_minus_monotonic_ns: realtime,
            });
        }
        Err(Error::SegmentBusy {
            path: self.path.display().to_string(),
            retries: READ_RETRIES,
        })
    }

    /// What time it is, give or take how much: CLOCK_REALTIME with the bound grown to
    /// now, and the status (aged as ClockBound's reader ages it; Disrupted if the clock
    /// was stepped since the bound was written).
    pub fn now(&self) -> Result<BoundReading, Error> {
        let snapshot = self.snapshot()?;
        // The realtime clock first, as the moment asked about; the monotonic one after, so
        // that a delay between the two only makes the bound larger.
        let real = gettime(libc::CLOCK_REALTIME)?;
        let mono = clock_ns(libc::CLOCK_MONOTONIC)?;
        Ok(snapshot.read(real, mono)?)
    }

    /// Blocks until the status is Synchronized with a bound within `within` (seconds), or
    /// `timeout` passes (then [`Error::WaitTimedOut`]). Reads every `interval`.
    pub fn wait_until_synchronized(
        &self,
        within: f64,
        timeout: Duration,
        interval: Duration,
    ) -> Result<BoundReading, Error> {
        let start = Instant::now();
        loop {
            let last = match self.now() {
                Ok(r)
                    if r.status == ClockStatus::Synchronized
                        && r.bound_ns as f64 <= within * 1e9 =>
                {
                    return Ok(r);
                }
                Ok(r) => format!("{} within {} ns", r.status.name(), r.bound_ns),
                Err(e) => e.to_string(),
            };
            if start.elapsed() >= timeout {
                return Err(Error::WaitTimedOut {
                    within_s: within,
                    waited_s: start.elapsed().as_secs_f64(),
                    last,
                });
            }
            std::thread::sleep(interval.min(timeout.saturating_sub(start.elapsed())));
        }
    }
}

/// [`ClockBoundReader::wait_until_synchronized`] for a segment that may not exist yet (the
/// daemon still starting): opens it when it appears.
pub fn wait_until_synchronized(
    path: &Path,
    within: f64,
    timeout: Duration,
) -> Result<BoundReading, Error> {
    let start = Instant::now();
    let interval = Duration::from_millis(100);
    loop {
        match ClockBoundReader::open(path) {
            Ok(reader) => {
                return reader.wait_until_synchronized(
                    within,
                    timeout.saturating_sub(start.elapsed()),
                    interval,
                );
            }
            Err(e) if start.elapsed() >= timeout => {
                return Err(Error::WaitTimedOut {
                    within_s: within,
                    waited_s: start.elapsed().as_secs_f64(),
                    last: e.to_string(),
                });
            }
            Err(_) => std::thread::sleep(interval),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("tempora-cb-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_written_bound_reads_back_and_grows() {
        let path = temp_path("rw").join("shm0");
        let mut writer = ClockBoundWriter::create(&path, &SegmentOptions::default()).unwrap();
        let reader = ClockBoundReader::open(&path).unwrap();
        assert_eq!(reader.now().unwrap().status, ClockStatus::Unknown);
        let bound = ErrorBound {
            bound: 250e-6,
            drift: 1e-6,
            status: ClockStatus::Synchronized,
        };
        let written = writer.publish(&bound, Duration::from_secs(10)).unwrap();
        assert_eq!(reader.snapshot().unwrap(), written);
        let r = reader.now().unwrap();
        assert_eq!(r.status, ClockStatus::Synchronized);
        assert!(r.bound_ns >= 250_000 && r.bound_ns < 260_000, "{r:?}");
        assert!(r.earliest_ns < r.now_ns && r.now_ns < r.latest_ns);
        let got = reader
            .wait_until_synchronized(1e-3, Duration::from_secs(1), Duration::from_millis(10))
            .unwrap();
        assert_eq!(got.status, ClockStatus::Synchronized);
        assert!(matches!(
            reader.wait_until_synchronized(
                1e-6,
                Duration::from_millis(30),
                Duration::from_millis(10)
            ),
            Err(Error::WaitTimedOut { .. })
        ));
        let mode = std::fs::metadata(&path).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o644
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_reader_sees_a_step_the_writer_did_not_make() {
        let path = temp_path("step");
        let mut writer = ClockBoundWriter::create(&path, &SegmentOptions::default()).unwrap();
        let reader = ClockBoundReader::open(&path).unwrap();
        let mut snapshot = writer
            .publish(
                &ErrorBound {
                    bound: 1e-3,
                    drift: 1e-6,
                    status: ClockStatus::Synchronized,
                },
                Duration::from_secs(10),
            )
            .unwrap();
        // As if the realtime clock had been stepped 2 s back since.
        snapshot.realtime_minus_monotonic_ns = snapshot
            .realtime_minus_monotonic_ns
            .map(|d| d + 2_000_000_000);
        writer.write(&snapshot);
        assert_eq!(reader.now().unwrap().status, ClockStatus::Disrupted);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn files_that_are_not_segments_are_typed_errors() {
        let path = temp_path("bad");
        assert!(matches!(
            ClockBoundReader::open(&path),
            Err(Error::Os { .. })
        ));
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            ClockBoundReader::open(&path),
            Err(Error::SegmentInvalid { .. })
        ));
        std::fs::write(&path, [0u8; 96]).unwrap();
        let e = ClockBoundReader::open(&path).err().unwrap();
        assert!(e.to_string().contains("magic"), "{e}");
        // The right magic and version, a size larger than the file.
        let mut bytes = [0u8; 96];
        bytes[0..4].copy_from_slice(&MAGIC[0].to_ne_bytes());
        bytes[4..8].copy_from_slice(&MAGIC[1].to_ne_bytes());
        bytes[8..12].copy_from_slice(&4096u32.to_ne_bytes());
        bytes[12..14].copy_from_slice(&2u16.to_ne_bytes());
        bytes[14..16].copy_from_slice(&2u16.to_ne_bytes());
        std::fs::write(&path, bytes).unwrap();
        let e = ClockBoundReader::open(&path).err().unwrap();
        assert!(e.to_string().contains("segment size"), "{e}");
        bytes[12..14].copy_from_slice(&1u16.to_ne_bytes());
        std::fs::write(&path, bytes).unwrap();
        let e = ClockBoundReader::open(&path).err().unwrap();
        assert!(e.to_string().contains("version 1"), "{e}");
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            wait_until_synchronized(&path, 1.0, Duration::from_millis(150)),
            Err(Error::WaitTimedOut { .. })
        ));
    }
}
