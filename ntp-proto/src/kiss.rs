//! Kiss-o'-death codes (RFC 5905 section 7.4, RFC 8915 section 5.7): four ASCII bytes in
//! the reference ID of a stratum 0 packet.

/// A kiss code. Codes this crate does not know are kept as [`KissCode::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KissCode {
    /// ACST: the association belongs to a unicast server.
    Acst,
    /// AUTH: server authentication failed.
    Auth,
    /// AUTO: Autokey sequence failed.
    Auto,
    /// BCST: the association belongs to a broadcast server.
    Bcst,
    /// CRYP: cryptographic authentication or identification failed.
    Cryp,
    /// DENY: access denied by remote server; stop sending to it.
    Deny,
    /// DROP: lost peer in symmetric mode.
    Drop,
    /// RSTR: access denied due to local policy; stop sending to it.
    Rstr,
    /// INIT: the association has not yet synchronised for the first time.
    Init,
    /// MCST: the association belongs to a dynamically discovered server.
    Mcst,
    /// NKEY: no key found.
    Nkey,
    /// NTSN: NTS negative acknowledgement; the client needs fresh cookies (RFC 8915).
    Ntsn,
    /// RATE: rate exceeded; the client must reduce its polling rate.
    Rate,
    /// RMOT: alteration of association from a remote host running ntpdc.
    Rmot,
    /// STEP: a step change in system time has occurred, not yet resynchronised.
    Step,
    /// Any other code, kept as it was.
    Unknown([u8; 4]),
}

/// What a client must do on receiving a kiss code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KissAction {
    /// DENY, RSTR: stop sending to this server.
    StopPolling,
    /// RATE: poll this server less often.
    ReducePolling,
    /// NTSN: fetch new NTS cookies (key exchange again).
    RenewNtsCookies,
    /// Every other code: no time in the packet; treat as an unsynchronised answer.
    Informational,
}

const CODES: [(KissCode, [u8; 4]); 15] = [
    (KissCode::Acst, *b"ACST"),
    (KissCode::Auth, *b"AUTH"),
    (KissCode::Auto, *b"AUTO"),
    (KissCode::Bcst, *b"BCST"),
    (KissCode::Cryp, *b"CRYP"),
    (KissCode::Deny, *b"DENY"),
    (KissCode::Drop, *b"DROP"),
    (KissCode::Rstr, *b"RSTR"),
    (KissCode::Init, *b"INIT"),
    (KissCode::Mcst, *b"MCST"),
    (KissCode::Nkey, *b"NKEY"),
    (KissCode::Ntsn, *b"NTSN"),
    (KissCode::Rate, *b"RATE"),
    (KissCode::Rmot, *b"RMOT"),
    (KissCode::Step, *b"STEP"),
];

impl KissCode {
    /// The code of four reference ID bytes.
    pub const fn from_bytes(bytes: [u8; 4]) -> Self {
        let mut i = 0;
        while i < CODES.len() {
            let known = CODES[i].1;
            if known[0] == bytes[0]
                && known[1] == bytes[1]
                && known[2] == bytes[2]
                && known[3] == bytes[3]
            {
                return CODES[i].0;
            }
            i += 1;
        }
        Self::Unknown(bytes)
    }

    /// The four reference ID bytes.
    pub fn to_bytes(self) -> [u8; 4] {
        match self {
            Self::Unknown(bytes) => bytes,
            known => CODES
                .iter()
                .find(|(code, _)| *code == known)
                .map_or([0; 4], |(_, bytes)| *bytes),
        }
    }

    /// What a client does on receiving this code (RFC 5905 section 7.4, RFC 8915 5.7).
    pub const fn action(self) -> KissAction {
        match self {
            Self::Deny | Self::Rstr => KissAction::StopPolling,
            Self::Rate => KissAction::ReducePolling,
            Self::Ntsn => KissAction::RenewNtsCookies,
            _ => KissAction::Informational,
        }
    }
}

impl From<[u8; 4]> for KissCode {
    fn from(bytes: [u8; 4]) -> Self {
        Self::from_bytes(bytes)
    }
}

impl From<KissCode> for [u8; 4] {
    fn from(code: KissCode) -> Self {
        code.to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_codes_round_trip() {
        for (code, bytes) in CODES {
            assert_eq!(KissCode::from_bytes(bytes), code);
            assert_eq!(code.to_bytes(), bytes);
        }
    }

    #[test]
    fn unknown_codes_are_kept() {
        let code = KissCode::from_bytes(*b"XFOO");
        assert_eq!(code, KissCode::Unknown(*b"XFOO"));
        assert_eq!(code.to_bytes(), *b"XFOO");
        assert_eq!(code.action(), KissAction::Informational);
    }

    #[test]
    fn actions() {
        assert_eq!(KissCode::Deny.action(), KissAction::StopPolling);
        assert_eq!(KissCode::Rstr.action(), KissAction::StopPolling);
        assert_eq!(KissCode::Rate.action(), KissAction::ReducePolling);
        assert_eq!(KissCode::Ntsn.action(), KissAction::RenewNtsCookies);
        assert_eq!(KissCode::Init.action(), KissAction::Informational);
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(bytes: [u8; 4]) {
            prop_assert_eq!(KissCode::from_bytes(bytes).to_bytes(), bytes);
        }
    }
}
