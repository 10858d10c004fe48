//! The VM bench: throw-away QEMU guests (Debian's kernel, a busybox initramfs with the
//! project's release binaries) whose clocks the daemons step, slew and leap for real,
//! while this machine's clock is only read.
//!
//! - [`Assets`]: the kernel (fetched once with `apt-get download`, cached under
//!   `target/vm-bench/`), busybox, the release binaries and the shared libraries they
//!   need, packed into an initramfs.
//! - [`Guest`]: one guest under QEMU (TCG by default), driven through its serial
//!   console, bounded in time and killed by PID when dropped.
//! - [`truth`]: the host measures a guest's clock from outside, by NTP queries to a server
//!   in the guest, against its own clock.
//! - [`TapLink`]: a guest's second network, a tap device in a network namespace the bench
//!   makes, with a peer (ptp4l) on its other end.
//! - [`Chronyd`]: the reference server on the host's loopback, which guests reach as
//!   10.0.2.2 (QEMU's user-mode network: nothing leaves the machine).

mod assets;
mod cpio;
mod error;
mod guest;
mod link;
mod peers;
pub mod truth;

pub use assets::{Assets, Extra};
pub use error::BenchError;
pub use guest::{Guest, GuestConfig, ShOutput};
pub use link::TapLink;
pub use peers::{Chronyd, free_udp_port, peer};
