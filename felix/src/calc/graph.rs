//! The calc graph itself: the dispatcher that takes each input to the index it changes, and the
//! flush that turns the accumulated dirt into [`DataplaneChanges`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use fabric_api::felix::FelixConfigurationSpec;
use ipnet::IpNet;

use super::endpoints::{LocalEndpoint, LocalEndpoints};
use super::input::{CalcInput, HostInterface, LearnedRoute};
use super::ipam::IpamIndex;
use super::model::{NodeInfo, PoolInfo, Vtep};
use super::output::{DataplaneChanges, DesiredDataplane};
use super::policy::PolicyNode;
use super::settings::{ConfigOverrides, Settings, effective_settings};
use super::tunnels;
use crate::dataplane::{DesiredLinks, IpFamily, NatPool, Route, SysctlSet, VtepNeighbour};

/// Keep at most this many unread problems (the daemon drains them after every flush).
const MAX_PROBLEMS: usize = 1000;

/// Which whole-state outputs need rebuilding at the next flush.
#[derive(Debug, Default, Clone)]
struct Dirty {
    settings: bool,
    vteps: bool,
    links: bool,
    sysctls: bool,
    nat: bool,
    endpoints: bool,
    endpoints_replaced: bool,
    /// Every remote, blackhole and learned route (our own Node or the underlay changed).
    all_routes: bool,
}

/// The pure calculation from datastore objects and learned routes to this node's desired
/// dataplane. See the module documentation of [`crate::calc`] for the design.
#[derive(Debug, Clone)]
pub struct CalcGraph {
    pub(super) node_name: String,
    overrides: ConfigOverrides,
    pub(super) pools: BTreeMap<String, PoolInfo>,
    pub(super) nodes: BTreeMap<String, NodeInfo>,
    pub(super) endpoints: LocalEndpoints,
    /// Policy: every node's endpoints, policies, profiles, tiers, network sets.
    policy: PolicyNode,
    pub(super) ipam: IpamIndex,
    /// Prefix -> next hops (sorted, deduplicated, never empty).
    pub(super) learned: HashMap<IpNet, Vec<IpAddr>>,
    /// `default` and `node.<us>` only.
    felix_configs: BTreeMap<String, FelixConfigurationSpec>,
    pub(super) host_interface: Option<HostInterface>,
    pub(super) vteps_v4: BTreeMap<String, Vtep>,
    pub(super) vteps_v6: BTreeMap<String, Vtep>,
    datastore_in_sync: bool,
    learned_in_sync: bool,
    // Outputs as last flushed.
    pub(super) routes: HashMap<IpNet, Route>,
    links: DesiredLinks,
    vtep_out_v4: Vec<VtepNeighbour>,
    vtep_out_v6: Vec<VtepNeighbour>,
    sysctls: SysctlSet,
    nat_v4: Vec<NatPool>,
    nat_v6: Vec<NatPool>,
    settings: Settings,
    flushed_once: bool,
    // Work for the next flush.
    dirty_prefixes: HashSet<IpNet>,
    dirty: Dirty,
    /// Endpoint keys deleted since the last flush (a re-add is a replacement).
    removed_endpoints: HashSet<String>,
    pub(super) problems: Vec<String>,
}

impl CalcGraph {
    /// An empty graph for node `node_name`, with settings `overrides` that beat the datastore.
    pub fn new(node_name: impl Into<String>, overrides: ConfigOverrides) -> CalcGraph {
        let (settings, _) = effective_settings(&[], &overrides);
        let node_name: String = node_name.into();
        CalcGraph {
            policy: PolicyNode::new(&node_name, &settings),
            node_name,
            overrides,
            pools: BTreeMap::new(),
            nodes: BTreeMap::new(),
            endpoints: LocalEndpoints::default(),
            ipam: IpamIndex::default(),
            learned: HashMap::new(),
            felix_configs: BTreeMap::new(),
            host_interface: None,
            vteps_v4: BTreeMap::new(),
            vteps_v6: BTreeMap::new(),
            datastore_in_sync: false,
            learned_in_sync: false,
            routes: HashMap::new(),
            links: DesiredLinks::default(),
            vtep_out_v4: Vec::new(),
            vtep_out_v6: Vec::new(),
            sysctls: SysctlSet::new(),
            nat_v4: Vec::new(),
            nat_v6: Vec::new(),
            settings,
            flushed_once: false,
            dirty_prefixes: HashSet::new(),
            dirty: Dirty::default(),
            removed_endpoints: HashSet::new(),
            problems: Vec::new(),
        }
    }

    /// The node this graph computes for.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Takes one input. Cheap: it updates the index the input belongs to and marks what the
    /// next [`CalcGraph::flush`] must recompute.
    pub fn update(&mut self, input: CalcInput) {
        match input {
            CalcInput::Pool { name, pool } => self.on_pool(name, pool.as_deref()),
            CalcInput::Node { name, node } => self.on_node(name, node.as_deref()),
            CalcInput::Endpoint { key, endpoint } => {
                if let Some(p) = self.policy.on_endpoint(&key, endpoint.as_deref()) {
                    self.problem(p);
                }
                self.on_endpoint(&key, endpoint.as_deref());
            }
            CalcInput::PolicyResource {
                kind,
                namespace,
                name,
                resource,
            } => {
                if let Some(p) =
                    self.policy
                        .on_resource(kind, namespace.as_deref(), &name, resource.as_deref())
                {
                    self.problem(p);
                }
            }
            CalcInput::Block { cidr, block } => {
                let touched = self.ipam.set_block(cidr.trunc(), block.as_deref());
                self.dirty_prefixes.extend(touched);
            }
            CalcInput::Affinity {
                node,
                cidr,
                affinity,
            } => {
                let touched = self
                    .ipam
                    .set_affinity(&node, cidr.trunc(), affinity.as_ref());
                self.dirty_prefixes.extend(touched);
            }
            CalcInput::FelixConfig { name, config } => self.on_felix_config(name, config),
            CalcInput::Learned(route) => self.on_learned(route),
            CalcInput::HostInterface(host) => {
                if self.host_interface != host {
                    self.host_interface = host;
                    self.dirty.links = true;
                    self.dirty.all_routes = true;
                }
            }
            CalcInput::DatastoreInSync => self.datastore_in_sync = true,
            CalcInput::LearnedRoutesInSync => self.learned_in_sync = true,
        }
    }

    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        }
    }

    fn on_pool(&mut self, name: String, pool: Option<&fabric_api::IPPool>) {
        let new = match pool.map(PoolInfo::from_pool) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(why)) => {
                self.problem(format!("IPPool {name}: {why}; treated as absent"));
                None
            }
        };
        let old = match &new {
            Some(p) => self.pools.insert(name, p.clone()),
            None => self.pools.remove(&name),
        };
        if old == new {
            return;
        }
        for p in old.iter().chain(new.iter()) {
            self.mark_within(p.cidr);
        }
        self.dirty.links = true;
        self.dirty.nat = true;
        self.dirty.sysctls = true;
    }

    fn on_node(&mut self, name: String, node: Option<&fabric_api::Node>) {
        let new = node.map(|n| {
            let (info, problems) = NodeInfo::from_node(n);
            for p in problems {
                self.problem(format!("Node {name}: {p}; ignored"));
            }
            info
        });
        let old = match &new {
            Some(n) => self.nodes.insert(name.clone(), n.clone()),
            None => self.nodes.remove(&name),
        };
        if old == new {
            return;
        }
        self.dirty.vteps = true;
        if name == self.node_name {
            // Our addresses decide CrossSubnet, the tunnel devices and next-hop filtering.
            self.dirty.links = true;
            self.dirty.all_routes = true;
        } else {
            self.mark_node(&name);
        }
    }

    fn on_endpoint(&mut self, key: &str, endpoint: Option<&fabric_api::WorkloadEndpoint>) {
        let local =
            match endpoint.and_then(|w| LocalEndpoint::from_endpoint(key, w, &self.node_name)) {
                None => None,
                Some(Ok(e)) => Some(e),
                Some(Err(why)) => {
                    self.problem(format!("{why}; the endpoint is ignored"));
                    None
                }
            };
        let re_added = local.is_some() && self.removed_endpoints.contains(key);
        if local.is_none() {
            self.removed_endpoints.insert(key.to_string());
        }
        let (touched, replaced) = self.endpoints.set(key, local);
        if replaced || re_added {
            self.dirty.endpoints_replaced = true;
        }
        if !touched.is_empty() {
            self.dirty.sysctls = true;
            self.dirty.endpoints = true;
            self.dirty_prefixes.extend(touched);
        }
    }

    fn on_felix_config(
        &mut self,
        name: String,
        config: Option<Box<fabric_api::FelixConfiguration>>,
    ) {
        let ours = name == "default" || name == format!("node.{}", self.node_name);
        if !ours {
            return;
        }
        match config {
            Some(c) => {
                self.felix_configs.insert(name, c.spec);
            }
            None => {
                self.felix_configs.remove(&name);
            }
        }
        self.dirty.settings = true;
    }

    fn on_learned(&mut self, route: LearnedRoute) {
        let prefix = route.prefix.trunc();
        if prefix != route.prefix {
            self.problem(format!(
                "learned route {}: host bits set; treated as {prefix}",
                route.prefix
            ));
        }
        let mut hops = route.next_hops;
        hops.sort();
        hops.dedup();
        let changed = if hops.is_empty() {
            self.learned.remove(&prefix).is_some()
        } else {
            self.learned.insert(prefix, hops.clone()).as_ref() != Some(&hops)
        };
        if changed {
            self.dirty_prefixes.insert(prefix);
        }
    }

    /// Marks every route-bearing prefix inside `cidr` (a pool changed).
    fn mark_within(&mut self, cidr: IpNet) {
        let inside = |p: &IpNet| cidr.contains(p);
        let mut touched: Vec<IpNet> = self.ipam.blocks().filter(inside).collect();
        touched.extend(self.ipam.borrowed_prefixes().filter(inside));
        touched.extend(self.learned.keys().filter(|p| inside(p)).copied());
        self.dirty_prefixes.extend(touched);
    }

    /// Marks the routes towards one remote node (its blocks and borrowed addresses).
    fn mark_node(&mut self, node: &str) {
        let mut touched: Vec<IpNet> = self.ipam.owned_by(node).collect();
        touched.extend(self.ipam.borrowed_by(node));
        self.dirty_prefixes.extend(touched);
    }

    /// Whether the datastore snapshot has been seen completely.
    pub fn datastore_in_sync(&self) -> bool {
        self.datastore_in_sync
    }

    /// Whether bgpd reported its learned routes complete.
    pub fn learned_routes_in_sync(&self) -> bool {
        self.learned_in_sync
    }

    /// Whether a flush would produce changes.
    pub fn has_pending_work(&self) -> bool {
        let d = &self.dirty;
        !self.flushed_once
            || !self.dirty_prefixes.is_empty()
            || d.settings
            || d.vteps
            || d.links
            || d.sysctls
            || d.nat
            || d.endpoints
            || d.endpoints_replaced
            || d.all_routes
            || self.policy.has_pending_work()
    }

    /// Recomputes what the inputs since the last flush changed and returns the differences.
    /// The first flush returns every whole-state output (links, VTEPs, sysctls, NAT, settings).
    pub fn flush(&mut self) -> DataplaneChanges {
        let first = !self.flushed_once;
        self.flushed_once = true;
        let mut out = DataplaneChanges::default();
        let mut dirty = std::mem::take(&mut self.dirty);
        if dirty.settings || first {
            let settings = self.compute_settings();
            if settings != self.settings || first {
                if let Some(p) = self.policy.on_settings(&self.node_name, &settings) {
                    self.problem(p);
                }
                self.settings = settings.clone();
                out.settings = Some(settings);
                dirty.links = true;
                dirty.nat = true;
                dirty.sysctls = true;
            }
        }
        if dirty.vteps && self.refresh_vteps() {
            dirty.links = true;
        }
        if dirty.all_routes {
            self.mark_all_routes();
        }
        out.routes = self.resolve_dirty();
        if dirty.links || first {
            self.flush_links(first, &mut out);
        }
        if dirty.sysctls || first {
            let ipv6 = self.settings.ipv6_support
                && (self.pools.values().any(|p| p.family() == IpFamily::V6)
                    || self.endpoints.interfaces().values().any(|(_, v6)| *v6));
            let mut problems = Vec::new();
            let sysctls =
                tunnels::desired_sysctls(&self.endpoints.interfaces(), ipv6, &mut problems);
            for p in problems {
                self.problem(p);
            }
            if sysctls != self.sysctls || first {
                self.sysctls = sysctls.clone();
                out.sysctls = Some(sysctls);
            }
        }
        if dirty.nat || first {
            let v4 = tunnels::nat_pools(&self.pools, IpFamily::V4);
            let v6 = if self.settings.ipv6_support {
                tunnels::nat_pools(&self.pools, IpFamily::V6)
            } else {
                Vec::new()
            };
            if v4 != self.nat_v4 || first {
                self.nat_v4 = v4.clone();
                out.nat_v4 = Some(v4);
            }
            if v6 != self.nat_v6 || first {
                self.nat_v6 = v6.clone();
                out.nat_v6 = Some(v6);
            }
        }
        out.endpoints_changed = dirty.endpoints;
        out.endpoints_replaced = dirty.endpoints_replaced;
        let policy = self.policy.flush();
        if !policy.is_empty() {
            out.policy = Some(policy);
        }
        self.removed_endpoints.clear();
        out
    }

    fn compute_settings(&mut self) -> Settings {
        let names = ["default".to_string(), format!("node.{}", self.node_name)];
        let layers: Vec<(&str, &FelixConfigurationSpec)> = names
            .iter()
            .filter_map(|n| self.felix_configs.get_key_value(n))
            .map(|(n, s)| (n.as_str(), s))
            .collect();
        let (settings, problems) = effective_settings(&layers, &self.overrides);
        for p in problems {
            self.problem(format!("{p}; the weaker setting is used"));
        }
        settings
    }

    fn flush_links(&mut self, first: bool, out: &mut DataplaneChanges) {
        let links = tunnels::desired_links(
            self.nodes.get(&self.node_name),
            &self.pools,
            &self.settings,
            self.host_interface.as_ref(),
        );
        let v4 = match links.vxlan_v4 {
            Some(_) => tunnels::vtep_neighbours(&self.vteps_v4),
            None => Vec::new(),
        };
        let v6 = match links.vxlan_v6 {
            Some(_) => tunnels::vtep_neighbours(&self.vteps_v6),
            None => Vec::new(),
        };
        if links != self.links || first {
            self.links = links.clone();
            out.links = Some(links);
        }
        if v4 != self.vtep_out_v4 || first {
            self.vtep_out_v4 = v4.clone();
            out.vteps_v4 = Some(v4);
        }
        if v6 != self.vtep_out_v6 || first {
            self.vtep_out_v6 = v6.clone();
            out.vteps_v6 = Some(v6);
        }
    }

    /// Recomputes the remote VTEP maps; marks the routes of every node whose VTEP changed.
    /// Returns whether any VTEP changed.
    fn refresh_vteps(&mut self) -> bool {
        let mut problems = Vec::new();
        let v4 = tunnels::remote_vteps(&self.nodes, &self.node_name, IpFamily::V4, &mut problems);
        let v6 = tunnels::remote_vteps(&self.nodes, &self.node_name, IpFamily::V6, &mut problems);
        for p in problems {
            self.problem(p);
        }
        let mut changed_nodes: Vec<String> = Vec::new();
        for (old, new) in [(&self.vteps_v4, &v4), (&self.vteps_v6, &v6)] {
            for name in old.keys().chain(new.keys()) {
                if old.get(name) != new.get(name) {
                    changed_nodes.push(name.clone());
                }
            }
        }
        self.vteps_v4 = v4;
        self.vteps_v6 = v6;
        changed_nodes.sort();
        changed_nodes.dedup();
        for n in &changed_nodes {
            self.mark_node(n);
        }
        !changed_nodes.is_empty()
    }

    /// Marks every block, borrowed address and learned prefix.
    fn mark_all_routes(&mut self) {
        let mut touched: Vec<IpNet> = self.ipam.blocks().collect();
        touched.extend(self.ipam.borrowed_prefixes());
        touched.extend(self.learned.keys().copied());
        self.dirty_prefixes.extend(touched);
    }

    /// Resolves every dirty prefix; returns the routes that changed, sorted.
    fn resolve_dirty(&mut self) -> Vec<(IpNet, Option<Route>)> {
        let mut dirty: Vec<IpNet> = self.dirty_prefixes.drain().collect();
        dirty.sort();
        let mut changes = Vec::new();
        for prefix in dirty {
            let new = self.resolve(&prefix);
            let unchanged = self.routes.get(&prefix) == new.as_ref();
            if unchanged {
                continue;
            }
            match &new {
                Some(r) => self.routes.insert(prefix, r.clone()),
                None => self.routes.remove(&prefix),
            };
            changes.push((prefix, new));
        }
        changes
    }

    /// Drains the problems found in the inputs since the last call (one line each, naming
    /// the object and field).
    pub fn take_problems(&mut self) -> Vec<String> {
        std::mem::take(&mut self.problems)
    }

    /// The full desired dataplane as of the last flush.
    pub fn desired(&self) -> DesiredDataplane {
        DesiredDataplane {
            routes: self.routes.iter().map(|(k, v)| (*k, v.clone())).collect(),
            links: self.links.clone(),
            vteps_v4: self.vtep_out_v4.clone(),
            vteps_v6: self.vtep_out_v6.clone(),
            sysctls: self.sysctls.clone(),
            nat_v4: self.nat_v4.clone(),
            nat_v6: self.nat_v6.clone(),
            settings: self.settings.clone(),
        }
    }

    /// The settings as of the last flush.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How many local workload endpoints there are.
    pub fn local_endpoints(&self) -> usize {
        self.endpoints.len()
    }

    /// Policy: local endpoints with chains, and policies that select one of them.
    pub fn policy_counts(&self) -> (usize, usize) {
        self.policy.counts()
    }

    /// How many routes are desired.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    /// The pools that need IPIP (name and CIDR), for health messages.
    pub fn ipip_pools(&self) -> Vec<(String, IpNet)> {
        self.pools
            .iter()
            .filter(|(_, p)| p.uses_ipip())
            .map(|(n, p)| (n.clone(), p.cidr))
            .collect()
    }

    /// The families whose VXLAN device we program while our Node has a tunnel address but no
    /// VTEP MAC: the daemon publishes the device's MAC there, as Calico's felix does, so the
    /// other nodes can build their VTEP entry for us.
    pub fn missing_vxlan_macs(&self) -> Vec<IpFamily> {
        let Some(me) = self.nodes.get(&self.node_name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if self.links.vxlan_v4.is_some()
            && me.vxlan_v4_address.is_some()
            && me.vxlan_v4_mac.is_none()
        {
            out.push(IpFamily::V4);
        }
        if self.links.vxlan_v6.is_some()
            && me.vxlan_v6_address.is_some()
            && me.vxlan_v6_mac.is_none()
        {
            out.push(IpFamily::V6);
        }
        out
    }

    /// This node's underlay addresses (from its Node), for the daemon's interface detection.
    pub fn node_addresses(&self) -> Vec<IpAddr> {
        let Some(me) = self.nodes.get(&self.node_name) else {
            return Vec::new();
        };
        [IpFamily::V4, IpFamily::V6]
            .into_iter()
            .filter_map(|f| me.address(f))
            .collect()
    }
}
