//! `IPPool` and `IPReservation`: the address ranges IPAM allocates from and the addresses it
//! must never hand out, with Calico's defaults and validation.

use serde::{Deserialize, Serialize};

use crate::error::{Errors, index};
use crate::is_false;
use crate::meta::Condition;
use crate::resource::{Rules, resource};
use crate::validate::check_selector_without_global;
use crate::validate::cidr::{Cidr, check_cidr};
use crate::validate::names::check_name;

/// Default block size of IPv4 pools.
pub const DEFAULT_BLOCK_SIZE_V4: u32 = 26;
/// Default block size of IPv6 pools.
pub const DEFAULT_BLOCK_SIZE_V6: u32 = 122;
/// Default pool `nodeSelector`.
pub const ALL_SELECTOR: &str = "all()";

resource!(
    /// An IP pool: a CIDR IPAM carves into blocks, with its encapsulation and NAT settings.
    IPPool,
    IPPoolSpec,
    status: IPPoolStatus
);

/// IPIP encapsulation for traffic to a pool's addresses (IPv4 pools only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum IPIPMode {
    /// No IPIP.
    #[default]
    Never,
    /// Always encapsulate.
    Always,
    /// Encapsulate only towards nodes in other subnets.
    CrossSubnet,
}

/// VXLAN encapsulation for traffic to a pool's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum VXLANMode {
    /// No VXLAN.
    #[default]
    Never,
    /// Always encapsulate.
    Always,
    /// Encapsulate only towards nodes in other subnets.
    CrossSubnet,
}

/// What a pool's addresses may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IPPoolAllowedUse {
    /// Pod (workload) addresses.
    Workload,
    /// Tunnel device addresses (tunl0, vxlan.calico).
    Tunnel,
    /// LoadBalancer service addresses.
    LoadBalancer,
}

/// Whether IPAM uses a pool automatically or only when asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum AssignmentMode {
    /// Used for automatic assignment.
    #[default]
    Automatic,
    /// Used only when explicitly requested.
    Manual,
}

/// `IPPool.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPPoolSpec {
    /// The pool CIDR (required, strictly masked, immutable).
    #[serde(default)]
    pub cidr: String,
    /// VXLAN mode (default `Never`).
    #[serde(default, rename = "vxlanMode", skip_serializing_if = "Option::is_none")]
    pub vxlan_mode: Option<VXLANMode>,
    /// IPIP mode (default `Never`).
    #[serde(default, rename = "ipipMode", skip_serializing_if = "Option::is_none")]
    pub ipip_mode: Option<IPIPMode>,
    /// Masquerade traffic from the pool to destinations outside every pool.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nat_outgoing: bool,
    /// IPAM stops allocating from the pool.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// Do not export the pool's routes over BGP.
    #[serde(default, rename = "disableBGPExport", skip_serializing_if = "is_false")]
    pub disable_bgp_export: bool,
    /// Prefix length of the blocks (default 26 for IPv4, 122 for IPv6; 0 means default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// Which nodes may allocate from the pool (default `all()`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_selector: String,
    /// Which namespaces' pods may allocate from the pool.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_selector: String,
    /// Uses (default `[Workload, Tunnel]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_uses: Vec<IPPoolAllowedUse>,
    /// Assignment mode (default `Automatic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_mode: Option<AssignmentMode>,
}

/// `IPPool.status` (written by Calico's controllers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPPoolStatus {
    /// Conditions such as `Allocatable`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl IPPoolSpec {
    /// The parsed CIDR, when it parses.
    pub fn parsed_cidr(&self) -> Option<Cidr> {
        Cidr::parse(&self.cidr).ok()
    }

    /// The block size in effect: the configured one, or 26 (IPv4) / 122 (IPv6).
    pub fn effective_block_size(&self) -> u32 {
        match self.block_size {
            Some(bs) if bs != 0 => bs,
            _ => match self.parsed_cidr() {
                Some(c) if !c.is_ipv4() => DEFAULT_BLOCK_SIZE_V6,
                _ => DEFAULT_BLOCK_SIZE_V4,
            },
        }
    }

    /// The IPIP mode in effect (`Never` when unset).
    pub fn effective_ipip_mode(&self) -> IPIPMode {
        self.ipip_mode.unwrap_or_default()
    }

    /// The VXLAN mode in effect (`Never` when unset).
    pub fn effective_vxlan_mode(&self) -> VXLANMode {
        self.vxlan_mode.unwrap_or_default()
    }

    /// The node selector in effect (`all()` when unset).
    pub fn effective_node_selector(&self) -> &str {
        if self.node_selector.is_empty() {
            ALL_SELECTOR
        } else {
            &self.node_selector
        }
    }

    /// The allowed uses in effect (`[Workload, Tunnel]` when unset).
    pub fn effective_allowed_uses(&self) -> Vec<IPPoolAllowedUse> {
        if self.allowed_uses.is_empty() {
            vec![IPPoolAllowedUse::Workload, IPPoolAllowedUse::Tunnel]
        } else {
            self.allowed_uses.clone()
        }
    }
}

impl Rules for IPPool {
    fn defaults(&mut self) {
        let s = &mut self.spec;
        let parsed = s.parsed_cidr();
        if let Some(c) = parsed
            && c.is_strictly_masked()
        {
            // Calico stores the canonical form (`fd00:0::/48` becomes `fd00::/48`).
            s.cidr = c.to_string();
        }
        if matches!(s.block_size, None | Some(0)) && parsed.is_some() {
            s.block_size = Some(s.effective_block_size());
        }
        s.ipip_mode.get_or_insert(IPIPMode::Never);
        s.vxlan_mode.get_or_insert(VXLANMode::Never);
        if s.node_selector.is_empty() {
            s.node_selector = ALL_SELECTOR.to_string();
        }
        if s.allowed_uses.is_empty() {
            s.allowed_uses = s.effective_allowed_uses();
        }
        s.assignment_mode.get_or_insert(AssignmentMode::Automatic);
    }

    fn check(&self, errs: &mut Errors) {
        check_name(errs, "metadata.name", self.metadata.name_str());
        let s = &self.spec;
        let cidr = check_pool_cidr(errs, &s.cidr);
        if let Some(c) = cidr {
            check_block_size(errs, s, &c);
            if !c.is_ipv4() && s.effective_ipip_mode() != IPIPMode::Never {
                errs.add(
                    "spec.ipipMode",
                    format!("{:?}", s.effective_ipip_mode()),
                    "is not allowed on an IPv6 pool: IPIP carries only IPv4; use vxlanMode",
                );
            }
        }
        let ipip = s.effective_ipip_mode();
        let vxlan = s.effective_vxlan_mode();
        if ipip != IPIPMode::Never && vxlan != VXLANMode::Never {
            errs.add(
                "spec.vxlanMode",
                format!("{vxlan:?}"),
                format!(
                    "cannot be combined with ipipMode {ipip:?}: enable at most one encapsulation"
                ),
            );
        }
        check_selector_without_global(errs, "spec.nodeSelector", &s.node_selector);
        check_selector_without_global(errs, "spec.namespaceSelector", &s.namespace_selector);
        check_allowed_uses(errs, s);
    }
}

fn check_pool_cidr(errs: &mut Errors, cidr: &str) -> Option<Cidr> {
    const FIELD: &str = "spec.cidr";
    if cidr.is_empty() {
        errs.rule(FIELD, "is required");
        return None;
    }
    let c = match Cidr::parse(cidr) {
        Ok(c) => c,
        Err(rule) => {
            errs.add(FIELD, cidr, rule);
            return None;
        }
    };
    if !c.is_strictly_masked() {
        errs.add(
            FIELD,
            cidr,
            format!(
                "has host bits set; a CIDR must be strictly masked ({})",
                c.masked()
            ),
        );
        return None;
    }
    let (link_local, family) = if c.is_ipv4() {
        ("169.254.0.0/16", "IPv4")
    } else {
        ("fe80::/10", "IPv6")
    };
    if Cidr::parse(link_local).is_ok_and(|ll| ll.overlaps(&c)) {
        errs.add(
            FIELD,
            cidr,
            format!("overlaps the {family} link-local range {link_local}"),
        );
    }
    Some(c)
}

fn check_block_size(errs: &mut Errors, s: &IPPoolSpec, c: &Cidr) {
    let bs = s.effective_block_size();
    let (lo, hi, family) = if c.is_ipv4() {
        (20, 32, "IPv4")
    } else {
        (116, 128, "IPv6")
    };
    if !(lo..=hi).contains(&bs) {
        errs.add(
            "spec.blockSize",
            bs.to_string(),
            format!("is out of range for an {family} pool; block sizes are {lo}-{hi}"),
        );
        return;
    }
    if u32::from(c.prefix_len) > bs && !s.disabled {
        errs.add(
            "spec.cidr",
            s.cidr.as_str(),
            format!(
                "is smaller than one block (/{bs}); a pool must be at least as large as its \
                 blockSize"
            ),
        );
    }
}

fn check_allowed_uses(errs: &mut Errors, s: &IPPoolSpec) {
    const FIELD: &str = "spec.allowedUses";
    if s.allowed_uses.len() > 10 {
        errs.rule(FIELD, "has more than 10 items");
    }
    for (i, u) in s.allowed_uses.iter().enumerate() {
        if s.allowed_uses[..i].contains(u) {
            errs.add(
                index(FIELD, i),
                format!("{u:?}"),
                "is listed more than once",
            );
        }
    }
    let uses = s.effective_allowed_uses();
    if !uses.contains(&IPPoolAllowedUse::LoadBalancer) {
        if uses.contains(&IPPoolAllowedUse::Tunnel) && !s.namespace_selector.is_empty() {
            errs.add(
                "spec.namespaceSelector",
                s.namespace_selector.as_str(),
                "is not allowed on a pool with allowed use Tunnel",
            );
        }
        return;
    }
    if uses
        .iter()
        .any(|u| matches!(u, IPPoolAllowedUse::Workload | IPPoolAllowedUse::Tunnel))
    {
        errs.rule(
            FIELD,
            "LoadBalancer cannot be combined with Workload or Tunnel",
        );
    }
    if s.effective_ipip_mode() != IPIPMode::Never || s.effective_vxlan_mode() != VXLANMode::Never {
        errs.rule(
            FIELD,
            "a LoadBalancer pool cannot have ipipMode or vxlanMode enabled",
        );
    }
    if s.disable_bgp_export {
        errs.rule(
            "spec.disableBGPExport",
            "is not allowed on a LoadBalancer pool",
        );
    }
    if s.effective_node_selector() != ALL_SELECTOR {
        errs.add(
            "spec.nodeSelector",
            s.node_selector.as_str(),
            "must be all() on a LoadBalancer pool",
        );
    }
}

resource!(
    /// Addresses Calico IPAM must not hand out.
    IPReservation,
    IPReservationSpec
);

/// `IPReservation.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPReservationSpec {
    /// CIDRs (or single addresses) excluded from new allocations.
    #[serde(
        default,
        rename = "reservedCIDRs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reserved_cidrs: Vec<String>,
}

impl Rules for IPReservation {
    fn defaults(&mut self) {}

    fn check(&self, errs: &mut Errors) {
        check_name(errs, "metadata.name", self.metadata.name_str());
        for (i, c) in self.spec.reserved_cidrs.iter().enumerate() {
            check_cidr(errs, &index("spec.reservedCIDRs", i), c);
        }
    }
}
