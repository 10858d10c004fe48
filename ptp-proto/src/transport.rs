//! Transport facts (IEEE 1588-2019 annexes C, D, E) and PTP over Ethernet frames.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::Error;
use crate::buffer::{output_prefix, read_array};

/// UDP port of event messages (Sync, Delay_Req, Pdelay_Req, Pdelay_Resp).
pub const EVENT_PORT: u16 = 319;
/// UDP port of general messages.
pub const GENERAL_PORT: u16 = 320;
/// IPv4 multicast group of all messages but the peer-delay ones.
pub const IPV4_PRIMARY: Ipv4Addr = Ipv4Addr::new(224, 0, 1, 129);
/// IPv4 multicast group of the peer-delay messages.
pub const IPV4_PDELAY: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 107);
/// IPv6 multicast group of all messages but the peer-delay ones, at a given scope
/// (FF0X::181; linuxptp's default scope is 0xE, global).
pub const fn ipv6_primary(scope: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xFF00 | (scope as u16 & 0xF), 0, 0, 0, 0, 0, 0, 0x181)
}
/// IPv6 multicast group of the peer-delay messages (link-local scope).
pub const IPV6_PDELAY: Ipv6Addr = Ipv6Addr::new(0xFF02, 0, 0, 0, 0, 0, 0, 0x6B);
/// EtherType of PTP.
pub const ETHERTYPE_PTP: u16 = 0x88F7;
/// EtherType of an IEEE 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Destination MAC of all messages but the peer-delay ones.
pub const MAC_PRIMARY: [u8; 6] = [0x01, 0x1B, 0x19, 0x00, 0x00, 0x00];
/// Destination MAC of the peer-delay messages (not forwarded by bridges).
pub const MAC_PDELAY: [u8; 6] = [0x01, 0x80, 0xC2, 0x00, 0x00, 0x0E];

/// A PTP-over-Ethernet frame: addresses, an optional 802.1Q tag, and the PTP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EthernetFrame<'a> {
    /// Destination MAC.
    pub destination: [u8; 6],
    /// Source MAC.
    pub source: [u8; 6],
    /// The 802.1Q tag control information (priority, DEI, VLAN ID), if tagged.
    pub vlan: Option<u16>,
    /// The PTP message (and any Ethernet padding after it).
    pub payload: &'a [u8],
}

impl<'a> EthernetFrame<'a> {
    /// Reads a frame (without the FCS), which must carry PTP.
    pub fn parse(frame: &'a [u8]) -> Result<Self, Error> {
        let head: [u8; 14] = read_array(frame, 0, "Ethernet header")?;
        let mut destination = [0u8; 6];
        let mut source = [0u8; 6];
        destination.copy_from_slice(&head[..6]);
        source.copy_from_slice(&head[6..12]);
        let mut ethertype = u16::from_be_bytes([head[12], head[13]]);
        let mut at = 14;
        let mut vlan = None;
        if ethertype == ETHERTYPE_VLAN {
            let tag: [u8; 4] = read_array(frame, 14, "802.1Q tag")?;
            vlan = Some(u16::from_be_bytes([tag[0], tag[1]]));
            ethertype = u16::from_be_bytes([tag[2], tag[3]]);
            at = 18;
        }
        if ethertype != ETHERTYPE_PTP {
            return Err(Error::NotPtpEthertype { ethertype });
        }
        Ok(Self {
            destination,
            source,
            vlan,
            payload: &frame[at..],
        })
    }

    /// Bytes the frame takes.
    pub const fn buffer_len(&self) -> usize {
        14 + if self.vlan.is_some() { 4 } else { 0 } + self.payload.len()
    }

    /// Writes the frame; returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        let out = output_prefix(buffer, len)?;
        out[..6].copy_from_slice(&self.destination);
        out[6..12].copy_from_slice(&self.source);
        let mut at = 12;
        if let Some(tci) = self.vlan {
            out[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            out[14..16].copy_from_slice(&tci.to_be_bytes());
            at = 16;
        }
        out[at..at + 2].copy_from_slice(&ETHERTYPE_PTP.to_be_bytes());
        out[at + 2..].copy_from_slice(self.payload);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn constants() {
        assert_eq!(ipv6_primary(0xE).to_string(), "ff0e::181");
        assert_eq!(IPV6_PDELAY.to_string(), "ff02::6b");
        assert_eq!(IPV4_PRIMARY.to_string(), "224.0.1.129");
    }

    #[test]
    fn frames_with_and_without_vlan() {
        let payload = [1u8, 2, 3];
        for vlan in [None, Some(0x6064)] {
            let frame = EthernetFrame {
                destination: MAC_PRIMARY,
                source: [2, 0, 0, 0, 0, 1],
                vlan,
                payload: &payload,
            };
            let mut buf = [0u8; 32];
            let n = frame.emit(&mut buf).unwrap();
            assert_eq!(n, frame.buffer_len());
            assert_eq!(EthernetFrame::parse(&buf[..n]), Ok(frame));
        }
        let mut ip = [0u8; 20];
        ip[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(
            EthernetFrame::parse(&ip),
            Err(Error::NotPtpEthertype { ethertype: 0x0800 })
        );
        assert!(EthernetFrame::parse(&ip[..10]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(frame) = EthernetFrame::parse(&bytes) {
                let mut out = vec![0u8; frame.buffer_len()];
                prop_assert_eq!(frame.emit(&mut out), Ok(bytes.len()));
                prop_assert_eq!(out, bytes);
            }
        }
    }
}
