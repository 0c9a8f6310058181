//! The graceful-restart state file. It exists while a bgpd runs and is removed by a clean
//! shutdown, so finding it at start means the previous process crashed, was killed or was stopped
//! for a graceful restart: this process then starts as a restarting speaker (R bit, and the F bit
//! because felix kept the kernel routes). Keep it on a tmpfs such as `/run`: a reboot clears it,
//! and after a reboot no forwarding state survived.

use std::io;
use std::path::{Path, PathBuf};

/// A claimed state file.
#[derive(Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// Checks for a previous file (returned as `true`: restarting) and writes ours.
    pub(crate) fn claim(path: &Path) -> io::Result<(StateFile, bool)> {
        let restarting = path.exists();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let text = format!(
            "pid {}\nThis file marks a running bgpd; a clean shutdown removes it. Found at start, it \
             makes bgpd start as a graceful-restarting speaker.\n",
            std::process::id()
        );
        std::fs::write(path, text)?;
        Ok((
            StateFile {
                path: path.to_path_buf(),
            },
            restarting,
        ))
    }

    /// A clean shutdown: the next start is a fresh one.
    pub(crate) fn remove(&self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the state file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leftover_file_means_restarting_and_a_clean_shutdown_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/bgpd.state");
        let (f, restarting) = StateFile::claim(&path).unwrap();
        assert!(!restarting);
        let (_g, restarting) = StateFile::claim(&path).unwrap();
        assert!(restarting);
        f.remove();
        assert!(!path.exists());
    }
}
