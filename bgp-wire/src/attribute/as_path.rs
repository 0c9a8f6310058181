//! AS_PATH and AS4_PATH (RFC 4271 §4.3, §5.1.2; RFC 5065; RFC 6793), including the RFC 6793
//! §4.2.3 reconstruction of the path from AS_PATH and AS4_PATH received via a 2-octet speaker.
//!
//! ```text
//! +------------------------------+-------------------------------+----------------------+
//! | Segment Type (1 octet)       | Segment Length (1 octet, ASNs)| ASNs (2 or 4 each)   |
//! +------------------------------+-------------------------------+----------------------+
//! Segment types: 1 AS_SET, 2 AS_SEQUENCE, 3 AS_CONFED_SEQUENCE, 4 AS_CONFED_SET.
//! ```

use bytes::{BufMut, BytesMut};

use crate::error::EncodeError;
use crate::iana::AS_TRANS;
use crate::reader::Reader;

/// Path segment type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SegmentType {
    /// 1: unordered set of ASes a route in the UPDATE has traversed.
    AsSet,
    /// 2: ordered set of ASes.
    AsSequence,
    /// 3: ordered set of Member ASes in the local confederation (RFC 5065).
    AsConfedSequence,
    /// 4: unordered set of Member ASes in the local confederation (RFC 5065).
    AsConfedSet,
}

impl SegmentType {
    fn from_wire(v: u8) -> Option<Self> {
        match v {
            1 => Some(SegmentType::AsSet),
            2 => Some(SegmentType::AsSequence),
            3 => Some(SegmentType::AsConfedSequence),
            4 => Some(SegmentType::AsConfedSet),
            _ => None,
        }
    }

    fn to_wire(self) -> u8 {
        match self {
            SegmentType::AsSet => 1,
            SegmentType::AsSequence => 2,
            SegmentType::AsConfedSequence => 3,
            SegmentType::AsConfedSet => 4,
        }
    }

    /// Confederation segments (3 and 4).
    pub fn is_confed(self) -> bool {
        matches!(
            self,
            SegmentType::AsConfedSequence | SegmentType::AsConfedSet
        )
    }

    fn is_set(self) -> bool {
        matches!(self, SegmentType::AsSet | SegmentType::AsConfedSet)
    }
}

/// One path segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsSegment {
    /// Segment type.
    pub kind: SegmentType,
    /// AS numbers, leftmost first.
    pub asns: Vec<u32>,
}

/// An AS path (always in 4-octet form in memory).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AsPath {
    /// Segments, leftmost (most recently prepended) first.
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE (empty when `asns` is empty).
    pub fn from_sequence(asns: impl IntoIterator<Item = u32>) -> AsPath {
        let asns: Vec<u32> = asns.into_iter().collect();
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::AsSequence,
                asns,
            }],
        }
    }

    /// Path length for best-path selection (RFC 4271 §9.1.2.2): an AS_SET counts 1,
    /// confederation segments count 0 (RFC 5065 §5.3).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::AsSequence => s.asns.len(),
                SegmentType::AsSet => usize::from(!s.asns.is_empty()),
                _ => 0,
            })
            .sum()
    }

    /// The leftmost AS of the first non-confederation segment, if it is an AS_SEQUENCE: the
    /// neighbouring AS (RFC 4271 §9.1.2.2 d).
    pub fn first_asn(&self) -> Option<u32> {
        let seg = self.segments.iter().find(|s| !s.kind.is_confed())?;
        (seg.kind == SegmentType::AsSequence)
            .then(|| seg.asns.first().copied())
            .flatten()
    }

    /// Whether `asn` appears anywhere in the path (loop detection, RFC 4271 §9.1.2).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// Prepends `asn` to the leading AS_SEQUENCE (or a new one), as an eBGP speaker does.
    pub fn prepend(&mut self, asn: u32) {
        match self.segments.first_mut() {
            Some(s) if s.kind == SegmentType::AsSequence && s.asns.len() < 255 => {
                s.asns.insert(0, asn)
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: SegmentType::AsSequence,
                    asns: vec![asn],
                },
            ),
        }
    }

    /// Whether any AS needs 4 octets, so a 2-octet peer must also get AS4_PATH.
    pub(crate) fn needs_as4(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.asns.iter().any(|&a| a > 0xffff))
    }

    /// Decodes an AS_PATH or AS4_PATH value. Errors name the RFC 7606 §7.2 malformation.
    pub(crate) fn decode(value: &[u8], four_octet: bool) -> Result<AsPath, &'static str> {
        let width = if four_octet { 4 } else { 2 };
        let mut segments = Vec::with_capacity(value.len() / (2 + width));
        let mut r = Reader::new(value);
        while !r.is_empty() {
            let (Some(kind), Some(count)) = (r.u8(), r.u8()) else {
                return Err("one octet left where a segment header is expected");
            };
            let kind = SegmentType::from_wire(kind).ok_or("unrecognized segment type")?;
            if count == 0 {
                return Err("segment length is zero");
            }
            let bytes = r
                .take(usize::from(count) * width)
                .ok_or("segment length overruns the attribute")?;
            let asns = if four_octet {
                bytes
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            } else {
                bytes
                    .chunks_exact(2)
                    .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                    .collect()
            };
            segments.push(AsSegment { kind, asns });
        }
        Ok(AsPath { segments })
    }

    /// Appends the attribute value. With `four_octet` false, AS numbers above 65535 become
    /// AS_TRANS (RFC 6793 §4.2.2). AS_SEQUENCEs longer than 255 are split; empty segments are
    /// skipped; sets longer than 255 cannot be encoded.
    pub(crate) fn encode(&self, four_octet: bool, out: &mut BytesMut) -> Result<(), EncodeError> {
        for seg in &self.segments {
            if seg.kind.is_set() && seg.asns.len() > 255 {
                let kind = if seg.kind == SegmentType::AsSet {
                    "AS_SET"
                } else {
                    "AS_CONFED_SET"
                };
                return Err(EncodeError::AsSetTooLong {
                    kind,
                    count: seg.asns.len(),
                });
            }
            for chunk in seg.asns.chunks(255) {
                out.put_u8(seg.kind.to_wire());
                out.put_u8(chunk.len() as u8);
                for &asn in chunk {
                    if four_octet {
                        out.put_u32(asn);
                    } else {
                        out.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS as u16));
                    }
                }
            }
        }
        Ok(())
    }

    /// The path without confederation segments (what goes into AS4_PATH, RFC 6793 §4.2.2/§6).
    pub(crate) fn without_confed(&self) -> AsPath {
        AsPath {
            segments: self
                .segments
                .iter()
                .filter(|s| !s.kind.is_confed())
                .cloned()
                .collect(),
        }
    }

    /// RFC 6793 §4.2.3: rebuild the path from this AS_PATH and an AS4_PATH. If AS_PATH has fewer
    /// AS numbers than AS4_PATH, AS4_PATH is ignored. Otherwise the leading AS numbers AS_PATH
    /// has in excess (added by 2-octet speakers) are kept, followed by AS4_PATH. Confederation
    /// segments in AS4_PATH are discarded (RFC 6793 §6); those leading AS_PATH are kept.
    pub fn merge_as4(&self, as4: &AsPath) -> AsPath {
        let as4 = as4.without_confed();
        let (n, m) = (self.path_len(), as4.path_len());
        if n < m {
            return self.clone();
        }
        let mut keep = n - m;
        let mut segments = Vec::with_capacity(self.segments.len() + as4.segments.len());
        for seg in &self.segments {
            match seg.kind {
                k if k.is_confed() => segments.push(seg.clone()),
                _ if keep == 0 => break,
                SegmentType::AsSet => {
                    segments.push(seg.clone());
                    keep -= 1;
                }
                _ => {
                    let take = keep.min(seg.asns.len());
                    segments.push(AsSegment {
                        kind: seg.kind,
                        asns: seg.asns[..take].to_vec(),
                    });
                    keep -= take;
                }
            }
        }
        segments.retain(|s| !s.asns.is_empty());
        segments.extend(as4.segments);
        AsPath { segments }
    }
}

impl std::fmt::Display for AsPath {
    /// BIRD/GoBGP style: `65001 65002 {65010 65011} (65100)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let (open, close) = match seg.kind {
                SegmentType::AsSequence => ("", ""),
                SegmentType::AsSet => ("{", "}"),
                SegmentType::AsConfedSequence => ("(", ")"),
                SegmentType::AsConfedSet => ("[", "]"),
            };
            f.write_str(open)?;
            for (j, asn) in seg.asns.iter().enumerate() {
                if j > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{asn}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(a: &[u32]) -> AsSegment {
        AsSegment {
            kind: SegmentType::AsSequence,
            asns: a.to_vec(),
        }
    }

    #[test]
    fn as4_path_replaces_the_as_trans_tail_and_keeps_the_2_octet_prefix() {
        // A 2-octet speaker 65010 prepended itself in front of AS_TRANS for 4200000001.
        let as_path = AsPath {
            segments: vec![seq(&[65010, 65020, 23456])],
        };
        let as4 = AsPath {
            segments: vec![seq(&[65020, 4_200_000_001])],
        };
        let merged = as_path.merge_as4(&as4);
        assert_eq!(merged.to_string(), "65010 65020 4200000001");
        assert_eq!(merged.path_len(), 3);
    }

    #[test]
    fn an_as4_path_longer_than_as_path_is_ignored() {
        let as_path = AsPath {
            segments: vec![seq(&[65010])],
        };
        let as4 = AsPath {
            segments: vec![seq(&[1, 2])],
        };
        assert_eq!(as_path.merge_as4(&as4), as_path);
    }

    #[test]
    fn confederation_segments_in_as4_path_are_discarded_and_leading_ones_kept() {
        let as_path = AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentType::AsConfedSequence,
                    asns: vec![65500],
                },
                seq(&[23456]),
            ],
        };
        let as4 = AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentType::AsConfedSet,
                    asns: vec![7],
                },
                seq(&[4_200_000_001]),
            ],
        };
        assert_eq!(as_path.merge_as4(&as4).to_string(), "(65500) 4200000001");
    }

    #[test]
    fn the_zettabgp_killer_segment_is_rejected_without_looping() {
        assert_eq!(
            AsPath::decode(&[2, 0, 0], false),
            Err("segment length is zero")
        );
        assert_eq!(
            AsPath::decode(&[2, 1, 0, 1, 7], false),
            Err("one octet left where a segment header is expected")
        );
        assert_eq!(
            AsPath::decode(&[9, 1, 0, 1], false),
            Err("unrecognized segment type")
        );
        assert_eq!(
            AsPath::decode(&[2, 2, 0, 1], false),
            Err("segment length overruns the attribute")
        );
    }

    #[test]
    fn long_sequences_are_split_into_255_as_segments() {
        let path = AsPath::from_sequence(1..=300);
        let mut out = BytesMut::new();
        path.encode(true, &mut out).unwrap();
        let back = AsPath::decode(&out, true).unwrap();
        assert_eq!(back.segments.len(), 2);
        assert_eq!(back.path_len(), 300);
    }
}
