//! Revoked-sid propagation through Redis pub/sub with re-sync, against a `redis-server` this
//! test starts on a free loopback port (skipped when `redis-server` is not installed).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rampart_auth::redis_sync::RedisRevocations;
use rampart_auth::{RevocationList, RevocationSink};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_redis(port: u16) -> Option<Child> {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn revocations_reach_other_nodes_and_resync_after_reconnect() {
    let port = free_port();
    let Some(mut redis) = start_redis(port) else {
        eprintln!("redis-server not available; skipping");
        return;
    };
    let url = format!("redis://127.0.0.1:{port}");
    let now = rampart_auth::now_unix();

    // Node A revokes before node B starts: B gets it from the re-sync.
    let a = RedisRevocations::new(&url).unwrap();
    a.publish("early", now + 900).await.unwrap();
    let probe = RevocationList::new(930);
    assert_eq!(a.resync(&probe, now).await.unwrap(), 1);

    let b_list = Arc::new(RevocationList::new(930));
    let b = RedisRevocations::new(&url).unwrap();
    let task = b.start_subscriber(b_list.clone());
    assert!(!b_list.is_synced(), "fails closed until the first re-sync");
    eventually("b synced", || b_list.is_synced()).await;
    assert!(b_list.is_revoked("early", now));

    // Live propagation.
    a.publish("live", now + 900).await.unwrap();
    eventually("live revocation arrives", || b_list.is_revoked("live", now)).await;

    // Redis goes away: B no longer knows the revocation state and must fail closed.
    redis.kill().unwrap();
    redis.wait().unwrap();
    eventually("b unsynced", || !b_list.is_synced()).await;
    assert!(a.publish("lost", now + 900).await.is_err());

    // Redis is back: B re-subscribes and re-syncs; new revocations flow again.
    let mut redis = start_redis(port).expect("redis restart");
    eventually("b re-synced", || b_list.is_synced()).await;
    let mut ok = false;
    for _ in 0..50 {
        if a.publish("after", now + 900).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "publisher reconnects");
    eventually("post-reconnect revocation arrives", || {
        b_list.is_revoked("after", now)
    })
    .await;

    task.abort();
    redis.kill().unwrap();
    redis.wait().unwrap();
}
