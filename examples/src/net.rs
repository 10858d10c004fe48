//! Names to addresses, as the daemons resolve `server` and `pool` entries.

use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `HOST[:PORT]` (default port 123) to every address.
pub fn resolve(host: &str) -> Result<Vec<SocketAddr>, String> {
    let with_port = if host.parse::<SocketAddr>().is_ok() {
        host.to_string()
    } else if host.contains(':') && !host.starts_with('[') && host.matches(':').count() > 1 {
        // A bare IPv6 address.
        format!("[{host}]:123")
    } else if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_string()
    } else {
        format!("{host}:123")
    };
    let addrs: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{host}: cannot resolve: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host}: no addresses"));
    }
    Ok(addrs)
}
