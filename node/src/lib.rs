//! calico-node: node registration and autodetection, running felix and bgpd in one process.
