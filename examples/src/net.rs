//! Names to addresses, as the daemons resolve `server` and `pool` entries.

use std::net::{SocketAddr, ToSocketAddrs};

/// Splits `HOST[:PORT]` (an IPv6 address bare or in brackets) into the host, without
/// brackets, and the port (`default` when none is given).
pub fn split_host_port(host: &str, default: u16) -> (String, u16) {
    if let Ok(a) = host.parse::<SocketAddr>() {
        return (a.ip().to_string(), a.port());
    }
    if host.contains(':') && !host.starts_with('[') && host.matches(':').count() > 1 {
        // A bare IPv6 address.
        return (host.to_string(), default);
    }
    if let Some((h, p)) = host.rsplit_once(':') {
        if let Ok(port) = p.parse::<u16>() {
            return (h.trim_matches(['[', ']']).to_string(), port);
        }
    }
    (host.trim_matches(['[', ']']).to_string(), default)
}

/// Resolves `HOST[:PORT]` (default port 123) to every address.
pub fn resolve(host: &str) -> Result<Vec<SocketAddr>, String> {
    resolve_with_port(host, 123)
}

/// Resolves `HOST[:PORT]` to every address, `default` the port when none is given.
pub fn resolve_with_port(host: &str, default: u16) -> Result<Vec<SocketAddr>, String> {
    let (name, port) = split_host_port(host, default);
    let addrs: Vec<SocketAddr> = (name.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}: cannot resolve: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host}: no addresses"));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_split_as_written() {
        assert_eq!(
            split_host_port("example.net", 123),
            ("example.net".into(), 123)
        );
        assert_eq!(
            split_host_port("example.net:4460", 123),
            ("example.net".into(), 4460)
        );
        assert_eq!(split_host_port("192.0.2.1:9", 123), ("192.0.2.1".into(), 9));
        assert_eq!(
            split_host_port("2001:db8::1", 123),
            ("2001:db8::1".into(), 123)
        );
        assert_eq!(
            split_host_port("[2001:db8::1]:4460", 123),
            ("2001:db8::1".into(), 4460)
        );
        assert_eq!(split_host_port("[::1]", 123), ("::1".into(), 123));
        assert_eq!(
            resolve("127.0.0.1").unwrap(),
            ["127.0.0.1:123".parse().unwrap()]
        );
        assert_eq!(resolve("[::1]:5").unwrap(), ["[::1]:5".parse().unwrap()]);
    }
}
