//! Rendering resources: `ps`/`wide`/`custom-columns` tables and YAML/JSON.

pub(crate) mod columns;
pub(crate) mod table;
pub(crate) mod yaml;
