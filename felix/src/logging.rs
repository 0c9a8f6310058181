//! Logging set-up for the binaries that run felix (`felix`, `calico-node`): `RUST_LOG` if set,
//! else the first of the given variables that is set, in Calico's level names, else `info`.

use tracing_subscriber::EnvFilter;

/// Calico's log level names (`Debug`, `Warning`, `Fatal`, ...) as a tracing level.
fn level_of(name: &str) -> &'static str {
    match name.to_ascii_lowercase().as_str() {
        "debug" => "debug",
        "warning" | "warn" => "warn",
        "error" | "fatal" | "panic" => "error",
        _ => "info",
    }
}

/// Logs to stderr (colours only on a terminal) at the level of `RUST_LOG`, else of the first
/// set variable of `level_variables` (e.g. `FELIX_LOGSEVERITYSCREEN`), else `info`.
pub fn init(level_variables: &[&str]) {
    let level = level_variables
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .map_or("info", |l| level_of(&l));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calicos_level_names_map_to_tracing_levels() {
        assert_eq!(level_of("Warning"), "warn");
        assert_eq!(level_of("FATAL"), "error");
        assert_eq!(level_of("Debug"), "debug");
        assert_eq!(level_of("Info"), "info");
        assert_eq!(level_of("nonsense"), "info");
    }
}
