//! The initramfs format: "newc" cpio, uncompressed. Several archives concatenated are
//! one initramfs to the kernel, so a guest's own files go after the shared base.

/// Appends a directory, file or symbolic link to a newc archive.
pub(crate) struct CpioWriter {
    out: Vec<u8>,
    inode: u32,
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

impl CpioWriter {
    pub(crate) fn new() -> Self {
        Self {
            out: Vec::new(),
            inode: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        let name = name.trim_start_matches('/');
        let fields = [
            self.inode,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.inode += 1;
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }

    pub(crate) fn dir(&mut self, name: &str) {
        self.entry(name, S_IFDIR | 0o755, &[]);
    }

    pub(crate) fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, S_IFREG | mode, data);
    }

    pub(crate) fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, S_IFLNK | 0o777, target.as_bytes());
    }

    /// The archive, with its trailer.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        // Block-align, as cpio(1) does; the kernel does not mind either way.
        while self.out.len() % 512 != 0 {
            self.out.push(0);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_newc_aligned_and_end_with_the_trailer() {
        let mut w = CpioWriter::new();
        w.dir("bin");
        w.file("/bin/x", 0o755, b"abc");
        w.symlink("bin/y", "x");
        let a = w.finish();
        assert!(a.starts_with(b"070701"));
        assert_eq!(a.len() % 512, 0);
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("bin/x\0"));
        assert!(text.contains("TRAILER!!!\0"));
        // The file's size field (the 7th, after the magic) says 3.
        let second = text
            .find("070701")
            .and_then(|_| text[6..].find("070701"))
            .unwrap()
            + 6;
        assert_eq!(&text[second + 6 + 6 * 8..second + 6 + 7 * 8], "00000003");
    }
}
