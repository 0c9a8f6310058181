//! Feeder mode: N unique IPv4 prefixes pre-encoded into packed UPDATEs before any clock starts,
//! then written as fast as the socket accepts them.

use std::net::Ipv4Addr;
use std::ops::Range;
use std::time::Instant;

use bgp_wire::ipnet::Ipv4Net;
use bgp_wire::{
    AfiSafi, Community, EncodeError, NextHop, Nlri, PathAttributes, SessionContext, end_of_rib,
    pack_announce,
};

use super::config::ebgp_attributes;

/// Feed chunks are at least this long (whole messages): large writes, yet the writer lock is
/// released often enough for KEEPALIVEs.
const CHUNK: usize = 256 * 1024;

/// A feed that cannot be built: the plan breaks a rule, or the codec refused a message.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// A plan field is out of range.
    #[error("feed plan field `{field}` = {value}: {rule}")]
    Plan {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// The rule broken.
        rule: &'static str,
    },
    /// The codec refused to encode an UPDATE.
    #[error("encoding the feed's UPDATEs")]
    Encode(#[from] EncodeError),
}

/// What to feed: `prefixes` unique IPv4 prefixes of length `prefix_len` counting up from
/// `first`, split into `attribute_sets` contiguous blocks that each carry their own attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPlan {
    /// Number of prefixes.
    pub prefixes: u32,
    /// Prefix length (1..=32); consecutive prefixes are one prefix-size apart.
    pub prefix_len: u8,
    /// The first prefix's address.
    pub first: Ipv4Addr,
    /// Number of distinct attribute sets (1 = all prefixes share one).
    pub attribute_sets: u32,
    /// AS_PATH of every announcement (the feeder's AS first).
    pub as_path: Vec<u32>,
    /// NEXT_HOP of every announcement.
    pub next_hop: Ipv4Addr,
    /// Append the IPv4 unicast End-of-RIB marker.
    pub end_of_rib: bool,
}

impl FeedPlan {
    /// `prefixes` /24s from 1.0.0.0, one attribute set (ORIGIN IGP, `as_path`, `next_hop`),
    /// followed by End-of-RIB.
    pub fn new(prefixes: u32, as_path: &[u32], next_hop: Ipv4Addr) -> FeedPlan {
        FeedPlan {
            prefixes,
            prefix_len: 24,
            first: Ipv4Addr::new(1, 0, 0, 0),
            attribute_sets: 1,
            as_path: as_path.to_vec(),
            next_hop,
            end_of_rib: true,
        }
    }

    /// /32 host routes instead of /24s.
    pub fn host_routes(mut self) -> Self {
        self.prefix_len = 32;
        self
    }

    /// Sets the prefix length.
    pub fn prefix_len(mut self, len: u8) -> Self {
        self.prefix_len = len;
        self
    }

    /// Sets the first prefix's address.
    pub fn first(mut self, first: Ipv4Addr) -> Self {
        self.first = first;
        self
    }

    /// Splits the prefixes over `sets` attribute sets, set `k` carrying MED `k` and the
    /// community `<feeder AS low 16 bits>:<k low 16 bits>`.
    pub fn attribute_sets(mut self, sets: u32) -> Self {
        self.attribute_sets = sets;
        self
    }

    /// Checks every field; the error names the field, its value and the rule.
    pub fn validate(&self) -> Result<(), FeedError> {
        let plan = |field, value: String, rule| Err(FeedError::Plan { field, value, rule });
        if self.prefixes == 0 {
            return plan("prefixes", "0".into(), "must be at least 1");
        }
        if !(1..=32).contains(&self.prefix_len) {
            return plan(
                "prefix_len",
                self.prefix_len.to_string(),
                "must be in 1..=32",
            );
        }
        let step = 1u64 << (32 - u32::from(self.prefix_len));
        let last = u64::from(u32::from(self.first)) + step * (u64::from(self.prefixes) - 1);
        if last > u64::from(u32::MAX) {
            return plan(
                "prefixes",
                self.prefixes.to_string(),
                "the prefixes run past 255.255.255.255 from `first`",
            );
        }
        if self.attribute_sets == 0 || self.attribute_sets > self.prefixes {
            return plan(
                "attribute_sets",
                self.attribute_sets.to_string(),
                "must be in 1..=prefixes (each set carries at least one prefix)",
            );
        }
        if self.as_path.is_empty() {
            return plan("as_path", "[]".into(), "must name the feeder's AS");
        }
        Ok(())
    }

    /// Prefix number `i` (host bits of `first` cleared), if the plan is valid and `i` in range.
    pub fn prefix(&self, i: u32) -> Option<Ipv4Net> {
        if i >= self.prefixes || !(1..=32).contains(&self.prefix_len) {
            return None;
        }
        let step = 1u64 << (32 - u32::from(self.prefix_len));
        let addr = u64::from(u32::from(self.first)) + step * u64::from(i);
        let addr = u32::try_from(addr).ok()?;
        Ipv4Net::new(Ipv4Addr::from(addr), self.prefix_len)
            .ok()
            .map(|n| n.trunc())
    }

    /// The attributes of set `k` (NEXT_HOP is added by the packer).
    pub fn attributes(&self, k: u32) -> PathAttributes {
        let mut attrs = ebgp_attributes(&self.as_path);
        if self.attribute_sets > 1 {
            let asn = self.as_path.first().copied().unwrap_or(0);
            attrs.multi_exit_disc = Some(k);
            attrs.communities = vec![Community::new(asn as u16, k as u16)];
        }
        attrs
    }

    /// The index range of the prefixes carried by set `k`.
    fn block(&self, k: u32) -> Range<u32> {
        let n = u64::from(self.prefixes);
        let sets = u64::from(self.attribute_sets.max(1));
        let start = n * u64::from(k) / sets;
        let end = n * (u64::from(k) + 1) / sets;
        // Both bounds are at most `prefixes`, a u32.
        (start as u32)..(end as u32)
    }
}

/// Pre-encoded UPDATEs for one session context: one contiguous buffer cut into chunks of whole
/// messages.
#[derive(Debug, Clone)]
pub struct Feed {
    plan: FeedPlan,
    data: Vec<u8>,
    chunks: Vec<Range<usize>>,
    messages: usize,
    prefixes: u32,
    context: SessionContext,
}

impl Feed {
    /// Encodes the plan's announcements for a session negotiated as `ctx` (4-octet AS,
    /// ADD-PATH send: path identifier 1 on every prefix, Extended Message).
    pub fn build(plan: &FeedPlan, ctx: &SessionContext) -> Result<Feed, FeedError> {
        plan.validate()?;
        let add_path = ctx.add_path_send.contains(AfiSafi::IPV4_UNICAST);
        let mut data = Vec::new();
        let mut chunks = Vec::new();
        let mut chunk_start = 0;
        let mut messages = 0;
        let mut push = |msg: &[u8], data: &mut Vec<u8>| {
            data.extend_from_slice(msg);
            messages += 1;
            if data.len() - chunk_start >= CHUNK {
                chunks.push(chunk_start..data.len());
                chunk_start = data.len();
            }
        };
        for k in 0..plan.attribute_sets {
            let nlri: Vec<Nlri> = plan
                .block(k)
                .filter_map(|i| plan.prefix(i))
                .map(|p| {
                    if add_path {
                        Nlri::with_path_id(p, 1)
                    } else {
                        Nlri::new(p)
                    }
                })
                .collect();
            let msgs = pack_announce(
                ctx,
                AfiSafi::IPV4_UNICAST,
                &plan.attributes(k),
                NextHop::V4(plan.next_hop),
                &nlri,
            )?;
            for m in &msgs {
                push(m, &mut data);
            }
        }
        if plan.end_of_rib {
            push(&end_of_rib(ctx, AfiSafi::IPV4_UNICAST)?, &mut data);
        }
        if chunk_start < data.len() {
            chunks.push(chunk_start..data.len());
        }
        Ok(Feed {
            plan: plan.clone(),
            data,
            chunks,
            messages,
            prefixes: plan.prefixes,
            context: *ctx,
        })
    }

    /// Total octets on the wire.
    pub fn len_bytes(&self) -> usize {
        self.data.len()
    }

    /// Number of messages (End-of-RIB included).
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// Number of prefixes announced.
    pub fn prefixes(&self) -> u32 {
        self.prefixes
    }

    /// The plan the feed was built from (to rebuild it for another session context).
    pub fn plan(&self) -> &FeedPlan {
        &self.plan
    }

    /// The session context the feed was encoded for.
    pub fn context(&self) -> &SessionContext {
        &self.context
    }

    /// The chunks to write, in order.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().filter_map(|r| self.data.get(r.clone()))
    }

    /// Whether a session negotiated as `ctx` decodes this feed as intended (4-octet AS and
    /// IPv4 ADD-PATH send as encoded, a maximum message length at least as large).
    pub fn fits(&self, ctx: &SessionContext) -> bool {
        let v4 = AfiSafi::IPV4_UNICAST;
        ctx.four_octet_as == self.context.four_octet_as
            && ctx.add_path_send.contains(v4) == self.context.add_path_send.contains(v4)
            && ctx.max_message_len() >= self.context.max_message_len()
    }
}

/// When and how much a feed wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedReport {
    /// Just before the first UPDATE was written.
    pub started: Instant,
    /// After the last octet was accepted by the socket.
    pub finished: Instant,
    /// Octets written.
    pub bytes: usize,
    /// Messages written.
    pub messages: usize,
    /// Prefixes announced.
    pub prefixes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_wire::{Message, decode_header};

    fn decode_all(feed: &Feed) -> (Vec<Nlri>, Vec<PathAttributes>, usize) {
        let ctx = feed.context().mirrored();
        let mut nlri = Vec::new();
        let mut attrs: Vec<PathAttributes> = Vec::new();
        let mut eor = 0;
        let bytes: Vec<u8> = feed.chunks().flatten().copied().collect();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let h = decode_header(rest, &ctx).unwrap().unwrap();
            let (frame, tail) = rest.split_at(usize::from(h.length));
            rest = tail;
            let Message::Update(u) = Message::decode(frame, &ctx).unwrap() else {
                panic!("not an UPDATE")
            };
            if u.as_end_of_rib().is_some() {
                eor += 1;
                continue;
            }
            if !attrs.contains(&u.attributes) {
                attrs.push(u.attributes.clone());
            }
            nlri.extend(u.nlri);
        }
        (nlri, attrs, eor)
    }

    #[test]
    fn a_feed_announces_every_planned_prefix_once_in_legal_messages() {
        let plan = FeedPlan::new(10_000, &[65001], "192.0.2.1".parse().unwrap());
        let ctx = SessionContext {
            four_octet_as: true,
            ..SessionContext::default()
        };
        let feed = Feed::build(&plan, &ctx).unwrap();
        let (nlri, attrs, eor) = decode_all(&feed);
        assert_eq!(nlri.len(), 10_000);
        assert_eq!(nlri[0].prefix.to_string(), "1.0.0.0/24");
        assert_eq!(nlri[9_999].prefix.to_string(), "1.39.15.0/24");
        assert_eq!(attrs.len(), 1);
        assert_eq!(eor, 1);
        // 1,000 /24s of 4 octets fit in one 4096-octet UPDATE with room for the attributes.
        assert!(feed.messages() <= 12, "{} messages", feed.messages());
    }

    #[test]
    fn attribute_sets_split_the_prefixes_into_distinct_blocks() {
        let plan = FeedPlan::new(1_000, &[65001], "192.0.2.1".parse().unwrap())
            .host_routes()
            .attribute_sets(100);
        let feed = Feed::build(&plan, &SessionContext::default()).unwrap();
        let (nlri, attrs, _) = decode_all(&feed);
        assert_eq!(nlri.len(), 1_000);
        assert_eq!(nlri[1].prefix.to_string(), "1.0.0.1/32");
        assert_eq!(attrs.len(), 100);
        assert_eq!(attrs[7].multi_exit_disc, Some(7));
    }

    #[test]
    fn a_plan_running_past_the_address_space_names_the_field() {
        let plan = FeedPlan::new(20_000_000, &[65001], "192.0.2.1".parse().unwrap());
        let err = Feed::build(&plan, &SessionContext::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`prefixes` = 20000000"), "{text}");
    }

    #[test]
    fn more_attribute_sets_than_prefixes_is_rejected() {
        let plan = FeedPlan::new(10, &[65001], "192.0.2.1".parse().unwrap()).attribute_sets(11);
        assert!(matches!(
            plan.validate(),
            Err(FeedError::Plan {
                field: "attribute_sets",
                ..
            })
        ));
    }
}
