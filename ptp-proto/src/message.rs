//! Whole PTP messages: the header, the body of each message type (IEEE 1588-2019 clause
//! 13.4-13.12), and the TLVs after it.

use crate::Error;
use crate::buffer::{output_prefix, read_array};
use crate::header::{HEADER_LEN, MessageType, PtpHeader};
use crate::management::{ManagementBody, parse_management_body};
use crate::tlv::{TLV_HEADER_LEN, TlvType, TlvValue, Tlvs};
use crate::types::{
    ClockIdentity, ClockQuality, PortIdentity, PtpTimestamp, TIMESTAMP_LEN, TimeSource,
};

/// Byte offsets in the Announce body, from the body's start (IEEE 1588-2019 Table 43;
/// byte 12 is reserved).
mod field {
    use core::ops::Range;
    pub(super) const ORIGIN_TIMESTAMP: Range<usize> = 0..10;
    pub(super) const CURRENT_UTC_OFFSET: Range<usize> = 10..12;
    pub(super) const PRIORITY1: usize = 13;
    pub(super) const CLOCK_QUALITY: Range<usize> = 14..18;
    pub(super) const PRIORITY2: usize = 18;
    pub(super) const GRANDMASTER_IDENTITY: Range<usize> = 19..27;
    pub(super) const STEPS_REMOVED: Range<usize> = 27..29;
    pub(super) const TIME_SOURCE: usize = 29;
}

/// A big-endian number of the bytes (at most 8).
fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |n, &b| (n << 8) | u64::from(b))
}

/// The body of an Announce message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AnnounceBody {
    /// originTimestamp.
    pub origin_timestamp: PtpTimestamp,
    /// currentUtcOffset, seconds.
    pub current_utc_offset: i16,
    /// grandmasterPriority1.
    pub grandmaster_priority1: u8,
    /// grandmasterClockQuality.
    pub grandmaster_clock_quality: ClockQuality,
    /// grandmasterPriority2.
    pub grandmaster_priority2: u8,
    /// grandmasterIdentity.
    pub grandmaster_identity: ClockIdentity,
    /// stepsRemoved.
    pub steps_removed: u16,
    /// timeSource.
    pub time_source: TimeSource,
}

/// The body of each message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Body {
    /// Sync: in a one-step Sync the origin timestamp is the precise send time; in a
    /// two-step one it is approximate and a Follow_Up carries the precise one.
    Sync {
        /// originTimestamp.
        origin_timestamp: PtpTimestamp,
    },
    /// Delay_Req.
    DelayReq {
        /// originTimestamp.
        origin_timestamp: PtpTimestamp,
    },
    /// Pdelay_Req (10 reserved bytes follow the timestamp).
    PdelayReq {
        /// originTimestamp.
        origin_timestamp: PtpTimestamp,
    },
    /// Pdelay_Resp.
    PdelayResp {
        /// requestReceiptTimestamp.
        request_receipt_timestamp: PtpTimestamp,
        /// requestingPortIdentity.
        requesting_port_identity: PortIdentity,
    },
    /// Follow_Up.
    FollowUp {
        /// preciseOriginTimestamp.
        precise_origin_timestamp: PtpTimestamp,
    },
    /// Delay_Resp.
    DelayResp {
        /// receiveTimestamp.
        receive_timestamp: PtpTimestamp,
        /// requestingPortIdentity.
        requesting_port_identity: PortIdentity,
    },
    /// Pdelay_Resp_Follow_Up.
    PdelayRespFollowUp {
        /// responseOriginTimestamp.
        response_origin_timestamp: PtpTimestamp,
        /// requestingPortIdentity.
        requesting_port_identity: PortIdentity,
    },
    /// Announce.
    Announce(AnnounceBody),
    /// Signaling.
    Signaling {
        /// targetPortIdentity.
        target_port_identity: PortIdentity,
    },
    /// Management.
    Management(ManagementBody),
}

impl Body {
    /// The message type of this body.
    pub const fn message_type(&self) -> MessageType {
        match self {
            Self::Sync { .. } => MessageType::Sync,
            Self::DelayReq { .. } => MessageType::DelayReq,
            Self::PdelayReq { .. } => MessageType::PdelayReq,
            Self::PdelayResp { .. } => MessageType::PdelayResp,
            Self::FollowUp { .. } => MessageType::FollowUp,
            Self::DelayResp { .. } => MessageType::DelayResp,
            Self::PdelayRespFollowUp { .. } => MessageType::PdelayRespFollowUp,
            Self::Announce(_) => MessageType::Announce,
            Self::Signaling { .. } => MessageType::Signaling,
            Self::Management(_) => MessageType::Management,
        }
    }

    /// Reads the body of `message_type` at the start of `b`.
    pub fn parse(message_type: MessageType, b: &[u8]) -> Result<Self, Error> {
        let ts = |at: usize| PtpTimestamp::parse(b.get(at..).unwrap_or_default());
        let port = |at: usize| PortIdentity::parse(b.get(at..).unwrap_or_default());
        Ok(match message_type {
            MessageType::Sync => Self::Sync {
                origin_timestamp: ts(0)?,
            },
            MessageType::DelayReq => Self::DelayReq {
                origin_timestamp: ts(0)?,
            },
            MessageType::PdelayReq => Self::PdelayReq {
                origin_timestamp: ts(0)?,
            },
            MessageType::PdelayResp => Self::PdelayResp {
                request_receipt_timestamp: ts(0)?,
                requesting_port_identity: port(TIMESTAMP_LEN)?,
            },
            MessageType::FollowUp => Self::FollowUp {
                precise_origin_timestamp: ts(0)?,
            },
            MessageType::DelayResp => Self::DelayResp {
                receive_timestamp: ts(0)?,
                requesting_port_identity: port(TIMESTAMP_LEN)?,
            },
            MessageType::PdelayRespFollowUp => Self::PdelayRespFollowUp {
                response_origin_timestamp: ts(0)?,
                requesting_port_identity: port(TIMESTAMP_LEN)?,
            },
            MessageType::Announce => {
                let f: [u8; 30] = read_array(b, 0, "Announce body")?;
                Self::Announce(AnnounceBody {
                    origin_timestamp: PtpTimestamp::parse(&f[field::ORIGIN_TIMESTAMP])?,
                    current_utc_offset: be(&f[field::CURRENT_UTC_OFFSET]) as u16 as i16,
                    grandmaster_priority1: f[field::PRIORITY1],
                    grandmaster_clock_quality: ClockQuality::parse(&f[field::CLOCK_QUALITY])?,
                    grandmaster_priority2: f[field::PRIORITY2],
                    grandmaster_identity: ClockIdentity(
                        be(&f[field::GRANDMASTER_IDENTITY]).to_be_bytes(),
                    ),
                    steps_removed: be(&f[field::STEPS_REMOVED]) as u16,
                    time_source: TimeSource::from_u8(f[field::TIME_SOURCE]),
                })
            }
            MessageType::Signaling => Self::Signaling {
                target_port_identity: port(0)?,
            },
            MessageType::Management => Self::Management(parse_management_body(b)?),
        })
    }

    /// Writes the body into exactly `message_type().body_len()` bytes.
    fn emit(&self, out: &mut [u8]) {
        out.fill(0);
        match *self {
            Self::Sync {
                origin_timestamp: t,
            }
            | Self::DelayReq {
                origin_timestamp: t,
            }
            | Self::PdelayReq {
                origin_timestamp: t,
            }
            | Self::FollowUp {
                precise_origin_timestamp: t,
            } => out[..TIMESTAMP_LEN].copy_from_slice(&t.to_bytes()),
            Self::PdelayResp {
                request_receipt_timestamp: t,
                requesting_port_identity: p,
            }
            | Self::DelayResp {
                receive_timestamp: t,
                requesting_port_identity: p,
            }
            | Self::PdelayRespFollowUp {
                response_origin_timestamp: t,
                requesting_port_identity: p,
            } => {
                out[..TIMESTAMP_LEN].copy_from_slice(&t.to_bytes());
                out[TIMESTAMP_LEN..].copy_from_slice(&p.to_bytes());
            }
            Self::Announce(a) => {
                out[field::ORIGIN_TIMESTAMP].copy_from_slice(&a.origin_timestamp.to_bytes());
                out[field::CURRENT_UTC_OFFSET].copy_from_slice(&a.current_utc_offset.to_be_bytes());
                out[field::PRIORITY1] = a.grandmaster_priority1;
                out[field::CLOCK_QUALITY].copy_from_slice(&a.grandmaster_clock_quality.to_bytes());
                out[field::PRIORITY2] = a.grandmaster_priority2;
                out[field::GRANDMASTER_IDENTITY].copy_from_slice(&a.grandmaster_identity.0);
                out[field::STEPS_REMOVED].copy_from_slice(&a.steps_removed.to_be_bytes());
                out[field::TIME_SOURCE] = a.time_source.to_u8();
            }
            Self::Signaling {
                target_port_identity: p,
            } => out.copy_from_slice(&p.to_bytes()),
            Self::Management(m) => out.copy_from_slice(&m.to_bytes()),
        }
    }
}

/// A parsed PTP message, borrowing its TLVs from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PtpMessage<'a> {
    /// The common header.
    pub header: PtpHeader,
    /// The body.
    pub body: Body,
    /// The TLVs after the body, lengths checked.
    pub tlvs: Tlvs<'a>,
}

impl<'a> PtpMessage<'a> {
    /// Reads a message. messageLength is checked against the buffer and the type's
    /// minimum before anything past the header is read; bytes after messageLength
    /// (Ethernet padding) are ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let header = PtpHeader::parse(bytes)?;
        let declared = usize::from(header.message_length);
        let minimum = HEADER_LEN + header.message_type.body_len();
        if declared > bytes.len() || declared < minimum {
            return Err(Error::BadMessageLength {
                declared,
                buffer: bytes.len(),
                message: header.message_type.name(),
                minimum,
            });
        }
        let message = &bytes[..declared];
        let body = Body::parse(header.message_type, &message[HEADER_LEN..])?;
        let tlvs = Tlvs::new_checked(&message[minimum..], minimum)?;
        Ok(Self { header, body, tlvs })
    }

    /// Bytes the message takes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body.message_type().body_len() + self.tlvs.as_bytes().len()
    }

    /// Writes the message with messageLength set; returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, Error> {
        let mut writer = MessageWriter::new(buffer, &self.header, &self.body)?;
        writer.push_raw(self.tlvs.as_bytes())?;
        writer.finish()
    }
}

/// Writes a message: header and body, then TLVs; [`MessageWriter::finish`] sets
/// messageLength.
#[derive(Debug)]
pub struct MessageWriter<'b> {
    buffer: &'b mut [u8],
    len: usize,
}

impl<'b> MessageWriter<'b> {
    /// Starts a message. The header's message type is taken from the body.
    pub fn new(buffer: &'b mut [u8], header: &PtpHeader, body: &Body) -> Result<Self, Error> {
        let message_type = body.message_type();
        let start = HEADER_LEN + message_type.body_len();
        let out = output_prefix(buffer, start)?;
        let header = PtpHeader {
            message_type,
            ..*header
        };
        out[..HEADER_LEN].copy_from_slice(&header.to_bytes());
        body.emit(&mut out[HEADER_LEN..]);
        Ok(Self { buffer, len: start })
    }

    fn reserve(&mut self, extra: usize) -> Result<&mut [u8], Error> {
        let end = self.len + extra;
        if end > usize::from(u16::MAX) {
            return Err(Error::MessageTooLong { len: end });
        }
        let available = self.buffer.len();
        self.buffer
            .get_mut(self.len..end)
            .ok_or(Error::BufferTooSmall {
                needed: end,
                available,
            })
    }

    /// Appends already-encoded TLV bytes.
    pub fn push_raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.reserve(bytes.len())?.copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }

    /// Appends a TLV of any type; an odd value is padded with a zero.
    pub fn push_tlv(&mut self, tlv_type: TlvType, value: &[u8]) -> Result<(), Error> {
        self.push_with(tlv_type, value.len(), |out| {
            out.copy_from_slice(value);
            Ok(())
        })
    }

    /// Appends a typed TLV.
    pub fn push<'v, T: TlvValue<'v>>(&mut self, tlv: &T) -> Result<(), Error> {
        self.push_with(T::TYPE, tlv.value_len(), |out| tlv.emit_value(out))
    }

    fn push_with(
        &mut self,
        tlv_type: TlvType,
        value_len: usize,
        write: impl FnOnce(&mut [u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let padded = value_len.next_multiple_of(2);
        let length = u16::try_from(padded).map_err(|_| Error::MessageTooLong {
            len: self.len + TLV_HEADER_LEN + padded,
        })?;
        let out = self.reserve(TLV_HEADER_LEN + padded)?;
        out[..2].copy_from_slice(&tlv_type.to_u16().to_be_bytes());
        out[2..4].copy_from_slice(&length.to_be_bytes());
        let (value, pad) = out[TLV_HEADER_LEN..].split_at_mut(value_len);
        write(value)?;
        pad.fill(0);
        self.len += TLV_HEADER_LEN + padded;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing past the body is written.
    pub fn is_empty(&self) -> bool {
        self.len <= HEADER_LEN
    }

    /// Sets messageLength and returns the message length.
    pub fn finish(self) -> Result<usize, Error> {
        let length =
            u16::try_from(self.len).map_err(|_| Error::MessageTooLong { len: self.len })?;
        self.buffer[crate::header::field::LENGTH].copy_from_slice(&length.to_be_bytes());
        Ok(self.len)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::header::{Flags, LogInterval};
    use crate::management::{ManagementAction, ManagementData, ManagementId};
    use crate::tlv::{ManagementTlv, PathTrace};
    use crate::types::{ClockAccuracy, TimeInterval};
    use proptest::prelude::*;

    pub(crate) fn port(n: u8) -> PortIdentity {
        PortIdentity {
            clock_identity: ClockIdentity([n, 0x11, 0x22, 0xFF, 0xFE, 0x33, 0x44, 0x55]),
            port_number: 1,
        }
    }

    pub(crate) fn announce(priority1: u8, class: u8, gm: u8, steps: u16) -> AnnounceBody {
        AnnounceBody {
            origin_timestamp: PtpTimestamp::ZERO,
            current_utc_offset: 37,
            grandmaster_priority1: priority1,
            grandmaster_clock_quality: ClockQuality {
                clock_class: class,
                clock_accuracy: ClockAccuracy::Unknown,
                offset_scaled_log_variance: 0xFFFF,
            },
            grandmaster_priority2: 128,
            grandmaster_identity: port(gm).clock_identity,
            steps_removed: steps,
            time_source: TimeSource::InternalOscillator,
        }
    }

    #[test]
    fn exact_lengths_of_every_type() {
        let ts = PtpTimestamp::new(1, 2).unwrap();
        for (body, len) in [
            (
                Body::Sync {
                    origin_timestamp: ts,
                },
                44,
            ),
            (
                Body::DelayReq {
                    origin_timestamp: ts,
                },
                44,
            ),
            (
                Body::PdelayReq {
                    origin_timestamp: ts,
                },
                54,
            ),
            (
                Body::PdelayResp {
                    request_receipt_timestamp: ts,
                    requesting_port_identity: port(2),
                },
                54,
            ),
            (
                Body::FollowUp {
                    precise_origin_timestamp: ts,
                },
                44,
            ),
            (
                Body::DelayResp {
                    receive_timestamp: ts,
                    requesting_port_identity: port(2),
                },
                54,
            ),
            (
                Body::PdelayRespFollowUp {
                    response_origin_timestamp: ts,
                    requesting_port_identity: port(2),
                },
                54,
            ),
            (Body::Announce(announce(128, 248, 1, 0)), 64),
            (
                Body::Signaling {
                    target_port_identity: PortIdentity::ALL,
                },
                44,
            ),
            (
                Body::Management(ManagementBody {
                    target_port_identity: PortIdentity::ALL,
                    starting_boundary_hops: 0,
                    boundary_hops: 0,
                    action: ManagementAction::Get,
                }),
                48,
            ),
        ] {
            let header = PtpHeader::new(body.message_type(), port(1), 7);
            let mut buf = [0u8; 128];
            let n = MessageWriter::new(&mut buf, &header, &body)
                .unwrap()
                .finish()
                .unwrap();
            assert_eq!(n, len, "{body:?}");
            let msg = PtpMessage::parse(&buf[..n]).unwrap();
            assert_eq!(msg.body, body);
            assert_eq!(usize::from(msg.header.message_length), len);
            assert!(msg.tlvs.is_empty());
        }
    }

    #[test]
    fn message_length_checked_first() {
        let header = PtpHeader::new(MessageType::Announce, port(1), 1);
        let mut buf = [0u8; 128];
        let n = MessageWriter::new(&mut buf, &header, &Body::Announce(announce(1, 6, 1, 0)))
            .unwrap()
            .finish()
            .unwrap();
        // Longer than the buffer.
        assert!(matches!(
            PtpMessage::parse(&buf[..n - 1]),
            Err(Error::BadMessageLength { declared: 64, .. })
        ));
        // Shorter than an Announce.
        buf[3] = 40;
        assert!(matches!(
            PtpMessage::parse(&buf[..n]),
            Err(Error::BadMessageLength { minimum: 64, .. })
        ));
        // Ethernet padding after messageLength is ignored.
        buf[3] = 64;
        assert!(PtpMessage::parse(&buf[..n + 10]).is_ok());
    }

    #[test]
    fn announce_with_path_trace_and_management_with_data() {
        let header = PtpHeader {
            flags: Flags(Flags::PTP_TIMESCALE | Flags::UTC_OFFSET_VALID),
            log_message_interval: LogInterval(1),
            correction: TimeInterval::ZERO,
            ..PtpHeader::new(MessageType::Announce, port(1), 3)
        };
        let ids = [9u8, 9, 9, 9, 9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8];
        let mut buf = [0u8; 128];
        let mut w =
            MessageWriter::new(&mut buf, &header, &Body::Announce(announce(128, 248, 1, 1)))
                .unwrap();
        w.push(&PathTrace::new(&ids).unwrap()).unwrap();
        let n = w.finish().unwrap();
        assert_eq!(n, 64 + 4 + 16);
        let msg = PtpMessage::parse(&buf[..n]).unwrap();
        let path: PathTrace<'_> = msg
            .tlvs
            .find(TlvType::PathTrace)
            .unwrap()
            .parse_as()
            .unwrap();
        assert_eq!(path.len(), 2);

        let mut data = [0u8; 32];
        let dlen = ManagementData::Priority1(100).emit(&mut data).unwrap();
        let body = Body::Management(ManagementBody {
            target_port_identity: PortIdentity::ALL,
            starting_boundary_hops: 1,
            boundary_hops: 1,
            action: ManagementAction::Response,
        });
        let mut w = MessageWriter::new(
            &mut buf,
            &PtpHeader::new(MessageType::Management, port(1), 4),
            &body,
        )
        .unwrap();
        w.push(&ManagementTlv {
            id: ManagementId::Priority1,
            data: &data[..dlen],
        })
        .unwrap();
        let n = w.finish().unwrap();
        assert_eq!(n, 48 + 4 + 4);
        let msg = PtpMessage::parse(&buf[..n]).unwrap();
        let tlv: ManagementTlv<'_> = msg.tlvs.into_iter().next().unwrap().parse_as().unwrap();
        assert_eq!(
            ManagementData::parse(tlv.id, tlv.data),
            Ok(ManagementData::Priority1(100))
        );
        let mut again = [0u8; 128];
        assert_eq!(msg.emit(&mut again), Ok(n));
        assert_eq!(again[..n], buf[..n]);
    }

    #[test]
    fn one_step_sync_carries_the_time() {
        // One-step: twoStepFlag clear, the origin timestamp is the send time.
        let ts = PtpTimestamp::new(1_700_000_037, 123_456_789).unwrap();
        let header = PtpHeader::new(MessageType::Sync, port(1), 1);
        let mut buf = [0u8; 64];
        let n = MessageWriter::new(
            &mut buf,
            &header,
            &Body::Sync {
                origin_timestamp: ts,
            },
        )
        .unwrap()
        .finish()
        .unwrap();
        let msg = PtpMessage::parse(&buf[..n]).unwrap();
        assert!(!msg.header.flags.two_step());
        assert_eq!(
            msg.body,
            Body::Sync {
                origin_timestamp: ts
            }
        );
    }

    fn any_body() -> impl Strategy<Value = Body> {
        let ts = (0u64..(1 << 48), 0u32..1_000_000_000)
            .prop_map(|(s, n)| PtpTimestamp::new(s, n).unwrap());
        let port = (any::<[u8; 8]>(), any::<u16>()).prop_map(|(c, p)| PortIdentity {
            clock_identity: ClockIdentity(c),
            port_number: p,
        });
        prop_oneof![
            ts.clone().prop_map(|t| Body::Sync {
                origin_timestamp: t
            }),
            ts.clone().prop_map(|t| Body::DelayReq {
                origin_timestamp: t
            }),
            ts.clone().prop_map(|t| Body::PdelayReq {
                origin_timestamp: t
            }),
            ts.clone().prop_map(|t| Body::FollowUp {
                precise_origin_timestamp: t
            }),
            (ts.clone(), port.clone()).prop_map(|(t, p)| Body::DelayResp {
                receive_timestamp: t,
                requesting_port_identity: p
            }),
            (ts.clone(), port.clone()).prop_map(|(t, p)| Body::PdelayResp {
                request_receipt_timestamp: t,
                requesting_port_identity: p
            }),
            (ts.clone(), port.clone()).prop_map(|(t, p)| Body::PdelayRespFollowUp {
                response_origin_timestamp: t,
                requesting_port_identity: p
            }),
            port.clone().prop_map(|p| Body::Signaling {
                target_port_identity: p
            }),
            (
                ts,
                any::<i16>(),
                any::<u8>(),
                any::<[u8; 4]>(),
                any::<u8>(),
                any::<[u8; 8]>(),
                any::<u16>(),
                any::<u8>()
            )
                .prop_map(|(t, utc, p1, q, p2, gm, steps, src)| {
                    Body::Announce(AnnounceBody {
                        origin_timestamp: t,
                        current_utc_offset: utc,
                        grandmaster_priority1: p1,
                        grandmaster_clock_quality: ClockQuality::parse(&q).unwrap(),
                        grandmaster_priority2: p2,
                        grandmaster_identity: ClockIdentity(gm),
                        steps_removed: steps,
                        time_source: TimeSource::from_u8(src),
                    })
                }),
            (port, any::<u8>(), any::<u8>(), 0u8..16).prop_map(|(p, s, b, a)| Body::Management(
                ManagementBody {
                    target_port_identity: p,
                    starting_boundary_hops: s,
                    boundary_hops: b,
                    action: ManagementAction::from_u8(a),
                }
            )),
        ]
    }

    proptest! {
        #[test]
        fn messages_round_trip(
            body in any_body(),
            (sdo, minor, domain, minor_sdo, flags, corr, specific, seq, control, interval) in
                (0u8..16, 0u8..2, any::<u8>(), any::<u8>(), any::<u16>(), any::<i64>(), any::<[u8; 4]>(), any::<u16>(), any::<u8>(), any::<i8>()),
            tlvs in proptest::collection::vec((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..3),
        ) {
            let header = PtpHeader {
                major_sdo_id: sdo, minor_version: minor, domain_number: domain, minor_sdo_id: minor_sdo,
                flags: Flags(flags), correction: TimeInterval(corr), message_type_specific: specific,
                control_field: control, log_message_interval: LogInterval(interval),
                ..PtpHeader::new(body.message_type(), PortIdentity::default(), seq)
            };
            let mut buf = vec![0u8; 512];
            let mut w = MessageWriter::new(&mut buf, &header, &body).unwrap();
            for (t, v) in &tlvs {
                w.push_tlv(TlvType::from_u16(*t), v).unwrap();
            }
            let n = w.finish().unwrap();
            let msg = PtpMessage::parse(&buf[..n]).unwrap();
            prop_assert_eq!(msg.body, body);
            prop_assert_eq!(PtpHeader { message_length: 0, ..msg.header }, header);
            prop_assert_eq!(msg.tlvs.into_iter().count(), tlvs.len());
            let mut again = vec![0u8; n];
            prop_assert_eq!(msg.emit(&mut again), Ok(n));
            prop_assert_eq!(&again[..], &buf[..n]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(msg) = PtpMessage::parse(&bytes) {
                let n = msg.buffer_len();
                let mut again = vec![0u8; n];
                prop_assert_eq!(msg.emit(&mut again), Ok(n));
                // Reserved bytes are written as zeros: re-parse must give the same value.
                prop_assert_eq!(PtpMessage::parse(&again).map(|m| (m.header, m.body)), Ok((msg.header, msg.body)));
            }
        }
    }
}
