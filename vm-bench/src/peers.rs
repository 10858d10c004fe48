//! The reference server on the host: chronyd from Debian (fetched by
//! `scripts/fetch-peers.sh`, never installed), serving this machine's clock on loopback
//! without the privilege to change it. Guests reach it as 10.0.2.2.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::BenchError;

/// A UDP port nobody is bound to on 127.0.0.1 now.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_or(0, |a| a.port())
}

/// The peers' root (`target/peers/root`).
pub(crate) fn peers_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/peers/root")
}

/// A peer's program under the peers' root (`usr/sbin/ptp4l`, say), if fetched.
pub fn peer(relative: &str) -> Result<PathBuf, BenchError> {
    let path = peers_root().join(relative);
    if path.exists() {
        Ok(path)
    } else {
        Err(BenchError::Missing {
            what: "a peer",
            path: path.display().to_string(),
            hint: "run scripts/fetch-peers.sh",
        })
    }
}

/// chronyd serving this machine's clock on 127.0.0.1, never steering it (`-x`, and
/// CAP_SYS_TIME dropped from its bounding set); stopped by PID when dropped.
pub struct Chronyd {
    child: Child,
    /// The port it serves on.
    pub port: u16,
}

impl Chronyd {
    /// The chronyd binary, if fetched.
    pub fn binary() -> PathBuf {
        peers_root().join("usr/sbin/chronyd")
    }

    /// Starts chronyd as a stratum-1 server of the local clock on `port`.
    pub fn serve(name: &str, port: u16) -> Result<Self, BenchError> {
        let binary = Self::binary();
        if !binary.exists() {
            return Err(BenchError::Missing {
                what: "chronyd",
                path: binary.display().to_string(),
                hint: "run scripts/fetch-peers.sh",
            });
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/vm-bench")
            .join(format!("chronyd-{name}"));
        std::fs::create_dir_all(&dir).map_err(|e| BenchError::io("chronyd dir", e))?;
        let conf = dir.join("chrony.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbindaddress 127.0.0.1\ncmdport 0\nlocal stratum 1\nallow 127.0.0.0/8\n\
                 pidfile {d}/chronyd.pid\ndriftfile {d}/drift\nntsdumpdir {d}\n",
                d = dir.display()
            ),
        )
        .map_err(|e| BenchError::io("chrony.conf", e))?;
        let child = Command::new("setpriv")
            .args(["--bounding-set=-sys_time", "--"])
            .arg(&binary)
            .args(["-x", "-d", "-u", "root", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BenchError::io("chronyd", e))?;
        let mut chronyd = Self { child, port };
        // Serving once it answers (its stderr says why when it does not).
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(200));
            if crate::truth::measure(std::net::SocketAddr::from(([127, 0, 0, 1], port)), 1)
                .is_some()
            {
                return Ok(chronyd);
            }
        }
        let _ = chronyd.child.kill();
        let mut why = String::new();
        if let Some(mut e) = chronyd.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut why);
        }
        Err(BenchError::Command {
            command: "chronyd".into(),
            detail: format!("does not answer on 127.0.0.1:{port}: {why}"),
        })
    }
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
