//! `version`: the client version and which datastore the configuration names (read from the
//! configuration only; nothing is opened or created).

use fabric_datastore::DatastoreKind;

use crate::cli::VersionArgs;
use crate::context::Ctx;

/// The client version, `v` and the package version.
pub(crate) const CLIENT_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// `version`.
pub(crate) fn version(ctx: &mut Ctx<'_>, args: &VersionArgs) -> anyhow::Result<()> {
    writeln!(ctx.out, "Client Version:    {CLIENT_VERSION}")?;
    let commit = option_env!("FABRIC_GIT_COMMIT").unwrap_or("unknown");
    writeln!(ctx.out, "Git commit:        {commit}")?;
    if args.client {
        return Ok(());
    }
    let config = ctx.config()?;
    writeln!(ctx.out, "Datastore Type:    {}", config.kind.as_str())?;
    let place = match config.kind {
        DatastoreKind::Sqlite => config.sqlite_path.display().to_string(),
        DatastoreKind::Etcdv3 => config.etcd_endpoints.join(","),
    };
    writeln!(ctx.out, "Datastore:         {place}")?;
    Ok(())
}
