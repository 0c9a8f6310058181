//! `IPAMConfiguration`: the IPAM singleton `default` (strict affinity, block limits, cooldown).

use serde::{Deserialize, Serialize};

use crate::error::Errors;
use crate::resource::{Rules, resource};
use crate::validate::check_range;

/// The only allowed name of an `IPAMConfiguration`.
pub const IPAM_CONFIG_NAME: &str = "default";
/// Blocks a host may own when `maxBlocksPerHost` is 0 (unset).
pub const DEFAULT_MAX_BLOCKS_PER_HOST: u32 = 20;

resource!(
    /// Global IPAM settings (singleton named `default`).
    IPAMConfiguration,
    IPAMConfigurationSpec
);

/// Whether KubeVirt VMs keep their addresses across pod re-creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VMAddressPersistence {
    /// Keep addresses.
    Enabled,
    /// New addresses on each pod.
    Disabled,
}

/// `IPAMConfiguration.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPAMConfigurationSpec {
    /// When true, no address is borrowed from another host's block (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_affinity: Option<bool>,
    /// Most blocks affine to one host; 0 means the default of 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_blocks_per_host: Option<i64>,
    /// Whether hosts claim new blocks automatically (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_allocate_blocks: Option<bool>,
    /// KubeVirt VM address persistence (default Enabled).
    #[serde(
        default,
        rename = "kubeVirtVMAddressPersistence",
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_virt_vm_address_persistence: Option<VMAddressPersistence>,
    /// Minimum age in seconds of a released address before reuse (0-1200).
    #[serde(
        default,
        rename = "ipCooldownSeconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_cooldown_seconds: Option<i64>,
}

impl IPAMConfigurationSpec {
    /// Strict affinity in effect (false when unset).
    pub fn effective_strict_affinity(&self) -> bool {
        self.strict_affinity.unwrap_or(false)
    }

    /// Whether blocks are claimed automatically (true when unset).
    pub fn effective_auto_allocate_blocks(&self) -> bool {
        self.auto_allocate_blocks.unwrap_or(true)
    }

    /// Blocks per host in effect: the configured number, or 20 when unset or 0.
    pub fn effective_max_blocks_per_host(&self) -> u32 {
        match self.max_blocks_per_host {
            Some(n) if n > 0 => u32::try_from(n).unwrap_or(u32::MAX),
            _ => DEFAULT_MAX_BLOCKS_PER_HOST,
        }
    }

    /// Address cooldown in effect, in seconds (0 when unset).
    pub fn effective_ip_cooldown_seconds(&self) -> u32 {
        self.ip_cooldown_seconds
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    }

    /// KubeVirt address persistence in effect (Enabled when unset).
    pub fn effective_kube_virt_vm_address_persistence(&self) -> VMAddressPersistence {
        self.kube_virt_vm_address_persistence
            .unwrap_or(VMAddressPersistence::Enabled)
    }
}

impl Rules for IPAMConfiguration {
    fn defaults(&mut self) {
        let s = &mut self.spec;
        s.strict_affinity.get_or_insert(false);
        s.auto_allocate_blocks.get_or_insert(true);
        s.max_blocks_per_host.get_or_insert(0);
    }

    fn check(&self, errs: &mut Errors) {
        let name = self.metadata.name_str();
        if !name.is_empty() && name != IPAM_CONFIG_NAME {
            errs.add(
                "metadata.name",
                name,
                "is not allowed: the IPAMConfiguration is a singleton named \"default\"",
            );
        }
        if let Some(n) = self.spec.max_blocks_per_host {
            check_range(errs, "spec.maxBlocksPerHost", n, 0, 1_000_000);
        }
        if let Some(n) = self.spec.ip_cooldown_seconds {
            check_range(errs, "spec.ipCooldownSeconds", n, 0, 1200);
        }
    }
}
