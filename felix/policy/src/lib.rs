//! Calico and Kubernetes network policy rendered to iptables chains and ipsets (pure, no I/O).
