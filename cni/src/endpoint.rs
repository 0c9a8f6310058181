//! The WorkloadEndpoint the calico plugin writes for a pod: Calico's name
//! (`<node>-k8s-<pod>-<ifname>`, dashes doubled), labels from `args.cni.labels` plus
//! `projectcalico.org/namespace` and `projectcalico.org/orchestrator`, profile `kns.<ns>`.

use std::net::IpAddr;

use fabric_api::{Kind, ObjectMeta, Resource, WorkloadEndpoint, WorkloadEndpointSpec};
use fabric_datastore::{Client, ClientError};
use ipnet::IpNet;

use crate::config::Label;

/// Label holding the pod's namespace.
pub const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";
/// Label holding the orchestrator.
pub const ORCHESTRATOR_LABEL: &str = "projectcalico.org/orchestrator";

/// Who the pod is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The node.
    pub node: String,
    /// `k8s` when the runtime named the pod (`K8S_POD_NAME`), else `cni`.
    pub orchestrator: String,
    /// The pod's namespace (`default` when not given).
    pub namespace: String,
    /// The pod name (empty for orchestrator `cni`).
    pub pod: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub endpoint: String,
}

impl Workload {
    /// The ID the host veth name is hashed from: `<namespace>.<pod>` (k8s) or the container ID.
    pub fn veth_id(&self) -> String {
        if self.orchestrator == "k8s" {
            format!("{}.{}", self.namespace, self.pod)
        } else {
            self.container_id.clone()
        }
    }

    /// The endpoint's spec without addresses, interface or MAC (for its name).
    fn base_spec(&self) -> WorkloadEndpointSpec {
        WorkloadEndpointSpec {
            orchestrator: self.orchestrator.clone(),
            node: self.node.clone(),
            container_id: self.container_id.clone(),
            pod: self.pod.clone(),
            endpoint: self.endpoint.clone(),
            ..WorkloadEndpointSpec::default()
        }
    }

    /// The endpoint's name (Calico's convention).
    pub fn endpoint_name(&self) -> Result<String, String> {
        self.base_spec()
            .expected_name()
            .map_err(|(field, rule)| format!("{field} {rule}"))
    }
}

/// The endpoint for `workload`, on `interface_name`, with `ips` and `labels`.
pub fn build(
    workload: &Workload,
    interface_name: &str,
    mac: &str,
    ips: &[IpAddr],
    labels: &[Label],
    network_name: &str,
) -> Result<WorkloadEndpoint, String> {
    let name = workload.endpoint_name()?;
    let mut meta = ObjectMeta::namespaced(workload.namespace.clone(), name);
    for l in labels {
        meta.labels.insert(l.key.clone(), l.value.clone());
    }
    meta.labels
        .insert(NAMESPACE_LABEL.to_string(), workload.namespace.clone());
    meta.labels.insert(
        ORCHESTRATOR_LABEL.to_string(),
        workload.orchestrator.clone(),
    );
    let profile = if workload.orchestrator == "k8s" {
        format!("kns.{}", workload.namespace)
    } else {
        network_name.to_string()
    };
    Ok(WorkloadEndpoint {
        metadata: meta,
        spec: WorkloadEndpointSpec {
            interface_name: interface_name.to_string(),
            mac: mac.to_string(),
            ip_networks: ips.iter().map(|ip| IpNet::from(*ip).to_string()).collect(),
            profiles: vec![profile],
            ..workload.base_spec()
        },
    })
}

/// Checks, before anything is created, that the endpoint ADD will write is valid (labels,
/// names): every broken rule as `field = value rule`.
pub fn precheck(
    workload: &Workload,
    interface_name: &str,
    labels: &[Label],
    network_name: &str,
) -> Result<(), String> {
    let wep = build(workload, interface_name, "", &[], labels, network_name)?;
    wep.validate().map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("{} = {:?} {}", e.field, e.value, e.rule))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Deletes the workload's endpoint if it belongs to this container (a newer sandbox of the
/// same pod keeps its endpoint). True if one was deleted.
pub async fn delete(client: &Client, workload: &Workload) -> Result<bool, ClientError> {
    let Ok(name) = workload.endpoint_name() else {
        return Ok(false);
    };
    let Some(wep) = client
        .try_get::<WorkloadEndpoint>(Some(&workload.namespace), &name)
        .await?
    else {
        return Ok(false);
    };
    if !wep.spec.container_id.is_empty() && wep.spec.container_id != workload.container_id {
        tracing::info!(
            endpoint = name,
            owner = wep.spec.container_id,
            "endpoint belongs to another container; leaving it"
        );
        return Ok(false);
    }
    match client
        .delete_any(
            Kind::WorkloadEndpoint,
            Some(&workload.namespace),
            &name,
            wep.metadata.resource_version.as_deref(),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(ClientError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether the stored endpoint is this container's, and the host interface it names.
pub async fn stored(
    client: &Client,
    workload: &Workload,
) -> Result<Option<WorkloadEndpoint>, ClientError> {
    let Ok(name) = workload.endpoint_name() else {
        return Ok(None);
    };
    client
        .try_get::<WorkloadEndpoint>(Some(&workload.namespace), &name)
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pod() -> Workload {
        Workload {
            node: "node-1".into(),
            orchestrator: "k8s".into(),
            namespace: "prod".into(),
            pod: "web-7d4b9".into(),
            container_id: "5f0c2a9e71b3".into(),
            endpoint: "eth0".into(),
        }
    }

    #[test]
    fn the_endpoint_has_calicos_name_labels_and_profile() {
        let labels = vec![Label {
            key: "app".into(),
            value: "web".into(),
        }];
        let ip: IpAddr = "10.244.3.5".parse().unwrap();
        let wep = build(
            &pod(),
            "cali1a2b3c4d5e6",
            "02:42:0a:f4:03:05",
            &[ip],
            &labels,
            "net",
        )
        .unwrap();
        assert_eq!(wep.metadata.name_str(), "node--1-k8s-web--7d4b9-eth0");
        assert_eq!(wep.metadata.labels["app"], "web");
        assert_eq!(wep.metadata.labels[NAMESPACE_LABEL], "prod");
        assert_eq!(wep.metadata.labels[ORCHESTRATOR_LABEL], "k8s");
        assert_eq!(wep.spec.profiles, vec!["kns.prod".to_string()]);
        assert_eq!(wep.spec.ip_networks, vec!["10.244.3.5/32".to_string()]);
    }

    #[test]
    fn a_bad_label_is_caught_before_anything_is_created() {
        let labels = vec![Label {
            key: "bad key!".into(),
            value: "x".into(),
        }];
        let e = precheck(&pod(), "cali1a2b3c4d5e6", &labels, "net").unwrap_err();
        assert!(
            e.contains("metadata.labels") && e.contains("bad key!"),
            "{e}"
        );
        assert!(precheck(&pod(), "cali1a2b3c4d5e6", &[], "net").is_ok());
    }

    #[test]
    fn the_veth_is_hashed_from_namespace_and_pod() {
        assert_eq!(pod().veth_id(), "prod.web-7d4b9");
    }
}
