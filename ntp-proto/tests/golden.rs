//! Golden vectors: packets captured from real chronyd 4.3 and ntpsec 1.2.2 on loopback by
//! `tests/vectors/capture.py` (each file says how). Every one must parse, re-emit byte for
//! byte, and mean what the peer meant.

use std::path::PathBuf;

use tempora_ntp_proto::{
    AssociationMode, KissAction, KissCode, LeapIndicator, Log2Seconds, NtpPacket, Rejection,
    Stratum, Version, check_response, client_request, kiss_of_death,
};

fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("golden vector file is readable");
    let hex: String = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(|line| line.split_whitespace())
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn parse_and_reemit(bytes: &[u8]) -> NtpPacket<'_> {
    let packet = NtpPacket::parse(bytes).expect("golden vector parses");
    let mut again = vec![0u8; bytes.len()];
    assert_eq!(packet.emit(&mut again), Ok(bytes.len()));
    assert_eq!(again, bytes, "re-emitted bytes differ");
    packet
}

const ALL: [&str; 9] = [
    "chrony-4.3-client-request.hex",
    "chrony-4.3-client-request-md5.hex",
    "chrony-4.3-client-request-sha1.hex",
    "chrony-4.3-client-request-aes128.hex",
    "chrony-4.3-server-response.hex",
    "chrony-4.3-server-response-md5.hex",
    "ntpsec-1.2.2-ntpdig-request.hex",
    "ntpsec-1.2.2-ntpd-response-unsync.hex",
    "ntpsec-1.2.2-ntpd-kod-rate.hex",
];

#[test]
fn every_vector_round_trips() {
    for name in ALL {
        let bytes = vector(name);
        parse_and_reemit(&bytes);
    }
}

#[test]
fn chrony_client_request_is_data_minimised_like_ours() {
    let bytes = vector("chrony-4.3-client-request.hex");
    let packet = parse_and_reemit(&bytes);
    let h = packet.header;
    assert_eq!(
        (h.version, h.mode, h.leap),
        (
            Version::V4,
            AssociationMode::Client,
            LeapIndicator::NoWarning
        )
    );
    assert!(!h.transmit_timestamp.is_zero());
    // chrony keeps its poll and a precision of 32 (its marker for a minimised request);
    // everything else is zero, as in ours.
    assert_eq!(h.poll, Log2Seconds(6));
    assert_eq!(h.precision, Log2Seconds(32));
    let ours = client_request(Version::V4, h.transmit_timestamp.to_bits());
    let mut theirs = h;
    theirs.poll = ours.poll;
    theirs.precision = ours.precision;
    assert_eq!(theirs, ours);
    assert!(packet.mac.is_none() && packet.extension_fields.is_empty());
}

#[test]
fn ntpdig_request() {
    let bytes = vector("ntpsec-1.2.2-ntpdig-request.hex");
    let h = parse_and_reemit(&bytes).header;
    assert_eq!(h.mode, AssociationMode::Client);
    assert_eq!(h.leap, LeapIndicator::Unsynchronized, "ntpdig sends LI 3");
    assert!(!h.transmit_timestamp.is_zero());
    assert!(h.origin_timestamp.is_zero() && h.receive_timestamp.is_zero());
}

#[test]
fn chrony_server_response_passes_every_check() {
    let bytes = vector("chrony-4.3-server-response.hex");
    let h = parse_and_reemit(&bytes).header;
    assert_eq!(h.mode, AssociationMode::Server);
    assert_eq!(h.stratum, Stratum(1));
    assert_eq!(
        h.reference_id.0,
        [127, 127, 1, 1],
        "chrony's 'local' reference ID"
    );
    assert_eq!(h.poll, Log2Seconds(6), "poll copied from the request");
    assert_eq!(check_response(&h, h.origin_timestamp, None), Ok(()));
    assert!(h.transmit_timestamp - h.receive_timestamp >= tempora_ntp_proto::NtpDuration::ZERO);
}

#[test]
fn ntpd_unsynchronised_answer_is_kiss_init() {
    let bytes = vector("ntpsec-1.2.2-ntpd-response-unsync.hex");
    let h = parse_and_reemit(&bytes).header;
    assert_eq!(h.leap, LeapIndicator::Unsynchronized);
    assert_eq!(h.stratum, Stratum(0));
    let rejection = check_response(&h, h.origin_timestamp, None);
    assert_eq!(
        rejection,
        Err(Rejection::KissOfDeath {
            code: KissCode::Init
        })
    );
    assert_eq!(KissCode::Init.action(), KissAction::Informational);
}

#[test]
fn ntpd_rate_kod_matches_our_builder() {
    let bytes = vector("ntpsec-1.2.2-ntpd-kod-rate.hex");
    let theirs = parse_and_reemit(&bytes).header;
    assert_eq!(
        check_response(&theirs, theirs.origin_timestamp, None),
        Err(Rejection::KissOfDeath {
            code: KissCode::Rate
        })
    );
    assert_eq!(KissCode::Rate.action(), KissAction::ReducePolling);
    let request = client_request(Version::V4, theirs.origin_timestamp.to_bits());
    let request = tempora_ntp_proto::NtpHeader {
        poll: theirs.poll,
        ..request
    };
    let ours = kiss_of_death(&request, KissCode::Rate).unwrap();
    // Same shape as ntpd's; only the precision field differs (ntpd puts its own).
    assert_eq!(
        tempora_ntp_proto::NtpHeader {
            precision: theirs.precision,
            ..ours
        },
        theirs
    );
}

#[cfg(feature = "mac")]
mod keyed {
    use super::*;
    use tempora_ntp_proto::{Error, MacAlgorithm, MacKey};

    // The keys of capture.py: 1..=20 (MD5), 21..=40 (SHA1), 41..=56 (AES128).
    fn secret(id: u32) -> Vec<u8> {
        match id {
            1 => (1..=20).collect(),
            2 => (21..=40).collect(),
            3 => (41..=56).collect(),
            _ => unreachable!(),
        }
    }

    fn algorithm(id: u32) -> MacAlgorithm {
        match id {
            1 => MacAlgorithm::Md5,
            2 => MacAlgorithm::Sha1,
            _ => MacAlgorithm::AesCmac128,
        }
    }

    fn verify(bytes: &[u8]) -> Result<u32, Error> {
        let secrets: Vec<Vec<u8>> = (1..=3).map(secret).collect();
        MacKey::verify_packet(bytes, |id| {
            let s = secrets.get(usize::try_from(id).ok()?.checked_sub(1)?)?;
            MacKey::new(id, algorithm(id), s).ok()
        })
    }

    #[test]
    fn chrony_macs_verify_and_tampering_is_caught() {
        for (name, id) in [
            ("chrony-4.3-client-request-md5.hex", 1),
            ("chrony-4.3-client-request-sha1.hex", 2),
            ("chrony-4.3-client-request-aes128.hex", 3),
            ("chrony-4.3-server-response-md5.hex", 1),
        ] {
            let mut bytes = vector(name);
            let packet = parse_and_reemit(&bytes);
            let mac = packet.mac.expect("keyed packet has a MAC");
            assert_eq!(mac.key_id, id, "{name}");
            assert_eq!(mac.digest.len(), algorithm(id).digest_len(), "{name}");
            assert_eq!(verify(&bytes), Ok(id), "{name}");
            bytes[45] ^= 1;
            assert_eq!(
                verify(&bytes),
                Err(Error::MacMismatch { key_id: id }),
                "{name}"
            );
        }
    }

    #[test]
    fn our_mac_is_accepted_form_for_chrony_request() {
        // Rebuild chrony's SHA1 request with our builder and key: same bytes.
        let theirs = vector("chrony-4.3-client-request-sha1.hex");
        let packet = NtpPacket::parse(&theirs).unwrap();
        let key_bytes = secret(2);
        let key = MacKey::new(2, MacAlgorithm::Sha1, &key_bytes).unwrap();
        let mut buf = [0u8; 128];
        let len = tempora_ntp_proto::PacketBuilder::new(&mut buf, &packet.header)
            .unwrap()
            .finish_with_key(&key)
            .unwrap();
        assert_eq!(&buf[..len], &theirs[..]);
    }
}
