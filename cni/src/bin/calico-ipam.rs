//! The `calico-ipam` CNI plugin binary (see the fabric_cni crate).

fn main() -> std::process::ExitCode {
    fabric_cni::run::main(fabric_cni::run::Plugin::CalicoIpam)
}
