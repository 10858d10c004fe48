//! What the server remembers per client, in bounded memory: the rate limiter's tokens, and
//! the timestamps interleaved mode needs, kept per request rather than per address (as
//! chrony 4 does), so that clients behind one address do not knock each other out. A fixed table (4-way buckets, least recently
//! seen evicted) keyed with a secret seed, so no one can choose addresses that collide.

use alloc::vec;
use alloc::vec::Vec;
use core::hash::Hasher;
use core::net::IpAddr;

use siphasher::sip::SipHasher13;

use tempora_ntp_proto::NtpTimestamp;

/// Rate limiting as chrony's `ratelimit` sets it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct RateLimit {
    /// Turned on.
    pub enabled: bool,
    /// Average interval between answers a client may have, log2 seconds (3: 8 s).
    pub interval: i8,
    /// Answers a client may have in a burst before the interval applies.
    pub burst: u16,
    /// Of the requests over the limit, 1 in 2^leak is answered anyway, so a client behind
    /// a busy NAT still hears now and then; 0: none (not "every one", which would turn
    /// limiting off).
    pub leak: u8,
    /// Clients remembered (rounded up to a multiple of 4).
    pub table_size: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: 3,
            burst: 8,
            leak: 2,
            table_size: 4096,
        }
    }
}

/// What the rate limiter says about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateVerdict {
    /// Within the limit (or let through by the leak).
    Answer,
    /// Over the limit: a RATE kiss-o'-death is due (at most one per interval per client).
    Kiss,
    /// Over the limit: drop.
    Drop,
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    /// Address as 16 bytes (IPv4 mapped), and whether the entry is used.
    address: [u8; 16],
    used: bool,
    last_seen_ns: u64,
    tokens: f32,
    last_kiss_ns: Option<u64>,
}

/// The timestamps of one answer, for the client's next, interleaved request: found by the
/// receive timestamp, which that request names as its origin.
#[derive(Clone, Copy, Debug, Default)]
struct Stamps {
    /// The receive timestamp of the request, as sent in the answer (zero: unused).
    rx: NtpTimestamp,
    /// Who asked (16 bytes, IPv4 mapped): another address naming it gets nothing.
    address: [u8; 16],
    /// The kernel's transmit timestamp of the answer, once known.
    tx: Option<NtpTimestamp>,
    /// A transmit timestamp was asked of the kernel for the answer.
    pending: bool,
}

const WAYS: usize = 4;

/// The per-client table.
#[derive(Debug)]
pub struct ClientTable {
    entries: Vec<Entry>,
    /// Interleaved mode's timestamps, one place per receive timestamp's hash.
    stamps: Vec<Stamps>,
    buckets: usize,
    /// SipHash-1-3 keys: with them secret, no one can pick addresses that share a bucket.
    keys: (u64, u64),
    limit: RateLimit,
    rng: u64,
    /// Entries in use, kept as they are taken: a scrape must not walk the table under the
    /// lock every serving thread takes (11 ms with a full table).
    used: usize,
}

fn key(address: IpAddr) -> [u8; 16] {
    match address {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

impl ClientTable {
    /// A table for `limit.table_size` clients (at least 4). `seed` keys the hash that
    /// places clients and the leak's random rolls: give it 16 random bytes (getrandom),
    /// or a fixed value in tests and simulations.
    pub fn new(limit: RateLimit, seed: [u8; 16]) -> Self {
        let buckets = limit.table_size.div_ceil(WAYS).max(1);
        let (k0, k1) = seed.split_at(8);
        let word = |b: &[u8]| b.iter().fold(0u64, |w, &x| (w << 8) | u64::from(x));
        let keys = (word(k0), word(k1));
        let mut table = Self {
            entries: vec![Entry::default(); buckets * WAYS],
            stamps: vec![Stamps::default(); buckets * WAYS],
            buckets,
            keys,
            limit,
            rng: 1,
            used: 0,
        };
        table.rng = table.hash(&[0x5E, 0xED]) | 1;
        table
    }

    fn hash(&self, bytes: &[u8]) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        h.write(bytes);
        h.finish()
    }

    fn bucket_of(&self, key: &[u8; 16]) -> usize {
        (self.hash(key) % self.buckets as u64) as usize
    }

    /// Clients remembered at most.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Clients remembered now (kept as entries are taken, not counted).
    pub fn len(&self) -> usize {
        self.used
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: cheap, and seeded from the random hash keys.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The entry of `address`, made (evicting the least recently seen of its bucket) if
    /// new.
    fn entry(&mut self, address: IpAddr, now_ns: u64) -> &mut Entry {
        let k = key(address);
        let bucket = self.bucket_of(&k);
        let slots = &mut self.entries[bucket * WAYS..(bucket + 1) * WAYS];
        let index = match slots.iter().position(|e| e.used && e.address == k) {
            Some(i) => i,
            None => {
                let i = slots
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, e)| (e.used, e.last_seen_ns))
                    .map_or(0, |(i, _)| i);
                if !slots[i].used {
                    self.used += 1;
                }
                slots[i] = Entry {
                    address: k,
                    used: true,
                    last_seen_ns: now_ns,
                    tokens: f32::from(self.limit.burst),
                    ..Entry::default()
                };
                i
            }
        };
        &mut slots[index]
    }

    /// Counts a request from `address` at `now_ns` (a monotonic clock) against the limit.
    pub fn rate(&mut self, address: IpAddr, now_ns: u64) -> RateVerdict {
        let limit = self.limit;
        if !limit.enabled {
            return RateVerdict::Answer;
        }
        let leak_roll = self.random();
        let interval_ns = libm::exp2(f64::from(limit.interval)) * 1e9;
        let e = self.entry(address, now_ns);
        let elapsed = now_ns.saturating_sub(e.last_seen_ns) as f64;
        e.tokens = (f64::from(e.tokens) + elapsed / interval_ns).min(f64::from(limit.burst)) as f32;
        e.last_seen_ns = now_ns;
        if e.tokens >= 1.0 {
            e.tokens -= 1.0;
            return RateVerdict::Answer;
        }
        if (1..64).contains(&limit.leak) && leak_roll & ((1u64 << limit.leak) - 1) == 0 {
            return RateVerdict::Answer;
        }
        let kiss_due = e
            .last_kiss_ns
            .is_none_or(|t| now_ns.saturating_sub(t) as f64 >= interval_ns);
        if kiss_due {
            e.last_kiss_ns = Some(now_ns);
            RateVerdict::Kiss
        } else {
            RateVerdict::Drop
        }
    }

    /// Whether a kiss-o'-death (DENY) may go to `address` at `now_ns`: at most one per
    /// rate-limit interval per client, whether rate limiting is on or not, so that a
    /// spoofed victim never gets a packet for every packet an attacker sends.
    pub fn kiss_due(&mut self, address: IpAddr, now_ns: u64) -> bool {
        let interval_ns = libm::exp2(f64::from(self.limit.interval)) * 1e9;
        let e = self.entry(address, now_ns);
        let due = e
            .last_kiss_ns
            .is_none_or(|t| now_ns.saturating_sub(t) as f64 >= interval_ns);
        if due {
            e.last_kiss_ns = Some(now_ns);
        }
        due
    }

    /// Where the timestamps of the request received at `rx` are kept.
    fn stamp_slot(&self, rx: NtpTimestamp) -> usize {
        (self.hash(&rx.to_bits().to_be_bytes()) % self.stamps.len() as u64) as usize
    }

    /// Interleaved mode: if the request's origin is the receive timestamp of an earlier
    /// request from `address` and that answer's transmit timestamp is known, returns it.
    pub fn interleaved_transmit(
        &mut self,
        address: IpAddr,
        origin: NtpTimestamp,
    ) -> Option<NtpTimestamp> {
        if origin.is_zero() {
            return None;
        }
        let s = self.stamps[self.stamp_slot(origin)];
        (s.rx == origin && s.address == key(address))
            .then_some(s.tx)
            .flatten()
    }

    /// Remembers the receive timestamp of an answer just made, and whether its transmit
    /// timestamp was asked of the kernel.
    pub fn record_receive(&mut self, address: IpAddr, rx: NtpTimestamp, tx_pending: bool) {
        let slot = self.stamp_slot(rx);
        self.stamps[slot] = Stamps {
            rx,
            address: key(address),
            tx: None,
            pending: tx_pending,
        };
    }

    /// Stores the kernel's transmit timestamp of the answer to the request received at
    /// `rx` from `address`, if it was asked for and the place was not taken since.
    pub fn record_transmit(&mut self, address: IpAddr, rx: NtpTimestamp, tx: NtpTimestamp) {
        let slot = self.stamp_slot(rx);
        let s = &mut self.stamps[slot];
        if s.rx == rx && s.address == key(address) && s.pending {
            s.tx = Some(tx);
            s.pending = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_limit_then_refill_per_client() {
        let mut t = ClientTable::new(
            RateLimit {
                enabled: true,
                interval: 0,
                burst: 4,
                leak: 63,
                table_size: 64,
            },
            [7; 16],
        );
        let a = ip("192.0.2.1");
        let verdicts: Vec<_> = (0..8).map(|i| t.rate(a, i * 1000)).collect();
        assert_eq!(&verdicts[..4], &[RateVerdict::Answer; 4]);
        assert_eq!(verdicts[4], RateVerdict::Kiss, "one RATE kiss");
        assert!(verdicts[5..].iter().all(|v| *v == RateVerdict::Drop));
        assert_eq!(
            t.rate(ip("192.0.2.2"), 9000),
            RateVerdict::Answer,
            "another client is unaffected"
        );
        // One second later one token is back.
        assert_eq!(t.rate(a, 1_000_010_000), RateVerdict::Answer);
        assert_eq!(t.rate(a, 1_000_020_000), RateVerdict::Kiss);
    }

    #[test]
    fn a_leak_of_zero_lets_none_through() {
        let mut t = ClientTable::new(
            RateLimit {
                enabled: true,
                interval: 10,
                burst: 1,
                leak: 0,
                table_size: 64,
            },
            [7; 16],
        );
        let a = ip("2001:db8::2");
        let answered = (0..1000)
            .filter(|i| t.rate(a, *i) == RateVerdict::Answer)
            .count();
        assert_eq!(answered, 1, "the burst of one, then none");
    }

    #[test]
    fn leak_lets_some_through() {
        let mut t = ClientTable::new(
            RateLimit {
                enabled: true,
                interval: 10,
                burst: 1,
                leak: 2,
                table_size: 64,
            },
            [7; 16],
        );
        let a = ip("2001:db8::1");
        let answered = (0..4000)
            .filter(|i| t.rate(a, *i) == RateVerdict::Answer)
            .count();
        // One of the burst, then about 1 in 4.
        assert!((800..1200).contains(&answered), "{answered}");
    }

    #[test]
    fn the_count_of_clients_is_kept_not_counted() {
        let mut t = ClientTable::new(
            RateLimit {
                enabled: true,
                table_size: 64,
                ..RateLimit::default()
            },
            [3; 16],
        );
        for i in 0..1000u32 {
            let _ = t.rate(IpAddr::V4((i % 300).into()), u64::from(i));
            let counted = t.entries.iter().filter(|e| e.used).count();
            assert_eq!(t.len(), counted, "after {i}");
        }
        assert_eq!(t.len(), t.capacity());
    }

    #[test]
    fn memory_is_bounded_and_the_newest_clients_stay() {
        let mut t = ClientTable::new(
            RateLimit {
                table_size: 256,
                enabled: true,
                // No random leak: this test counts answers.
                leak: 63,
                ..RateLimit::default()
            },
            [7; 16],
        );
        for i in 0..100_000u32 {
            t.rate(IpAddr::V4(i.into()), u64::from(i));
        }
        assert_eq!(t.capacity(), 256);
        assert!(t.len() <= 256);
        // The very last client is remembered: its burst is being spent.
        let last = IpAddr::V4(99_999u32.into());
        let tokens_used = (0..20)
            .take_while(|_| t.rate(last, 100_000) == RateVerdict::Answer)
            .count();
        assert!(tokens_used < 8, "{tokens_used}");
    }

    #[test]
    fn interleaved_timestamps_follow_the_latest_request() {
        let mut t = ClientTable::new(RateLimit::default(), [7; 16]);
        let a = ip("198.51.100.7");
        let rx1 = NtpTimestamp::from_bits(1000);
        let tx1 = NtpTimestamp::from_bits(1100);
        assert_eq!(t.interleaved_transmit(a, rx1), None);
        t.record_receive(a, rx1, true);
        assert_eq!(t.interleaved_transmit(a, rx1), None, "no TX stamp yet");
        t.record_transmit(a, rx1, tx1);
        assert_eq!(t.interleaved_transmit(a, rx1), Some(tx1));
        assert_eq!(
            t.interleaved_transmit(a, NtpTimestamp::from_bits(999)),
            None
        );
        // A newer request replaces it; a late stamp of the old answer is not taken.
        let rx2 = NtpTimestamp::from_bits(2000);
        t.record_receive(a, rx2, true);
        t.record_transmit(a, rx1, tx1);
        assert_eq!(t.interleaved_transmit(a, rx2), None);
        assert_eq!(t.interleaved_transmit(ip("198.51.100.8"), rx2), None);
    }
}
