//! Revoked-session propagation through Redis: every revocation is added to a sorted set
//! (`rampart:revoked-sids`, score = hold-until time) and published on the channel
//! `rampart:revoked-sids` as `"<until> <sid>"`. Each node subscribes; after every (re)connect
//! it re-reads the sorted set before declaring its list synced. While not synced, tokens that
//! carry a `sid` fail closed ([`crate::AuthError::RevocationUnknown`], 503).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::AsyncCommands as _;

use crate::revocation::{RevocationList, RevocationSink};

/// Channel and sorted-set name.
pub const REVOKED_SIDS_KEY: &str = "rampart:revoked-sids";

/// Redis publisher (and subscriber, see [`RedisRevocations::run_subscriber`]) of revoked sids.
#[derive(Debug, Clone)]
pub struct RedisRevocations {
    client: redis::Client,
    conn: Arc<tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>>,
}

impl RedisRevocations {
    /// For `redis://host:port` (no connection is made yet).
    pub fn new(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            conn: Arc::new(tokio::sync::Mutex::new(None)),
        })
    }

    async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Reads every unexpired revocation from the sorted set into `list`; returns how many.
    pub async fn resync(&self, list: &RevocationList, now: i64) -> Result<usize, String> {
        let mut c = self.connection().await?;
        let _: () = c
            .zrembyscore(REVOKED_SIDS_KEY, "-inf", now - 1)
            .await
            .map_err(|e| e.to_string())?;
        let entries: Vec<(String, f64)> = c
            .zrangebyscore_withscores(REVOKED_SIDS_KEY, now, "+inf")
            .await
            .map_err(|e| e.to_string())?;
        for (sid, until) in &entries {
            list.insert_until(sid, *until as i64);
        }
        Ok(entries.len())
    }

    /// Marks `list` unsynced at once (tokens with a `sid` fail closed until the first re-sync)
    /// and spawns [`RedisRevocations::run_subscriber`] on the current Tokio runtime.
    pub fn start_subscriber(self, list: Arc<RevocationList>) -> tokio::task::JoinHandle<()> {
        list.set_synced(false);
        tokio::spawn(self.run_subscriber(list))
    }

    /// Subscribes and keeps `list` fed until the task is dropped: on every (re)connect, marks
    /// the list unsynced, subscribes, re-syncs from the sorted set, then marks it synced.
    pub async fn run_subscriber(self, list: Arc<RevocationList>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            list.set_synced(false);
            match self.subscribe_once(&list).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, "revocation subscription down; tokens with a sid fail closed")
                }
            }
            list.set_synced(false);
            *self.conn.lock().await = None;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn subscribe_once(&self, list: &RevocationList) -> Result<(), String> {
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(|e| e.to_string())?;
        pubsub
            .subscribe(REVOKED_SIDS_KEY)
            .await
            .map_err(|e| e.to_string())?;
        // Subscribed first, then re-synced: nothing published in between can be missed.
        let n = self.resync(list, crate::now_unix()).await?;
        list.set_synced(true);
        tracing::info!(entries = n, "revocation list re-synced from Redis");
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let Ok(payload) = msg.get_payload::<String>() else {
                continue;
            };
            if let Some((until, sid)) = payload.split_once(' ')
                && let Ok(until) = until.parse::<i64>()
            {
                list.insert_until(sid, until);
            }
        }
        Err("subscription closed".into())
    }
}

#[async_trait::async_trait]
impl RevocationSink for RedisRevocations {
    async fn publish(&self, sid: &str, until: i64) -> Result<(), String> {
        let mut c = self.connection().await?;
        let res: Result<(), redis::RedisError> = async {
            let _: () = c.zadd(REVOKED_SIDS_KEY, sid, until).await?;
            let _: () = c
                .publish(REVOKED_SIDS_KEY, format!("{until} {sid}"))
                .await?;
            Ok(())
        }
        .await;
        if let Err(e) = res {
            *self.conn.lock().await = None;
            return Err(e.to_string());
        }
        Ok(())
    }
}
