//! Helpers the interop tests share: where the real peers are, free ports, processes
//! stopped by PID on drop, test-made network namespaces.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The folder `scripts/fetch-peers.sh` unpacks Debian's packages into.
pub fn peers_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/peers/root")
}

/// A peer binary, if fetched.
pub fn peer(relative: &str) -> Option<PathBuf> {
    let p = peers_root().join(relative);
    p.exists().then_some(p)
}

/// A free UDP port on loopback.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process this test started; killed by its PID on drop.
pub struct Process {
    pub child: Child,
    pub dir: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child process of the test, killed by its PID on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tempora-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts chronyd with `config` lines (observe-only: -x, and no CAP_SYS_TIME), optionally
/// inside a network namespace.
pub fn chronyd(name: &str, config: &str, netns: Option<&str>) -> Option<Process> {
    let Some(binary) = peer("usr/sbin/chronyd") else {
        eprintln!("skipped: no chronyd under target/peers (run scripts/fetch-peers.sh)");
        return None;
    };
    let dir = scratch(name);
    // chronyd refuses a command socket in a folder others may write.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let conf = dir.join("chrony.conf");
    std::fs::write(
        &conf,
        format!(
            "{config}\npidfile {}\nbindcmdaddress {}\n",
            dir.join("chronyd.pid").display(),
            dir.join("chronyd.sock").display()
        ),
    )
    .unwrap();
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "setpriv"]);
            c
        }
        None => Command::new("setpriv"),
    };
    let child = cmd
        .args(["--bounding-set=-sys_time", "--"])
        .arg(binary)
        .args(["-d", "-x", "-u", "root", "-f"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Some(Process { child, dir })
}

/// Runs chronyc against a chronyd started by [`chronyd`].
pub fn chronyc(process: &Process, args: &[&str]) -> Option<String> {
    let binary = peer("usr/bin/chronyc")?;
    let out = Command::new(binary)
        .arg("-h")
        .arg(process.dir.join("chronyd.sock"))
        .args(args)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `f` until it gives `Some`, at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether network namespaces can be made here (root, iproute2).
pub fn can_make_netns() -> bool {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success())
        && std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .is_some_and(|c| c & (1 << 12) != 0)
}

/// A network namespace made by the test, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Makes `name` with loopback up.
    pub fn new(name: &str) -> Option<Self> {
        if !can_make_netns() {
            eprintln!("skipped: cannot make network namespaces here");
            return None;
        }
        let name = format!("{name}-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: ip netns add failed");
            return None;
        }
        let ns = Self { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        Some(ns)
    }

    /// Runs a command inside; panics if it fails.
    pub fn exec(&self, args: &[&str]) {
        let st = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "{args:?}");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A UDP proxy between NTP clients and one server that delays every datagram by a random
/// time (uniform in a range per direction) and can shift the server's timestamps by a
/// fixed lie. One thread, bounded by the lifetime of the value.
pub struct DelayProxy {
    pub address: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DelayProxy {
    /// Proxies to `server`; client-to-server delay uniform in `c2s`, server-to-client in
    /// `s2c` (seconds); `lie` seconds added to the answers' receive and transmit times.
    pub fn start(
        server: std::net::SocketAddr,
        c2s: (f64, f64),
        s2c: (f64, f64),
        lie: f64,
        seed: u64,
    ) -> Self {
        use std::collections::BinaryHeap;
        use std::net::{SocketAddr, UdpSocket};
        use std::os::fd::AsFd;
        use std::sync::atomic::{AtomicBool, Ordering};
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        front.set_nonblocking(true).unwrap();
        let address = front.local_addr().unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            #[derive(PartialEq, Eq)]
            struct Due(Instant, u64, Vec<u8>, Option<usize>, SocketAddr);
            impl Ord for Due {
                fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                    o.0.cmp(&self.0).then(o.1.cmp(&self.1))
                }
            }
            impl PartialOrd for Due {
                fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                    Some(self.cmp(o))
                }
            }
            let mut rng = seed | 1;
            let mut uniform = |(lo, hi): (f64, f64)| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                lo + (hi - lo) * ((rng >> 11) as f64 / (1u64 << 53) as f64)
            };
            let mut backs: Vec<(SocketAddr, UdpSocket)> = Vec::new();
            let mut queue = BinaryHeap::new();
            let mut seq = 0u64;
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                while let Ok((n, from)) = front.recv_from(&mut buf) {
                    let i = match backs.iter().position(|(c, _)| *c == from) {
                        Some(i) => i,
                        None => {
                            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
                            b.set_nonblocking(true).unwrap();
                            backs.push((from, b));
                            backs.len() - 1
                        }
                    };
                    let at = Instant::now() + Duration::from_secs_f64(uniform(c2s));
                    seq += 1;
                    queue.push(Due(at, seq, buf[..n].to_vec(), Some(i), server));
                }
                for (client, back) in &backs {
                    while let Ok((n, _)) = back.recv_from(&mut buf) {
                        let mut data = buf[..n].to_vec();
                        if lie != 0.0 && n >= 48 {
                            let shift = (lie * 4_294_967_296.0) as i64 as u64;
                            for at in [32usize, 40] {
                                let v = u64::from_be_bytes(data[at..at + 8].try_into().unwrap());
                                data[at..at + 8]
                                    .copy_from_slice(&v.wrapping_add(shift).to_be_bytes());
                            }
                        }
                        let at = Instant::now() + Duration::from_secs_f64(uniform(s2c));
                        seq += 1;
                        queue.push(Due(at, seq, data, None, *client));
                    }
                }
                let now = Instant::now();
                while queue.peek().is_some_and(|d| d.0 <= now) {
                    let Due(_, _, data, back, to) = queue.pop().unwrap();
                    match back {
                        Some(i) => {
                            let _ = backs[i].1.send_to(&data, to);
                        }
                        None => {
                            let _ = front.send_to(&data, to);
                        }
                    }
                }
                // Wait for the next packet or the next departure. A sleeping poll would add
                // its own timer slack (50 us and more) to every leg, so the last two
                // milliseconds before a departure are waited out by yielding; a packet
                // that arrives wakes the poll at once.
                let until_due = queue.peek().map_or(Duration::from_millis(20), |d| {
                    d.0.saturating_duration_since(now)
                });
                if until_due > Duration::from_millis(2) {
                    // chronyd sends each request from a new port: the answers come to the
                    // newest back sockets, and older ones are still read every loop.
                    let fds: Vec<_> = std::iter::once(front.as_fd())
                        .chain(backs.iter().rev().take(7).map(|(_, b)| b.as_fd()))
                        .collect();
                    let mut ready = [false; 8];
                    let _ = tempora_sys_clock::poll_readable(
                        &fds,
                        until_due - Duration::from_millis(1),
                        &mut ready,
                    );
                } else {
                    std::thread::yield_now();
                }
            }
        });
        Self {
            address,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A test CA and a server certificate for 127.0.0.1 and localhost, signed by it.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Runs openssl in `dir`; panics if it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (apt-get install openssl; .ci/run does)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a test CA (`ca.pem`) and a certificate for 127.0.0.1 and localhost signed by it
/// (`server.pem`, `server.key`) in `dir`.
pub fn pki(dir: &Path) -> Pki {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Tempora test CA",
    ]);
    openssl(dir, &args);
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// A free TCP port on loopback.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ntp-client run --observe --config CONFIG` (the binary at `binary`) without
/// CAP_SYS_TIME, stopped by PID when dropped.
pub fn observing_client(binary: &str, config: &Path) -> Killed {
    Killed(
        Command::new("setpriv")
            .args(["--bounding-set=-sys_time", "--"])
            .arg(binary)
            .args(["run", "--observe", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}
