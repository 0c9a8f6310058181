//! Felix dataplane agent: calc graph, kernel reconcilers (routes, links, neighbours, sysctls, NAT, policy), health and metrics.

pub mod dataplane;
