//! What a guest boots: Debian's kernel and an initramfs of busybox, the project's release
//! binaries, the peers a scenario runs inside guests, and the shared libraries `ldd`
//! names for them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::BenchError;
use crate::cpio::CpioWriter;

/// The virtio network modules, in the order they load.
const NET_MODULES: [&str; 8] = [
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
];

/// Modules loaded where present, failures ignored: the KVM PHC (only under KVM).
const OPTIONAL_MODULES: [&str; 1] = ["ptp_kvm"];

/// The guest's first process: mounts, modules, the network QEMU's user mode expects, then
/// a shell on the serial console without echo, which the bench drives line by line.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp /run /var/lib/tempora /etc
for m in $(cat /etc/modules-net); do insmod /lib/modules/$m.ko || echo "@@MODULE $m failed"; done
for m in $(cat /etc/modules-optional); do insmod /lib/modules/$m.ko 2>/dev/null; done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo "nameserver 10.0.2.3" > /etc/resolv.conf
echo "root:x:0:0:root:/:/bin/sh" > /etc/passwd
stty -echo -onlcr 2>/dev/null
export PATH=/bin:/usr/bin:/usr/sbin PS1=
echo "@@READY"
exec sh
"#;

/// A program added to the initramfs besides busybox and the daemons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extra {
    /// Where it is on the host.
    pub host: PathBuf,
    /// Its path in the guest.
    pub guest: String,
}

/// The kernel and the base initramfs, built once per process.
#[derive(Clone, Debug)]
pub struct Assets {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The base initramfs (a guest's own files are appended to a copy).
    pub initrd: PathBuf,
    /// Where the bench keeps its files (`target/vm-bench`).
    pub work: PathBuf,
}

fn run(command: &mut Command) -> Result<String, BenchError> {
    let text = format!("{command:?}");
    let out = command
        .output()
        .map_err(|e| BenchError::io(text.clone(), e))?;
    if !out.status.success() {
        return Err(BenchError::Command {
            command: text,
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The workspace's target directory.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// The shared libraries `ldd` names for `binary` (with the dynamic loader).
fn libraries(binary: &Path, into: &mut BTreeSet<PathBuf>) -> Result<(), BenchError> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| BenchError::io("ldd", e))?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux... (0x...)"
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            into.insert(PathBuf::from(p));
        }
    }
    Ok(())
}

/// Fetches Debian's kernel into `dir` once: `apt-get download` of `linux-image-amd64` and
/// the image package it depends on, unpacked with `dpkg-deb -x` (nothing is installed).
fn kernel(dir: &Path) -> Result<(PathBuf, PathBuf), BenchError> {
    let root = dir.join("root");
    let done = dir.join(".unpacked");
    if !done.exists() {
        std::fs::create_dir_all(dir).map_err(|e| BenchError::io("kernel cache", e))?;
        let download = |package: &str| {
            run(Command::new("apt-get")
                .args(["download", "-q", package])
                .current_dir(dir))
        };
        if download("linux-image-amd64").is_err() {
            run(Command::new("apt-get").args(["update", "-qq"]))?;
            download("linux-image-amd64")?;
        }
        let meta = std::fs::read_dir(dir)
            .map_err(|e| BenchError::io("kernel cache", e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("linux-image-amd64_"))
            })
            .ok_or(BenchError::Missing {
                what: "linux-image-amd64 package",
                path: dir.display().to_string(),
                hint: "apt-get download linux-image-amd64 failed",
            })?;
        let depends = run(Command::new("dpkg-deb").arg("-f").arg(&meta).arg("Depends"))?;
        let image = depends
            .split(',')
            .map(|d| d.split_whitespace().next().unwrap_or(""))
            .find(|d| d.starts_with("linux-image-") && d != &"linux-image-amd64")
            .unwrap_or_default()
            .to_string();
        download(&image)?;
        for entry in std::fs::read_dir(dir).map_err(|e| BenchError::io("kernel cache", e))? {
            let path = entry.map_err(|e| BenchError::io("kernel cache", e))?.path();
            if path.extension().is_some_and(|e| e == "deb") {
                run(Command::new("dpkg-deb").arg("-x").arg(&path).arg(&root))?;
            }
        }
        std::fs::write(&done, image).map_err(|e| BenchError::io("kernel cache", e))?;
    }
    let boot = root.join("boot");
    let vmlinuz = std::fs::read_dir(&boot)
        .map_err(|e| BenchError::io(boot.display().to_string(), e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or(BenchError::Missing {
            what: "vmlinuz",
            path: boot.display().to_string(),
            hint: "the kernel package unpacked without an image",
        })?;
    let version = vmlinuz
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_string();
    Ok((
        vmlinuz,
        root.join("lib/modules").join(version).join("kernel"),
    ))
}

fn find_module(modules: &Path, name: &str) -> Option<PathBuf> {
    let mut stack = vec![modules.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .is_some_and(|n| n == format!("{name}.ko").as_str())
            {
                return Some(path);
            }
        }
    }
    None
}

/// Builds the release binaries the guests run (a no-op when they are fresh).
fn build_daemons(target: &Path) -> Result<PathBuf, BenchError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "tempora-examples",
            "-p",
            "tempora-vm-bench",
            "--bins",
        ])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")))?;
    Ok(target.join("release"))
}

fn read(path: &Path) -> Result<Vec<u8>, BenchError> {
    std::fs::read(path).map_err(|e| BenchError::io(path.display().to_string(), e))
}

impl Assets {
    /// The kernel and base initramfs, made once per process (the kernel is cached across
    /// runs). `extras` are added to the initramfs with their libraries: the peers the
    /// scenarios run inside guests.
    pub fn get(extras: &[Extra]) -> Result<&'static Assets, String> {
        static ASSETS: OnceLock<Result<Assets, String>> = OnceLock::new();
        ASSETS
            .get_or_init(|| Self::prepare(extras).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn prepare(extras: &[Extra]) -> Result<Assets, BenchError> {
        let target = target_dir();
        let work = target.join("vm-bench");
        let (vmlinuz, modules) = kernel(&work.join("kernel"))?;
        let busybox = PathBuf::from("/bin/busybox");
        let is_static = Command::new("ldd")
            .arg(&busybox)
            .output()
            .map(|o| {
                !o.status.success() || String::from_utf8_lossy(&o.stdout).contains("not a dynamic")
            })
            .unwrap_or(false);
        if !busybox.exists() || !is_static {
            return Err(BenchError::Missing {
                what: "a static busybox",
                path: busybox.display().to_string(),
                hint: "apt-get install busybox-static (scripts/vm-bench.sh does)",
            });
        }
        let release = build_daemons(&target)?;
        let mut w = CpioWriter::new();
        for d in [
            "bin",
            "dev",
            "etc",
            "lib",
            "lib/modules",
            "lib64",
            "proc",
            "sys",
            "tmp",
            "usr",
            "usr/bin",
            "usr/sbin",
            "usr/lib",
            "run",
            "var",
            "var/lib",
        ] {
            w.dir(d);
        }
        w.file("init", 0o755, INIT.as_bytes());
        w.file("bin/busybox", 0o755, &read(&busybox)?);
        w.symlink("bin/sh", "busybox");
        let mut libs = BTreeSet::new();
        let mut programs = Vec::new();
        for name in ["ntp-client", "ntp-server", "ptp-slave", "guest-clock"] {
            programs.push((release.join(name), format!("bin/{name}")));
        }
        for e in extras {
            programs.push((e.host.clone(), e.guest.trim_start_matches('/').to_string()));
        }
        for (host, guest) in &programs {
            if !host.exists() {
                return Err(BenchError::Missing {
                    what: "a program for the guests",
                    path: host.display().to_string(),
                    hint: "build the release binaries, or fetch the peers (scripts/fetch-peers.sh)",
                });
            }
            libraries(host, &mut libs)?;
            w.file(guest, 0o755, &read(host)?);
        }
        let mut dirs = BTreeSet::new();
        for lib in &libs {
            let mut parent = lib.parent();
            let mut chain = Vec::new();
            while let Some(p) = parent.filter(|p| p.as_os_str().len() > 1) {
                chain.push(p.to_path_buf());
                parent = p.parent();
            }
            for d in chain.into_iter().rev() {
                if dirs.insert(d.clone()) {
                    w.dir(&d.to_string_lossy());
                }
            }
            // ldd names the path the loader opens; its content is what it points to.
            w.file(
                &lib.to_string_lossy(),
                0o755,
                &read(
                    &std::fs::canonicalize(lib)
                        .map_err(|e| BenchError::io(lib.display().to_string(), e))?,
                )?,
            );
        }
        let mut present = Vec::new();
        for m in NET_MODULES {
            let path = find_module(&modules, m).ok_or(BenchError::Missing {
                what: "a virtio network module",
                path: modules.display().to_string(),
                hint: "the kernel package changed its module layout",
            })?;
            w.file(&format!("lib/modules/{m}.ko"), 0o644, &read(&path)?);
            present.push(m);
        }
        let mut optional = Vec::new();
        for m in OPTIONAL_MODULES {
            if let Some(path) = find_module(&modules, m) {
                w.file(&format!("lib/modules/{m}.ko"), 0o644, &read(&path)?);
                optional.push(m);
            }
        }
        w.file("etc/modules-net", 0o644, present.join("\n").as_bytes());
        w.file(
            "etc/modules-optional",
            0o644,
            optional.join("\n").as_bytes(),
        );
        let initrd = work.join("base.cpio");
        std::fs::write(&initrd, w.finish()).map_err(|e| BenchError::io("initramfs", e))?;
        Ok(Assets {
            kernel: vmlinuz,
            initrd,
            work,
        })
    }

    /// A copy of the base initramfs with `files` (guest path, mode, content) appended.
    pub(crate) fn initrd_with(
        &self,
        name: &str,
        files: &[(String, u32, Vec<u8>)],
    ) -> Result<PathBuf, BenchError> {
        let mut image = read(&self.initrd)?;
        let mut w = CpioWriter::new();
        for (path, mode, data) in files {
            w.file(path, *mode, data);
        }
        image.extend_from_slice(&w.finish());
        let path = self.work.join(format!("{name}.cpio"));
        std::fs::write(&path, image).map_err(|e| BenchError::io("initramfs", e))?;
        Ok(path)
    }
}
