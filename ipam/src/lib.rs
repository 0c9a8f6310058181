//! IP address management with Calico's block model: pools, blocks, affinities, handles, reservations.
