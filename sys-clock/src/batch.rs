//! A UDP socket for servers: many datagrams per system call (recvmmsg/sendmmsg), kernel
//! receive timestamps on every datagram, transmit timestamps only for the datagrams that
//! ask for one (a per-message SO_TIMESTAMPING control message), and SO_REUSEPORT so that
//! one socket per core can share a port.
//!
//! Nothing here allocates: the caller owns the buffers, the message headers live on the
//! stack for the call.

use std::mem::size_of;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::Error;
use crate::socket::{
    Timestamp, TxTimestamp, parse_cmsgs, recv_tx_timestamp_nonblocking, setsockopt,
    sockaddr_to_std, userspace_timestamp,
};

/// Most datagrams one call moves.
pub const MAX_BATCH: usize = 64;

/// Room for the control messages of one datagram (one timestamping message).
const CONTROL_LEN: usize = 64;

#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control([u8; CONTROL_LEN]);

/// One datagram received by [`BatchSocket::recv_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RecvMeta {
    /// Bytes received (the datagram is cut at the buffer's length).
    pub len: usize,
    /// Whether the datagram was longer than the buffer.
    pub truncated: bool,
    /// The sender.
    pub from: Option<SocketAddr>,
    /// The kernel's receive timestamp; a user-space reading where the kernel gave none.
    pub timestamp: Option<Timestamp>,
}

/// One datagram for [`BatchSocket::send_batch`].
#[derive(Clone, Copy, Debug)]
pub struct SendItem<'a> {
    /// The payload.
    pub data: &'a [u8],
    /// The destination.
    pub to: SocketAddr,
    /// Ask the kernel for this datagram's transmit timestamp.
    pub tx_timestamp: bool,
}

/// Options for [`BatchSocket::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// SO_REUSEPORT: several sockets (one per thread) share the address; the kernel
    /// spreads the clients over them.
    pub reuse_port: bool,
    /// SO_RCVBUF to ask for, bytes (the kernel caps it at net.core.rmem_max).
    pub receive_buffer: Option<usize>,
    /// Kernel receive timestamps (and transmit timestamps on request). Off only for
    /// tools that need no time, like a bare echo measuring the machine's ceiling.
    pub timestamps: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            reuse_port: true,
            receive_buffer: Some(4 << 20),
            timestamps: true,
        }
    }
}

/// A UDP socket that moves datagrams in batches with kernel timestamps.
#[derive(Debug)]
pub struct BatchSocket {
    socket: UdpSocket,
    next_tx_id: u32,
}

fn sockaddr_from_std(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain integers; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe {
                std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in>(), sin);
            }
            (storage, size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe {
                std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in6>(), sin6);
            }
            (storage, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

impl BatchSocket {
    /// Binds `addr` with receive timestamps on (software; transmit timestamps are asked
    /// for per datagram). An IPv6 socket is IPv6-only, so that `[::]:123` and
    /// `0.0.0.0:123` can both be bound.
    pub fn bind(addr: SocketAddr, options: BatchOptions) -> Result<Self, Error> {
        let family = match addr {
            SocketAddr::V4(_) => libc::AF_INET,
            SocketAddr::V6(_) => libc::AF_INET6,
        };
        // SAFETY: plain system call with constant arguments.
        let fd = unsafe {
            libc::socket(
                family,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::IPPROTO_UDP,
            )
        };
        if fd < 0 {
            return Err(Error::last_os("socket"));
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let on: libc::c_int = 1;
        if options.reuse_port {
            setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEPORT,
                &on,
                "SO_REUSEPORT",
            )?;
        }
        if family == libc::AF_INET6 {
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                &on,
                "IPV6_V6ONLY",
            )?;
        }
        if let Some(bytes) = options.receive_buffer {
            let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
            // Best effort: the kernel caps it without an error.
            let _ = setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &bytes, "SO_RCVBUF");
        }
        let flags: u32 = libc::SOF_TIMESTAMPING_SOFTWARE
            | libc::SOF_TIMESTAMPING_RX_SOFTWARE
            | libc::SOF_TIMESTAMPING_OPT_ID
            | libc::SOF_TIMESTAMPING_OPT_TSONLY;
        if options.timestamps {
            setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPING,
                &flags,
                "SO_TIMESTAMPING",
            )?;
        }
        let (storage, len) = sockaddr_from_std(&addr);
        // SAFETY: `storage` holds a valid sockaddr of `len` bytes for the call.
        let r = unsafe { libc::bind(fd, (&raw const storage).cast(), len) };
        if r < 0 {
            return Err(Error::last_os("bind"));
        }
        Ok(Self {
            socket: UdpSocket::from(owned),
            next_tx_id: 0,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.socket
            .local_addr()
            .map_err(|e| Error::from_io("getsockname", e))
    }

    /// How long [`Self::recv_batch`] waits for a first datagram (`None`: for ever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), Error> {
        self.socket
            .set_read_timeout(timeout)
            .map_err(|e| Error::from_io("SO_RCVTIMEO", e))
    }

    /// The underlying socket.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Waits for at least one datagram (up to the read timeout: then `Ok(0)`), then takes
    /// every one already queued, up to `bufs.len()`, `meta.len()` and [`MAX_BATCH`].
    pub fn recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        meta: &mut [RecvMeta],
    ) -> Result<usize, Error> {
        let n = bufs.len().min(meta.len()).min(MAX_BATCH);
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: these are plain integers and pointers; all-zero (null) is valid.
        let mut names: [libc::sockaddr_storage; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let mut controls = [Control([0; CONTROL_LEN]); MAX_BATCH];
        // SAFETY: as above.
        let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..n {
            let buf = bufs[i].as_mut();
            iovs[i] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let h = &mut msgs[i].msg_hdr;
            h.msg_name = (&raw mut names[i]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &raw mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = controls[i].0.as_mut_ptr().cast();
            h.msg_controllen = CONTROL_LEN as _;
        }
        // SAFETY: every pointer in `msgs[..n]` refers to a live buffer of the stated
        // length (the caller's buffers, and the arrays above), exclusive for the call.
        let r = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Ok(0),
                std::io::ErrorKind::Interrupted => Ok(0),
                _ => Err(Error::from_io("recvmmsg", e)),
            };
        }
        let got = r as usize;
        for i in 0..got {
            let h = &msgs[i].msg_hdr;
            // SAFETY: `h` was filled by recvmmsg and its control buffer is still live.
            let cmsgs = unsafe { parse_cmsgs(h) };
            meta[i] = RecvMeta {
                len: msgs[i].msg_len as usize,
                truncated: h.msg_flags & libc::MSG_TRUNC != 0,
                from: sockaddr_to_std(&names[i], h.msg_namelen),
                timestamp: cmsgs.timestamp.or_else(userspace_timestamp),
            };
        }
        Ok(got)
    }

    /// Sends up to [`MAX_BATCH`] datagrams in one call; returns how many the kernel took
    /// (the rest may be sent again). `ids[i]` is set to the OPT_ID the transmit timestamp
    /// of item `i` will carry, for the items that asked for one.
    pub fn send_batch(
        &mut self,
        items: &[SendItem<'_>],
        ids: &mut [Option<u32>],
    ) -> Result<usize, Error> {
        let n = items.len().min(MAX_BATCH);
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: these are plain integers and pointers; all-zero (null) is valid.
        let mut names: [libc::sockaddr_storage; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let mut controls = [Control([0; CONTROL_LEN]); MAX_BATCH];
        // SAFETY: as above.
        let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let flag_len = size_of::<u32>() as u32;
        for (i, item) in items.iter().take(n).enumerate() {
            let (storage, len) = sockaddr_from_std(&item.to);
            names[i] = storage;
            iovs[i] = libc::iovec {
                iov_base: item.data.as_ptr() as *mut libc::c_void,
                iov_len: item.data.len(),
            };
            let h = &mut msgs[i].msg_hdr;
            h.msg_name = (&raw mut names[i]).cast();
            h.msg_namelen = len;
            h.msg_iov = &raw mut iovs[i];
            h.msg_iovlen = 1;
            if item.tx_timestamp {
                h.msg_control = controls[i].0.as_mut_ptr().cast();
                // SAFETY: CMSG_SPACE is a pure computation.
                h.msg_controllen = unsafe { libc::CMSG_SPACE(flag_len) } as _;
                // SAFETY: the control buffer (64 bytes, 8-aligned) has room for one
                // header with a u32; CMSG_FIRSTHDR is non-null since msg_controllen is at
                // least a header's size.
                unsafe {
                    let cmsg = libc::CMSG_FIRSTHDR(h);
                    (*cmsg).cmsg_level = libc::SOL_SOCKET;
                    (*cmsg).cmsg_type = libc::SO_TIMESTAMPING;
                    (*cmsg).cmsg_len = libc::CMSG_LEN(flag_len) as _;
                    std::ptr::write_unaligned(
                        libc::CMSG_DATA(cmsg).cast::<u32>(),
                        libc::SOF_TIMESTAMPING_TX_SOFTWARE,
                    );
                }
            }
        }
        // SAFETY: every pointer in `msgs[..n]` refers to a live buffer of the stated
        // length; the kernel only reads them.
        let r = unsafe { libc::sendmmsg(self.socket.as_raw_fd(), msgs.as_mut_ptr(), n as _, 0) };
        if r < 0 {
            return Err(Error::last_os("sendmmsg"));
        }
        let sent = r as usize;
        for (i, item) in items.iter().take(sent).enumerate() {
            let id = item.tx_timestamp.then(|| {
                let id = self.next_tx_id;
                self.next_tx_id = self.next_tx_id.wrapping_add(1);
                id
            });
            if let Some(slot) = ids.get_mut(i) {
                *slot = id;
            }
        }
        Ok(sent)
    }

    /// Takes the transmit timestamps waiting on the error queue, without waiting; returns
    /// how many were written to `out` (0 when none are there).
    pub fn recv_tx_timestamps(&self, out: &mut [TxTimestamp]) -> Result<usize, Error> {
        let mut written = 0;
        while written < out.len() {
            match recv_tx_timestamp_nonblocking(self.socket.as_raw_fd()) {
                Ok(Some(t)) => {
                    out[written] = t;
                    written += 1;
                }
                Ok(None) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }
}

impl AsFd for BatchSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for BatchSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TimestampSource;

    #[test]
    fn batch_round_trip_on_loopback_with_timestamps() {
        let mut server =
            BatchSocket::bind("127.0.0.1:0".parse().unwrap(), BatchOptions::default()).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let addr = server.local_addr().unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut bufs = [[0u8; 128]; 8];
        let mut meta = [RecvMeta::default(); 8];
        // The kernel turns receive stamping on asynchronously (a deferred static key), so
        // the first datagrams after enabling may come unstamped: warm up, bounded.
        let warm_up = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            client.send_to(&[0xFF; 48], addr).unwrap();
            assert_eq!(server.recv_batch(&mut bufs, &mut meta).unwrap(), 1);
            if meta[0].timestamp.unwrap().source == TimestampSource::Software {
                break;
            }
            assert!(std::time::Instant::now() < warm_up, "never a kernel stamp");
            std::thread::sleep(Duration::from_millis(10));
        }
        for i in 0..5u8 {
            client.send_to(&[i; 48], addr).unwrap();
        }
        let mut got = 0;
        let mut kernel_stamps = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while got < 5 && std::time::Instant::now() < deadline {
            let n = server
                .recv_batch(&mut bufs[got..], &mut meta[got..])
                .unwrap();
            got += n;
        }
        assert_eq!(got, 5);
        for (i, m) in meta.iter().take(5).enumerate() {
            assert_eq!(m.len, 48);
            assert!(!m.truncated);
            assert_eq!(m.from, Some(client.local_addr().unwrap()));
            assert_eq!(bufs[i][0], i as u8, "order kept");
            let ts = m.timestamp.unwrap();
            if ts.source == TimestampSource::Software {
                kernel_stamps += 1;
            }
        }
        assert!(kernel_stamps >= 4, "{meta:?}");
        // Answer all five, the odd ones asking for transmit timestamps.
        let reply = [7u8; 48];
        let to = client.local_addr().unwrap();
        let items: Vec<SendItem<'_>> = (0..5)
            .map(|i| SendItem {
                data: &reply,
                to,
                tx_timestamp: i % 2 == 1,
            })
            .collect();
        let mut ids = [None; 5];
        assert_eq!(server.send_batch(&items, &mut ids).unwrap(), 5);
        assert_eq!(ids, [None, Some(0), None, Some(1), None]);
        let mut buf = [0u8; 64];
        for _ in 0..5 {
            assert_eq!(client.recv(&mut buf).unwrap(), 48);
        }
        let mut stamps = [TxTimestamp {
            id: 0,
            timestamp: Timestamp {
                nanos: 0,
                source: TimestampSource::Software,
            },
        }; 4];
        let mut found = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while found.len() < 2 && std::time::Instant::now() < deadline {
            let n = server.recv_tx_timestamps(&mut stamps).unwrap();
            found.extend_from_slice(&stamps[..n]);
            std::thread::sleep(Duration::from_millis(1));
        }
        let ids: Vec<u32> = found.iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![0, 1], "only the two that asked");
        let now = crate::SystemClock::new().now_realtime().unwrap();
        for t in &found {
            assert_eq!(t.timestamp.source, TimestampSource::Software);
            assert!((now - t.timestamp.nanos).abs() < 5_000_000_000);
        }
    }

    #[test]
    fn reuse_port_lets_two_sockets_share_a_port_and_a_timeout_returns_zero() {
        let a = BatchSocket::bind("127.0.0.1:0".parse().unwrap(), BatchOptions::default()).unwrap();
        let addr = a.local_addr().unwrap();
        let b = BatchSocket::bind(addr, BatchOptions::default()).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
        let plain = BatchSocket::bind(
            addr,
            BatchOptions {
                reuse_port: false,
                receive_buffer: None,
                timestamps: true,
            },
        );
        assert!(plain.is_err(), "without SO_REUSEPORT the port is taken");
        a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut bufs = [[0u8; 64]; 2];
        let mut meta = [RecvMeta::default(); 2];
        assert_eq!(a.recv_batch(&mut bufs, &mut meta).unwrap(), 0);
    }

    #[test]
    fn poll_readable_waits_for_the_socket_with_data() {
        use std::os::fd::AsFd;
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut ready = [true; 2];
        let n = crate::poll_readable(
            &[a.as_fd(), b.as_fd()],
            Duration::from_millis(10),
            &mut ready,
        )
        .unwrap();
        assert_eq!((n, ready), (0, [false, false]), "timeout");
        a.send_to(b"x", b.local_addr().unwrap()).unwrap();
        let n = crate::poll_readable(&[a.as_fd(), b.as_fd()], Duration::from_secs(2), &mut ready)
            .unwrap();
        assert_eq!((n, ready), (1, [false, true]));
    }

    #[test]
    fn ipv6_loopback_and_truncation() {
        let server = match BatchSocket::bind("[::1]:0".parse().unwrap(), BatchOptions::default()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("skipped: no IPv6 loopback ({e})");
                return;
            }
        };
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let client = UdpSocket::bind("[::1]:0").unwrap();
        client
            .send_to(&[1u8; 200], server.local_addr().unwrap())
            .unwrap();
        let mut bufs = [[0u8; 64]; 1];
        let mut meta = [RecvMeta::default(); 1];
        assert_eq!(server.recv_batch(&mut bufs, &mut meta).unwrap(), 1);
        assert!(meta[0].truncated);
        assert_eq!(meta[0].len, 64, "cut at the buffer");
        assert_eq!(meta[0].from, Some(client.local_addr().unwrap()));
    }
}
