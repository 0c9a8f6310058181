//! `fabric-datastore-cas-worker`: one process of a multi-process compare-and-swap check.
//!
//! Opens a sqlite datastore and increments a JSON counter `{"n": N}` under a key, a given
//! number of times, each as read + `update(expected = mod_revision)` retried on conflict (the
//! read is skipped when the worker's own last write is still current).
//! The no-lost-update tests run 16 of these on one file; it is also a handy manual check:
//!
//! ```text
//! fabric-datastore-cas-worker --sqlite /tmp/x.db --key /calico/test/counter --increments 500
//! ```
//!
//! Prints one line `increments=<n> conflicts=<n> busy_retries=<n>` when done.

use std::time::Duration;

use anyhow::{Context, bail};
use fabric_datastore::{Backend, BackendError, SqliteBackend};

struct Args {
    sqlite: String,
    key: String,
    increments: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut sqlite = None;
    let mut key = None;
    let mut increments = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sqlite" => sqlite = Some(value),
            "--key" => key = Some(value),
            "--increments" => {
                increments = Some(
                    value
                        .parse()
                        .with_context(|| format!("--increments {value:?} is not a number"))?,
                );
            }
            other => bail!("unknown flag {other}; expected --sqlite, --key, --increments"),
        }
    }
    Ok(Args {
        sqlite: sqlite.context("--sqlite PATH is required")?,
        key: key.context("--key KEY is required")?,
        increments: increments.context("--increments N is required")?,
    })
}

/// A counter writer. It keeps the value and revision it last read or wrote, so on an
/// uncontended key an increment is one `update`; after a conflict it pauses a short random
/// time (so contending processes do not spend the write lock on attempts bound to fail),
/// re-reads and retries.
struct Counter {
    key: String,
    /// (value, mod_revision) as last seen; `None` when it must be read.
    known: Option<(u64, i64)>,
    rng: u64,
    conflicts: u64,
    busy: u64,
}

impl Counter {
    fn new(key: String) -> Counter {
        let seed = u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Counter {
            key,
            known: None,
            rng: seed | 1,
            conflicts: 0,
            busy: 0,
        }
    }

    async fn pause(&mut self, attempt: u32) {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let cap_us = 250u64 << attempt.min(6);
        tokio::time::sleep(Duration::from_micros(self.rng % cap_us)).await;
    }

    /// Adds one, creating the counter at 1 when absent.
    async fn increment(&mut self, backend: &dyn Backend) -> anyhow::Result<()> {
        let mut attempt = 0;
        loop {
            let known = match self.known {
                Some(known) => Some(known),
                None => match backend.get(&self.key).await {
                    Ok(Some(kv)) => {
                        let doc: serde_json::Value = serde_json::from_str(&kv.value)
                            .with_context(|| format!("value of {} is not JSON", self.key))?;
                        let n = doc["n"]
                            .as_u64()
                            .context("counter has no numeric field n")?;
                        Some((n, kv.mod_revision))
                    }
                    Ok(None) => None,
                    Err(e) if e.is_unavailable() => {
                        self.busy += 1;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    Err(e) => return Err(e).with_context(|| format!("reading {}", self.key)),
                },
            };
            let n = known.map_or(0, |(n, _)| n);
            let next = serde_json::json!({ "n": n + 1 }).to_string();
            let result = match known {
                Some((_, revision)) => backend.update(&self.key, &next, revision).await,
                None => backend.create(&self.key, &next).await,
            };
            match result {
                Ok(revision) => {
                    self.known = Some((n + 1, revision));
                    return Ok(());
                }
                Err(BackendError::Conflict { .. } | BackendError::AlreadyExists { .. }) => {
                    self.conflicts += 1;
                    self.known = None;
                    attempt += 1;
                    self.pause(attempt).await;
                }
                Err(e) if e.is_unavailable() => {
                    self.busy += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("incrementing {}", self.key)),
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let backend = SqliteBackend::open(&args.sqlite)
        .with_context(|| format!("opening the sqlite datastore {}", args.sqlite))?;
    let mut counter = Counter::new(args.key);
    for _ in 0..args.increments {
        counter.increment(&backend).await?;
    }
    println!(
        "increments={} conflicts={} busy_retries={}",
        args.increments, counter.conflicts, counter.busy
    );
    Ok(())
}
