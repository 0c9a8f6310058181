//! BGP speaker: sans-IO session core and RIBs, the tokio daemon, and the datastore-driven fabric config.
