//! The `calico-lab` verbs: everything that touches the kernel (namespaces, mounts,
//! processes), built on the library's validated [`calico_lab::model::Lab`].

pub mod datastore;
pub mod deploy;
pub mod destroy;
pub mod exec;
pub mod holder;
pub mod inspect;
pub mod net;
pub mod pod;
pub mod process;
pub mod roles;
pub mod state;
