//! The rules a configuration must satisfy, checked before anything is applied. Errors name the
//! TOML key; a final dry run on a scratch speaker applies the core's own checks as well.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use bgpd_core::{Input, Speaker};

use super::{Config, ConfigError, NeighborConfig};

/// Largest TCP MD5 key the kernel accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub(crate) const MAX_MD5_KEY_LEN: usize = 80;

pub(crate) fn asn(key: &str, asn: u32) -> Result<(), ConfigError> {
    if asn == 0 || asn == bgp_wire::AS_TRANS {
        return Err(ConfigError::invalid(
            key,
            asn,
            "AS 0 and AS_TRANS (23456) are not usable AS numbers (RFC 7607, RFC 6793)",
        ));
    }
    Ok(())
}

fn hold_time(key: &str, h: u16) -> Result<(), ConfigError> {
    if matches!(h, 1 | 2) {
        return Err(ConfigError::invalid(
            key,
            h,
            "the hold time must be 0 or 3..=65535 seconds (RFC 4271 §4.2)",
        ));
    }
    Ok(())
}

fn keepalive(key: &str, k: Option<u16>, hold: u16) -> Result<(), ConfigError> {
    match k {
        Some(0) => Err(ConfigError::invalid(
            key,
            0,
            "the keepalive interval must be at least 1 second (set hold-time = 0 to disable keepalives)",
        )),
        Some(k) if hold > 0 && k >= hold => Err(ConfigError::invalid(
            key,
            k,
            format!("the keepalive interval must be shorter than the hold time ({hold} s)"),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn config(c: &Config) -> Result<(), ConfigError> {
    if c.router_id.is_unspecified() {
        return Err(ConfigError::invalid(
            "router-id",
            c.router_id,
            "the BGP identifier must be non-zero (RFC 6286 §2.1)",
        ));
    }
    asn("asn", c.asn)?;
    let mut seen = BTreeSet::new();
    for (i, l) in c.listen.iter().enumerate() {
        if l.port() == 0 {
            return Err(ConfigError::invalid(
                format!("listen[{i}]"),
                l,
                "a listen address needs a port (179 is the BGP port)",
            ));
        }
        if !seen.insert(*l) {
            return Err(ConfigError::invalid(
                format!("listen[{i}]"),
                l,
                "listed twice",
            ));
        }
    }
    if let Some(p) = &c.status_socket
        && p.as_os_str().is_empty()
    {
        return Err(ConfigError::invalid(
            "status-socket",
            "\"\"",
            "must be a path",
        ));
    }
    if let Some(l) = &c.log_level
        && let Err(e) = tracing_subscriber::EnvFilter::builder().parse(l)
    {
        return Err(ConfigError::invalid(
            "log-level",
            format!("{l:?}"),
            format!(
                "must be a level (error, warn, info, debug, trace) or a filter such as \"bgpd=debug,info\": {e}"
            ),
        ));
    }
    hold_time("hold-time", c.hold_time)?;
    keepalive("keepalive", c.keepalive, c.hold_time)?;
    if c.connect_retry == 0 {
        return Err(ConfigError::invalid(
            "connect-retry",
            0,
            "the ConnectRetry time must be at least 1 second",
        ));
    }
    let [lo, hi] = c.error_wait;
    if lo > hi {
        return Err(ConfigError::invalid(
            "error-wait",
            format!("[{lo}, {hi}]"),
            "the first value (initial idle hold) must not exceed the second (the largest)",
        ));
    }
    if c.max_paths == 0 {
        return Err(ConfigError::invalid(
            "max-paths",
            0,
            "at least one path must be selected",
        ));
    }
    if c.output_queue_limit < 1 << 20 {
        return Err(ConfigError::invalid(
            "output-queue-limit",
            c.output_queue_limit,
            "must be at least 1048576 bytes: one batch of received messages can queue a few \
             hundred KiB for every neighbour before the writers run",
        ));
    }
    if c.graceful_restart.restart_time > 4095 {
        return Err(ConfigError::invalid(
            "graceful-restart.restart-time",
            c.graceful_restart.restart_time,
            "the restart time has 12 bits: at most 4095 seconds (RFC 4724 §3)",
        ));
    }
    for (name, p) in &c.policy {
        if name.is_empty() {
            return Err(ConfigError::invalid(
                "policy",
                "\"\"",
                "a policy needs a name",
            ));
        }
        p.validate(&format!("policy.{name}"))?;
    }
    let mut addresses = BTreeMap::new();
    for (i, n) in c.neighbors.iter().enumerate() {
        if let Some(j) = addresses.insert(n.address, i) {
            return Err(ConfigError::invalid(
                format!("neighbor[{i}].address"),
                n.address,
                format!("neighbor[{j}] has the same address; each neighbour is configured once"),
            ));
        }
        neighbor(c, i, n)?;
    }
    cluster_id(c)?;
    let mut prefixes = BTreeMap::new();
    for (i, o) in c.originate.iter().enumerate() {
        let key = format!("originate[{i}]");
        if o.prefix.trunc() != o.prefix {
            return Err(ConfigError::invalid(
                format!("{key}.prefix"),
                o.prefix,
                format!("host bits must be clear (write {})", o.prefix.trunc()),
            ));
        }
        if let Some(j) = prefixes.insert(o.prefix, i) {
            return Err(ConfigError::invalid(
                format!("{key}.prefix"),
                o.prefix,
                format!("originate[{j}] has the same prefix"),
            ));
        }
        if let Some(nh) = o.next_hop
            && nh.is_ipv4() != matches!(o.prefix, ipnet::IpNet::V4(_))
        {
            return Err(ConfigError::invalid(
                format!("{key}.next-hop"),
                nh,
                "the next hop must be of the prefix's address family",
            ));
        }
    }
    dry_run(c)
}

fn neighbor(c: &Config, i: usize, n: &NeighborConfig) -> Result<(), ConfigError> {
    let k = |field: &str| format!("neighbor[{i}].{field}");
    let a = n.address;
    let bad_address =
        a.is_unspecified() || a.is_multicast() || matches!(a, IpAddr::V4(v4) if v4.is_broadcast());
    if bad_address {
        return Err(ConfigError::invalid(
            k("address"),
            a,
            "a neighbour address must be a unicast address",
        ));
    }
    asn(&k("remote-asn"), n.remote_asn)?;
    if let Some(l) = n.local_asn {
        asn(&k("local-asn"), l)?;
    }
    if n.port == 0 {
        return Err(ConfigError::invalid(
            k("port"),
            0,
            "the port must be 1..=65535",
        ));
    }
    if let Some(l) = n.local_address
        && l.is_ipv4() != a.is_ipv4()
    {
        return Err(ConfigError::invalid(
            k("local-address"),
            l,
            format!("must be of the neighbour address's family ({a})"),
        ));
    }
    if let Some(pw) = &n.password
        && (pw.is_empty() || pw.len() > MAX_MD5_KEY_LEN)
    {
        return Err(ConfigError::invalid(
            k("password"),
            "(hidden)",
            format!("a TCP MD5 key must be 1..={MAX_MD5_KEY_LEN} octets"),
        ));
    }
    if let Some(h) = n.ttl_security {
        if !(1..=254).contains(&h) {
            return Err(ConfigError::invalid(
                k("ttl-security"),
                h,
                "the GTSM hop count must be 1..=254 (RFC 5082)",
            ));
        }
        if let Some(m) = n.multihop {
            return Err(ConfigError::invalid(
                k("multihop"),
                m,
                "with ttl-security we always send TTL 255; give the hop count in ttl-security only",
            ));
        }
    }
    if n.multihop == Some(0) {
        return Err(ConfigError::invalid(
            k("multihop"),
            0,
            "the TTL must be 1..=255",
        ));
    }
    if n.next_hop_self && n.next_hop_keep {
        return Err(ConfigError::invalid(
            k("next-hop-keep"),
            true,
            "next-hop-self and next-hop-keep exclude each other",
        ));
    }
    if let Some(ll) = n.link_local_next_hop
        && ll.segments()[0] & 0xffc0 != 0xfe80
    {
        return Err(ConfigError::invalid(
            k("link-local-next-hop"),
            ll,
            "must be an IPv6 link-local address (fe80::/10)",
        ));
    }
    let hold = n.hold_time.unwrap_or(c.hold_time);
    if let Some(h) = n.hold_time {
        hold_time(&k("hold-time"), h)?;
    }
    keepalive(&k("keepalive"), n.keepalive, hold)?;
    if let Some(f) = &n.families {
        if f.is_empty() {
            return Err(ConfigError::invalid(
                k("families"),
                "[]",
                "a neighbour needs at least one address family",
            ));
        }
        let set: BTreeSet<_> = f.iter().collect();
        if set.len() != f.len() {
            return Err(ConfigError::invalid(
                k("families"),
                format!("{f:?}"),
                "a family is listed twice",
            ));
        }
    }
    let local_asn = n.local_asn.unwrap_or(c.asn);
    if n.route_reflector_client && n.remote_asn != local_asn {
        return Err(ConfigError::invalid(
            k("route-reflector-client"),
            true,
            format!(
                "route reflector clients must be iBGP peers (RFC 4456 §5): remote-asn {} differs from the local AS {local_asn}",
                n.remote_asn
            ),
        ));
    }
    if let Some(id) = n.cluster_id
        && !n.route_reflector_client
    {
        return Err(ConfigError::invalid(
            k("cluster-id"),
            id,
            "a cluster id applies to route-reflector-client neighbours only",
        ));
    }
    if let Some(mp) = &n.max_prefix
        && (mp.ipv4 == Some(0) || mp.ipv6 == Some(0))
    {
        return Err(ConfigError::invalid(
            k("max-prefix"),
            format!("{mp:?}"),
            "a prefix limit must be at least 1",
        ));
    }
    for (field, name) in [
        ("import-policy", &n.import_policy),
        ("export-policy", &n.export_policy),
    ] {
        if let Some(name) = name
            && !c.policy.contains_key(name)
        {
            return Err(ConfigError::invalid(
                k(field),
                format!("{name:?}"),
                "no [policy.<name>] table has this name",
            ));
        }
    }
    Ok(())
}

/// Per-neighbour cluster ids must agree with each other and with the global `cluster-id`: the
/// speaker has one.
fn cluster_id(c: &Config) -> Result<(), ConfigError> {
    let mut chosen = c.cluster_id.map(|id| (id, "cluster-id".to_string()));
    for (i, n) in c.neighbors.iter().enumerate() {
        let Some(id) = n.cluster_id else { continue };
        match &chosen {
            Some((other, key)) if *other != id => {
                return Err(ConfigError::invalid(
                    format!("neighbor[{i}].cluster-id"),
                    id,
                    format!("differs from {key} = {other}: the speaker has one cluster id"),
                ));
            }
            Some(_) => {}
            None => chosen = Some((id, format!("neighbor[{i}].cluster-id"))),
        }
    }
    Ok(())
}

/// Applies the configuration to a scratch speaker, so every check of the core runs before the
/// real speaker sees anything.
fn dry_run(c: &Config) -> Result<(), ConfigError> {
    let core = |e: bgpd_core::ConfigError| ConfigError::invalid(e.path, e.value, e.rule);
    let mut speaker = Speaker::new(c.speaker_config(false)).map_err(core)?;
    let mut out = Vec::new();
    let now = bgpd_core::Instant::ZERO;
    for n in &c.neighbors {
        speaker
            .handle(now, Input::AddPeer(c.peer_config(n)), &mut out)
            .map_err(|e| match e {
                bgpd_core::InputError::Config(e) => core(e),
                other => ConfigError::invalid(
                    format!("neighbor {}", n.address),
                    n.address,
                    other.to_string(),
                ),
            })?;
        out.clear();
    }
    for o in &c.originate {
        speaker
            .handle(
                now,
                Input::Originate {
                    prefix: o.prefix,
                    attrs: o.attributes(),
                },
                &mut out,
            )
            .map_err(|e| ConfigError::invalid("originate", o.prefix, e.to_string()))?;
        out.clear();
    }
    Ok(())
}
