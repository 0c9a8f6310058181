//! CNI plugins calico and calico-ipam (CNI spec 1.0.0).
