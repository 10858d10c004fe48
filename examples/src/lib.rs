//! The cores of Tempora's daemons, sans-IO, so that the daemons, the simulator and the
//! tests all run the same code.
//!
//! - [`ntp::NtpSource`]: one server as a client sees it (polling, iburst, reach, kiss
//!   codes, the response checks, the per-source filter).
//! - [`ntp::NtpSystem`]: selection over the sources, the discipline, and the state a
//!   server built on it passes downstream (stratum, root delay and dispersion).
//! - [`ntp::query`]: one-shot queries (`ntp-client query`), observe-only.
//! - [`ptp::PtpPort`]: `ptp-slave`'s port state machine (Announce qualification, BMCA,
//!   failover, E2E and P2P delay) around [`ptp::PtpSlaveCore`], the measuring half
//!   (one- and two-step, median path delay, Kalman offset estimate, PI servo);
//!   [`ptp::phc2sys::PhcToSystem`], the system clock kept on a PHC.

pub mod ntp {
    //! The NTP client core.
    pub mod client;
    pub mod query;
    mod refclock;
    pub mod server;
    mod source;
    mod system;
    pub mod upstream;
    pub use refclock::{RefclockConfig, RefclockSource};
    pub use source::{Estimator, NtpSource, ResponseOutcome, SourceConfig};
    pub use system::{DisciplineKind, NtpSystem, SystemConfig, SystemError};
}

pub mod http;
pub mod startup;

pub mod ptp {
    //! The PTP slave: the measuring core and the port state machine.
    pub mod config;
    pub mod daemon;
    pub mod metrics;
    pub mod phc2sys;
    mod port;
    mod slave;
    pub use port::{Outgoing, PortConfig, PortEvent, PtpPort, clock_identity_from_mac, parse_mac};
    pub use slave::{PtpSlaveCore, SlaveSample};
}
