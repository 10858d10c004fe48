//! A very small HTTP/1.0 server for `/metrics` (Prometheus text) and `/status` (JSON):
//! GET only, one request per connection, each connection on a thread of its own with one
//! deadline for the whole of it, a bounded request size and a bounded number at once, so
//! that a slow or silent client holds up nobody else's scrape.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;
/// The whole of a connection, from accept to the last byte written.
const DEADLINE: Duration = Duration::from_secs(2);
/// The longest request taken (a GET line and a few headers).
const MAX_REQUEST: usize = 2048;

/// A response body and its content type.
pub struct Body {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub text: String,
}

/// What answers a path; `None` gives 404.
pub type Handler = Arc<dyn Fn(&str) -> Option<Body> + Send + Sync>;

/// A running status server.
pub struct StatusServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StatusServer {
    /// Binds `address` and serves `handler` on a thread of its own.
    pub fn start(address: SocketAddr, handler: Handler) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address)?;
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("status-http".into())
            .spawn(move || {
                let open = Arc::new(AtomicUsize::new(0));
                for stream in listener.incoming() {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                        open.fetch_sub(1, Ordering::AcqRel);
                        continue; // dropped: closed at once
                    }
                    let (handler, open_here) = (handler.clone(), open.clone());
                    let spawned = std::thread::Builder::new()
                        .name("status-conn".into())
                        .spawn(move || {
                            serve(stream, &handler);
                            open_here.fetch_sub(1, Ordering::AcqRel);
                        });
                    if spawned.is_err() {
                        open.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            })?;
        Ok(Self {
            address,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut stream: TcpStream, handler: &Handler) {
    let end = Instant::now() + DEADLINE;
    let mut buf = [0u8; MAX_REQUEST];
    let mut len = 0;
    while len < buf.len() {
        // Each read gets what is left of the deadline: a byte now and then buys no time.
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                len += n;
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n")
                    || buf[..len].windows(2).any(|w| w == b"\n\n")
                {
                    break;
                }
            }
        }
    }
    let request = String::from_utf8_lossy(&buf[..len]);
    let mut words = request.split_whitespace();
    let (status, body) = match (words.next(), words.next()) {
        (Some("GET"), Some(target)) => {
            let path = target.split('?').next().unwrap_or(target);
            match handler(path) {
                Some(b) => ("200 OK", b),
                None => (
                    "404 Not Found",
                    Body {
                        content_type: "text/plain",
                        text: "not found: try /metrics or /status\n".into(),
                    },
                ),
            }
        }
        _ => (
            "405 Method Not Allowed",
            Body {
                content_type: "text/plain",
                text: "GET only\n".into(),
            },
        ),
    };
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.content_type,
        body.text.len()
    );
    let left = end.saturating_duration_since(Instant::now());
    if left.is_zero() || stream.set_write_timeout(Some(left)).is_err() {
        return;
    }
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.text.as_bytes());
}

/// GETs `path` from a status server (for `status` subcommands and tests).
pub fn get(address: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("malformed HTTP response"))?;
    if !head.starts_with("HTTP/1.0 200") {
        return Err(std::io::Error::other(
            head.lines().next().unwrap_or("no status").to_string(),
        ));
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_paths_and_404() {
        let server = StatusServer::start(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(|p: &str| {
                (p == "/metrics").then(|| Body {
                    content_type: "text/plain; version=0.0.4",
                    text: "x 1\n".into(),
                })
            }),
        )
        .unwrap();
        assert_eq!(get(server.address(), "/metrics").unwrap(), "x 1\n");
        assert!(get(server.address(), "/nope").is_err());
    }

    #[test]
    fn slow_and_idle_clients_hold_no_scrape_and_are_cut_off() {
        let server = StatusServer::start(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(|_: &str| {
                Some(Body {
                    content_type: "text/plain",
                    text: "ok\n".into(),
                })
            }),
        )
        .unwrap();
        let address = server.address();
        // Five connections that say nothing, and one that sends a byte every 300 ms.
        let idle: Vec<TcpStream> = (0..5)
            .map(|_| TcpStream::connect(address).unwrap())
            .collect();
        let slow = std::thread::spawn(move || {
            let mut s = TcpStream::connect(address).unwrap();
            let started = std::time::Instant::now();
            for _ in 0..40 {
                if s.write_all(b"G").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(200));
        let started = std::time::Instant::now();
        assert_eq!(get(address, "/metrics").unwrap(), "ok\n");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "a scrape waited {:?} behind slow clients",
            started.elapsed()
        );
        // The slow client is cut off by the overall deadline, not served for 12 s.
        let held = slow.join().unwrap();
        assert!(held < Duration::from_secs(5), "held {held:?}");
        drop(idle);
    }
}
