//! A guest's second network: a tap device that QEMU attaches to the guest as `eth1`, moved
//! into a network namespace the bench makes, where a peer (ptp4l) runs on its other end.
//! Nothing of it is in the host's own namespace once the guest has booted, and all of it
//! is removed when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::BenchError;

/// A tap device and the namespace it ends up in.
pub struct TapLink {
    /// The tap device's name (on the host's side).
    pub tap: String,
    /// The namespace's name.
    pub netns: String,
    /// The address of the namespace's end, with its prefix (`10.99.0.1/24`).
    pub address: String,
    moved: bool,
    peers: Vec<Child>,
}

fn ip(args: &[&str]) -> Result<(), BenchError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| BenchError::io("ip (apt-get install iproute2)", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BenchError::Command {
            command: format!("ip {}", args.join(" ")),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl TapLink {
    /// Makes the tap `tap` (persistent, in the host's namespace until [`Self::attach`]) and
    /// the namespace `netns`; both names get this process's ID, so parallel runs do not
    /// meet. Needs root (CAP_NET_ADMIN).
    pub fn new(tap: &str, netns: &str, address: &str) -> Result<Self, BenchError> {
        let pid = std::process::id();
        // Interface names are at most 15 bytes.
        let tap = format!("{tap}{}", pid % 100_000);
        let netns = format!("{netns}-{pid}");
        let _ = Command::new("ip")
            .args(["netns", "del", &netns])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &tap])
            .stderr(Stdio::null())
            .status();
        let link = Self {
            tap,
            netns,
            address: address.into(),
            moved: false,
            peers: Vec::new(),
        };
        ip(&["tuntap", "add", "dev", &link.tap, "mode", "tap"])?;
        ip(&["netns", "add", &link.netns])?;
        ip(&["-n", &link.netns, "link", "set", "lo", "up"])?;
        Ok(link)
    }

    /// Moves the tap into the namespace (once QEMU holds it: QEMU opens it by name in its
    /// own namespace) and brings it up with [`Self::address`].
    pub fn attach(&mut self) -> Result<(), BenchError> {
        ip(&["link", "set", &self.tap, "netns", &self.netns])?;
        self.moved = true;
        ip(&[
            "-n",
            &self.netns,
            "addr",
            "add",
            &self.address,
            "dev",
            &self.tap,
        ])?;
        ip(&["-n", &self.netns, "link", "set", &self.tap, "up"])
    }

    /// Starts `program` with `args` in the namespace without CAP_SYS_TIME (it can never
    /// steer this machine's clock), its output to `log`; stopped by PID when dropped.
    pub fn spawn(&mut self, program: &Path, args: &[&str], log: &Path) -> Result<(), BenchError> {
        let out = std::fs::File::create(log).map_err(|e| BenchError::io("peer log", e))?;
        let err = out.try_clone().map_err(|e| BenchError::io("peer log", e))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .args(["setpriv", "--bounding-set=-sys_time", "--"])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| BenchError::io(program.display().to_string(), e))?;
        self.peers.push(child);
        Ok(())
    }

    /// Runs `program` with `args` in the namespace without CAP_SYS_TIME and waits for it
    /// (a management query, say); its standard output.
    pub fn run(&self, program: &Path, args: &[&str]) -> Result<String, BenchError> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .args(["setpriv", "--bounding-set=-sys_time", "--"])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| BenchError::io(program.display().to_string(), e))?;
        if !out.status.success() {
            return Err(BenchError::Command {
                command: format!("{} {}", program.display(), args.join(" ")),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for TapLink {
    fn drop(&mut self) {
        for child in &mut self.peers {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The namespace takes the tap with it; a tap never moved is removed where it is.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .stderr(Stdio::null())
            .status();
        if !self.moved {
            let _ = Command::new("ip")
                .args(["link", "del", &self.tap])
                .stderr(Stdio::null())
                .status();
        }
    }
}
