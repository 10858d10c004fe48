//! Any run of extension fields, checked with and without a following MAC; every field that
//! passes goes through the typed NTS parsers, and re-emits to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_ntp_proto::{
    ExtensionFieldType, ExtensionFields, NtpHeader, NtsAuthenticator, NtsCookie,
    NtsCookiePlaceholder, NtsUniqueIdentifier, PacketBuilder,
};

fuzz_target!(|data: &[u8]| {
    for mac_follows in [false, true] {
        let Ok(fields) = ExtensionFields::new_checked(data, 48, mac_follows) else {
            continue;
        };
        let mut buf = vec![0u8; 48 + data.len() + 32];
        let mut builder = PacketBuilder::new(&mut buf, &NtpHeader::default()).unwrap();
        for (offset, field) in fields.with_offsets() {
            assert!(offset + 4 + field.value.len() <= data.len());
            match field.field_type {
                ExtensionFieldType::UniqueIdentifier => drop(NtsUniqueIdentifier::parse(&field)),
                ExtensionFieldType::NtsCookie => drop(NtsCookie::parse(&field)),
                ExtensionFieldType::NtsCookiePlaceholder => {
                    drop(NtsCookiePlaceholder::parse(&field))
                }
                ExtensionFieldType::NtsAuthenticator => {
                    if let Ok(auth) = NtsAuthenticator::parse(&field) {
                        assert_eq!(auth.body_len(), field.value.len());
                    }
                }
                _ => {}
            }
            builder.push(&field).expect("checked field re-emits");
        }
        // Checked fields are already padded, so they re-emit to the same bytes.
        let len = builder.len();
        assert_eq!(&buf[48..len], data);
    }
});
