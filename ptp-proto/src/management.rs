//! Management (IEEE 1588-2019 clause 15): IDs, actions, errors, and the data sets a
//! monitoring tool reads (what `pmc` shows).

use crate::Error;
use crate::buffer::read_array;
use crate::types::{
    ClockIdentity, ClockQuality, DelayMechanism, PortIdentity, PortState, PtpText, PtpTimestamp,
    TimeInterval, TimeSource,
};

macro_rules! registry {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// Any other value, kept.
            Unknown(u16),
        }

        impl $name {
            /// The value of a wire number.
            pub const fn from_u16(value: u16) -> Self {
                match value {
                    $($value => Self::$variant,)*
                    other => Self::Unknown(other),
                }
            }

            /// The wire number.
            pub const fn to_u16(self) -> u16 {
                match self {
                    $(Self::$variant => $value,)*
                    Self::Unknown(other) => other,
                }
            }
        }

        wire_number!($name, u16, from_u16, to_u16);
    };
}

registry! {
    /// Management IDs (IEEE 1588-2019 Table 59).
    ManagementId {
        /// 0x0000.
        NullPtpManagement = 0x0000,
        /// 0x0001.
        ClockDescription = 0x0001,
        /// 0x0002.
        UserDescription = 0x0002,
        /// 0x0003.
        SaveInNonVolatileStorage = 0x0003,
        /// 0x0004.
        ResetNonVolatileStorage = 0x0004,
        /// 0x0005.
        Initialize = 0x0005,
        /// 0x0006.
        FaultLog = 0x0006,
        /// 0x0007.
        FaultLogReset = 0x0007,
        /// 0x2000.
        DefaultDataSet = 0x2000,
        /// 0x2001.
        CurrentDataSet = 0x2001,
        /// 0x2002.
        ParentDataSet = 0x2002,
        /// 0x2003.
        TimePropertiesDataSet = 0x2003,
        /// 0x2004.
        PortDataSet = 0x2004,
        /// 0x2005.
        Priority1 = 0x2005,
        /// 0x2006.
        Priority2 = 0x2006,
        /// 0x2007.
        Domain = 0x2007,
        /// 0x2008.
        SlaveOnly = 0x2008,
        /// 0x2009.
        LogAnnounceInterval = 0x2009,
        /// 0x200A.
        AnnounceReceiptTimeout = 0x200A,
        /// 0x200B.
        LogSyncInterval = 0x200B,
        /// 0x200C.
        VersionNumber = 0x200C,
        /// 0x200D.
        EnablePort = 0x200D,
        /// 0x200E.
        DisablePort = 0x200E,
        /// 0x200F.
        Time = 0x200F,
        /// 0x2010.
        ClockAccuracy = 0x2010,
        /// 0x2011.
        UtcProperties = 0x2011,
        /// 0x2012.
        TraceabilityProperties = 0x2012,
        /// 0x2013.
        TimescaleProperties = 0x2013,
        /// 0x2014.
        UnicastNegotiationEnable = 0x2014,
        /// 0x2015.
        PathTraceList = 0x2015,
        /// 0x2016.
        PathTraceEnable = 0x2016,
        /// 0x6000.
        DelayMechanism = 0x6000,
        /// 0x6001.
        LogMinPdelayReqInterval = 0x6001,
    }
}

registry! {
    /// Management error IDs (IEEE 1588-2019 Table 109).
    ManagementErrorId {
        /// 0x0001.
        ResponseTooBig = 0x0001,
        /// 0x0002.
        NoSuchId = 0x0002,
        /// 0x0003.
        WrongLength = 0x0003,
        /// 0x0004.
        WrongValue = 0x0004,
        /// 0x0005.
        NotSetable = 0x0005,
        /// 0x0006.
        NotSupported = 0x0006,
        /// 0xFFFE.
        GeneralError = 0xFFFE,
    }
}

/// The actionField of a management message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ManagementAction {
    /// 0.
    Get,
    /// 1.
    Set,
    /// 2.
    Response,
    /// 3.
    Command,
    /// 4.
    Acknowledge,
    /// 5 to 15 (reserved), kept.
    Unknown(u8),
}

wire_number!(ManagementAction, u8, from_u8, to_u8);

impl ManagementAction {
    /// The action of the low nibble of a byte.
    pub const fn from_u8(value: u8) -> Self {
        match value & 0x0F {
            0 => Self::Get,
            1 => Self::Set,
            2 => Self::Response,
            3 => Self::Command,
            4 => Self::Acknowledge,
            other => Self::Unknown(other),
        }
    }

    /// The 4-bit wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Get => 0,
            Self::Set => 1,
            Self::Response => 2,
            Self::Command => 3,
            Self::Acknowledge => 4,
            Self::Unknown(v) => v & 0x0F,
        }
    }
}

/// defaultDS (IEEE 1588-2019 15.5.3.3.1), 20 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DefaultDataSet {
    /// twoStepFlag.
    pub two_step: bool,
    /// slaveOnly.
    pub slave_only: bool,
    /// numberPorts.
    pub number_ports: u16,
    /// priority1.
    pub priority1: u8,
    /// clockQuality.
    pub clock_quality: ClockQuality,
    /// priority2.
    pub priority2: u8,
    /// clockIdentity.
    pub clock_identity: ClockIdentity,
    /// domainNumber.
    pub domain_number: u8,
}

/// currentDS, 18 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CurrentDataSet {
    /// stepsRemoved.
    pub steps_removed: u16,
    /// offsetFromMaster.
    pub offset_from_master: TimeInterval,
    /// meanPathDelay.
    pub mean_path_delay: TimeInterval,
}

/// parentDS, 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ParentDataSet {
    /// parentPortIdentity.
    pub parent_port_identity: PortIdentity,
    /// parentStats.
    pub parent_stats: bool,
    /// observedParentOffsetScaledLogVariance.
    pub observed_parent_offset_scaled_log_variance: u16,
    /// observedParentClockPhaseChangeRate.
    pub observed_parent_clock_phase_change_rate: i32,
    /// grandmasterPriority1.
    pub grandmaster_priority1: u8,
    /// grandmasterClockQuality.
    pub grandmaster_clock_quality: ClockQuality,
    /// grandmasterPriority2.
    pub grandmaster_priority2: u8,
    /// grandmasterIdentity.
    pub grandmaster_identity: ClockIdentity,
}

/// The time property flags of timePropertiesDS (bits of its flags octet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TimeFlags {
    /// leap61.
    pub leap61: bool,
    /// leap59.
    pub leap59: bool,
    /// currentUtcOffsetValid.
    pub utc_offset_valid: bool,
    /// ptpTimescale.
    pub ptp_timescale: bool,
    /// timeTraceable.
    pub time_traceable: bool,
    /// frequencyTraceable.
    pub frequency_traceable: bool,
}

impl TimeFlags {
    /// The flags of an octet.
    pub const fn from_u8(b: u8) -> Self {
        Self {
            leap61: b & 0x01 != 0,
            leap59: b & 0x02 != 0,
            utc_offset_valid: b & 0x04 != 0,
            ptp_timescale: b & 0x08 != 0,
            time_traceable: b & 0x10 != 0,
            frequency_traceable: b & 0x20 != 0,
        }
    }

    /// The octet.
    pub const fn to_u8(self) -> u8 {
        (self.leap61 as u8)
            | (self.leap59 as u8) << 1
            | (self.utc_offset_valid as u8) << 2
            | (self.ptp_timescale as u8) << 3
            | (self.time_traceable as u8) << 4
            | (self.frequency_traceable as u8) << 5
    }
}

/// timePropertiesDS, 4 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TimePropertiesDataSet {
    /// currentUtcOffset, seconds (TAI - UTC).
    pub current_utc_offset: i16,
    /// The flags.
    pub flags: TimeFlags,
    /// timeSource.
    pub time_source: TimeSource,
}

/// portDS, 26 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PortDataSet {
    /// portIdentity.
    pub port_identity: PortIdentity,
    /// portState.
    pub port_state: PortState,
    /// logMinDelayReqInterval.
    pub log_min_delay_req_interval: i8,
    /// peerMeanPathDelay.
    pub peer_mean_path_delay: TimeInterval,
    /// logAnnounceInterval.
    pub log_announce_interval: i8,
    /// announceReceiptTimeout.
    pub announce_receipt_timeout: u8,
    /// logSyncInterval.
    pub log_sync_interval: i8,
    /// delayMechanism.
    pub delay_mechanism: DelayMechanism,
    /// logMinPdelayReqInterval.
    pub log_min_pdelay_req_interval: i8,
    /// versionNumber (low nibble).
    pub version_number: u8,
}

/// CLOCK_DESCRIPTION: what the clock is, in text and addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClockDescription<'a> {
    /// clockType bits.
    pub clock_type: u16,
    /// physicalLayerProtocol ("IEEE 802.3").
    pub physical_layer_protocol: PtpText<'a>,
    /// physicalAddress (a MAC).
    pub physical_address: &'a [u8],
    /// networkProtocol of protocolAddress (1 UDP/IPv4, 2 UDP/IPv6, 3 IEEE 802.3).
    pub network_protocol: u16,
    /// protocolAddress.
    pub protocol_address: &'a [u8],
    /// manufacturerIdentity (OUI).
    pub manufacturer_identity: [u8; 3],
    /// productDescription.
    pub product_description: PtpText<'a>,
    /// revisionData.
    pub revision_data: PtpText<'a>,
    /// userDescription.
    pub user_description: PtpText<'a>,
    /// profileIdentity.
    pub profile_identity: [u8; 6],
}

/// The data of a management TLV, typed by its ID. Data of IDs without a layout here is
/// kept as bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ManagementData<'a> {
    /// NULL_PTP_MANAGEMENT (and any ID with empty data).
    Null,
    /// CLOCK_DESCRIPTION.
    ClockDescription(ClockDescription<'a>),
    /// USER_DESCRIPTION.
    UserDescription(PtpText<'a>),
    /// DEFAULT_DATA_SET.
    DefaultDataSet(DefaultDataSet),
    /// CURRENT_DATA_SET.
    CurrentDataSet(CurrentDataSet),
    /// PARENT_DATA_SET.
    ParentDataSet(ParentDataSet),
    /// TIME_PROPERTIES_DATA_SET.
    TimePropertiesDataSet(TimePropertiesDataSet),
    /// PORT_DATA_SET.
    PortDataSet(PortDataSet),
    /// PRIORITY1.
    Priority1(u8),
    /// PRIORITY2.
    Priority2(u8),
    /// DOMAIN.
    Domain(u8),
    /// SLAVE_ONLY.
    SlaveOnly(bool),
    /// LOG_ANNOUNCE_INTERVAL.
    LogAnnounceInterval(i8),
    /// ANNOUNCE_RECEIPT_TIMEOUT.
    AnnounceReceiptTimeout(u8),
    /// LOG_SYNC_INTERVAL.
    LogSyncInterval(i8),
    /// VERSION_NUMBER.
    VersionNumber(u8),
    /// TIME.
    Time(PtpTimestamp),
    /// CLOCK_ACCURACY.
    ClockAccuracy(crate::types::ClockAccuracy),
    /// UTC_PROPERTIES: currentUtcOffset and the leap and valid flags.
    UtcProperties {
        /// currentUtcOffset.
        current_utc_offset: i16,
        /// leap61, leap59, utc_offset_valid (other flags unused).
        flags: TimeFlags,
    },
    /// TRACEABILITY_PROPERTIES: timeTraceable and frequencyTraceable.
    TraceabilityProperties(TimeFlags),
    /// TIMESCALE_PROPERTIES: ptpTimescale and timeSource.
    TimescaleProperties {
        /// ptpTimescale (other flags unused).
        flags: TimeFlags,
        /// timeSource.
        time_source: TimeSource,
    },
    /// Any other ID, its data kept as bytes.
    Other(ManagementId, &'a [u8]),
}

fn expect_len(id: ManagementId, data: &[u8], expected: usize) -> Result<(), Error> {
    if data.len() < expected {
        return Err(Error::ManagementDataLength {
            id: id.to_u16(),
            length: data.len(),
            expected,
        });
    }
    Ok(())
}

fn ti(b: &[u8]) -> TimeInterval {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[..8]);
    TimeInterval(i64::from_be_bytes(x))
}

fn clock_identity(b: &[u8]) -> ClockIdentity {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[..8]);
    ClockIdentity(x)
}

impl<'a> ManagementData<'a> {
    /// Reads the data of a management ID. Empty data (a GET) is [`ManagementData::Null`].
    /// Data longer than the layout (a pad byte) is accepted.
    pub fn parse(id: ManagementId, data: &'a [u8]) -> Result<Self, Error> {
        use ManagementId as Id;
        if data.is_empty() {
            return Ok(Self::Null);
        }
        let byte = |n: usize| -> Result<u8, Error> {
            expect_len(id, data, n)?;
            Ok(data[0])
        };
        Ok(match id {
            Id::NullPtpManagement => Self::Null,
            Id::ClockDescription => Self::ClockDescription(parse_clock_description(data)?),
            Id::UserDescription => Self::UserDescription(PtpText::parse(data)?.0),
            Id::DefaultDataSet => {
                expect_len(id, data, 20)?;
                Self::DefaultDataSet(DefaultDataSet {
                    two_step: data[0] & 1 != 0,
                    slave_only: data[0] & 2 != 0,
                    number_ports: u16::from_be_bytes([data[2], data[3]]),
                    priority1: data[4],
                    clock_quality: ClockQuality::parse(&data[5..9])?,
                    priority2: data[9],
                    clock_identity: clock_identity(&data[10..18]),
                    domain_number: data[18],
                })
            }
            Id::CurrentDataSet => {
                expect_len(id, data, 18)?;
                Self::CurrentDataSet(CurrentDataSet {
                    steps_removed: u16::from_be_bytes([data[0], data[1]]),
                    offset_from_master: ti(&data[2..10]),
                    mean_path_delay: ti(&data[10..18]),
                })
            }
            Id::ParentDataSet => {
                expect_len(id, data, 32)?;
                Self::ParentDataSet(ParentDataSet {
                    parent_port_identity: PortIdentity::parse(&data[0..10])?,
                    parent_stats: data[10] & 1 != 0,
                    observed_parent_offset_scaled_log_variance: u16::from_be_bytes([
                        data[12], data[13],
                    ]),
                    observed_parent_clock_phase_change_rate: i32::from_be_bytes([
                        data[14], data[15], data[16], data[17],
                    ]),
                    grandmaster_priority1: data[18],
                    grandmaster_clock_quality: ClockQuality::parse(&data[19..23])?,
                    grandmaster_priority2: data[23],
                    grandmaster_identity: clock_identity(&data[24..32]),
                })
            }
            Id::TimePropertiesDataSet => {
                expect_len(id, data, 4)?;
                Self::TimePropertiesDataSet(TimePropertiesDataSet {
                    current_utc_offset: i16::from_be_bytes([data[0], data[1]]),
                    flags: TimeFlags::from_u8(data[2]),
                    time_source: TimeSource::from_u8(data[3]),
                })
            }
            Id::PortDataSet => {
                expect_len(id, data, 26)?;
                Self::PortDataSet(PortDataSet {
                    port_identity: PortIdentity::parse(&data[0..10])?,
                    port_state: PortState::from_u8(data[10]),
                    log_min_delay_req_interval: data[11] as i8,
                    peer_mean_path_delay: ti(&data[12..20]),
                    log_announce_interval: data[20] as i8,
                    announce_receipt_timeout: data[21],
                    log_sync_interval: data[22] as i8,
                    delay_mechanism: DelayMechanism::from_u8(data[23]),
                    log_min_pdelay_req_interval: data[24] as i8,
                    version_number: data[25] & 0x0F,
                })
            }
            Id::Priority1 => Self::Priority1(byte(2)?),
            Id::Priority2 => Self::Priority2(byte(2)?),
            Id::Domain => Self::Domain(byte(2)?),
            Id::SlaveOnly => Self::SlaveOnly(byte(2)? & 1 != 0),
            Id::LogAnnounceInterval => Self::LogAnnounceInterval(byte(2)? as i8),
            Id::AnnounceReceiptTimeout => Self::AnnounceReceiptTimeout(byte(2)?),
            Id::LogSyncInterval => Self::LogSyncInterval(byte(2)? as i8),
            Id::VersionNumber => Self::VersionNumber(byte(2)? & 0x0F),
            Id::Time => {
                expect_len(id, data, 10)?;
                Self::Time(PtpTimestamp::parse(data)?)
            }
            Id::ClockAccuracy => {
                Self::ClockAccuracy(crate::types::ClockAccuracy::from_u8(byte(2)?))
            }
            Id::UtcProperties => {
                expect_len(id, data, 4)?;
                Self::UtcProperties {
                    current_utc_offset: i16::from_be_bytes([data[0], data[1]]),
                    flags: TimeFlags::from_u8(data[2]),
                }
            }
            Id::TraceabilityProperties => {
                Self::TraceabilityProperties(TimeFlags::from_u8(byte(2)?))
            }
            Id::TimescaleProperties => {
                expect_len(id, data, 2)?;
                Self::TimescaleProperties {
                    flags: TimeFlags::from_u8(data[0]),
                    time_source: TimeSource::from_u8(data[1]),
                }
            }
            other => Self::Other(other, data),
        })
    }

    /// The management ID this data belongs to (`None` for [`ManagementData::Null`]).
    pub const fn id(&self) -> Option<ManagementId> {
        use ManagementId as Id;
        Some(match self {
            Self::Null => return None,
            Self::ClockDescription(_) => Id::ClockDescription,
            Self::UserDescription(_) => Id::UserDescription,
            Self::DefaultDataSet(_) => Id::DefaultDataSet,
            Self::CurrentDataSet(_) => Id::CurrentDataSet,
            Self::ParentDataSet(_) => Id::ParentDataSet,
            Self::TimePropertiesDataSet(_) => Id::TimePropertiesDataSet,
            Self::PortDataSet(_) => Id::PortDataSet,
            Self::Priority1(_) => Id::Priority1,
            Self::Priority2(_) => Id::Priority2,
            Self::Domain(_) => Id::Domain,
            Self::SlaveOnly(_) => Id::SlaveOnly,
            Self::LogAnnounceInterval(_) => Id::LogAnnounceInterval,
            Self::AnnounceReceiptTimeout(_) => Id::AnnounceReceiptTimeout,
            Self::LogSyncInterval(_) => Id::LogSyncInterval,
            Self::VersionNumber(_) => Id::VersionNumber,
            Self::Time(_) => Id::Time,
            Self::ClockAccuracy(_) => Id::ClockAccuracy,
            Self::UtcProperties { .. } => Id::UtcProperties,
            Self::TraceabilityProperties(_) => Id::TraceabilityProperties,
            Self::TimescaleProperties { .. } => Id::TimescaleProperties,
            Self::Other(id, _) => *id,
        })
    }

    /// Writes the data (padded to an even length) into `out`; returns its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        let mut tmp = [0u8; 32];
        let fixed: &[u8] = match *self {
            Self::Null => &[],
            Self::ClockDescription(ref d) => return emit_clock_description(d, out),
            Self::UserDescription(text) => {
                let len = text.emit(out)?;
                return pad_even(out, len);
            }
            Self::Other(_, data) => {
                let out = crate::buffer::output_prefix(out, data.len())?;
                out.copy_from_slice(data);
                return Ok(data.len());
            }
            Self::DefaultDataSet(d) => {
                tmp[0] = u8::from(d.two_step) | u8::from(d.slave_only) << 1;
                tmp[2..4].copy_from_slice(&d.number_ports.to_be_bytes());
                tmp[4] = d.priority1;
                tmp[5..9].copy_from_slice(&d.clock_quality.to_bytes());
                tmp[9] = d.priority2;
                tmp[10..18].copy_from_slice(&d.clock_identity.0);
                tmp[18] = d.domain_number;
                &tmp[..20]
            }
            Self::CurrentDataSet(d) => {
                tmp[..2].copy_from_slice(&d.steps_removed.to_be_bytes());
                tmp[2..10].copy_from_slice(&d.offset_from_master.0.to_be_bytes());
                tmp[10..18].copy_from_slice(&d.mean_path_delay.0.to_be_bytes());
                &tmp[..18]
            }
            Self::ParentDataSet(d) => {
                tmp[..10].copy_from_slice(&d.parent_port_identity.to_bytes());
                tmp[10] = u8::from(d.parent_stats);
                tmp[12..14]
                    .copy_from_slice(&d.observed_parent_offset_scaled_log_variance.to_be_bytes());
                tmp[14..18]
                    .copy_from_slice(&d.observed_parent_clock_phase_change_rate.to_be_bytes());
                tmp[18] = d.grandmaster_priority1;
                tmp[19..23].copy_from_slice(&d.grandmaster_clock_quality.to_bytes());
                tmp[23] = d.grandmaster_priority2;
                tmp[24..32].copy_from_slice(&d.grandmaster_identity.0);
                &tmp[..32]
            }
            Self::TimePropertiesDataSet(d) => {
                tmp[..2].copy_from_slice(&d.current_utc_offset.to_be_bytes());
                tmp[2] = d.flags.to_u8();
                tmp[3] = d.time_source.to_u8();
                &tmp[..4]
            }
            Self::PortDataSet(d) => {
                tmp[..10].copy_from_slice(&d.port_identity.to_bytes());
                tmp[10] = d.port_state.to_u8();
                tmp[11] = d.log_min_delay_req_interval as u8;
                tmp[12..20].copy_from_slice(&d.peer_mean_path_delay.0.to_be_bytes());
                tmp[20] = d.log_announce_interval as u8;
                tmp[21] = d.announce_receipt_timeout;
                tmp[22] = d.log_sync_interval as u8;
                tmp[23] = d.delay_mechanism.to_u8();
                tmp[24] = d.log_min_pdelay_req_interval as u8;
                tmp[25] = d.version_number & 0x0F;
                &tmp[..26]
            }
            Self::Priority1(v) | Self::Priority2(v) | Self::Domain(v) => {
                tmp[0] = v;
                &tmp[..2]
            }
            Self::AnnounceReceiptTimeout(v) => {
                tmp[0] = v;
                &tmp[..2]
            }
            Self::VersionNumber(v) => {
                tmp[0] = v & 0x0F;
                &tmp[..2]
            }
            Self::SlaveOnly(v) => {
                tmp[0] = u8::from(v);
                &tmp[..2]
            }
            Self::LogAnnounceInterval(v) | Self::LogSyncInterval(v) => {
                tmp[0] = v as u8;
                &tmp[..2]
            }
            Self::Time(t) => {
                tmp[..10].copy_from_slice(&t.to_bytes());
                &tmp[..10]
            }
            Self::ClockAccuracy(a) => {
                tmp[0] = a.to_u8();
                &tmp[..2]
            }
            Self::UtcProperties {
                current_utc_offset,
                flags,
            } => {
                tmp[..2].copy_from_slice(&current_utc_offset.to_be_bytes());
                tmp[2] = flags.to_u8();
                &tmp[..4]
            }
            Self::TraceabilityProperties(flags) => {
                tmp[0] = flags.to_u8();
                &tmp[..2]
            }
            Self::TimescaleProperties { flags, time_source } => {
                tmp[0] = flags.to_u8();
                tmp[1] = time_source.to_u8();
                &tmp[..2]
            }
        };
        let out = crate::buffer::output_prefix(out, fixed.len())?;
        out.copy_from_slice(fixed);
        Ok(fixed.len())
    }
}

/// Pads `len` written bytes to an even length with a zero.
fn pad_even(out: &mut [u8], len: usize) -> Result<usize, Error> {
    if len % 2 == 0 {
        return Ok(len);
    }
    *crate::buffer::output_prefix(out, len + 1)?
        .last_mut()
        .ok_or(Error::BufferTooSmall {
            needed: len + 1,
            available: 0,
        })? = 0;
    Ok(len + 1)
}

fn parse_clock_description(data: &[u8]) -> Result<ClockDescription<'_>, Error> {
    let mut pos = 0;
    let take = |pos: &mut usize, n: usize, what: &'static str| -> Result<&[u8], Error> {
        let s = data.get(*pos..*pos + n).ok_or(Error::Truncated {
            what,
            offset: *pos,
            needed: n,
            available: data.len().saturating_sub(*pos),
        })?;
        *pos += n;
        Ok(s)
    };
    let text = |pos: &mut usize| -> Result<PtpText<'_>, Error> {
        let (t, used) = PtpText::parse(data.get(*pos..).unwrap_or_default())?;
        *pos += used;
        Ok(t)
    };
    let clock_type = take(&mut pos, 2, "clockType")?;
    let physical_layer_protocol = text(&mut pos)?;
    let len = take(&mut pos, 2, "physicalAddressLength")?;
    let physical_address = take(
        &mut pos,
        usize::from(u16::from_be_bytes([len[0], len[1]])),
        "physicalAddress",
    )?;
    let proto = take(&mut pos, 4, "protocolAddress")?;
    let protocol_address = take(
        &mut pos,
        usize::from(u16::from_be_bytes([proto[2], proto[3]])),
        "addressField",
    )?;
    let oui = take(&mut pos, 4, "manufacturerIdentity")?;
    let product_description = text(&mut pos)?;
    let revision_data = text(&mut pos)?;
    let user_description = text(&mut pos)?;
    let profile = take(&mut pos, 6, "profileIdentity")?;
    let mut profile_identity = [0u8; 6];
    profile_identity.copy_from_slice(profile);
    Ok(ClockDescription {
        clock_type: u16::from_be_bytes([clock_type[0], clock_type[1]]),
        physical_layer_protocol,
        physical_address,
        network_protocol: u16::from_be_bytes([proto[0], proto[1]]),
        protocol_address,
        manufacturer_identity: [oui[0], oui[1], oui[2]],
        product_description,
        revision_data,
        user_description,
        profile_identity,
    })
}

fn emit_clock_description(d: &ClockDescription<'_>, out: &mut [u8]) -> Result<usize, Error> {
    let mut pos = 0;
    let mut put = |bytes: &[u8], out: &mut [u8]| -> Result<(), Error> {
        let available = out.len();
        let dst = out
            .get_mut(pos..pos + bytes.len())
            .ok_or(Error::BufferTooSmall {
                needed: pos + bytes.len(),
                available,
            })?;
        dst.copy_from_slice(bytes);
        pos += bytes.len();
        Ok(())
    };
    let u16_len = |s: &[u8]| -> Result<[u8; 2], Error> {
        u16::try_from(s.len())
            .map(u16::to_be_bytes)
            .map_err(|_| Error::TextTooLong { len: s.len() })
    };
    let text = |t: PtpText<'_>| -> Result<[u8; 1], Error> {
        u8::try_from(t.0.len())
            .map(|l| [l])
            .map_err(|_| Error::TextTooLong { len: t.0.len() })
    };
    put(&d.clock_type.to_be_bytes(), out)?;
    put(&text(d.physical_layer_protocol)?, out)?;
    put(d.physical_layer_protocol.0, out)?;
    put(&u16_len(d.physical_address)?, out)?;
    put(d.physical_address, out)?;
    put(&d.network_protocol.to_be_bytes(), out)?;
    put(&u16_len(d.protocol_address)?, out)?;
    put(d.protocol_address, out)?;
    put(&d.manufacturer_identity, out)?;
    put(&[0], out)?;
    for t in [d.product_description, d.revision_data, d.user_description] {
        put(&text(t)?, out)?;
        put(t.0, out)?;
    }
    put(&d.profile_identity, out)?;
    pad_even(out, pos)
}

/// Reads the fixed part of a management message body (after the header): target port,
/// boundary hops, action.
pub(crate) fn parse_management_body(b: &[u8]) -> Result<ManagementBody, Error> {
    let f: [u8; 14] = read_array(b, 0, "Management body")?;
    Ok(ManagementBody {
        target_port_identity: PortIdentity::parse(&f[..10])?,
        starting_boundary_hops: f[10],
        boundary_hops: f[11],
        action: ManagementAction::from_u8(f[12]),
    })
}

/// The fixed fields of a management message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ManagementBody {
    /// targetPortIdentity ([`PortIdentity::ALL`] for every port).
    pub target_port_identity: PortIdentity,
    /// startingBoundaryHops.
    pub starting_boundary_hops: u8,
    /// boundaryHops.
    pub boundary_hops: u8,
    /// actionField.
    pub action: ManagementAction,
}

impl ManagementBody {
    /// The 14 wire bytes.
    pub fn to_bytes(&self) -> [u8; 14] {
        let mut b = [0u8; 14];
        b[..10].copy_from_slice(&self.target_port_identity.to_bytes());
        b[10] = self.starting_boundary_hops;
        b[11] = self.boundary_hops;
        b[12] = self.action.to_u8();
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ClockAccuracy;

    fn round_trip(data: ManagementData<'_>) {
        let mut buf = [0u8; 128];
        let len = data.emit(&mut buf).unwrap();
        assert_eq!(len % 2, 0, "{data:?}");
        let id = data.id().unwrap();
        let back = ManagementData::parse(id, &buf[..len]).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn ids_keep_unknown() {
        for v in [0u16, 1, 0x2000, 0x2004, 0x2013, 0xC000, 0x1234] {
            assert_eq!(ManagementId::from_u16(v).to_u16(), v);
        }
        assert_eq!(ManagementErrorId::from_u16(2), ManagementErrorId::NoSuchId);
        assert_eq!(ManagementAction::from_u8(0x12), ManagementAction::Response);
    }

    #[test]
    fn every_data_set_round_trips() {
        let quality = ClockQuality {
            clock_class: 248,
            clock_accuracy: ClockAccuracy::Unknown,
            offset_scaled_log_variance: 0xFFFF,
        };
        let port = PortIdentity {
            clock_identity: ClockIdentity([1, 2, 3, 4, 5, 6, 7, 8]),
            port_number: 1,
        };
        round_trip(ManagementData::DefaultDataSet(DefaultDataSet {
            two_step: true,
            slave_only: false,
            number_ports: 1,
            priority1: 128,
            clock_quality: quality,
            priority2: 128,
            clock_identity: port.clock_identity,
            domain_number: 0,
        }));
        round_trip(ManagementData::CurrentDataSet(CurrentDataSet {
            steps_removed: 1,
            offset_from_master: TimeInterval::from_nanos(-120),
            mean_path_delay: TimeInterval::from_nanos(4500),
        }));
        round_trip(ManagementData::ParentDataSet(ParentDataSet {
            parent_port_identity: port,
            parent_stats: false,
            observed_parent_offset_scaled_log_variance: 0xFFFF,
            observed_parent_clock_phase_change_rate: 0x7FFF_FFFF,
            grandmaster_priority1: 128,
            grandmaster_clock_quality: quality,
            grandmaster_priority2: 128,
            grandmaster_identity: port.clock_identity,
        }));
        round_trip(ManagementData::TimePropertiesDataSet(
            TimePropertiesDataSet {
                current_utc_offset: 37,
                flags: TimeFlags {
                    ptp_timescale: true,
                    utc_offset_valid: true,
                    ..TimeFlags::default()
                },
                time_source: TimeSource::InternalOscillator,
            },
        ));
        round_trip(ManagementData::PortDataSet(PortDataSet {
            port_identity: port,
            port_state: PortState::Slave,
            log_min_delay_req_interval: 0,
            peer_mean_path_delay: TimeInterval::ZERO,
            log_announce_interval: 1,
            announce_receipt_timeout: 3,
            log_sync_interval: 0,
            delay_mechanism: DelayMechanism::E2e,
            log_min_pdelay_req_interval: 0,
            version_number: 2,
        }));
        for d in [
            ManagementData::Priority1(128),
            ManagementData::Priority2(127),
            ManagementData::Domain(24),
            ManagementData::SlaveOnly(true),
            ManagementData::LogAnnounceInterval(-1),
            ManagementData::AnnounceReceiptTimeout(3),
            ManagementData::LogSyncInterval(-4),
            ManagementData::VersionNumber(2),
            ManagementData::Time(PtpTimestamp::new(1_700_000_037, 5).unwrap()),
            ManagementData::ClockAccuracy(ClockAccuracy::from_u8(0x21)),
            ManagementData::UtcProperties {
                current_utc_offset: 37,
                flags: TimeFlags {
                    utc_offset_valid: true,
                    ..TimeFlags::default()
                },
            },
            ManagementData::TraceabilityProperties(TimeFlags {
                time_traceable: true,
                frequency_traceable: true,
                ..TimeFlags::default()
            }),
            ManagementData::TimescaleProperties {
                flags: TimeFlags {
                    ptp_timescale: true,
                    ..TimeFlags::default()
                },
                time_source: TimeSource::Gnss,
            },
            ManagementData::UserDescription(PtpText(b"tempora;host")),
            ManagementData::UserDescription(PtpText(b"odd")),
            ManagementData::Other(ManagementId::Unknown(0xC000), &[1, 2, 3, 4]),
        ] {
            round_trip(d);
        }
        round_trip(ManagementData::ClockDescription(ClockDescription {
            clock_type: 0x8000,
            physical_layer_protocol: PtpText(b"IEEE 802.3"),
            physical_address: &[2, 0, 0, 0, 0, 1],
            network_protocol: 1,
            protocol_address: &[10, 0, 0, 1],
            manufacturer_identity: [0, 0, 0],
            product_description: PtpText(b";;"),
            revision_data: PtpText(b";;"),
            user_description: PtpText(b""),
            profile_identity: [0, 0x1B, 0x19, 0, 1, 0],
        }));
    }

    #[test]
    fn short_data_is_an_error_naming_the_id() {
        assert_eq!(
            ManagementData::parse(ManagementId::DefaultDataSet, &[0; 10]),
            Err(Error::ManagementDataLength {
                id: 0x2000,
                length: 10,
                expected: 20
            })
        );
        assert_eq!(
            ManagementData::parse(ManagementId::DefaultDataSet, &[]),
            Ok(ManagementData::Null)
        );
        assert!(ManagementData::parse(ManagementId::ClockDescription, &[0, 0, 5, b'a']).is_err());
    }
}
