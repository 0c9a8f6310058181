//! Support for the end-to-end scenarios in `tests/tests/`: deploying topologies with calico-lab and checking the fabric.
