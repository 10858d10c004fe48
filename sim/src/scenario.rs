//! The scenarios: what the world looks like, and the bars a run must meet.

use tempora_clock_discipline::{PiServoConfig, StepMode, StepPolicy};
use tempora_ntp::Estimator;

use crate::model::{ClockSpec, Direction, Jitter, Link, LinkEvent};

/// The bars a run must meet, as chrony's and linuxptp's simulation tests set them.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Bars {
    /// |offset| above this means "not in sync" (seconds).
    pub sync_limit: f64,
    /// In sync by this time (seconds).
    pub max_sync_time: f64,
    /// After sync, the largest |offset| (seconds).
    pub max_offset: f64,
    /// After sync, the RMS offset (seconds).
    pub rms_offset: f64,
    /// After sync, the RMS frequency error (ppm), where checked.
    pub rms_frequency_ppm: Option<f64>,
}

/// What an NTP node is.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Role {
    /// A primary server: its clock is the truth (stratum 1).
    Primary,
    /// A client of `upstreams`; it also serves nodes below it.
    Client {
        /// Its servers.
        upstreams: Vec<Upstream>,
    },
    /// A server serving true time plus a bias that grows at `drift_ppm` from `from` on.
    Falseticker {
        /// Constant bias, seconds.
        bias: f64,
        /// Growth of the bias, ppm.
        drift_ppm: f64,
        /// When the lie starts, seconds.
        from: f64,
    },
    /// A server that answers "not synchronised".
    Unsynchronized,
    /// A server that answers every request with a RATE kiss-o'-death.
    KissRate,
    /// A primary that serves smeared time through the run's leap second (a linear smear
    /// over `duration` seconds centred on it) and never announces it.
    Smearing {
        /// The smear's window, seconds.
        duration: f64,
    },
    /// A primary of true time that announces a leap second nobody scheduled.
    LeapLiar,
}

/// One server of a client, and the link to it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Upstream {
    /// The server's node index.
    pub node: usize,
    /// The link.
    pub link: Link,
    /// The client declares the server smeared (`[[server]] smeared = true`).
    pub smeared: bool,
}

/// One NTP node.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Node {
    /// Its name in tables.
    pub name: String,
    /// Its clock.
    pub clock: ClockSpec,
    /// What it does.
    pub role: Role,
}

/// Something that happens to a node mid-run.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Happening {
    /// The node's clock jumps (a VM snapshot revert).
    ClockJump {
        /// The node.
        node: usize,
        /// When, seconds.
        at: f64,
        /// By how much, seconds.
        seconds: f64,
    },
    /// A serving client starts adding a growing bias to what it serves (a broken server).
    ServeDrift {
        /// The node.
        node: usize,
        /// From when, seconds.
        from: f64,
        /// Bias growth, ppm.
        drift_ppm: f64,
    },
}

/// An NTP world.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NtpScenario {
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Mid-run happenings.
    pub happenings: Vec<Happening>,
    /// The node whose statistics and tables the demo shows.
    pub client: usize,
    /// Shortest and longest poll, log2 seconds.
    pub poll: (i8, i8),
    /// Step policy of every client.
    #[serde(skip)]
    pub step: StepPolicy,
    /// Clients start from a drift file off by this many ppm: their clock's frequency set
    /// to what their oscillator needs give or take that, and their sources told the
    /// frequency is known to a ppm, as `ntp-client run` does. `None`: a first start.
    pub drift_file: Option<f64>,
    /// A run around a leap second: when it starts (Unix seconds), every node with
    /// tzdata's leap-seconds list. `None`: 2026-01-01, no list.
    pub leap_epoch: Option<i64>,
}

/// A PTP master and slave.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PtpScenario {
    /// Sync interval, seconds.
    pub sync_interval: f64,
    /// The link.
    pub link: Link,
    /// Timestamp jitter: each timestamp is late by a uniform amount up to this, seconds
    /// (~10 ns hardware, ~10 µs software).
    pub timestamp_noise: f64,
    /// The slave's clock.
    pub slave: ClockSpec,
    /// The servo.
    #[serde(skip)]
    pub servo: PiServoConfig,
}

/// The world of a scenario.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum World {
    /// NTP.
    Ntp(NtpScenario),
    /// PTP.
    Ptp(PtpScenario),
}

/// A scenario: a name, a world, a duration and the bars.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Scenario {
    /// Its name (`--scenario NAME`).
    pub name: &'static str,
    /// One line about it.
    pub description: &'static str,
    /// How long it runs, seconds.
    pub duration: f64,
    /// The world.
    pub world: World,
    /// The bars.
    pub bars: Bars,
}

const CHRONY_BARS: Bars = Bars {
    sync_limit: 1e-3,
    max_sync_time: 210.0,
    max_offset: 1e-3,
    rms_offset: 300e-6,
    rms_frequency_ppm: Some(10.0),
};

fn lan(jitter: f64) -> Link {
    Link::symmetric(Direction::new(100e-6, Jitter::Exponential(jitter)))
}

fn client(name: &str, clock: ClockSpec, upstreams: Vec<Upstream>) -> Node {
    Node {
        name: name.into(),
        clock,
        role: Role::Client { upstreams },
    }
}

fn primary(name: &str) -> Node {
    Node {
        name: name.into(),
        clock: ClockSpec::PERFECT,
        role: Role::Primary,
    }
}

fn up(node: usize, link: Link) -> Upstream {
    Upstream {
        node,
        link,
        smeared: false,
    }
}

fn ntp(nodes: Vec<Node>, client: usize, happenings: Vec<Happening>) -> World {
    World::Ntp(NtpScenario {
        nodes,
        happenings,
        client,
        poll: (4, 6),
        step: StepPolicy::default(),
        drift_file: None,
        leap_epoch: None,
    })
}

/// Every scenario, the demo's first.
pub fn all() -> Vec<Scenario> {
    let drifting_client = ClockSpec {
        offset: 0.1,
        frequency_ppm: 100.0,
        wander: 1e-9,
        read_noise: 0.0,
    };
    let quiet = ClockSpec {
        offset: 0.01,
        frequency_ppm: 20.0,
        wander: 1e-9,
        read_noise: 0.0,
    };
    vec![
        Scenario {
            name: "hierarchy",
            description: "stratum 1 -> stratum 2 -> three stratum 3 -> client at stratum 4; from 1200 s one stratum 3 (s3-c) serves time that drifts away at 50 ppm while its own clock stays true",
            duration: 3600.0,
            world: ntp(
                vec![
                    primary("s1"),
                    client("s2", quiet, vec![up(0, lan(100e-6))]),
                    client("s3-a", quiet, vec![up(1, lan(100e-6))]),
                    client("s3-b", quiet, vec![up(1, lan(100e-6))]),
                    client("s3-c", quiet, vec![up(1, lan(100e-6))]),
                    client(
                        "client",
                        drifting_client,
                        vec![up(2, lan(100e-6)), up(3, lan(100e-6)), up(4, lan(100e-6))],
                    ),
                ],
                5,
                vec![Happening::ServeDrift {
                    node: 4,
                    from: 1200.0,
                    drift_ppm: 50.0,
                }],
            ),
            bars: Bars {
                max_sync_time: 400.0,
                ..CHRONY_BARS
            },
        },
        Scenario {
            name: "one-server",
            description: "one server, 100 us + exponential 100 us each way, 0.1 s and 100 ppm off, wander 1e-9 (chrony's bars)",
            duration: 3000.0,
            world: ntp(
                vec![
                    primary("server"),
                    client("client", drifting_client, vec![up(0, lan(100e-6))]),
                ],
                1,
                vec![],
            ),
            bars: CHRONY_BARS,
        },
        Scenario {
            name: "step-100s",
            description: "the client starts 100 s off: stepped at once under the default policy",
            duration: 600.0,
            world: ntp(
                vec![
                    primary("server"),
                    client(
                        "client",
                        ClockSpec {
                            offset: 100.0,
                            ..drifting_client
                        },
                        vec![up(0, lan(100e-6))],
                    ),
                ],
                1,
                vec![],
            ),
            bars: Bars {
                max_sync_time: 60.0,
                ..CHRONY_BARS
            },
        },
        Scenario {
            name: "rtc-0.85s",
            description: "the client starts 0.85 s behind, below the step threshold (a guest booted from its whole-second RTC): slewed away through the tick within 30 s",
            duration: 600.0,
            world: ntp(
                vec![
                    primary("server"),
                    client(
                        "client",
                        ClockSpec {
                            offset: -0.85,
                            ..quiet
                        },
                        vec![up(0, lan(100e-6))],
                    ),
                ],
                1,
                vec![],
            ),
            bars: Bars {
                max_sync_time: 30.0,
                ..CHRONY_BARS
            },
        },
        Scenario {
            name: "freq-400ppm",
            description: "the client's oscillator is 400 ppm fast",
            duration: 3000.0,
            world: ntp(
                vec![
                    primary("server"),
                    client(
                        "client",
                        ClockSpec {
                            frequency_ppm: 400.0,
                            ..drifting_client
                        },
                        vec![up(0, lan(100e-6))],
                    ),
                ],
                1,
                vec![],
            ),
            bars: CHRONY_BARS,
        },
        Scenario {
            name: "jitter-100ms",
            description: "100 ms of exponential jitter each way",
            duration: 7200.0,
            world: ntp(
                vec![
                    primary("server"),
                    client("client", quiet, vec![up(0, lan(0.1))]),
                ],
                1,
                vec![],
            ),
            // With 200 ms of mean extra round trip, tens of milliseconds is what the
            // shortest exchanges allow.
            bars: Bars {
                sync_limit: 0.1,
                max_sync_time: 600.0,
                max_offset: 0.1,
                rms_offset: 0.03,
                rms_frequency_ppm: None,
            },
        },
        Scenario {
            name: "wander-1e-7",
            description: "frequency wander 1e-7 (a poor oscillator in a changing room)",
            duration: 3600.0,
            world: ntp(
                vec![
                    primary("server"),
                    client(
                        "client",
                        ClockSpec {
                            wander: 1e-7,
                            ..drifting_client
                        },
                        vec![up(0, lan(100e-6))],
                    ),
                ],
                1,
                vec![],
            ),
            // A random walk of 1e-7 per square root of a second moves the frequency by
            // 0.4 ppm between 16 s polls: millisecond excursions are the physics.
            bars: Bars {
                sync_limit: 3e-3,
                max_offset: 3e-3,
                rms_offset: 1e-3,
                rms_frequency_ppm: Some(20.0),
                ..CHRONY_BARS
            },
        },
        falsetickers("falsetickers-2of5", 2),
        falsetickers("falsetickers-3of5", 3),
        Scenario {
            name: "restart",
            description: "a daemon restart: the clock 5 ms off and 100 ppm slow, the drift file right to 0.5 ppm",
            duration: 3000.0,
            world: {
                let mut world = ntp(
                    vec![
                        primary("server"),
                        client(
                            "client",
                            ClockSpec {
                                offset: 0.005,
                                ..drifting_client
                            },
                            vec![up(0, lan(100e-6))],
                        ),
                    ],
                    1,
                    vec![],
                );
                if let World::Ntp(ntp) = &mut world {
                    ntp.drift_file = Some(0.5);
                }
                world
            },
            bars: Bars {
                max_sync_time: 60.0,
                ..CHRONY_BARS
            },
        },
        Scenario {
            name: "snapshot-revert",
            description: "the client's clock jumps back 3 hours at 1500 s (a reverted VM snapshot)",
            duration: 3000.0,
            world: ntp(
                vec![
                    primary("server"),
                    client("client", quiet, vec![up(0, lan(100e-6))]),
                ],
                1,
                vec![Happening::ClockJump {
                    node: 1,
                    at: 1500.0,
                    seconds: -10_800.0,
                }],
            ),
            bars: Bars {
                max_sync_time: 1800.0,
                ..CHRONY_BARS
            },
        },
        Scenario {
            name: "outage-1h",
            description: "the link is down for an hour from 1800 s; holdover on the frequency estimate",
            duration: 7200.0,
            world: ntp(
                vec![
                    primary("server"),
                    client(
                        "client",
                        quiet,
                        vec![up(
                            0,
                            Link {
                                events: vec![LinkEvent::Outage {
                                    from: 1800.0,
                                    to: 5400.0,
                                }],
                                ..lan(100e-6)
                            },
                        )],
                    ),
                ],
                1,
                vec![],
            ),
            // Holdover: the error may grow while the link is down, by no more than the
            // frequency estimate's error allows; no step on recovery (the tests check).
            bars: Bars {
                sync_limit: 5e-3,
                max_offset: 5e-3,
                rms_frequency_ppm: None,
                ..CHRONY_BARS
            },
        },
        leap_run(
            "leap-insert",
            "2016-12-31 23:30 UTC, a leap second at midnight: two primaries, a stratum-2 server and the client, all with tzdata's list; every clock inserts 23:59:60 in its kernel, none steps",
            LEAP_2016 - 1800,
            vec![
                primary("s1"),
                primary("s1b"),
                client("s2", quiet, vec![up(0, lan(100e-6)), up(1, lan(100e-6))]),
                client(
                    "client",
                    quiet,
                    vec![up(2, lan(100e-6)), up(1, lan(100e-6))],
                ),
            ],
            3,
        ),
        leap_run(
            "leap-smear-mixed",
            "as leap-insert, the client polling two primaries and a server declared smeared (Google's 24 h linear smear): near the leap it follows the unsmeared pair, never half-way",
            LEAP_2016 - 1800,
            vec![
                primary("p1"),
                primary("p2"),
                Node {
                    name: "smear".into(),
                    clock: ClockSpec::PERFECT,
                    role: Role::Smearing { duration: 86_400.0 },
                },
                client(
                    "client",
                    quiet,
                    vec![
                        up(0, lan(100e-6)),
                        up(1, lan(100e-6)),
                        Upstream {
                            smeared: true,
                            ..up(2, lan(100e-6))
                        },
                    ],
                ),
            ],
            3,
        ),
        leap_run(
            "leap-liars",
            "2017-06-30 23:30 UTC, no leap in tzdata's list: three of five servers (true time) announce one; the client's list refuses it, nothing is armed",
            LEAP_2017_JUNE_END - 1800,
            vec![
                primary("honest-1"),
                primary("honest-2"),
                Node {
                    name: "liar-1".into(),
                    clock: ClockSpec::PERFECT,
                    role: Role::LeapLiar,
                },
                Node {
                    name: "liar-2".into(),
                    clock: ClockSpec::PERFECT,
                    role: Role::LeapLiar,
                },
                Node {
                    name: "liar-3".into(),
                    clock: ClockSpec::PERFECT,
                    role: Role::LeapLiar,
                },
                client(
                    "client",
                    quiet,
                    (0..5).map(|i| up(i, lan(100e-6))).collect(),
                ),
            ],
            5,
        ),
        ptp(
            "ptp-hw",
            "PTP master and slave, 100 ns + 100 ns jitter, sync every second, hardware timestamps",
            10e-9,
            Bars {
                sync_limit: 2e-6,
                max_sync_time: 40.0,
                max_offset: 2e-6,
                rms_offset: 1e-6,
                rms_frequency_ppm: None,
            },
        ),
        ptp(
            "ptp-sw",
            "as ptp-hw with 10 us of software-timestamp jitter",
            10e-6,
            Bars {
                sync_limit: 30e-6,
                max_sync_time: 60.0,
                max_offset: 30e-6,
                rms_offset: 6e-6,
                rms_frequency_ppm: None,
            },
        ),
    ]
}

/// 2017-01-01T00:00:00Z: the last leap second so far ended 2016 at it.
pub const LEAP_2016: i64 = 1_483_228_800;
/// 2017-07-01T00:00:00Z: a month's end without a leap second.
pub const LEAP_2017_JUNE_END: i64 = 1_498_867_200;

/// A run of an hour from `epoch`, every node with tzdata's leap-seconds list.
fn leap_run(
    name: &'static str,
    description: &'static str,
    epoch: i64,
    nodes: Vec<Node>,
    client: usize,
) -> Scenario {
    let mut world = ntp(nodes, client, vec![]);
    if let World::Ntp(w) = &mut world {
        w.leap_epoch = Some(epoch);
    }
    Scenario {
        name,
        description,
        duration: 3600.0,
        world,
        bars: CHRONY_BARS,
    }
}

fn falsetickers(name: &'static str, liars: usize) -> Scenario {
    let mut nodes = vec![];
    let mut upstreams = vec![];
    let biases = [0.15, -0.12, 0.3];
    for i in 0..5 {
        if i < liars {
            nodes.push(Node {
                name: format!("liar-{}", i + 1),
                clock: ClockSpec::PERFECT,
                role: Role::Falseticker {
                    bias: biases.get(i).copied().unwrap_or(0.2),
                    drift_ppm: if i == 0 { 10.0 } else { 0.0 },
                    from: 0.0,
                },
            });
        } else {
            nodes.push(primary(&format!("honest-{}", i + 1 - liars)));
        }
        upstreams.push(up(i, lan(100e-6)));
    }
    let client_clock = ClockSpec {
        offset: 0.002,
        frequency_ppm: 5.0,
        wander: 1e-9,
        read_noise: 0.0,
    };
    nodes.push(client("client", client_clock, upstreams));
    let majority_honest = liars < 3;
    Scenario {
        name,
        description: if majority_honest {
            "five servers, two of them lying by 150 and 120 ms: follow the truth, mark them"
        } else {
            "five servers, three of them lying by different amounts: follow none of them"
        },
        duration: 1800.0,
        world: ntp(nodes, 5, vec![]),
        bars: if majority_honest {
            CHRONY_BARS
        } else {
            // No majority: the client must not move toward any liar (they are 120 ms and
            // more away); its own 5 ppm drift over the run is what it may lose.
            Bars {
                sync_limit: 0.015,
                max_sync_time: 0.0,
                max_offset: 0.015,
                rms_offset: 0.015,
                rms_frequency_ppm: None,
            }
        },
    }
}

fn ptp(name: &'static str, description: &'static str, noise: f64, bars: Bars) -> Scenario {
    Scenario {
        name,
        description,
        duration: 600.0,
        world: World::Ptp(PtpScenario {
            sync_interval: 1.0,
            link: Link::symmetric(Direction::new(100e-9, Jitter::Uniform(100e-9))),
            timestamp_noise: noise,
            slave: ClockSpec {
                offset: 1e-3,
                frequency_ppm: 30.0,
                wander: 1e-10,
                read_noise: 0.0,
            },
            // Software timestamps: kp 0.3, ki 0.05. linuxptp's software defaults (0.1,
            // 0.001) take 70-150 s to integrate away the first, noisy drift estimate on
            // four seeds of six (measured with this simulator); these settle in seconds.
            servo: if noise > 1e-6 {
                PiServoConfig {
                    kp: 0.3,
                    ki: 0.05,
                    ..PiServoConfig::SOFTWARE
                }
            } else {
                PiServoConfig::HARDWARE
            },
        }),
        bars,
    }
}

/// The scenario of a name.
pub fn by_name(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}

/// A scenario with the reference chain (RFC 5905 filter and PLL/FLL) instead of the
/// default, or with slew-only stepping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The default estimator and discipline.
    Default,
    /// The RFC 5905 clock filter and PLL/FLL.
    Rfc,
    /// The default chain, never stepping.
    SlewOnly,
}

impl Variant {
    /// The estimator of this variant.
    pub fn estimator(self) -> Estimator {
        match self {
            Self::Rfc => Estimator::Rfc,
            _ => Estimator::Regression,
        }
    }

    /// The step policy of this variant over the scenario's own.
    pub fn step(self, base: StepPolicy) -> StepPolicy {
        match self {
            Self::SlewOnly => StepPolicy {
                mode: StepMode::Never,
                ..base
            },
            _ => base,
        }
    }
}
