//! Access control as operators write it for chrony's allow/deny and ntpd's restrict:
//! CIDR networks for IPv4 and IPv6, first match wins.

use alloc::format;
use alloc::string::String;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;

/// What to do with a request from an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum AccessAction {
    /// Answer.
    Allow,
    /// Drop silently.
    Ignore,
    /// Answer with a DENY kiss-o'-death (the client stops polling).
    Deny,
}

/// An IPv4 or IPv6 network: an address and a prefix length. An IPv4 network also matches
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    address: IpAddr,
    prefix: u8,
}

/// Why a network did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The address part is no IP address.
    #[error("{text:?} is not an IP address or ADDRESS/PREFIX network")]
    Address {
        /// The text given.
        text: String,
    },
    /// The prefix is not a number within the family's length.
    #[error("{text:?}: prefix length must be 0-{max}")]
    Prefix {
        /// The text given.
        text: String,
        /// 32 or 128.
        max: u8,
    },
    /// An IPv4-mapped network (`::ffff:a.b.c.d/N`) with N under 96: it would reach past
    /// the mapped addresses.
    #[error("{text:?}: an IPv4-mapped network needs a prefix of 96-128 (or write it as IPv4)")]
    MappedPrefix {
        /// The text given.
        text: String,
    },
    /// Bits set beyond the prefix (`10.1.2.3/8`): probably a typo for the network.
    #[error("{text:?}: address has bits set beyond the prefix (did you mean {network}?)")]
    HostBits {
        /// The text given.
        text: String,
        /// The network meant.
        network: String,
    },
}

impl Cidr {
    /// A network; `prefix` is capped at the family's length.
    pub fn new(address: IpAddr, prefix: u8) -> Self {
        let max = if address.is_ipv4() { 32 } else { 128 };
        Self {
            address,
            prefix: prefix.min(max),
        }
    }

    /// Every address of both families.
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }

    fn bits(address: IpAddr) -> (u128, u8) {
        match address {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        }
    }

    fn mask(prefix: u8, width: u8) -> u128 {
        if prefix == 0 {
            0
        } else {
            let all = if width == 32 {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            };
            all & !((1u128 << (width - prefix)) - 1)
        }
    }

    /// Whether `address` is in the network.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(a) if self.address.is_ipv4() => match a.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            a => a,
        };
        if address.is_ipv4() != self.address.is_ipv4() {
            return false;
        }
        let (net, width) = Self::bits(self.address);
        let (a, _) = Self::bits(address);
        let mask = Self::mask(self.prefix, width);
        net & mask == a & mask
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let address: IpAddr = addr.trim().parse().map_err(|_| CidrError::Address {
            text: text.to_string(),
        })?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                p.trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or(CidrError::Prefix {
                        text: text.to_string(),
                        max,
                    })?
            }
        };
        // IPv4 clients reach the IPv6 sockets (V6ONLY) never, the IPv4 ones as IPv4: an
        // IPv4-mapped rule is an IPv4 rule, or it would never match.
        let (address, prefix) = match address {
            IpAddr::V6(a) if a.to_ipv4_mapped().is_some() && prefix < 96 => {
                return Err(CidrError::MappedPrefix {
                    text: text.to_string(),
                });
            }
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix - 96),
                None => (address, prefix),
            },
            v4 => (v4, prefix),
        };
        let (bits, width) = Self::bits(address);
        let mask = Self::mask(prefix, width);
        if bits & !mask != 0 {
            let network = match address {
                IpAddr::V4(_) => IpAddr::V4(core::net::Ipv4Addr::from((bits & mask) as u32)),
                IpAddr::V6(_) => IpAddr::V6(core::net::Ipv6Addr::from(bits & mask)),
            };
            return Err(CidrError::HostBits {
                text: text.to_string(),
                network: format!("{network}/{prefix}"),
            });
        }
        Ok(Self { address, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// One rule: an action for some networks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRule {
    /// The action.
    pub action: AccessAction,
    /// The networks it applies to.
    pub networks: Vec<Cidr>,
}

/// Rules in order; the first that matches decides, `default` when none does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessList {
    /// The rules.
    pub rules: Vec<AccessRule>,
    /// The action when no rule matches.
    pub default: AccessAction,
}

impl Default for AccessList {
    /// Answer everyone.
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            default: AccessAction::Allow,
        }
    }
}

impl AccessList {
    /// The action for `address`.
    pub fn check(&self, address: IpAddr) -> AccessAction {
        self.rules
            .iter()
            .find(|r| r.networks.iter().any(|n| n.contains(address)))
            .map_or(self.default, |r| r.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_mapped_rules_are_ipv4_rules() {
        let c: Cidr = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(c, "10.0.0.0/8".parse::<Cidr>().unwrap());
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let host: Cidr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(matches!(
            "::ffff:0:0/80".parse::<Cidr>(),
            Err(CidrError::MappedPrefix { .. })
        ));
    }

    #[test]
    fn networks_parse_and_match() {
        let n: Cidr = "192.168.0.0/16".parse().unwrap();
        assert!(n.contains(ip("192.168.200.1")));
        assert!(!n.contains(ip("192.169.0.1")));
        assert!(n.contains(ip("::ffff:192.168.1.1")), "v4-mapped");
        assert!(!n.contains(ip("2001:db8::1")));
        let six: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(six.contains(ip("2001:db8:ffff::1")));
        assert!(!six.contains(ip("2001:db9::1")));
        assert!(!six.contains(ip("10.0.0.1")));
        let host: Cidr = "::1".parse().unwrap();
        assert!(host.contains(ip("::1")) && !host.contains(ip("::2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("2001:db8::1")));
        assert_eq!(n.to_string(), "192.168.0.0/16");
    }

    #[test]
    fn bad_networks_say_what_is_wrong() {
        assert!(matches!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::Prefix { max: 32, .. })
        ));
        assert!(matches!(
            "example.com".parse::<Cidr>(),
            Err(CidrError::Address { .. })
        ));
        let err = "10.1.2.3/8".parse::<Cidr>().unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/8"), "{err}");
    }

    #[test]
    fn first_match_wins() {
        let list = AccessList {
            rules: vec![
                AccessRule {
                    action: AccessAction::Deny,
                    networks: vec!["10.1.0.0/16".parse().unwrap()],
                },
                AccessRule {
                    action: AccessAction::Allow,
                    networks: vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
                },
            ],
            default: AccessAction::Ignore,
        };
        assert_eq!(list.check(ip("10.1.3.4")), AccessAction::Deny);
        assert_eq!(list.check(ip("10.2.3.4")), AccessAction::Allow);
        assert_eq!(list.check(ip("fd12::1")), AccessAction::Allow);
        assert_eq!(list.check(ip("192.0.2.1")), AccessAction::Ignore);
    }

    proptest! {
        #[test]
        fn a_network_contains_exactly_the_addresses_sharing_its_prefix(
            net in any::<u32>(), prefix in 0u8..=32, probe in any::<u32>()
        ) {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            let cidr = Cidr::new(IpAddr::V4((net & mask).into()), prefix);
            let text = cidr.to_string();
            prop_assert_eq!(text.parse::<Cidr>().unwrap(), cidr);
            prop_assert_eq!(
                cidr.contains(IpAddr::V4(probe.into())),
                probe & mask == net & mask
            );
        }
    }
}
