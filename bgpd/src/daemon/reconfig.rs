//! Applying a configuration to the running speaker task: first everything that can fail (checks,
//! binding new listeners), then the differences only, so unaffected sessions keep running. A
//! change of the speaker's own settings (router id, AS, timers, graceful restart, decision)
//! restarts the speaker.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use bgpd_core::{Input, OriginAttributes, PeerConfig, Speaker};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use super::owner::{ListenerTask, Owner};
use crate::config::{Config, ConfigError};
use crate::net::{self, sockopt};

/// What a reconfiguration changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconfigureReport {
    /// The speaker's own settings changed: every session was reset.
    pub speaker_restarted: bool,
    /// Neighbours added.
    pub neighbors_added: Vec<IpAddr>,
    /// Neighbours removed (Cease/Peer De-configured).
    pub neighbors_removed: Vec<IpAddr>,
    /// Neighbours whose settings changed (identity, capability, timer or transport changes reset
    /// the session; policy and next-hop changes apply as a soft reset).
    pub neighbors_changed: Vec<IpAddr>,
    /// Prefixes originated anew or with new attributes.
    pub originations_changed: Vec<IpNet>,
    /// Prefixes no longer originated.
    pub originations_withdrawn: Vec<IpNet>,
    /// Listen addresses added.
    pub listeners_added: Vec<SocketAddr>,
    /// Listen addresses removed.
    pub listeners_removed: Vec<SocketAddr>,
}

impl ReconfigureReport {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == ReconfigureReport::default()
    }
}

/// Binds every address of `config.listen` that `existing` does not hold. The error names the
/// `listen[i]` key.
pub(crate) fn bind_new_listeners(
    config: &Config,
    existing: &dyn Fn(&SocketAddr) -> bool,
) -> Result<Vec<(SocketAddr, TcpListener)>, ConfigError> {
    let mut bound = Vec::new();
    for (i, addr) in config.listen.iter().enumerate() {
        if existing(addr) {
            continue;
        }
        let l = net::bind_listener(*addr).map_err(|e| {
            ConfigError::invalid(format!("listen[{i}]"), addr, format!("cannot listen: {e}"))
        })?;
        bound.push((*addr, l));
    }
    Ok(bound)
}

fn originations(c: &Config) -> BTreeMap<IpNet, OriginAttributes> {
    c.originate
        .iter()
        .map(|o| (o.prefix, o.attributes()))
        .collect()
}

impl Owner {
    /// Checks `new`, then applies the differences from the running configuration.
    pub(crate) fn reconfigure(&mut self, new: Config) -> Result<ReconfigureReport, ConfigError> {
        new.validate()?;
        let bound = bind_new_listeners(&new, &|a| self.listeners.contains_key(a))?;
        let mut report = ReconfigureReport::default();
        for (addr, l) in bound {
            report.listeners_added.push(addr);
            self.listeners
                .insert(addr, ListenerTask::start(l, self.events.clone()));
        }
        let old = std::mem::replace(&mut self.config, new);
        self.install_transports(&old);
        if old.speaker_config(false) != self.config.speaker_config(false) {
            self.restart_speaker()?;
            report.speaker_restarted = true;
            report.neighbors_added = self.config.neighbors.iter().map(|n| n.address).collect();
        } else {
            self.apply_neighbors(&old, &mut report);
            self.apply_originations(&old, &mut report);
        }
        let keep: BTreeSet<SocketAddr> = self.config.listen.iter().copied().collect();
        let gone: Vec<SocketAddr> = self
            .listeners
            .keys()
            .filter(|a| !keep.contains(a))
            .copied()
            .collect();
        for addr in gone {
            if let Some(l) = self.listeners.remove(&addr) {
                l.task.abort();
            }
            report.listeners_removed.push(addr);
        }
        self.dispatch();
        tracing::info!(?report, "configuration applied");
        Ok(report)
    }

    /// Refreshes the per-neighbour socket options and the MD5 keys of every listener (keys of
    /// neighbours in `old` only are removed).
    pub(crate) fn install_transports(&mut self, old: &Config) {
        self.transports = self
            .config
            .neighbors
            .iter()
            .map(|n| (n.address, self.config.transport(n)))
            .collect();
        for n in &self.config.neighbors {
            let f = self.facts.entry(n.address).or_default();
            f.description = n.description.clone();
            f.md5 = n.password.is_some();
        }
        let mut peers: BTreeMap<IpAddr, Option<&str>> = old
            .neighbors
            .iter()
            .filter(|n| n.password.is_some())
            .map(|n| (n.address, None))
            .collect();
        for n in &self.config.neighbors {
            if let Some(pw) = &n.password {
                peers.insert(n.address, Some(pw.as_str()));
            }
        }
        for (addr, l) in &self.listeners {
            for (peer, key) in &peers {
                if peer.is_ipv4() != addr.is_ipv4() {
                    continue;
                }
                let r = sockopt::set_md5_key(
                    l.listener.as_ref(),
                    addr.is_ipv6(),
                    *peer,
                    key.map(str::as_bytes),
                );
                if let Err(e) = r {
                    tracing::warn!(listener = %addr, %peer, error = %e, "cannot set the TCP MD5 key");
                }
            }
        }
    }

    /// Replaces the speaker by a fresh one with the current configuration (Cease to every
    /// neighbour first).
    fn restart_speaker(&mut self) -> Result<(), ConfigError> {
        let core = |e: bgpd_core::ConfigError| ConfigError::invalid(e.path, e.value, e.rule);
        let fresh = Speaker::new(self.config.speaker_config(false)).map_err(core)?;
        tracing::warn!("the speaker's own settings changed: restarting it (every session resets)");
        let now = self.clock.now();
        let _ = self
            .speaker
            .handle(now, Input::Shutdown { restart: false }, &mut self.out);
        self.dispatch();
        for (_, (_, task)) in self.connecting.drain() {
            task.abort();
        }
        for (_, c) in self.conns.drain() {
            self.closing.push(c.close());
        }
        self.speaker = fresh;
        self.generation += 1;
        self.restarting = false;
        self.add_everything();
        Ok(())
    }

    /// Adds every configured neighbour and origination to the speaker.
    pub(crate) fn add_everything(&mut self) {
        let now = self.clock.now();
        let peers: Vec<PeerConfig> = self
            .config
            .neighbors
            .iter()
            .map(|n| self.config.peer_config(n))
            .collect();
        for p in peers {
            let addr = p.address;
            if let Err(e) = self.speaker.handle(now, Input::AddPeer(p), &mut self.out) {
                tracing::error!(peer = %addr, error = %e, "cannot add the neighbour");
            }
        }
        for (prefix, attrs) in originations(&self.config) {
            if let Err(e) =
                self.speaker
                    .handle(now, Input::Originate { prefix, attrs }, &mut self.out)
            {
                tracing::error!(%prefix, error = %e, "cannot originate");
            }
        }
    }

    fn apply_neighbors(&mut self, old: &Config, report: &mut ReconfigureReport) {
        let now = self.clock.now();
        let before: BTreeMap<IpAddr, PeerConfig> = old
            .neighbors
            .iter()
            .map(|n| (n.address, old.peer_config(n)))
            .collect();
        let after: BTreeMap<IpAddr, PeerConfig> = self
            .config
            .neighbors
            .iter()
            .map(|n| (n.address, self.config.peer_config(n)))
            .collect();
        for addr in before.keys().filter(|a| !after.contains_key(a)) {
            report.neighbors_removed.push(*addr);
            if let Err(e) = self
                .speaker
                .handle(now, Input::RemovePeer(*addr), &mut self.out)
            {
                tracing::error!(peer = %addr, error = %e, "cannot remove the neighbour");
            }
            self.facts.remove(addr);
        }
        for (addr, cfg) in after {
            let input = match before.get(&addr) {
                None => {
                    report.neighbors_added.push(addr);
                    Input::AddPeer(cfg)
                }
                Some(b) if *b != cfg => {
                    report.neighbors_changed.push(addr);
                    Input::UpdatePeer(cfg)
                }
                Some(_) => {
                    let (o, n) = (old.neighbor(addr), self.config.neighbor(addr));
                    if let (Some(o), Some(n)) = (o, n)
                        && old.transport(o) != self.config.transport(n)
                    {
                        report.neighbors_changed.push(addr);
                        tracing::info!(peer = %addr, "TTL settings changed: applied to the next connection");
                    }
                    continue;
                }
            };
            if let Err(e) = self.speaker.handle(now, input, &mut self.out) {
                tracing::error!(peer = %addr, error = %e, "cannot apply the neighbour's configuration");
            }
        }
    }

    fn apply_originations(&mut self, old: &Config, report: &mut ReconfigureReport) {
        let now = self.clock.now();
        let before = originations(old);
        let after = originations(&self.config);
        for prefix in before.keys().filter(|p| !after.contains_key(p)) {
            report.originations_withdrawn.push(*prefix);
            let _ = self.speaker.handle(
                now,
                Input::WithdrawOrigin { prefix: *prefix },
                &mut self.out,
            );
        }
        for (prefix, attrs) in after {
            if before.get(&prefix) == Some(&attrs) {
                continue;
            }
            report.originations_changed.push(prefix);
            if let Err(e) =
                self.speaker
                    .handle(now, Input::Originate { prefix, attrs }, &mut self.out)
            {
                tracing::error!(%prefix, error = %e, "cannot originate");
            }
        }
    }
}
