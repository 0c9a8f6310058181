//! `EtcdBackend`: the Backend on an etcd v3 cluster, one round trip per operation.
//!
//! Writes are transactions, as libcalico-go's etcdv3 backend does them: create is
//! `If(Version(key) == 0) Then(Put)`, update is `If(ModRevision(key) == expected) Then(Put)`
//! and delete likewise; the `Else` branch reads the key, so a conflict reports the actual
//! revision without a second round trip. A multi-key transaction is one `Txn` too: every
//! comparison, the writes in `Then`, a read of every key in `Else`. Keys may live under a private prefix (for test
//! isolation on a shared etcd): it is prepended on the way in and stripped on the way out.

mod watch;

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, SortOrder, SortTarget, Txn, TxnOp,
    TxnOpResponse,
};

use crate::backend::{
    self, Backend, BackendError, CasOutcome, KeyValue, Listing, Revision, TxnOutcome, WatchStream,
    check_expected, check_key, check_swap_expected, check_txn, check_write,
};

/// Keys read per request when listing.
const LIST_PAGE: i64 = 500;

/// The largest response accepted (a list page or a watch batch of big IPAM blocks can exceed
/// gRPC's default of 4 MiB).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// How to reach etcd.
#[derive(Debug, Clone, Default)]
pub struct EtcdOptions {
    /// Prepended to every key (e.g. `/test-xyz`); empty for none.
    pub key_prefix: String,
    /// User name and password for etcd authentication.
    pub user: Option<(String, String)>,
}

/// A store on an etcd v3 cluster. Clones share the connection.
#[derive(Clone)]
pub struct EtcdBackend {
    client: Client,
    prefix: String,
    endpoints: String,
}

impl std::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl EtcdBackend {
    /// Connects to the cluster and checks it answers (`Unavailable` when it does not).
    pub async fn connect(endpoints: &[String]) -> Result<EtcdBackend, BackendError> {
        EtcdBackend::connect_with(endpoints, EtcdOptions::default()).await
    }

    /// Like [`EtcdBackend::connect`], with every key living under `prefix` (e.g. `/test-xyz`).
    pub async fn connect_with_prefix(
        endpoints: &[String],
        prefix: &str,
    ) -> Result<EtcdBackend, BackendError> {
        let options = EtcdOptions {
            key_prefix: prefix.to_string(),
            ..EtcdOptions::default()
        };
        EtcdBackend::connect_with(endpoints, options).await
    }

    /// Connects with explicit options.
    pub async fn connect_with(
        endpoints: &[String],
        options: EtcdOptions,
    ) -> Result<EtcdBackend, BackendError> {
        let label = endpoints.join(",");
        if endpoints.is_empty() {
            return Err(BackendError::Etcd {
                operation: "connecting",
                endpoints: label,
                source: etcd_client::Error::InvalidArgs("no etcd endpoints given".into()),
            });
        }
        if options.key_prefix.contains('\0') {
            return Err(BackendError::InvalidKey {
                key: options.key_prefix,
                rule: "a key prefix must not contain NUL",
            });
        }
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(30))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        if let Some((user, password)) = options.user {
            connect = connect.with_user(user, password);
        }
        let client = Client::connect(endpoints, Some(connect))
            .await
            .map_err(|e| classify("connecting", &label, e))?;
        let backend = EtcdBackend {
            client,
            prefix: options.key_prefix,
            endpoints: label,
        };
        backend.revision().await?;
        tracing::debug!(endpoints = %backend.endpoints, prefix = %backend.prefix, "etcd datastore connected");
        Ok(backend)
    }

    /// The endpoints, comma-separated.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    fn kv(&self) -> etcd_client::KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    fn watch_client(&self) -> etcd_client::WatchClient {
        self.client
            .watch_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    fn full(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    fn error(&self, operation: &'static str, e: etcd_client::Error) -> BackendError {
        classify(operation, &self.endpoints, e)
    }

    /// Our key from an etcd key: UTF-8, with the private prefix stripped.
    fn key_of(&self, raw: &[u8]) -> Result<String, BackendError> {
        let key = std::str::from_utf8(raw).map_err(|_| BackendError::Corrupt {
            key: String::from_utf8_lossy(raw).into_owned(),
            reason: "the key is not UTF-8".into(),
        })?;
        key.strip_prefix(self.prefix.as_str())
            .map(str::to_string)
            .ok_or_else(|| BackendError::Corrupt {
                key: key.to_string(),
                reason: format!("the key is outside the prefix {:?}", self.prefix),
            })
    }

    fn kv_of(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, BackendError> {
        let key = self.key_of(kv.key())?;
        let value = std::str::from_utf8(kv.value()).map_err(|_| BackendError::Corrupt {
            key: key.clone(),
            reason: "the value is not UTF-8".into(),
        })?;
        Ok(KeyValue {
            key,
            value: value.to_string(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }

    /// Runs a compare-and-swap transaction whose else branch reads the key (keys only).
    async fn cas(
        &self,
        operation: &'static str,
        key: &str,
        expected: Revision,
        then: TxnOp,
    ) -> Result<Revision, BackendError> {
        let full = self.full(key);
        let txn = Txn::new()
            .when([Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                expected,
            )])
            .and_then([then])
            .or_else([TxnOp::get(full, Some(GetOptions::new().with_keys_only()))]);
        let resp = self
            .kv()
            .txn(txn)
            .await
            .map_err(|e| self.error(operation, e))?;
        if resp.succeeded() {
            return Ok(header_revision(resp.header()));
        }
        let actual = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => Some(get.kvs().first().map(|kv| kv.mod_revision())),
            _ => None,
        });
        Err(match actual.flatten() {
            Some(actual) => BackendError::Conflict {
                key: key.to_string(),
                expected,
                actual: Some(actual),
            },
            None => BackendError::NotFound {
                key: key.to_string(),
            },
        })
    }
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map_or(0, etcd_client::ResponseHeader::revision)
}

/// The smallest key greater than every key starting with `prefix` (etcd's range end);
/// `\0` (meaning "to the end") for an empty prefix or one of only 0xff bytes.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Unreachable or overloaded servers become `Unavailable`; everything else `Etcd`.
fn classify(operation: &'static str, endpoints: &str, e: etcd_client::Error) -> BackendError {
    use etcd_client::Error as E;
    use tonic::Code;
    let unavailable = match &e {
        E::TransportError(_) | E::IoError(_) => true,
        E::GRpcStatus(status) => matches!(
            status.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::Aborted
                | Code::ResourceExhausted
                | Code::Unknown
        ),
        _ => false,
    };
    if unavailable {
        BackendError::Unavailable {
            datastore: format!("etcd at {endpoints} ({operation})"),
            source: Box::new(e),
        }
    } else {
        BackendError::Etcd {
            operation,
            endpoints: endpoints.to_string(),
            source: e,
        }
    }
}

impl EtcdBackend {
    /// One paginated listing at one revision.
    async fn list_pages(&self, prefix: &str) -> Result<Listing, BackendError> {
        let full = self.full(prefix);
        let end = prefix_end(full.as_bytes());
        let mut kv = self.kv();
        let mut from = full.into_bytes();
        let mut revision = 0;
        let mut items = Vec::new();
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(LIST_PAGE)
                .with_sort(SortTarget::Key, SortOrder::Ascend);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let resp = kv
                .get(from.clone(), Some(options))
                .await
                .map_err(|e| self.error("list", e))?;
            if revision == 0 {
                revision = header_revision(resp.header());
            }
            for kv in resp.kvs() {
                items.push(self.kv_of(kv)?);
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
        Ok(Listing { items, revision })
    }
}

/// etcd's "required revision has been compacted".
fn is_compacted(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s)
        if s.code() == tonic::Code::OutOfRange || s.message().contains("compacted"))
}

#[async_trait::async_trait]
impl Backend for EtcdBackend {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, BackendError> {
        check_key(key)?;
        let resp = self
            .kv()
            .get(self.full(key), None)
            .await
            .map_err(|e| self.error("get", e))?;
        resp.kvs().first().map(|kv| self.kv_of(kv)).transpose()
    }

    async fn list(&self, prefix: &str) -> Result<Listing, BackendError> {
        // Pages after the first are read at the first page's revision, for one consistent
        // snapshot; if that revision is compacted meanwhile, start over.
        loop {
            match self.list_pages(prefix).await {
                Err(BackendError::Etcd { source, .. }) if is_compacted(&source) => {
                    tracing::debug!(prefix = %prefix, "listing revision compacted, listing again");
                }
                other => return other,
            }
        }
    }

    async fn create(&self, key: &str, value: &str) -> Result<Revision, BackendError> {
        check_write(key, value)?;
        let full = self.full(key);
        let txn = Txn::new()
            .when([Compare::version(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value, None)]);
        let resp = self
            .kv()
            .txn(txn)
            .await
            .map_err(|e| self.error("txn create", e))?;
        if resp.succeeded() {
            Ok(header_revision(resp.header()))
        } else {
            Err(BackendError::AlreadyExists {
                key: key.to_string(),
            })
        }
    }

    async fn update(
        &self,
        key: &str,
        value: &str,
        expected: Revision,
    ) -> Result<Revision, BackendError> {
        check_write(key, value)?;
        check_expected(key, expected)?;
        let put = TxnOp::put(self.full(key), value, None);
        self.cas("txn update", key, expected, put).await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        value: &str,
        expected: Revision,
    ) -> Result<CasOutcome, BackendError> {
        check_write(key, value)?;
        check_swap_expected(key, expected)?;
        let full = self.full(key);
        // A missing key has mod_revision 0 in etcd's compare, so `expected == 0` means absent.
        let txn = Txn::new()
            .when([Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                expected,
            )])
            .and_then([TxnOp::put(full.clone(), value, None)])
            .or_else([TxnOp::get(full, None)]);
        let resp = self
            .kv()
            .txn(txn)
            .await
            .map_err(|e| self.error("txn compare-and-swap", e))?;
        if resp.succeeded() {
            return Ok(CasOutcome::Swapped(header_revision(resp.header())));
        }
        let mut current = None;
        for op in resp.op_responses() {
            if let TxnOpResponse::Get(get) = op
                && let Some(kv) = get.kvs().first()
            {
                current = Some(self.kv_of(kv)?);
            }
        }
        Ok(CasOutcome::Current(current))
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<Revision, BackendError> {
        check_key(key)?;
        let Some(expected) = expected else {
            let resp = self
                .kv()
                .delete(self.full(key), None)
                .await
                .map_err(|e| self.error("delete", e))?;
            return if resp.deleted() > 0 {
                Ok(header_revision(resp.header()))
            } else {
                Err(BackendError::NotFound {
                    key: key.to_string(),
                })
            };
        };
        check_expected(key, expected)?;
        let delete = TxnOp::delete(self.full(key), None);
        self.cas("txn delete", key, expected, delete).await
    }

    async fn transaction(&self, ops: &[backend::TxnOp]) -> Result<TxnOutcome, BackendError> {
        check_txn(ops)?;
        let mut compares = Vec::with_capacity(ops.len());
        let mut writes = Vec::with_capacity(ops.len());
        let mut reads = Vec::with_capacity(ops.len());
        for op in ops {
            let full = self.full(op.key());
            // A missing key has mod_revision 0 in etcd's compare, so 0 means absent.
            compares.push(Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                op.expected(),
            ));
            match op {
                backend::TxnOp::Put { value, .. } => {
                    writes.push(TxnOp::put(full.clone(), value.as_str(), None));
                }
                backend::TxnOp::Delete { .. } => writes.push(TxnOp::delete(full.clone(), None)),
                backend::TxnOp::Check { .. } => {}
            }
            reads.push(TxnOp::get(full, None));
        }
        let txn = Txn::new().when(compares).and_then(writes).or_else(reads);
        let resp = self.kv().txn(txn).await.map_err(|e| self.error("txn", e))?;
        if resp.succeeded() {
            return Ok(TxnOutcome::Committed(header_revision(resp.header())));
        }
        let mut current = Vec::with_capacity(ops.len());
        for op in resp.op_responses() {
            if let TxnOpResponse::Get(get) = op {
                current.push(get.kvs().first().map(|kv| self.kv_of(kv)).transpose()?);
            }
        }
        if current.len() != ops.len() {
            return Err(BackendError::Corrupt {
                key: ops
                    .first()
                    .map(|op| op.key().to_string())
                    .unwrap_or_default(),
                reason: format!(
                    "etcd answered a failed transaction of {} keys with {} reads",
                    ops.len(),
                    current.len()
                ),
            });
        }
        Ok(TxnOutcome::Current(current))
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, BackendError> {
        Ok(watch::spawn(self.clone(), prefix.to_string(), from))
    }

    async fn revision(&self) -> Result<Revision, BackendError> {
        let probe = if self.prefix.is_empty() {
            "/".to_string()
        } else {
            self.prefix.clone()
        };
        let resp = self
            .kv()
            .get(probe, Some(GetOptions::new().with_count_only()))
            .await
            .map_err(|e| self.error("reading the revision", e))?;
        Ok(header_revision(resp.header()))
    }

    async fn compact(&self, revision: Revision) -> Result<(), BackendError> {
        let target = revision.min(self.revision().await?);
        match self.kv().compact(target, None).await {
            Ok(_) => Ok(()),
            // Already compacted at or past `target`: nothing to do.
            Err(e) if is_compacted(&e) => Ok(()),
            Err(e) => Err(self.error("compact", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b""), vec![0]);
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
