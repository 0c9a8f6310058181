//! calico-lab: deploys containerlab topologies onto network namespaces of one Linux host.
