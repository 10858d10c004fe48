//! One throw-away guest under QEMU: booted from the bench's kernel and initramfs, driven
//! through its serial console, reached over QEMU's user-mode network, bounded in time,
//! and killed by PID when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Assets, BenchError};

/// How to start a guest.
#[derive(Clone, Debug)]
pub struct GuestConfig {
    /// A name for logs and files (unique among the guests running at once).
    pub name: String,
    /// UDP ports forwarded from the host's 127.0.0.1 into the guest: (host, guest).
    pub udp_forwards: Vec<(u16, u16)>,
    /// Files added to the guest's initramfs: (path, mode, content). Their directory must
    /// exist in the base (`/etc`, `/tmp`).
    pub files: Vec<(String, u32, Vec<u8>)>,
    /// A small qcow2 disk, so that QEMU's `savevm` and `loadvm` can snapshot the guest.
    pub snapshots: bool,
    /// The guest is killed after this long, whatever the test is doing.
    pub time_limit: Duration,
    /// Memory, MiB.
    pub memory_mib: u32,
    /// Tap devices (by name, on the host) attached as the guest's further NICs, `eth1`
    /// on: see [`crate::TapLink`].
    pub taps: Vec<String>,
    /// Boot with KVM (`-accel kvm -cpu host`: the guest gets kvm-clock and so `ptp_kvm`'s
    /// PHC) rather than TCG. Defaults to whether `TEMPORA_VM_KVM=1`.
    pub kvm: bool,
    /// How long the guest may take to reach its shell.
    pub boot_timeout: Duration,
}

impl GuestConfig {
    /// A guest named `name` with 256 MiB, no forwards, and a 10-minute limit.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            udp_forwards: Vec::new(),
            files: Vec::new(),
            snapshots: false,
            time_limit: Duration::from_secs(600),
            memory_mib: 256,
            taps: Vec::new(),
            kvm: kvm_asked(),
            boot_timeout: Duration::from_secs(90),
        }
    }
}

/// What a shell command printed and its exit status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShOutput {
    /// Exit status.
    pub status: i32,
    /// Its output lines.
    pub lines: Vec<String>,
}

impl ShOutput {
    /// The output as one string.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// A running guest.
pub struct Guest {
    name: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    console: Arc<Mutex<Vec<String>>>,
    monitor: PathBuf,
    next_id: u64,
    /// Dropped with the guest: tells the watchdog to stand down.
    watchdog: Option<std::sync::mpsc::Sender<()>>,
}

/// Whether to boot with KVM: only when asked (`TEMPORA_VM_KVM=1`). TCG is the default:
/// on these machines `/dev/kvm` exists but KVM guests hang in early boot.
fn kvm_asked() -> bool {
    std::env::var("TEMPORA_VM_KVM").is_ok_and(|v| v == "1")
}

impl Guest {
    /// Boots a guest and waits for its shell (up to 60 s under TCG).
    pub fn boot(assets: &Assets, config: GuestConfig) -> Result<Self, BenchError> {
        let initrd = assets.initrd_with(&config.name, &config.files)?;
        let monitor = assets.work.join(format!("{}.monitor", config.name));
        let _ = std::fs::remove_file(&monitor);
        let mut netdev = String::from("user,id=n0,net=10.0.2.0/24");
        for (host, guest) in &config.udp_forwards {
            netdev.push_str(&format!(",hostfwd=udp:127.0.0.1:{host}-:{guest}"));
        }
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args([
            "-machine",
            "pc",
            "-m",
            &config.memory_mib.to_string(),
            "-smp",
            "1",
        ])
        .args(if config.kvm {
            ["-accel", "kvm", "-cpu", "host"]
        } else {
            ["-accel", "tcg", "-cpu", "max"]
        })
        .args(["-display", "none", "-no-reboot", "-nodefaults"])
        .arg("-kernel")
        .arg(&assets.kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args([
            "-append",
            "console=ttyS0 quiet loglevel=1 panic=-1 tsc=reliable",
            "-serial",
            "stdio",
            "-netdev",
            &netdev,
            "-device",
            "virtio-net-pci,netdev=n0",
        ])
        .arg("-monitor")
        .arg(format!("unix:{},server=on,wait=off", monitor.display()));
        for (i, tap) in config.taps.iter().enumerate() {
            qemu.args([
                "-netdev",
                &format!("tap,id=t{i},ifname={tap},script=no,downscript=no"),
                "-device",
                &format!(
                    "virtio-net-pci,netdev=t{i},mac=52:54:00:12:35:{:02x}",
                    0x10 + i
                ),
            ]);
        }
        if config.snapshots {
            let disk = assets.work.join(format!("{}.qcow2", config.name));
            let _ = std::fs::remove_file(&disk);
            let out = Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2"])
                .arg(&disk)
                .arg("16M")
                .output()
                .map_err(|e| BenchError::io("qemu-img", e))?;
            if !out.status.success() {
                return Err(BenchError::Command {
                    command: "qemu-img create".into(),
                    detail: String::from_utf8_lossy(&out.stderr).into_owned(),
                });
            }
            qemu.arg("-drive").arg(format!(
                "file={},if=none,id=snap,format=qcow2",
                disk.display()
            ));
        }
        let mut child = qemu
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                BenchError::io("qemu-system-x86_64 (apt-get install qemu-system-x86)", e)
            })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let console = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = channel();
        {
            let console = console.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let line = line.trim_end_matches('\r').to_string();
                    if let Ok(mut c) = console.lock() {
                        c.push(line.clone());
                    }
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        {
            let console = console.clone();
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                if let Ok(mut c) = console.lock() {
                    c.extend(text.lines().map(|l| format!("qemu: {l}")));
                }
            });
        }
        // The limit holds even if the test hangs: a watchdog kills the guest by PID. It
        // stands down when the guest is dropped (the sender goes with it), so it never
        // signals a PID that has ended and may have been reused.
        let pid = child.id();
        let limit = config.time_limit;
        let (watchdog, stand_down) = channel::<()>();
        std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = stand_down.recv_timeout(limit) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        });
        let mut guest = Self {
            name: config.name,
            child,
            stdin,
            lines,
            console,
            monitor,
            next_id: 0,
            watchdog: Some(watchdog),
        };
        guest.wait_for_line(|l| l == "@@READY", config.boot_timeout, "the shell")?;
        Ok(guest)
    }

    /// The guest's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn tail(&self) -> String {
        let c = self.console.lock().map(|c| c.clone()).unwrap_or_default();
        c[c.len().saturating_sub(30)..].join("\n")
    }

    fn wait_for_line(
        &mut self,
        mut matches: impl FnMut(&str) -> bool,
        timeout: Duration,
        what: &str,
    ) -> Result<Vec<String>, BenchError> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if matches(&line) {
                        return Ok(seen);
                    }
                    seen.push(line);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    return Err(BenchError::Timeout {
                        guest: self.name.clone(),
                        what: what.into(),
                        seconds: timeout.as_secs_f64(),
                        tail: self.tail(),
                    });
                }
            }
        }
    }

    /// Runs `command` in the guest's shell and waits for it (`timeout` at most).
    pub fn sh(&mut self, command: &str, timeout: Duration) -> Result<ShOutput, BenchError> {
        self.next_id += 1;
        let id = self.next_id;
        let marker = format!("@@RC{id} ");
        let line = format!("{command}\necho \"@@RC{id} $?\"\n");
        if let Err(e) = self
            .stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
        {
            let exit = self.child.try_wait().ok().flatten();
            return Err(BenchError::Command {
                command: format!("guest {}: {command}", self.name),
                detail: format!("console: {e}; qemu {exit:?}; last lines:\n{}", self.tail()),
            });
        }
        let mut status = -1;
        let lines = self.wait_for_line(
            |l| match l.strip_prefix(&marker) {
                Some(rc) => {
                    status = rc.trim().parse().unwrap_or(-1);
                    true
                }
                None => false,
            },
            timeout,
            &format!("`{command}` to finish"),
        )?;
        Ok(ShOutput { status, lines })
    }

    /// Runs `command` and fails unless it exits 0; returns its output.
    pub fn sh_ok(&mut self, command: &str, timeout: Duration) -> Result<String, BenchError> {
        let out = self.sh(command, timeout)?;
        if out.status != 0 {
            return Err(BenchError::Command {
                command: format!("guest {}: {command}", self.name),
                detail: format!("exit {}: {}", out.status, out.text()),
            });
        }
        Ok(out.text())
    }

    /// Starts `command` in the background, its output in `/tmp/NAME.log`.
    pub fn spawn(&mut self, name: &str, command: &str) -> Result<(), BenchError> {
        self.sh_ok(
            &format!("({command}) > /tmp/{name}.log 2>&1 &"),
            Duration::from_secs(10),
        )
        .map(|_| ())
    }

    /// A command to QEMU's human monitor (`savevm`, `loadvm`, `stop`, `cont`, ...);
    /// returns what it printed.
    pub fn monitor(&self, command: &str) -> Result<String, BenchError> {
        let what = |e| BenchError::io(format!("guest {} monitor", self.name), e);
        let mut s = UnixStream::connect(&self.monitor).map_err(what)?;
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .map_err(what)?;
        s.write_all(format!("{command}\n").as_bytes())
            .map_err(what)?;
        // The monitor prints its banner and prompt, then the command's output and a
        // prompt again; read until it has been quiet for a while.
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut buf = [0u8; 4096];
        let mut prompts = 0;
        while Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    prompts = String::from_utf8_lossy(&out).matches("(qemu)").count();
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    if prompts >= 2 {
                        break;
                    }
                }
                Err(e) => return Err(what(e)),
            }
        }
        // After the banner's prompt: the echoed command (with readline's escapes), its
        // output, the next prompt.
        let text = String::from_utf8_lossy(&out).into_owned();
        let after = text.split_once("(qemu)").map_or("", |(_, a)| a);
        Ok(after
            .lines()
            .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c.is_control()))
            .filter(|l| !l.is_empty() && !l.contains(command) && !l.contains("(qemu)"))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Everything the console printed so far.
    pub fn console(&self) -> Vec<String> {
        self.console.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        // The watchdog first, so it cannot fire after the PID is reaped.
        drop(self.watchdog.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.monitor);
    }
}
