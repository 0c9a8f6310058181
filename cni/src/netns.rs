//! Entering the pod's network namespace: a closure runs on a new thread that has joined the
//! namespace named by `CNI_NETNS`, so the plugin's own thread never changes namespace.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};

/// Why a namespace could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// `CNI_NETNS` does not name an existing file.
    #[error("network namespace {path} does not exist")]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The file could not be opened.
    #[error("cannot open network namespace {path}")]
    Open {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `setns` failed (not a network namespace, or no permission).
    #[error("cannot enter network namespace {path}")]
    Enter {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// The worker thread panicked.
    #[error("the thread working in network namespace {path} panicked")]
    Panicked {
        /// The path.
        path: PathBuf,
    },
}

/// An open network namespace.
#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
}

impl Netns {
    /// Opens the namespace file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Netns, NetnsError> {
        let path = path.as_ref().to_path_buf();
        match File::open(&path) {
            Ok(file) => Ok(Netns { file, path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(NetnsError::Missing { path }),
            Err(source) => Err(NetnsError::Open { path, source }),
        }
    }

    /// The file descriptor (for `IFLA_NET_NS_FD`).
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a new thread inside the namespace and returns its result.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R, NetnsError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(&self.file, CloneFlags::CLONE_NEWNET).map_err(|source| {
                    NetnsError::Enter {
                        path: self.path.clone(),
                        source,
                    }
                })?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| {
                Err(NetnsError::Panicked {
                    path: self.path.clone(),
                })
            })
        })
    }
}
