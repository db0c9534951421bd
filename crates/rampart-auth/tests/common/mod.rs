//! Shared test helpers: a fake clock and services over both store backends.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rampart_auth::rampart_store::{SqlStore, Store, StoreOptions};
use rampart_auth::*;

#[derive(Debug)]
pub struct FakeClock(pub AtomicI64);

impl FakeClock {
    pub fn new(t: i64) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(t)))
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for FakeClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn opts() -> AuthOptions {
    AuthOptions::new("https://auth.test", vec!["api".into()])
}

pub fn pg_url() -> String {
    std::env::var("RAMPART_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn rand_hex() -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A fresh store of each backend: SQLite in a temp dir, PostgreSQL in its own schema (dropped
/// afterwards). `f` gets the store and a label.
pub async fn with_stores<F, Fut>(f: F)
where
    F: Fn(Arc<dyn Store>, &'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let s = SqlStore::open(&format!("sqlite://{}/a.db", dir.path().display()))
        .await
        .unwrap();
    f(Arc::new(s.clone()), "sqlite").await;
    s.close().await;

    let schema = format!("ra_test_{}", rand_hex());
    let o = StoreOptions {
        pg_schema: Some(schema.clone()),
        ..StoreOptions::default()
    };
    match SqlStore::open_with(&pg_url(), o).await {
        Ok(s) => {
            f(Arc::new(s.clone()), "postgres").await;
            s.drop_pg_schema(&schema).await.unwrap();
            s.close().await;
        }
        Err(e) if std::env::var("RAMPART_TEST_PG_OPTIONAL").is_ok() => {
            eprintln!("skipping PostgreSQL: {e}")
        }
        Err(e) => panic!("PostgreSQL unreachable ({e}); set RAMPART_TEST_PG_OPTIONAL=1 to skip"),
    }
}

pub async fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqlStore::open(&format!("sqlite://{}/a.db", dir.path().display()))
        .await
        .unwrap();
    (Arc::new(s), dir)
}

pub async fn service(store: Arc<dyn Store>, o: AuthOptions, clock: Arc<FakeClock>) -> AuthService {
    AuthService::with_clock(
        store,
        o,
        MasterKey::from_secret(&[42u8; 32]).unwrap(),
        clock,
    )
    .await
    .unwrap()
}
