//! Personal links: random tokens, stored only as hashes, and the limiter against guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A new personal-link token: 192 random bits, as 48 hex characters.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

/// Tokens carry 192 bits of entropy, so a fast hash is enough to make a leaked table useless.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a string has the shape of a token (checked before any database look-up).
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 48 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why a personal link that exists no longer opens its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEnd {
    Revoked,
    Expired,
}

impl std::fmt::Display for LinkEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkEnd::Revoked => "revoked",
            LinkEnd::Expired => "expired",
        })
    }
}

/// Why a personal link opened nothing.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no such personal link")]
    Unknown,
    #[error("too many unknown links from this address")]
    Limited,
    #[error("the personal link was {0}")]
    Ended(LinkEnd),
    #[error(transparent)]
    Db(#[from] crate::db::QueryError),
}

/// The link rules, for a token a browser presented from `address` (see [`address_subject`]):
/// a valid link always works, whatever its address did; an unknown one (or one whose survey
/// is no longer served) counts against the address, in the database so every node shares the
/// count, and is refused as unknown, then as limited; a revoked or expired one is refused as
/// ended. The link's first use is recorded once, for the status table's "first opened".
/// The link comes with what its pages read next (see [`tokens::open_token`]), in the same
/// statement.
///
/// [`tokens::open_token`]: crate::db::tokens::open_token
pub fn open_link(
    conn: &mut crate::db::DbConn,
    token: &str,
    address: &str,
    served: impl Fn(&str) -> bool,
    now: chrono::NaiveDateTime,
) -> Result<crate::db::tokens::OpenedLink, LinkError> {
    use crate::db::{attempts, tokens};
    // Only a string of a token's shape is looked up; anything else is unknown at once.
    let opened = if looks_like_token(token) {
        tokens::open_token(conn, &hash_token(token))?
    } else {
        None
    };
    let Some(mut opened) = opened.filter(|o| served(&o.token.survey_id)) else {
        let limit = UNKNOWN_LINKS_PER_ADDRESS;
        let tried = attempts::hit(conn, &limit.counter(address), limit.window(), now)?;
        return Err(if tried > limit.max {
            LinkError::Limited
        } else {
            LinkError::Unknown
        });
    };
    if let Some(end) = opened.token.ended(now) {
        return Err(LinkError::Ended(end));
    }
    if opened.token.first_used_at.is_none() {
        tokens::touch_token(conn, &opened.token.id, now)?;
        opened.token.first_used_at = Some(now);
        opened.token.last_used_at = Some(now);
    }
    Ok(opened)
}

/// The link as [`open_link`] returns it, when that writes nothing: a live link of a served
/// survey, opened before. `None` for any other (unknown, ended, or used for the first time),
/// which only [`open_link`] settles, writing what the rules ask. One read statement.
pub fn open_used_link(
    conn: &mut crate::db::DbConn,
    token: &str,
    served: impl Fn(&str) -> bool,
    now: chrono::NaiveDateTime,
) -> Result<Option<crate::db::tokens::OpenedLink>, crate::db::QueryError> {
    if !looks_like_token(token) {
        return Ok(None);
    }
    let opened = crate::db::tokens::open_token(conn, &hash_token(token))?;
    Ok(opened.filter(|o| {
        served(&o.token.survey_id)
            && o.token.ended(now).is_none()
            && o.token.first_used_at.is_some()
    }))
}

/// Whether a string has the shape of a session or device cookie (64 hex characters).
pub fn looks_like_session(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A limit on attempts of one kind, counted in the database so that every node behind a proxy
/// shares it (see [`crate::db::attempts`]).
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    purpose: &'static str,
    /// Attempts allowed in one window; the next is refused.
    pub max: i32,
    minutes: i64,
}

impl Limit {
    pub fn window(&self) -> chrono::Duration {
        chrono::Duration::minutes(self.minutes)
    }

    /// The counter's key: a hash, so no address or email is stored in clear.
    pub fn counter(&self, subject: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.purpose.as_bytes());
        h.update([0u8]);
        h.update(subject.as_bytes());
        hex::encode(h.finalize())
    }
}

/// Password checks for one account from browsers that never signed in to it.
pub const LOGINS_PER_ACCOUNT: Limit = Limit {
    purpose: "login-account",
    max: 10,
    minutes: 15,
};
/// Password checks from one client address (sign-ins that succeed are given back).
pub const LOGINS_PER_ADDRESS: Limit = Limit {
    purpose: "login-address",
    max: 30,
    minutes: 15,
};
/// Password checks from a browser that signed in to the account before: its own budget, so
/// an attacker who spends the account's budget does not lock its owner out.
pub const LOGINS_PER_DEVICE: Limit = Limit {
    purpose: "login-device",
    max: 10,
    minutes: 15,
};
/// Colleagues' links one coordinator link hands out, each emailed to an address it types in:
/// revoking and handing out again must not make the service send mail without end.
pub const HANDOVERS_PER_LINK: Limit = Limit {
    purpose: "handover-link",
    max: 100,
    minutes: 24 * 60,
};
/// Unknown personal links tried from one client address. A valid link is never refused.
pub const UNKNOWN_LINKS_PER_ADDRESS: Limit = Limit {
    purpose: "link-address",
    max: 20,
    minutes: 10,
};

/// The subject a per-address limit counts: the address itself for IPv4; for IPv6 its /64,
/// which one subscriber usually holds whole (counting single IPv6 addresses counts nothing).
pub fn address_subject(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Counts requests per key in a fixed window, in this process's memory: for budgets that a
/// node may keep alone (a link's saves per minute).
pub struct RequestBudget {
    max: u32,
    window: Duration,
    state: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RequestBudget {
    pub fn new(max: u32, window: Duration) -> Self {
        RequestBudget {
            max,
            window,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Count one request for `key`; false when its budget is spent.
    pub fn take(&self, key: &str) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if state.len() > 100_000 {
            let window = self.window;
            state.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = state.entry(key.to_string()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        entry.1 <= self.max
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`COHERENCE_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// A comma-separated list of addresses or CIDR blocks: `127.0.0.1, 10.0.0.0/8, ::1`.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (addr, bits) = match part.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (part, None),
            };
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("'{part}' is not an IP address or CIDR block"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("'{part}' has a bad prefix length"))?,
            };
            nets.push((ip, bits));
        }
        Ok(TrustedProxies(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, bits)| in_block(ip, *net, *bits))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the
    /// right-most `X-Forwarded-For` entry that is not itself a trusted proxy (entries to its
    /// left were written by the client and prove nothing).
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        let mut client = peer;
        if !self.contains(peer) {
            return client;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|h| h.split(',')).collect();
        for hop in hops.into_iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// An address as proxies write it: `203.0.113.5`, `203.0.113.5:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

fn in_block(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        (IpAddr::V6(a), IpAddr::V4(b)) => match a.to_ipv4_mapped() {
            Some(a) => (u32::from(a) as u128, u32::from(b) as u128, 32),
            None => return false,
        },
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    (ip >> shift) == (net >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = new_token();
        assert!(looks_like_token(&a));
        assert_ne!(a, new_token());
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), a);
    }

    #[test]
    fn budget_refuses_past_its_max() {
        let b = RequestBudget::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(b.take("link"));
        }
        assert!(!b.take("link"));
        assert!(b.take("other"));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // From the proxy: the right-most untrusted hop, not what the client wrote on the left.
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), ["6.6.6.6, 203.0.113.5"].into_iter()),
            ip("203.0.113.5")
        );
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), ["203.0.113.5", "10.1.2.3"].into_iter()),
            ip("203.0.113.5")
        );
        // From anyone else, the header is ignored.
        assert_eq!(
            proxies.client_address(ip("198.51.100.7"), ["203.0.113.5"].into_iter()),
            ip("198.51.100.7")
        );
        // Ports, as some proxies write them, are not part of the address.
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), ["203.0.113.5:4711"].into_iter()),
            ip("203.0.113.5")
        );
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), ["[2001:db8::7]:4711"].into_iter()),
            ip("2001:db8::7")
        );
        // A garbled hop stops the walk at the last address known good.
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), ["nonsense"].into_iter()),
            ip("127.0.0.1")
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        assert!(TrustedProxies::parse("::1, 2001:db8::/32")
            .unwrap()
            .contains(ip("2001:db8::5")));
    }

    #[test]
    fn ipv6_addresses_are_counted_per_64() {
        let a = address_subject("2001:db8:1:2::1".parse().unwrap());
        let b = address_subject("2001:db8:1:2:ffff::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(address_subject("192.0.2.1".parse().unwrap()), "192.0.2.1");
    }
}
