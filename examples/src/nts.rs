//! NTS key exchange over TLS (RFC 8915 section 4) for the daemons: rustls (TLS 1.3 only,
//! ALPN `ntske/1`, the ring provider) around `tempora-ntp`'s sans-IO [`KeClient`], and the
//! keys exported from the TLS session with the RFC's label and context.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tempora_ntp::nts::{AeadAlgorithm, KeClient, KeResponse, NtsClient, NtsError, NtsKeys};
use tempora_ntp_proto::nts_ke::{ALPN, EXPORTER_LABEL, KE_PORT, KeyDirection, exporter_context};

/// Why a key exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum KeFailure {
    /// The host did not resolve.
    #[error("{0}")]
    Resolve(String),
    /// No TCP connection.
    #[error("NTS-KE connect to {address}: {source}")]
    Connect {
        /// Where.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// TLS failed (a certificate that does not verify, no TLS 1.3, ...).
    #[error("NTS-KE TLS with {host}: {source}")]
    Tls {
        /// The host.
        host: String,
        /// Why.
        source: rustls::Error,
    },
    /// Reading or writing the stream failed, or it ended early.
    #[error("NTS-KE with {host}: {source}")]
    Io {
        /// The host.
        host: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server did not agree to ALPN `ntske/1`.
    #[error("NTS-KE with {host}: the server did not agree to ALPN ntske/1")]
    Alpn {
        /// The host.
        host: String,
    },
    /// The exchange itself failed (a refusal, a malformed answer).
    #[error("NTS-KE with {host}: {source}")]
    Protocol {
        /// The host.
        host: String,
        /// Why.
        source: NtsError,
    },
    /// The exchange took longer than allowed.
    #[error("NTS-KE with {host}: no answer within {seconds} s")]
    Timeout {
        /// The host.
        host: String,
        /// The limit.
        seconds: f64,
    },
    /// The name is not a valid TLS server name.
    #[error("NTS-KE: {host:?} is no valid TLS server name")]
    ServerName {
        /// The name.
        host: String,
    },
    /// The extra CA file could not be read.
    #[error("NTS CA file {path}: {detail}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
}

/// What a key exchange gives: where to send NTP and the association to send it with.
#[derive(Clone, Debug)]
pub struct NtsAssociation {
    /// The NTP server's host (the KE server's unless it named another).
    pub ntp_host: String,
    /// The NTP port (123 unless the KE server named another).
    pub ntp_port: u16,
    /// The AEAD algorithm agreed.
    pub algorithm: AeadAlgorithm,
    /// Keys and cookies.
    pub client: NtsClient,
}

/// The roots a client trusts: the system's store (as chrony and ntpd-rs use it, so an
/// operator's CA updates reach NTS too) and, if given, the certificates of `ca_file`.
pub fn client_roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, KeFailure> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let fail = |detail: String| KeFailure::CaFile {
            path: path.display().to_string(),
            detail,
        };
        let mut any = false;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))? {
            let cert = cert.map_err(|e| fail(e.to_string()))?;
            roots.add(cert).map_err(|e| fail(e.to_string()))?;
            any = true;
        }
        if !any {
            return Err(fail("no certificate in it".into()));
        }
    }
    Ok(roots)
}

/// The TLS crypto provider: ring's. rustls 0.23.48 marks it deprecated because it has no
/// post-quantum key exchange. NTS does not need one: the TLS session only carries keys
/// that authenticate time while their cookies live (hours); recording it to break later
/// yields keys for packets long past. ring builds in seconds with a C compiler alone;
/// aws-lc-rs takes minutes on two cores.
#[allow(deprecated)]
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS 1.3-only client configuration with ALPN `ntske/1`.
pub fn client_tls(
    roots: rustls::RootCertStore,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = crypto_provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// Runs a key exchange with `host` (`HOST[:PORT]`, port 4460 by default) within
/// `timeout`, offering `algorithms`.
pub fn key_exchange(
    host: &str,
    tls: Arc<rustls::ClientConfig>,
    algorithms: &[AeadAlgorithm],
    timeout: Duration,
) -> Result<NtsAssociation, KeFailure> {
    let (name, _) = crate::net::split_host_port(host, KE_PORT);
    let addresses = crate::net::resolve_with_port(host, KE_PORT).map_err(KeFailure::Resolve)?;
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| KeFailure::ServerName { host: name.clone() })?;
    let deadline = Instant::now() + timeout;
    let mut last = None;
    let mut stream = None;
    for address in &addresses {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        match TcpStream::connect_timeout(address, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(source) => {
                last = Some(KeFailure::Connect {
                    address: *address,
                    source,
                })
            }
        }
    }
    let Some(socket) = stream else {
        return Err(last.unwrap_or(KeFailure::Resolve(format!("{host}: no addresses"))));
    };
    let io = |source| KeFailure::Io {
        host: name.clone(),
        source,
    };
    let connection =
        rustls::ClientConnection::new(tls, server_name).map_err(|source| KeFailure::Tls {
            host: name.clone(),
            source,
        })?;
    let mut tls = rustls::StreamOwned::new(connection, socket);
    let mut ke = KeClient::new(algorithms);
    let left = |d: Instant| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    tls.sock
        .set_write_timeout(Some(left(deadline)))
        .map_err(io)?;
    tls.sock
        .set_read_timeout(Some(left(deadline)))
        .map_err(io)?;
    let tls_error =
        |e: std::io::Error| match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(t) => KeFailure::Tls {
                host: name.clone(),
                source: t.clone(),
            },
            None if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
            {
                KeFailure::Timeout {
                    host: name.clone(),
                    seconds: timeout.as_secs_f64(),
                }
            }
            None => KeFailure::Io {
                host: name.clone(),
                source: e,
            },
        };
    tls.write_all(&ke.request()).map_err(tls_error)?;
    tls.flush().map_err(tls_error)?;
    if tls.conn.alpn_protocol() != Some(ALPN) {
        return Err(KeFailure::Alpn { host: name });
    }
    let mut buf = [0u8; 4096];
    let response: KeResponse = loop {
        if Instant::now() >= deadline {
            return Err(KeFailure::Timeout {
                host: name,
                seconds: timeout.as_secs_f64(),
            });
        }
        tls.sock
            .set_read_timeout(Some(left(deadline)))
            .map_err(io)?;
        let n = tls.read(&mut buf).map_err(tls_error)?;
        if n == 0 {
            return Err(KeFailure::Io {
                host: name,
                source: std::io::ErrorKind::UnexpectedEof.into(),
            });
        }
        match ke.handle_bytes(&buf[..n]) {
            Ok(Some(r)) => break r,
            Ok(None) => {}
            Err(source) => return Err(KeFailure::Protocol { host: name, source }),
        }
    };
    let algorithm = response.algorithm;
    let export = |direction| {
        let mut key = vec![0u8; algorithm.key_len()];
        tls.conn
            .export_keying_material(
                &mut key[..],
                EXPORTER_LABEL.as_bytes(),
                Some(&exporter_context(algorithm.id(), direction)),
            )
            .map(|_| ())?;
        Ok(key)
    };
    let tls_fail = |source| KeFailure::Tls {
        host: name.clone(),
        source,
    };
    let c2s = export(KeyDirection::ClientToServer).map_err(tls_fail)?;
    let s2c = export(KeyDirection::ServerToClient).map_err(tls_fail)?;
    let keys = NtsKeys::new(algorithm, &c2s, &s2c).map_err(|source| KeFailure::Protocol {
        host: name.clone(),
        source,
    })?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(NtsAssociation {
        ntp_host: response.server.unwrap_or(name),
        ntp_port: response.port.unwrap_or(123),
        algorithm,
        client: NtsClient::new(keys, response.cookies),
    })
}
