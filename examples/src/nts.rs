//! NTS key exchange over TLS (RFC 8915 section 4) for the daemons: rustls (TLS 1.3 only,
//! ALPN `ntske/1`, the ring provider) around `tempora-ntp`'s sans-IO [`KeClient`] and
//! `KeServer`, the keys exported from the TLS session with the RFC's label and context;
//! the server's master keys, their file and rotation.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tempora_ntp::nts::{
    AeadAlgorithm, CookieKeys, KeClient, KeResponse, MASTER_KEY_LEN, NtsClient, NtsError, NtsKeys,
};
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

impl NtsAssociation {
    /// The NTP server as `HOST:PORT` (an IPv6 address in brackets), to resolve.
    pub fn ntp_address(&self) -> String {
        if self.ntp_host.contains(':') {
            format!("[{}]:{}", self.ntp_host, self.ntp_port)
        } else {
            format!("{}:{}", self.ntp_host, self.ntp_port)
        }
    }
}

/// The association's keys from a finished TLS session, either side: each direction's
/// key exported with the RFC's label and context for `algorithm` (RFC 8915 5.1).
fn export_keys<D>(
    conn: &rustls::ConnectionCommon<D>,
    algorithm: AeadAlgorithm,
) -> Result<NtsKeys, rustls::Error> {
    let export = |direction| {
        let mut key = vec![0u8; algorithm.key_len()];
        conn.export_keying_material(
            &mut key[..],
            EXPORTER_LABEL.as_bytes(),
            Some(&exporter_context(algorithm.id(), direction)),
        )?;
        Ok::<_, rustls::Error>(key)
    };
    let c2s = export(KeyDirection::ClientToServer)?;
    let s2c = export(KeyDirection::ServerToClient)?;
    // Exported at the algorithm's own key length: cannot be refused.
    NtsKeys::new(algorithm, &c2s, &s2c)
        .map_err(|e| rustls::Error::General(format!("NTS keys: {e}")))
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
    let keys = export_keys(&tls.conn, algorithm).map_err(|source| KeFailure::Tls {
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

/// The server's side: the master keys the serving threads seal and open cookies with,
/// and what the key exchange server counted.
#[derive(Debug)]
pub struct NtsServerState {
    /// The master keys.
    pub keys: std::sync::RwLock<CookieKeys>,
    /// Key exchanges by result.
    pub ke: std::sync::Mutex<KeCounts>,
}

/// Key exchanges by how they ended (the labels of
/// `tempora_ntp_server_nts_ke_total{result=...}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeCounts {
    /// Cookies given.
    pub ok: u64,
    /// TLS failed (a bad client hello, a certificate the client refused).
    pub tls: u64,
    /// The client took too long, or went silent.
    pub timeout: u64,
    /// The request was malformed, or had a critical record we do not know.
    pub bad_request: u64,
    /// No protocol or algorithm in common.
    pub no_agreement: u64,
    /// The client did not ask for ALPN ntske/1.
    pub alpn: u64,
    /// Closed at once: too many connections already.
    pub busy: u64,
    /// Cookies given in all.
    pub cookies: u64,
}

impl KeCounts {
    /// (label, count) for each result.
    pub fn by_result(&self) -> [(&'static str, u64); 7] {
        [
            ("ok", self.ok),
            ("tls", self.tls),
            ("timeout", self.timeout),
            ("bad_request", self.bad_request),
            ("no_agreement", self.no_agreement),
            ("alpn", self.alpn),
            ("busy", self.busy),
        ]
    }
}

/// Why the NTS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum NtsSetupError {
    /// The certificate or key could not be read or used.
    #[error("NTS {what} {path}: {detail}")]
    Credentials {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: String,
        /// Why.
        detail: String,
    },
    /// The key file could not be read, parsed or written.
    #[error("NTS key file {path}: {detail}")]
    KeyFile {
        /// Its path.
        path: String,
        /// Why.
        detail: String,
    },
    /// A KE address could not be bound.
    #[error("NTS-KE cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No randomness for a master key.
    #[error("no randomness from the kernel (getrandom) for an NTS master key")]
    NoRandomness,
}

/// A TLS 1.3-only server configuration with ALPN `ntske/1`, from PEM files.
pub fn server_tls(
    certificate: &Path,
    private_key: &Path,
) -> Result<Arc<rustls::ServerConfig>, NtsSetupError> {
    use rustls::pki_types::PrivateKeyDer;
    let cert_err = |detail: String| NtsSetupError::Credentials {
        what: "certificate",
        path: certificate.display().to_string(),
        detail,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no certificate in it".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(private_key).map_err(|e| NtsSetupError::Credentials {
            what: "private key",
            path: private_key.display().to_string(),
            detail: e.to_string(),
        })?;
    let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| cert_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| NtsSetupError::Credentials {
            what: "certificate and key",
            path: format!("{} and {}", certificate.display(), private_key.display()),
            detail: e.to_string(),
        })?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// A fresh master key.
pub fn new_master_key() -> Result<[u8; MASTER_KEY_LEN], NtsSetupError> {
    let mut key = [0u8; MASTER_KEY_LEN];
    getrandom::fill(&mut key).map_err(|_| NtsSetupError::NoRandomness)?;
    Ok(key)
}

/// The master keys at start: from the key file if it exists, else a new key (written to
/// the file if one is configured).
pub fn load_or_make_keys(
    key_file: Option<&Path>,
    old_keys: usize,
) -> Result<CookieKeys, NtsSetupError> {
    if let Some(path) = key_file {
        if path.exists() {
            return read_key_file(path, old_keys);
        }
    }
    let mut id = [0u8; 4];
    getrandom::fill(&mut id).map_err(|_| NtsSetupError::NoRandomness)?;
    let mut keys = CookieKeys::new(u32::from_be_bytes(id), new_master_key()?);
    keys.set_keep(old_keys);
    if let Some(path) = key_file {
        write_key_file(path, &keys)?;
    }
    Ok(keys)
}

/// Reads a key file.
pub fn read_key_file(path: &Path, old_keys: usize) -> Result<CookieKeys, NtsSetupError> {
    let fail = |detail: String| NtsSetupError::KeyFile {
        path: path.display().to_string(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    CookieKeys::from_text(&text, old_keys).map_err(|e| fail(e.to_string()))
}

/// Writes a key file whole, readable by its owner only (a temporary file renamed over
/// the old one, so a reader never sees half of it).
pub fn write_key_file(path: &Path, keys: &CookieKeys) -> Result<(), NtsSetupError> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |detail: String| NtsSetupError::KeyFile {
        path: path.display().to_string(),
        detail,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail(e.to_string()))?;
    f.write_all(keys.to_text().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
}

/// What the key exchange server answers with besides cookies.
#[derive(Clone, Debug)]
pub struct KeServerOptions {
    /// The NTP server to name, if not this host.
    pub ntp_server: Option<String>,
    /// The NTP port to name, if not 123.
    pub ntp_port: Option<u16>,
    /// Connections at once.
    pub max_connections: usize,
    /// Time for a whole connection.
    pub timeout: Duration,
}

/// Serves NTS-KE on `listener` until `stop()` says so: one thread per connection, at most
/// `options.max_connections` at once, each bounded by `options.timeout` whole.
pub fn serve_key_exchange(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<NtsServerState>,
    options: KeServerOptions,
    stop: impl Fn() -> bool,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let active = Arc::new(AtomicUsize::new(0));
    let _ = listener.set_nonblocking(true);
    while !stop() {
        let (stream, peer) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => {
                tracing::debug!("NTS-KE accept: {e}");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= options.max_connections {
            count(&state, |c| c.busy += 1);
            drop(stream);
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (tls, task_state, options, task_active) =
            (tls.clone(), state.clone(), options.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("nts-ke".into())
            .spawn(move || {
                let (state, active) = (task_state, task_active);
                let result = key_exchange_with(stream, tls, &state, &options);
                match result {
                    Ok(cookies) => count(&state, |c| {
                        c.ok += 1;
                        c.cookies += cookies as u64;
                    }),
                    Err(outcome) => {
                        tracing::debug!("NTS-KE with {peer}: {outcome:?}");
                        count(&state, |c| match outcome {
                            KeOutcome::Tls => c.tls += 1,
                            KeOutcome::Timeout => c.timeout += 1,
                            KeOutcome::BadRequest => c.bad_request += 1,
                            KeOutcome::NoAgreement => c.no_agreement += 1,
                            KeOutcome::Alpn => c.alpn += 1,
                        });
                    }
                }
                active.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::Relaxed);
            count(&state, |c| c.busy += 1);
        }
    }
}

fn count(state: &NtsServerState, f: impl FnOnce(&mut KeCounts)) {
    let mut c = state
        .ke
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut c);
}

/// How a key exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeOutcome {
    Tls,
    Timeout,
    BadRequest,
    NoAgreement,
    Alpn,
}

fn io_outcome(e: &std::io::Error) -> KeOutcome {
    if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
        KeOutcome::Tls
    } else if matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ) {
        KeOutcome::Timeout
    } else {
        KeOutcome::Tls
    }
}

/// One connection: the request, the keys exported, eight cookies; the number given.
fn key_exchange_with(
    socket: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    state: &NtsServerState,
    options: &KeServerOptions,
) -> Result<usize, KeOutcome> {
    let deadline = Instant::now() + options.timeout;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let _ = socket.set_nonblocking(false);
    let _ = socket.set_nodelay(true);
    let connection = rustls::ServerConnection::new(tls).map_err(|_| KeOutcome::Tls)?;
    let mut tls = rustls::StreamOwned::new(connection, socket);
    let mut ke = tempora_ntp::nts::KeServer::new(&AeadAlgorithm::ALL);
    let mut buf = [0u8; 4096];
    let request = loop {
        if Instant::now() >= deadline {
            return Err(KeOutcome::Timeout);
        }
        tls.sock
            .set_read_timeout(Some(left()))
            .map_err(|_| KeOutcome::Timeout)?;
        tls.sock
            .set_write_timeout(Some(left()))
            .map_err(|_| KeOutcome::Timeout)?;
        let n = tls.read(&mut buf).map_err(|e| io_outcome(&e))?;
        if n == 0 {
            return Err(KeOutcome::Timeout);
        }
        if tls.conn.alpn_protocol() != Some(ALPN) {
            return Err(KeOutcome::Alpn);
        }
        match ke.handle_bytes(&buf[..n]) {
            Ok(Some(r)) => break r,
            Ok(None) => {}
            Err(e) => {
                let _ = tls.write_all(&tempora_ntp::nts::ke_error(e.ke_error_code()));
                let _ = tls.flush();
                return Err(KeOutcome::BadRequest);
            }
        }
    };
    let algorithm = match (request.ntpv4, request.algorithm) {
        (true, Some(a)) => a,
        _ => {
            let answer = tempora_ntp::nts::ke_response(&request, &[], None, None);
            let _ = tls.write_all(&answer);
            let _ = tls.flush();
            return Err(KeOutcome::NoAgreement);
        }
    };
    let keys = export_keys(&tls.conn, algorithm).map_err(|_| KeOutcome::Tls)?;
    let mut nonces = [0u8; 16 * tempora_ntp::nts::COOKIES_PER_EXCHANGE];
    getrandom::fill(&mut nonces).map_err(|_| KeOutcome::Tls)?;
    let cookies: Vec<Vec<u8>> = {
        let master = state
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        nonces
            .chunks_exact(16)
            .map(|n| {
                let mut nonce = [0u8; 16];
                nonce.copy_from_slice(n);
                master.seal(&keys, &nonce)
            })
            .collect()
    };
    let answer = tempora_ntp::nts::ke_response(
        &request,
        &cookies,
        options.ntp_server.as_deref(),
        options.ntp_port,
    );
    tls.write_all(&answer).map_err(|e| io_outcome(&e))?;
    tls.conn.send_close_notify();
    tls.flush().map_err(|e| io_outcome(&e))?;
    Ok(cookies.len())
}
