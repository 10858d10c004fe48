//! NTS-protected NTP packets (RFC 8915 section 5): the client's request and what it makes
//! of the answer, the server's reading of a request and its answer. Every field is
//! checked; nothing unauthenticated is believed; a server's answer is never longer than
//! the request.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use tempora_ntp_proto::{
    ExtensionField, ExtensionFieldType, ExtensionFields, KissCode, NtpHeader, NtpPacket,
    NtsAuthenticator, NtsCookie, NtsCookiePlaceholder, NtsUniqueIdentifier, PacketBuilder,
    ReferenceId, Stratum, kiss_of_death,
};

use super::NtsError;
use super::aead::{NONCE_LEN, TAG_LEN};
use super::cookie::{CookieKeys, NtsKeys};
use super::ke::COOKIES_PER_EXCHANGE;

/// Bytes of the Unique Identifier a client sends (the RFC's minimum).
pub const UID_LEN: usize = 32;

/// Bytes on the wire of an extension field with a value of `len` bytes.
fn field_len(len: usize) -> usize {
    (4 + len.next_multiple_of(4)).max(16)
}

/// The NTS fields of a packet, each found once at most.
struct NtsFields<'a> {
    uid: Option<&'a [u8]>,
    cookie: Option<&'a [u8]>,
    placeholders: usize,
    placeholder_len: Option<usize>,
    /// The authenticator and where it starts in the packet.
    authenticator: Option<(NtsAuthenticator<'a>, usize)>,
}

fn nts_fields<'a>(packet: &NtpPacket<'a>) -> Result<NtsFields<'a>, NtsError> {
    let mut f = NtsFields {
        uid: None,
        cookie: None,
        placeholders: 0,
        placeholder_len: None,
        authenticator: None,
    };
    for (offset, field) in packet.extension_fields.with_offsets() {
        // Fields after the authenticator are not authenticated: ignored (RFC 8915 5.6).
        if f.authenticator.is_some() {
            break;
        }
        match field.field_type {
            ExtensionFieldType::UniqueIdentifier => {
                let uid = NtsUniqueIdentifier::parse(&field).map_err(NtsError::Packet)?;
                if f.uid.replace(uid.0).is_some() {
                    return Err(NtsError::DuplicateField {
                        what: "unique identifier",
                    });
                }
            }
            ExtensionFieldType::NtsCookie => {
                let cookie = NtsCookie::parse(&field).map_err(NtsError::Packet)?;
                if f.cookie.replace(cookie.0).is_some() {
                    return Err(NtsError::DuplicateField { what: "cookie" });
                }
            }
            ExtensionFieldType::NtsCookiePlaceholder => {
                let p = NtsCookiePlaceholder::parse(&field).map_err(NtsError::Packet)?;
                f.placeholders += 1;
                f.placeholder_len = Some(p.body_len);
            }
            ExtensionFieldType::NtsAuthenticator => {
                let a = NtsAuthenticator::parse(&field).map_err(NtsError::Packet)?;
                f.authenticator = Some((a, tempora_ntp_proto::HEADER_LEN + offset));
            }
            _ => {}
        }
    }
    Ok(f)
}

/// A client's NTS association with one server: its keys and cookies, and the Unique
/// Identifier of the request in flight.
///
/// [`Self::write_request`] makes a request with one cookie and enough placeholders to
/// be given back eight; [`Self::read_response`] checks the answer (its UID, its
/// authenticator) and keeps the new cookies. When the cookies run out, or on an NTS NAK,
/// a new key exchange is due ([`Self::needs_key_exchange`]).
#[derive(Clone, Debug)]
pub struct NtsClient {
    keys: NtsKeys,
    cookies: VecDeque<Vec<u8>>,
    pending: Option<[u8; UID_LEN]>,
    nak: bool,
}

impl NtsClient {
    /// An association from a key exchange: its keys and cookies.
    pub fn new(keys: NtsKeys, cookies: Vec<Vec<u8>>) -> Self {
        let mut cookies: VecDeque<Vec<u8>> = cookies.into();
        cookies.truncate(COOKIES_PER_EXCHANGE);
        Self {
            keys,
            cookies,
            pending: None,
            nak: false,
        }
    }

    /// Cookies left.
    pub fn cookies(&self) -> usize {
        self.cookies.len()
    }

    /// Whether a new key exchange is due: no cookies left, or the server said NTS NAK
    /// (its keys rotated past our cookies, or it restarted without its key file).
    pub fn needs_key_exchange(&self) -> bool {
        self.cookies.is_empty() || self.nak
    }

    /// Writes a request with `header`, the Unique Identifier `uid` and the AEAD nonce
    /// `nonce` (both fresh randomness) into `out`; its length. Takes one cookie.
    pub fn write_request(
        &mut self,
        header: &NtpHeader,
        uid: [u8; UID_LEN],
        nonce: [u8; NONCE_LEN],
        out: &mut [u8],
    ) -> Result<usize, NtsError> {
        let cookie = self.cookies.pop_front().ok_or(NtsError::NoCookies)?;
        // Enough placeholders to be given back to eight.
        let placeholders =
            COOKIES_PER_EXCHANGE - 1 - self.cookies.len().min(COOKIES_PER_EXCHANGE - 1);
        let mut b = PacketBuilder::new(out, header).map_err(NtsError::Packet)?;
        NtsUniqueIdentifier(&uid)
            .write(&mut b)
            .map_err(NtsError::Packet)?;
        NtsCookie(&cookie).write(&mut b).map_err(NtsError::Packet)?;
        for _ in 0..placeholders {
            NtsCookiePlaceholder {
                body_len: cookie.len(),
            }
            .write(&mut b)
            .map_err(NtsError::Packet)?;
        }
        let tag = self.keys.c2s.seal(&nonce, b.as_bytes(), &[]);
        NtsAuthenticator {
            nonce: &nonce,
            ciphertext: &tag,
            additional_padding: 0,
        }
        .write(&mut b)
        .map_err(NtsError::Packet)?;
        let len = b.finish().map_err(NtsError::Packet)?;
        self.pending = Some(uid);
        Ok(len)
    }

    /// Checks an answer to the request in flight and keeps its cookies; its header.
    /// [`NtsError::Nak`] for an NTS NAK with our UID (unauthenticated by nature: it only
    /// makes [`Self::needs_key_exchange`] true); every other failure leaves the request
    /// in flight, so a forged packet cannot make us drop the real answer.
    pub fn read_response(&mut self, bytes: &[u8]) -> Result<NtpHeader, NtsError> {
        let packet = NtpPacket::parse(bytes).map_err(NtsError::Packet)?;
        let pending = self.pending.ok_or(NtsError::NotPending)?;
        let fields = nts_fields(&packet)?;
        if fields.uid != Some(&pending[..]) {
            return Err(NtsError::UidMismatch);
        }
        let header = packet.header;
        if header.stratum == Stratum::KISS_OF_DEATH
            && header.reference_id == ReferenceId::from_kiss_code(KissCode::Ntsn)
        {
            self.pending = None;
            self.nak = true;
            return Err(NtsError::Nak);
        }
        let (auth, at) = fields.authenticator.ok_or(NtsError::MissingField {
            what: "authenticator",
        })?;
        let plain = self
            .keys
            .s2c
            .open(auth.nonce, &bytes[..at], auth.ciphertext)?;
        let encrypted = ExtensionFields::new_checked(&plain, 0, true).map_err(NtsError::Packet)?;
        let mut fresh = Vec::new();
        for field in encrypted {
            if field.field_type == ExtensionFieldType::NtsCookie {
                fresh.push(field.value.to_vec());
            }
        }
        self.pending = None;
        self.nak = false;
        for c in fresh {
            if self.cookies.len() < COOKIES_PER_EXCHANGE {
                self.cookies.push_back(c);
            }
        }
        Ok(header)
    }
}

/// An NTS request a server has authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NtsRequest {
    /// The association's keys, from its cookie.
    pub keys: NtsKeys,
    /// The Unique Identifier to echo.
    pub uid: Vec<u8>,
    /// New cookies asked for: one for the cookie spent and one per placeholder.
    pub cookies_wanted: usize,
    /// The request's length: the answer may be no longer.
    pub request_len: usize,
}

/// Why a server does not answer an NTS request normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NtsRefusal {
    /// The request carries NTS fields that cannot be trusted (a cookie of an old or
    /// another key, a forged authenticator): answer with [`write_nts_nak`] with this UID.
    Nak {
        /// The request's Unique Identifier.
        uid: Vec<u8>,
        /// Why.
        error: NtsError,
    },
    /// Malformed: no answer at all.
    Drop(NtsError),
}

/// Reads a request to a server: `Ok(None)` for plain NTP (no NTS fields), the
/// authenticated request, or why not.
pub fn read_nts_request(
    bytes: &[u8],
    cookie_keys: &CookieKeys,
) -> Result<Option<NtsRequest>, NtsRefusal> {
    let packet = NtpPacket::parse(bytes).map_err(|e| NtsRefusal::Drop(NtsError::Packet(e)))?;
    let f = nts_fields(&packet).map_err(NtsRefusal::Drop)?;
    if f.uid.is_none() && f.cookie.is_none() && f.authenticator.is_none() {
        return Ok(None);
    }
    let uid = f.uid.ok_or(NtsRefusal::Drop(NtsError::MissingField {
        what: "unique identifier",
    }))?;
    let cookie = f
        .cookie
        .ok_or(NtsRefusal::Drop(NtsError::MissingField { what: "cookie" }))?;
    let (auth, at) = f
        .authenticator
        .ok_or(NtsRefusal::Drop(NtsError::MissingField {
            what: "authenticator",
        }))?;
    let nak = |error| NtsRefusal::Nak {
        uid: uid.to_vec(),
        error,
    };
    let keys = cookie_keys.open(cookie).map_err(nak)?;
    // The client encrypts nothing; whatever it did is opened and ignored.
    keys.c2s
        .open(auth.nonce, &bytes[..at], auth.ciphertext)
        .map_err(nak)?;
    // Placeholders must be as long as the cookie (RFC 8915 5.5); others are not counted.
    let placeholders = match f.placeholder_len {
        Some(len) if len == cookie.len() => f.placeholders,
        _ => 0,
    };
    Ok(Some(NtsRequest {
        keys,
        uid: uid.to_vec(),
        cookies_wanted: (1 + placeholders).min(COOKIES_PER_EXCHANGE),
        request_len: bytes.len(),
    }))
}

/// Writes the answer to an authenticated request: `header` (the NTP answer), the UID,
/// and as many of the cookies asked for as fit in the request's length, sealed with the
/// S2C key under `nonce`; `cookie_nonce` gives a fresh nonce per cookie. Its length.
pub fn write_nts_response(
    header: &NtpHeader,
    request: &NtsRequest,
    cookie_keys: &CookieKeys,
    nonce: [u8; NONCE_LEN],
    mut cookie_nonce: impl FnMut() -> [u8; NONCE_LEN],
    out: &mut [u8],
) -> Result<usize, NtsError> {
    let cookie_len = super::cookie::cookie_len(request.keys.algorithm());
    let fixed = tempora_ntp_proto::HEADER_LEN
        + field_len(request.uid.len())
        + field_len(4 + NONCE_LEN + TAG_LEN);
    let room = request.request_len.saturating_sub(fixed);
    let fit = room / field_len(cookie_len);
    let count = request.cookies_wanted.min(fit);
    let mut plain = alloc::vec![0u8; count * field_len(cookie_len)];
    let mut at = 0;
    for _ in 0..count {
        let cookie = cookie_keys.seal(&request.keys, &cookie_nonce());
        at += ExtensionField::new(ExtensionFieldType::NtsCookie, &cookie)
            .emit(&mut plain[at..])
            .map_err(NtsError::Packet)?;
    }
    plain.truncate(at);
    let mut b =
        PacketBuilder::response(out, header, request.request_len).map_err(NtsError::Packet)?;
    NtsUniqueIdentifier(&request.uid)
        .write(&mut b)
        .map_err(NtsError::Packet)?;
    let sealed = request.keys.s2c.seal(&nonce, b.as_bytes(), &plain);
    NtsAuthenticator {
        nonce: &nonce,
        ciphertext: &sealed,
        additional_padding: 0,
    }
    .write(&mut b)
    .map_err(NtsError::Packet)?;
    b.finish().map_err(NtsError::Packet)
}

/// Writes an NTS NAK (RFC 8915 5.7): a kiss-o'-death NTSN answering `request` with its
/// UID and nothing else.
pub fn write_nts_nak(
    request: &NtpHeader,
    uid: &[u8],
    request_len: usize,
    out: &mut [u8],
) -> Result<usize, NtsError> {
    let header = kiss_of_death(request, KissCode::Ntsn).map_err(NtsError::Packet)?;
    let mut b = PacketBuilder::response(out, &header, request_len).map_err(NtsError::Packet)?;
    NtsUniqueIdentifier(uid)
        .write(&mut b)
        .map_err(NtsError::Packet)?;
    b.finish().map_err(NtsError::Packet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nts::AeadAlgorithm;
    use tempora_ntp_proto::{NtpTimestamp, ServerState, Version, client_request, server_response};

    fn keys() -> NtsKeys {
        NtsKeys::new(AeadAlgorithm::AesSivCmac256, &[1; 32], &[2; 32]).unwrap()
    }

    /// A server's master keys and a client holding eight of its cookies.
    fn pair() -> (CookieKeys, NtsClient) {
        let server = CookieKeys::new(1, [7; 32]);
        let cookies = (0..8u8).map(|i| server.seal(&keys(), &[i; 16])).collect();
        (server, NtsClient::new(keys(), cookies))
    }

    fn answer(server: &CookieKeys, request: &[u8], out: &mut [u8]) -> usize {
        let req = read_nts_request(request, server).unwrap().unwrap();
        let header = NtpPacket::parse(request).unwrap().header;
        let state = ServerState {
            stratum: Stratum(2),
            ..ServerState::UNSYNCHRONIZED
        };
        let response = server_response(
            &header,
            &state,
            NtpTimestamp::from_bits(5),
            NtpTimestamp::from_bits(6),
        )
        .unwrap();
        let mut n = 0u8;
        write_nts_response(
            &response,
            &req,
            server,
            [9; 16],
            || {
                n += 1;
                [n; 16]
            },
            out,
        )
        .unwrap()
    }

    #[test]
    fn a_request_is_answered_and_the_cookies_come_back() {
        let (server, mut client) = pair();
        let header = client_request(Version::V4, 0x1234);
        let mut req = [0u8; 1500];
        let n = client
            .write_request(&header, [3; 32], [4; 16], &mut req)
            .unwrap();
        assert_eq!(client.cookies(), 7);
        let mut resp = [0u8; 1500];
        let m = answer(&server, &req[..n], &mut resp);
        assert!(m <= n, "no amplification: {m} > {n}");
        let h = client.read_response(&resp[..m]).unwrap();
        assert_eq!(h.origin_timestamp, header.transmit_timestamp);
        assert_eq!(client.cookies(), 8);
        // A replay of the same answer is refused: nothing is in flight.
        assert_eq!(client.read_response(&resp[..m]), Err(NtsError::NotPending));
    }

    #[test]
    fn lost_answers_are_made_up_with_placeholders() {
        let (server, mut client) = pair();
        let header = client_request(Version::V4, 0x1234);
        let mut req = [0u8; 1500];
        // Three requests lost.
        for i in 0..3u8 {
            client
                .write_request(&header, [i; 32], [i; 16], &mut req)
                .unwrap();
        }
        assert_eq!(client.cookies(), 5);
        let n = client
            .write_request(&header, [9; 32], [9; 16], &mut req)
            .unwrap();
        let mut resp = [0u8; 1500];
        let m = answer(&server, &req[..n], &mut resp);
        assert!(m <= n);
        client.read_response(&resp[..m]).unwrap();
        assert_eq!(client.cookies(), 8);
    }

    #[test]
    fn tampering_anywhere_in_an_answer_is_refused_and_leaves_the_request_in_flight() {
        let (server, mut client) = pair();
        let header = client_request(Version::V4, 0x1234);
        let mut req = [0u8; 1500];
        let n = client
            .write_request(&header, [3; 32], [4; 16], &mut req)
            .unwrap();
        let mut resp = [0u8; 1500];
        let m = answer(&server, &req[..n], &mut resp);
        for i in 0..m {
            let mut bad = resp[..m].to_vec();
            bad[i] ^= 0x01;
            assert!(
                client.read_response(&bad).is_err(),
                "byte {i} changed and accepted"
            );
        }
        // The real answer is still taken.
        assert!(client.read_response(&resp[..m]).is_ok());
    }

    #[test]
    fn a_server_refuses_forged_and_tampered_requests() {
        let (server, mut client) = pair();
        let header = client_request(Version::V4, 0x1234);
        let mut req = [0u8; 1500];
        let n = client
            .write_request(&header, [3; 32], [4; 16], &mut req)
            .unwrap();
        // Any byte after the header changed: dropped or NAKed, never answered.
        for i in 48..n {
            let mut bad = req[..n].to_vec();
            bad[i] ^= 0x01;
            assert!(read_nts_request(&bad, &server).is_err(), "byte {i}");
        }
        // A header byte changed: the authenticator covers it.
        let mut bad = req[..n].to_vec();
        bad[47] ^= 1;
        assert!(matches!(
            read_nts_request(&bad, &server),
            Err(NtsRefusal::Nak { .. })
        ));
        // A cookie of a rotated-out key: NAK with the UID, and the client re-keys.
        let other = CookieKeys::new(2, [8; 32]);
        let Err(NtsRefusal::Nak { uid, .. }) = read_nts_request(&req[..n], &other) else {
            panic!("not a NAK");
        };
        assert_eq!(uid, [3; 32]);
        let mut nak = [0u8; 1500];
        let m = write_nts_nak(&header, &uid, n, &mut nak).unwrap();
        assert_eq!(client.read_response(&nak[..m]), Err(NtsError::Nak));
        assert!(client.needs_key_exchange());
        // Plain NTP is not NTS.
        let plain = header.to_bytes();
        assert_eq!(read_nts_request(&plain, &server), Ok(None));
    }

    #[test]
    fn a_client_without_cookies_sends_nothing() {
        let mut client = NtsClient::new(keys(), Vec::new());
        assert!(client.needs_key_exchange());
        let mut req = [0u8; 1500];
        assert_eq!(
            client.write_request(&client_request(Version::V4, 1), [0; 32], [0; 16], &mut req),
            Err(NtsError::NoCookies)
        );
    }
}
