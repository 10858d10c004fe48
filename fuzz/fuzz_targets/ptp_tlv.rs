//! Any run of TLVs, each read as every typed TLV: never a panic; what reads re-emits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tempora_ptp_proto::tlv::*;
use tempora_ptp_proto::{TlvValue, Tlvs};

fn check<'a, T: TlvValue<'a> + PartialEq + core::fmt::Debug>(value: &'a [u8]) {
    if let Ok(parsed) = T::parse_value(value) {
        let mut out = vec![0u8; parsed.value_len()];
        parsed.emit_value(&mut out).expect("emit");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(tlvs) = Tlvs::new_checked(data, 0) else {
        return;
    };
    let total: usize = tlvs.into_iter().map(|t| 4 + t.value.len()).sum();
    assert_eq!(total, data.len());
    for tlv in tlvs {
        let v = tlv.value;
        check::<ManagementTlv<'_>>(v);
        check::<ManagementErrorStatus<'_>>(v);
        check::<OrganizationExtension<'_>>(v);
        check::<PathTrace<'_>>(v);
        check::<AlternateTimeOffsetIndicator<'_>>(v);
        check::<RequestUnicastTransmission>(v);
        check::<GrantUnicastTransmission>(v);
        check::<CancelUnicastTransmission>(v);
        check::<Authentication<'_>>(v);
    }
});
