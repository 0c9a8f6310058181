//! Calico projectcalico.org/v3 resource types, defaults, validation and the selector language (pure, no I/O).
