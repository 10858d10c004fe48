//! The NTS-KE exchange (RFC 8915 section 4), sans-IO on both sides: bytes in, bytes out.
//! The caller runs TLS 1.3 (ALPN `ntske/1`) and exports the keys with
//! [`tempora_ntp_proto::nts_ke::EXPORTER_LABEL`] and
//! [`tempora_ntp_proto::nts_ke::exporter_context`] for the algorithm agreed.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use tempora_ntp_proto::nts_ke::{
    KeErrorCode, KeRecord, NEXT_PROTOCOL_NTPV4, Record, Records, U16List, message_len,
};

use super::{AeadAlgorithm, NtsError};

/// The longest NTS-KE message either side reads: eight cookies of a few hundred bytes
/// and a host name fit many times over; more is refused rather than buffered.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;

/// The cookies a server gives at once, as chrony and ntpd-rs do.
pub const COOKIES_PER_EXCHANGE: usize = 8;

/// What an NTS-KE server answered: the algorithm, the cookies, and where to send NTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeResponse {
    /// The AEAD algorithm the server chose.
    pub algorithm: AeadAlgorithm,
    /// Its cookies, one per NTP request.
    pub cookies: Vec<Vec<u8>>,
    /// The NTP server to use, if not the NTS-KE server's host.
    pub server: Option<String>,
    /// The NTP port to use, if not 123.
    pub port: Option<u16>,
    /// Warning codes it sent.
    pub warnings: Vec<u16>,
}

/// Collects bytes until a whole message is there; refuses more than
/// [`MAX_MESSAGE_LEN`].
#[derive(Clone, Debug, Default)]
struct MessageBuffer {
    bytes: Vec<u8>,
}

impl MessageBuffer {
    /// Takes `bytes`; the whole message once its End of Message arrived.
    fn push(&mut self, bytes: &[u8]) -> Result<Option<&[u8]>, NtsError> {
        if self.bytes.len() + bytes.len() > MAX_MESSAGE_LEN {
            // A whole message may already be there with trailing bytes after it.
            if message_len(&self.bytes).is_none() {
                return Err(NtsError::KeMessageTooLong {
                    limit: MAX_MESSAGE_LEN,
                });
            }
        } else {
            self.bytes.extend_from_slice(bytes);
        }
        Ok(message_len(&self.bytes).map(|n| &self.bytes[..n]))
    }
}

/// The client's side of NTS-KE: [`Self::request`] gives the bytes to write to the TLS
/// stream, [`Self::handle_bytes`] takes what was read until it returns the response.
#[derive(Clone, Debug)]
pub struct KeClient {
    algorithms: Vec<AeadAlgorithm>,
    buffer: MessageBuffer,
}

impl KeClient {
    /// A client offering `algorithms`, in order of preference.
    pub fn new(algorithms: &[AeadAlgorithm]) -> Self {
        Self {
            algorithms: algorithms.to_vec(),
            buffer: MessageBuffer::default(),
        }
    }

    /// The request: NTPv4 as the next protocol, the algorithms offered, End of Message.
    pub fn request(&self) -> Vec<u8> {
        let ids: Vec<u16> = self.algorithms.iter().map(|a| a.id()).collect();
        write_records(&[
            Record::critical(KeRecord::NextProtocol(U16List::Values(&[
                NEXT_PROTOCOL_NTPV4,
            ]))),
            Record::critical(KeRecord::AeadAlgorithm(U16List::Values(&ids))),
            Record::critical(KeRecord::EndOfMessage),
        ])
    }

    /// Takes bytes read from the TLS stream; the server's answer once its End of Message
    /// arrived (`Ok(None)` while more are needed). A refusal or a malformed answer is an
    /// error that says why.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<Option<KeResponse>, NtsError> {
        let algorithms = self.algorithms.clone();
        let Some(message) = self.buffer.push(bytes)? else {
            return Ok(None);
        };
        read_response(message, &algorithms).map(Some)
    }
}

fn read_response(message: &[u8], offered: &[AeadAlgorithm]) -> Result<KeResponse, NtsError> {
    let mut protocol = None;
    let mut algorithm = None;
    let mut cookies = Vec::new();
    let mut server = None;
    let mut port = None;
    let mut warnings = Vec::new();
    for record in Records::new(message) {
        let record = record.map_err(NtsError::KeMalformed)?;
        match record.record {
            KeRecord::EndOfMessage => break,
            KeRecord::NextProtocol(list) => {
                if protocol.is_some() {
                    return Err(NtsError::KeDuplicateRecord { record_type: 1 });
                }
                protocol = Some(list.len() == 1 && list.contains(NEXT_PROTOCOL_NTPV4));
            }
            KeRecord::Error(code) => return Err(NtsError::KeRefused { code }),
            KeRecord::Warning(code) => warnings.push(code),
            KeRecord::AeadAlgorithm(list) => {
                if algorithm.is_some() {
                    return Err(NtsError::KeDuplicateRecord { record_type: 4 });
                }
                let mut ids = list.iter();
                let chosen = match (ids.next(), ids.next()) {
                    (Some(id), None) => id,
                    _ => return Err(NtsError::KeNoAlgorithm),
                };
                let known = AeadAlgorithm::from_id(chosen)
                    .filter(|a| offered.contains(a))
                    .ok_or(NtsError::KeAlgorithmNotOffered { id: chosen })?;
                algorithm = Some(known);
            }
            KeRecord::NewCookie(cookie) => {
                if cookie.is_empty() {
                    return Err(NtsError::KeEmptyCookie);
                }
                cookies.push(cookie.to_vec());
            }
            KeRecord::Server(name) => {
                if name.is_empty() {
                    return Err(NtsError::KeMalformed(
                        tempora_ntp_proto::Error::KeRecordBody {
                            offset: 0,
                            record_type: 6,
                            len: 0,
                            problem: "is empty",
                        },
                    ));
                }
                server = Some(name.to_string());
            }
            KeRecord::Port(p) => port = Some(p),
            KeRecord::Unknown { record_type, .. } if record.critical => {
                return Err(NtsError::KeUnrecognizedCritical { record_type });
            }
            KeRecord::Unknown { .. } => {}
        }
    }
    match protocol {
        Some(true) => {}
        _ => return Err(NtsError::KeNoProtocol),
    }
    let algorithm = algorithm.ok_or(NtsError::KeNoAlgorithm)?;
    if cookies.is_empty() {
        return Err(NtsError::KeNoCookies);
    }
    Ok(KeResponse {
        algorithm,
        cookies,
        server,
        port,
        warnings,
    })
}

/// What a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeRequest {
    /// The algorithm chosen: the client's most preferred one the server has; `None` when
    /// they share none.
    pub algorithm: Option<AeadAlgorithm>,
    /// Whether the client offered NTPv4.
    pub ntpv4: bool,
}

/// The server's side of NTS-KE: [`Self::handle_bytes`] takes what was read until it
/// returns the request; then the caller exports the keys, makes cookies with them and
/// writes [`ke_response`] (or [`ke_error`] when [`Self::handle_bytes`] failed).
#[derive(Clone, Debug)]
pub struct KeServer {
    algorithms: Vec<AeadAlgorithm>,
    buffer: MessageBuffer,
}

impl KeServer {
    /// A server that has `algorithms`.
    pub fn new(algorithms: &[AeadAlgorithm]) -> Self {
        Self {
            algorithms: algorithms.to_vec(),
            buffer: MessageBuffer::default(),
        }
    }

    /// Takes bytes read from the TLS stream; the request once its End of Message
    /// arrived. An error is answered with [`ke_error`] of [`NtsError::ke_error_code`].
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<Option<KeRequest>, NtsError> {
        let algorithms = self.algorithms.clone();
        let Some(message) = self.buffer.push(bytes)? else {
            return Ok(None);
        };
        let mut ntpv4 = None;
        let mut algorithm = None;
        for record in Records::new(message) {
            let record = record.map_err(NtsError::KeMalformed)?;
            match record.record {
                KeRecord::EndOfMessage => break,
                KeRecord::NextProtocol(list) => {
                    if ntpv4.is_some() {
                        return Err(NtsError::KeDuplicateRecord { record_type: 1 });
                    }
                    ntpv4 = Some(list.contains(NEXT_PROTOCOL_NTPV4));
                }
                KeRecord::AeadAlgorithm(list) => {
                    if algorithm.is_some() {
                        return Err(NtsError::KeDuplicateRecord { record_type: 4 });
                    }
                    algorithm = Some(
                        list.iter()
                            .filter_map(AeadAlgorithm::from_id)
                            .find(|a| algorithms.contains(a)),
                    );
                }
                // A client sends none of these; RFC 8915 4.1.3: Error and Warning from a
                // client are malformed; cookies and server/port records are ignored.
                KeRecord::Error(_) | KeRecord::Warning(_) => {
                    return Err(NtsError::KeMalformed(
                        tempora_ntp_proto::Error::KeRecordBody {
                            offset: 0,
                            record_type: record.record.record_type(),
                            len: 2,
                            problem: "comes from a client",
                        },
                    ));
                }
                KeRecord::NewCookie(_) | KeRecord::Server(_) | KeRecord::Port(_) => {}
                KeRecord::Unknown { record_type, .. } if record.critical => {
                    return Err(NtsError::KeUnrecognizedCritical { record_type });
                }
                KeRecord::Unknown { .. } => {}
            }
        }
        // Both negotiation records are required (RFC 8915 4.1.2, 4.1.5).
        let ntpv4 = ntpv4.ok_or(NtsError::KeNoProtocol)?;
        let algorithm = algorithm.ok_or(NtsError::KeNoAlgorithm)?;
        Ok(Some(KeRequest { algorithm, ntpv4 }))
    }
}

fn write_records(records: &[Record<'_>]) -> Vec<u8> {
    let len = records.iter().map(Record::emitted_len).sum();
    let mut out = alloc::vec![0u8; len];
    let mut at = 0;
    for r in records {
        // Every record here is under 64 KiB and the buffer was sized for them.
        at += r.emit(&mut out[at..]).unwrap_or(0);
    }
    out.truncate(at);
    out
}

/// The server's answer to `request`: NTPv4 and the algorithm chosen with `cookies`, or,
/// when they share no protocol or algorithm, empty negotiation records and no cookies
/// (RFC 8915 4.1.2, 4.1.5). `server` and `port` tell the client where NTP is served when
/// that is not this host's port 123.
pub fn ke_response(
    request: &KeRequest,
    cookies: &[Vec<u8>],
    server: Option<&str>,
    port: Option<u16>,
) -> Vec<u8> {
    let agreed = match (request.ntpv4, request.algorithm) {
        (true, Some(a)) => Some(a),
        _ => None,
    };
    let protocols: &[u16] = if request.ntpv4 {
        &[NEXT_PROTOCOL_NTPV4]
    } else {
        &[]
    };
    let ids: Vec<u16> = agreed.map(|a| a.id()).into_iter().collect();
    let mut records = alloc::vec![
        Record::critical(KeRecord::NextProtocol(U16List::Values(protocols))),
        Record::critical(KeRecord::AeadAlgorithm(U16List::Values(&ids))),
    ];
    if agreed.is_some() {
        if let Some(s) = server.filter(|s| s.is_ascii() && !s.is_empty()) {
            records.push(Record::critical(KeRecord::Server(s)));
        }
        if let Some(p) = port {
            records.push(Record::critical(KeRecord::Port(p)));
        }
        for c in cookies {
            records.push(Record::new(KeRecord::NewCookie(c)));
        }
    }
    records.push(Record::critical(KeRecord::EndOfMessage));
    write_records(&records)
}

/// An Error record and End of Message: the answer to a request that failed.
pub fn ke_error(code: KeErrorCode) -> Vec<u8> {
    write_records(&[
        Record::critical(KeRecord::Error(code)),
        Record::critical(KeRecord::EndOfMessage),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempora_ntp_proto::nts_ke::record_type;

    #[test]
    fn a_client_and_a_server_agree() {
        let client = KeClient::new(&[AeadAlgorithm::AesSivCmac512, AeadAlgorithm::AesSivCmac256]);
        let mut server = KeServer::new(&[AeadAlgorithm::AesSivCmac256]);
        let request = client.request();
        // Byte by byte, as TLS may hand it over.
        let mut got = None;
        for (i, b) in request.iter().enumerate() {
            let r = server.handle_bytes(core::slice::from_ref(b)).unwrap();
            assert_eq!(r.is_some(), i + 1 == request.len());
            got = got.or(r);
        }
        let req = got.unwrap();
        assert_eq!(req.algorithm, Some(AeadAlgorithm::AesSivCmac256));
        let cookies: Vec<Vec<u8>> = (0..8u8).map(|i| alloc::vec![i; 100]).collect();
        let response = ke_response(&req, &cookies, Some("ntp.example"), Some(1123));
        let mut client = client;
        let r = client.handle_bytes(&response).unwrap().unwrap();
        assert_eq!(r.algorithm, AeadAlgorithm::AesSivCmac256);
        assert_eq!(r.cookies, cookies);
        assert_eq!(r.server.as_deref(), Some("ntp.example"));
        assert_eq!(r.port, Some(1123));
    }

    #[test]
    fn refusals_and_malformed_answers_are_errors_that_say_why() {
        let offered = [AeadAlgorithm::AesSivCmac256];
        let answer =
            |records: &[Record<'_>]| KeClient::new(&offered).handle_bytes(&write_records(records));
        let eom = Record::critical(KeRecord::EndOfMessage);
        let ntp = Record::critical(KeRecord::NextProtocol(U16List::Values(&[0])));
        let siv = Record::critical(KeRecord::AeadAlgorithm(U16List::Values(&[15])));
        let cookie = Record::new(KeRecord::NewCookie(&[1; 4]));
        assert_eq!(
            answer(&[
                Record::critical(KeRecord::Error(KeErrorCode::BAD_REQUEST)),
                eom
            ]),
            Err(NtsError::KeRefused {
                code: KeErrorCode::BAD_REQUEST
            })
        );
        assert_eq!(answer(&[siv, cookie, eom]), Err(NtsError::KeNoProtocol));
        assert_eq!(answer(&[ntp, cookie, eom]), Err(NtsError::KeNoAlgorithm));
        assert_eq!(answer(&[ntp, siv, eom]), Err(NtsError::KeNoCookies));
        let gcm = Record::critical(KeRecord::AeadAlgorithm(U16List::Values(&[30])));
        assert_eq!(
            answer(&[ntp, gcm, cookie, eom]),
            Err(NtsError::KeAlgorithmNotOffered { id: 30 })
        );
        let odd = Record::critical(KeRecord::Unknown {
            record_type: 0x4000,
            body: &[],
        });
        assert_eq!(
            answer(&[ntp, siv, odd, cookie, eom]),
            Err(NtsError::KeUnrecognizedCritical {
                record_type: 0x4000
            })
        );
        // Not critical: ignored.
        let ignored = Record::new(KeRecord::Unknown {
            record_type: 0x4000,
            body: &[9],
        });
        assert!(answer(&[ntp, siv, ignored, cookie, eom]).unwrap().is_some());
        // A truncated record inside a whole message.
        let mut bytes = write_records(&[ntp, siv, cookie, eom]);
        bytes[2] = 0;
        bytes[3] = 0;
        assert!(matches!(
            KeClient::new(&offered).handle_bytes(&bytes),
            Err(NtsError::KeMalformed(_)) | Ok(None)
        ));
    }

    #[test]
    fn an_oversized_message_is_refused_not_buffered() {
        let mut client = KeClient::new(&[AeadAlgorithm::AesSivCmac256]);
        // One cookie record declaring 60,000 bytes, sent in pieces.
        let mut head = alloc::vec![0x00, record_type::NEW_COOKIE as u8, 0xea, 0x60];
        head.extend_from_slice(&[0u8; 1000]);
        assert_eq!(client.handle_bytes(&head), Ok(None));
        let piece = [0u8; 4096];
        let mut result = Ok(None);
        for _ in 0..8 {
            result = client.handle_bytes(&piece);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result,
            Err(NtsError::KeMessageTooLong {
                limit: MAX_MESSAGE_LEN
            })
        );
    }

    #[test]
    fn a_server_refuses_an_unknown_critical_record_and_answers_without_common_ground() {
        let mut server = KeServer::new(&[AeadAlgorithm::AesSivCmac256]);
        let request = write_records(&[
            Record::critical(KeRecord::NextProtocol(U16List::Values(&[0]))),
            Record::critical(KeRecord::Unknown {
                record_type: 77,
                body: &[],
            }),
            Record::critical(KeRecord::EndOfMessage),
        ]);
        let e = server.handle_bytes(&request).unwrap_err();
        assert_eq!(e.ke_error_code(), KeErrorCode::UNRECOGNIZED_CRITICAL_RECORD);
        // No algorithm in common: empty algorithm record, no cookies; the client says so.
        let mut server = KeServer::new(&[AeadAlgorithm::AesSivCmac256]);
        let request = write_records(&[
            Record::critical(KeRecord::NextProtocol(U16List::Values(&[0]))),
            Record::critical(KeRecord::AeadAlgorithm(U16List::Values(&[30]))),
            Record::critical(KeRecord::EndOfMessage),
        ]);
        let req = server.handle_bytes(&request).unwrap().unwrap();
        assert_eq!(req.algorithm, None);
        let answer = ke_response(&req, &[alloc::vec![1; 8]], None, None);
        assert_eq!(
            KeClient::new(&[AeadAlgorithm::AesSivCmac256]).handle_bytes(&answer),
            Err(NtsError::KeNoAlgorithm)
        );
    }
}
