//! Connections to the shared store (Redis / Valkey, single node or Cluster).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterConfig;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, IntoConnectionInfo, Pipeline, RedisFuture, Value};

use crate::LimitError;

/// Where shared state lives, parsed from `[shared] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `memory://`: this process only.
    Memory,
    /// `redis://host:port[/db]` (or `rediss://` when the redis crate is built with TLS).
    Redis(String),
    /// `redis+cluster://h1:p1,h2:p2,...`: seed nodes of a Redis Cluster.
    Cluster(Vec<String>),
}

impl StoreUrl {
    /// Parses a `[shared] url` value.
    pub fn parse(url: &str) -> Result<Self, LimitError> {
        let url = url.trim();
        let bad = |why: &str| LimitError::InvalidUrl(format!("{why} ({} chars)", url.len()));
        if url == "memory://" || url == "memory" {
            return Ok(StoreUrl::Memory);
        }
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let nodes: Vec<String> = rest
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| format!("redis://{s}"))
                .collect();
            if nodes.is_empty() {
                return Err(bad("redis+cluster:// needs at least one host"));
            }
            for n in &nodes {
                n.as_str()
                    .into_connection_info()
                    .map_err(|_| bad("a cluster node is not host:port"))?;
            }
            return Ok(StoreUrl::Cluster(nodes));
        }
        if url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("redis+unix://")
        {
            url.into_connection_info()
                .map_err(|_| bad("not a valid redis:// url"))?;
            return Ok(StoreUrl::Redis(url.to_owned()));
        }
        Err(bad("expected memory://, redis:// or redis+cluster://"))
    }
}

/// Settings of the limiter's backend: key prefix and deadlines for the shared store (every
/// call has one: the limiter never waits on the network longer than `response_timeout`),
/// and the key cap of the in-memory backend.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Prefix of every key this crate writes (default `rampart:`); lets several deployments or
    /// tests share one Redis.
    pub prefix: String,
    /// Longest wait for one reply (default 250 ms).
    pub response_timeout: Duration,
    /// Longest wait for a TCP connection (default 500 ms).
    pub connection_timeout: Duration,
    /// After a failure, decisions answer `Unavailable` at once for this long before the store
    /// is tried again (default 500 ms), so an outage costs no latency per request.
    pub retry_pause: Duration,
    /// Key cap of the in-memory backend (`memory://`; see [`crate::MemoryBackend`]).
    pub max_keys: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            prefix: "rampart:".to_owned(),
            response_timeout: Duration::from_millis(250),
            connection_timeout: Duration::from_millis(500),
            retry_pause: Duration::from_millis(500),
            max_keys: crate::MemoryBackend::DEFAULT_MAX_KEYS,
        }
    }
}

/// A multiplexed, self-reconnecting connection to one Redis node or a Redis Cluster.
/// Cheap to clone.
#[derive(Clone)]
pub(crate) enum StoreConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for StoreConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreConn::Single(_) => "StoreConn::Single",
            StoreConn::Cluster(_) => "StoreConn::Cluster",
        })
    }
}

impl StoreConn {
    /// Connects lazily: succeeds while the store is down (decisions then follow `fail_open`).
    /// Must be called inside a Tokio runtime.
    pub(crate) fn open(url: &StoreUrl, opts: &StoreOptions) -> Result<Option<Self>, LimitError> {
        if *url != StoreUrl::Memory && tokio::runtime::Handle::try_current().is_err() {
            return Err(LimitError::NoRuntime);
        }
        match url {
            StoreUrl::Memory => Ok(None),
            StoreUrl::Redis(u) => {
                let client = redis::Client::open(u.as_str()).map_err(LimitError::Store)?;
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(opts.connection_timeout))
                    .set_response_timeout(Some(opts.response_timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                let m = ConnectionManager::new_lazy_with_config(client, cfg)
                    .map_err(LimitError::Store)?;
                Ok(Some(StoreConn::Single(m)))
            }
            StoreUrl::Cluster(nodes) => {
                let client = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(opts.connection_timeout)
                    .response_timeout(opts.response_timeout)
                    .retries(2)
                    .build()
                    .map_err(LimitError::Store)?;
                let cfg = ClusterConfig::new()
                    .set_connection_timeout(opts.connection_timeout)
                    .set_response_timeout(opts.response_timeout);
                Ok(Some(StoreConn::Cluster(
                    client.get_pending_async_connection_with_config(cfg),
                )))
            }
        }
    }

    /// Runs one command with the deadline `limit`.
    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        limit: Duration,
    ) -> Result<T, LimitError> {
        let mut c = self.clone();
        match tokio::time::timeout(limit, cmd.query_async::<T>(&mut c)).await {
            Ok(r) => r.map_err(LimitError::Store),
            Err(_) => Err(LimitError::StoreTimeout),
        }
    }

    /// Runs a script invocation with the deadline `limit`.
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
        limit: Duration,
    ) -> Result<T, LimitError> {
        let mut c = self.clone();
        match tokio::time::timeout(limit, inv.invoke_async::<T>(&mut c)).await {
            Ok(r) => r.map_err(LimitError::Store),
            Err(_) => Err(LimitError::StoreTimeout),
        }
    }
}

impl ConnectionLike for StoreConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            StoreConn::Single(c) => c.req_packed_command(cmd),
            StoreConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            StoreConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            StoreConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            StoreConn::Single(c) => c.get_db(),
            StoreConn::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(StoreUrl::parse("memory://").unwrap(), StoreUrl::Memory);
        assert!(matches!(
            StoreUrl::parse("redis://127.0.0.1:6379").unwrap(),
            StoreUrl::Redis(_)
        ));
        assert_eq!(
            StoreUrl::parse("redis+cluster://a:1, b:2,c:3").unwrap(),
            StoreUrl::Cluster(vec![
                "redis://a:1".into(),
                "redis://b:2".into(),
                "redis://c:3".into()
            ])
        );
        for bad in ["", "http://x", "redis+cluster://", "redis://:::::"] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
