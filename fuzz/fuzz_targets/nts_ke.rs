//! NTS-KE: any bytes as records, as a server's answer to a client, and as a client's
//! request to a server, whole and in pieces: never a panic, every record read writes
//! back to the same bytes, and a server's refusal is an Error record a client reads back
//! as that refusal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_ntp::nts::{AeadAlgorithm, KeClient, KeServer, ke_error};
use tempora_ntp_proto::nts_ke::{Records, message_len};

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    for r in Records::new(data) {
        let Ok(r) = r else { break };
        let mut out = vec![0u8; r.emitted_len()];
        let n = r.emit(&mut out).unwrap();
        assert_eq!(&out[..n], &data[at..at + n]);
        at += n;
    }
    let _ = message_len(data);

    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut client = KeClient::new(&AeadAlgorithm::ALL);
    let first = client.handle_bytes(&data[..split]);
    if matches!(first, Ok(None)) {
        if let Ok(Some(r)) = client.handle_bytes(&data[split..]) {
            assert!(!r.cookies.is_empty());
        }
    }

    let mut server = KeServer::new(&AeadAlgorithm::ALL);
    match server.handle_bytes(data) {
        Ok(_) => {}
        Err(e) => {
            let answer = ke_error(e.ke_error_code());
            let refused = KeClient::new(&AeadAlgorithm::ALL).handle_bytes(&answer);
            assert!(matches!(
                refused,
                Err(tempora_ntp::nts::NtsError::KeRefused { .. })
            ));
        }
    }
});
