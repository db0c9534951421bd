//! The same suite against both backends: SQLite in a temp dir and PostgreSQL at
//! `RAMPART_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`), each run in its
//! own schema that is dropped afterwards. Set `RAMPART_TEST_PG_OPTIONAL=1` to skip PostgreSQL
//! when it is not reachable (it is required otherwise).

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rampart_store::*;

fn rand_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pg_url() -> String {
    std::env::var("RAMPART_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn with_backends<F, Fut>(f: F)
where
    F: Fn(Arc<SqlStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sub/rampart.db", dir.path().display());
    let s = Arc::new(SqlStore::open(&url).await.unwrap());
    f(s.clone()).await;
    s.close().await;

    let schema = format!("rs_test_{}", rand_hex(6));
    let opts = StoreOptions {
        pg_schema: Some(schema.clone()),
        ..StoreOptions::default()
    };
    match SqlStore::open_with(&pg_url(), opts).await {
        Ok(s) => {
            let s = Arc::new(s);
            f(s.clone()).await;
            s.drop_pg_schema(&schema).await.unwrap();
            s.close().await;
        }
        Err(e) if std::env::var("RAMPART_TEST_PG_OPTIONAL").is_ok() => {
            eprintln!("skipping PostgreSQL: {e}")
        }
        Err(e) => panic!(
            "PostgreSQL at {} unreachable ({e}); set RAMPART_TEST_PG_OPTIONAL=1 to skip",
            pg_url()
        ),
    }
}

fn user(name: &str) -> User {
    User {
        id: format!("u-{name}"),
        username: name.into(),
        password_hash: "$argon2id$x".into(),
        disabled: false,
        created_at: 100,
    }
}

fn session(sid: &str, user_id: &str, now: i64) -> Session {
    Session {
        sid: sid.into(),
        user_id: user_id.into(),
        secret_hash: None,
        created_at: now,
        last_seen_at: now,
        idle_expires_at: now + 1800,
        expires_at: now + 86400,
        client_addr: Some("192.0.2.1".into()),
        user_agent: Some("test".into()),
        revoked_at: None,
        client_id: None,
        scopes: vec!["openid".into(), "items:read".into()],
    }
}

fn token(hash: &[u8], sid: &str, generation: i64, now: i64) -> RefreshToken {
    RefreshToken {
        hash: hash.to_vec(),
        sid: sid.into(),
        generation,
        created_at: now,
        expires_at: now + 86400,
        rotated_at: None,
        successor_hash: None,
        revoked: false,
    }
}

#[tokio::test]
async fn users_unique_and_disable() {
    with_backends(|s| async move {
        s.create_user(&user("alice")).await.unwrap();
        assert!(matches!(
            s.create_user(&User {
                id: "other".into(),
                ..user("alice")
            })
            .await,
            Err(StoreError::Conflict(_))
        ));
        let u = s.user_by_name("alice").await.unwrap().unwrap();
        assert_eq!(u, user("alice"));
        assert_eq!(
            s.user_by_id("u-alice").await.unwrap().unwrap().username,
            "alice"
        );
        assert!(s.user_by_name("bob").await.unwrap().is_none());
        // Injection-looking input is just data.
        assert!(s.user_by_name("' OR 1=1 --").await.unwrap().is_none());
        s.create_user(&user("bob")).await.unwrap();
        assert_eq!(s.list_users().await.unwrap().len(), 2);
        assert!(s.set_user_disabled("u-alice", true).await.unwrap());
        assert!(s.user_by_name("alice").await.unwrap().unwrap().disabled);
        assert!(!s.set_user_disabled("nobody", true).await.unwrap());
        assert!(s.set_user_password("u-bob", "new").await.unwrap());
        assert_eq!(
            s.user_by_id("u-bob").await.unwrap().unwrap().password_hash,
            "new"
        );
        s.ping().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn sessions_and_refresh_cas() {
    with_backends(|s| async move {
        s.create_user(&user("alice")).await.unwrap();
        let now = 1000;
        let mut sess = session("sid1", "u-alice", now);
        sess.secret_hash = Some(vec![9; 32]);
        s.create_session(&sess, Some(&token(&[1; 32], "sid1", 0, now)))
            .await
            .unwrap();
        assert_eq!(s.session("sid1").await.unwrap().unwrap(), sess);
        assert_eq!(
            s.session_by_secret(&[9; 32]).await.unwrap().unwrap().sid,
            "sid1"
        );
        assert_eq!(
            s.list_active_sessions("u-alice", now).await.unwrap().len(),
            1
        );
        assert_eq!(
            s.list_active_sessions("u-alice", now + 1800)
                .await
                .unwrap()
                .len(),
            0,
            "idle expired"
        );

        // Rotation: the first CAS wins, a second one on the same token loses.
        let succ = token(&[2; 32], "sid1", 1, now + 5);
        assert_eq!(
            s.rotate_refresh(&[1; 32], &succ, now + 5, now + 5 + 1800)
                .await
                .unwrap(),
            RotateOutcome::Rotated
        );
        let other = token(&[3; 32], "sid1", 1, now + 5);
        assert_eq!(
            s.rotate_refresh(&[1; 32], &other, now + 5, now + 5 + 1800)
                .await
                .unwrap(),
            RotateOutcome::Lost
        );
        assert!(
            s.refresh_token(&[3; 32]).await.unwrap().is_none(),
            "loser inserted nothing"
        );
        let old = s.refresh_token(&[1; 32]).await.unwrap().unwrap();
        assert_eq!(old.rotated_at, Some(now + 5));
        assert_eq!(old.successor_hash.as_deref(), Some(&[2u8; 32][..]));
        assert_eq!(
            s.session("sid1").await.unwrap().unwrap().last_seen_at,
            now + 5
        );

        s.touch_session("sid1", now + 10, now + 10 + 1800)
            .await
            .unwrap();
        assert_eq!(
            s.session("sid1").await.unwrap().unwrap().idle_expires_at,
            now + 1810
        );

        assert!(s.revoke_session("sid1", now + 20).await.unwrap());
        assert!(!s.revoke_session("sid1", now + 21).await.unwrap());
        assert!(s.refresh_token(&[2; 32]).await.unwrap().unwrap().revoked);
        let t3 = token(&[4; 32], "sid1", 2, now + 22);
        assert_eq!(
            s.rotate_refresh(&[2; 32], &t3, now + 22, now + 1822)
                .await
                .unwrap(),
            RotateOutcome::Lost,
            "revoked family"
        );
        assert_eq!(
            s.revoked_sessions_since(now).await.unwrap(),
            vec![("sid1".to_string(), now + 20)]
        );

        s.create_session(&session("sid2", "u-alice", now), None)
            .await
            .unwrap();
        s.create_session(
            &session("sid3", "u-alice", now),
            Some(&token(&[5; 32], "sid3", 0, now)),
        )
        .await
        .unwrap();
        let mut sids = s.revoke_user_sessions("u-alice", now + 30).await.unwrap();
        sids.sort();
        assert_eq!(sids, vec!["sid2".to_string(), "sid3".to_string()]);
        assert!(s.refresh_token(&[5; 32]).await.unwrap().unwrap().revoked);
        assert!(
            s.list_active_sessions("u-alice", now + 31)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(s.purge_expired(now + 86400 + 1).await.unwrap() >= 3);
        assert!(s.session("sid1").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn concurrent_rotations_have_one_winner() {
    with_backends(|s| async move {
        s.create_user(&user("alice")).await.unwrap();
        s.create_session(
            &session("sid", "u-alice", 0),
            Some(&token(&[1; 32], "sid", 0, 0)),
        )
        .await
        .unwrap();
        let mut tasks = Vec::new();
        for i in 0..8u8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.rotate_refresh(&[1; 32], &token(&[10 + i; 32], "sid", 1, 1), 1, 1801)
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap() == RotateOutcome::Rotated {
                wins += 1;
            }
        }
        assert_eq!(wins, 1);
    })
    .await;
}

#[tokio::test]
async fn keys_api_keys_clients_codes() {
    with_backends(|s| async move {
        let k = SigningKeyRecord {
            kid: "k1".into(),
            alg: "EdDSA".into(),
            private_key_enc: vec![1, 2, 3],
            public_jwk: "{}".into(),
            created_at: 1,
            not_before: 1,
            retire_after: None,
        };
        s.insert_signing_key(&k).await.unwrap();
        assert!(matches!(
            s.insert_signing_key(&k).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(s.set_key_retire_after("k1", Some(99)).await.unwrap());
        assert_eq!(
            s.list_signing_keys().await.unwrap()[0].retire_after,
            Some(99)
        );
        assert!(s.delete_signing_key("k1").await.unwrap());
        assert!(s.list_signing_keys().await.unwrap().is_empty());

        let a = ApiKeyRecord {
            id: "a1".into(),
            prefix: "pre1".into(),
            hash: vec![7; 32],
            name: "ci".into(),
            owner: None,
            scopes: vec!["items:read".into(), "items:write".into()],
            created_at: 5,
            expires_at: Some(50),
            revoked: false,
        };
        s.create_api_key(&a).await.unwrap();
        assert_eq!(s.api_key_by_prefix("pre1").await.unwrap().unwrap(), a);
        assert!(matches!(
            s.create_api_key(&ApiKeyRecord {
                scopes: vec!["a b".into()],
                id: "a2".into(),
                prefix: "p2".into(),
                ..a.clone()
            })
            .await,
            Err(StoreError::InvalidValue(_))
        ));
        assert!(s.revoke_api_key("pre1").await.unwrap());
        assert!(!s.revoke_api_key("a1").await.unwrap());
        assert!(s.list_api_keys().await.unwrap()[0].revoked);

        let c = OAuthClient {
            client_id: "app".into(),
            secret_hash: None,
            name: "App".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            scopes: vec!["openid".into()],
            grant_types: vec!["authorization_code".into()],
            created_at: 1,
        };
        s.create_client(&c).await.unwrap();
        assert_eq!(s.client("app").await.unwrap().unwrap(), c);
        assert_eq!(s.list_clients().await.unwrap().len(), 1);
        let code = AuthCode {
            code_hash: vec![3; 32],
            client_id: "app".into(),
            user_id: "u".into(),
            sid: None,
            redirect_uri: "https://app.example/cb".into(),
            scopes: vec!["openid".into()],
            code_challenge: "abc".into(),
            challenge_method: "S256".into(),
            nonce: Some("n".into()),
            created_at: 10,
            expires_at: 70,
            used: false,
        };
        s.insert_auth_code(&code).await.unwrap();
        assert_eq!(
            s.consume_auth_code(&[3; 32], 80).await.unwrap(),
            CodeOutcome::NotFound,
            "expired"
        );
        match s.consume_auth_code(&[3; 32], 20).await.unwrap() {
            CodeOutcome::Consumed(c) => assert_eq!(c.nonce.as_deref(), Some("n")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.consume_auth_code(&[3; 32], 21).await.unwrap(),
            CodeOutcome::AlreadyUsed(_)
        ));
        assert!(s.delete_client("app").await.unwrap());
        assert!(s.client("app").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn reopen_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/r.db", dir.path().display());
    let s = SqlStore::open(&url).await.unwrap();
    s.create_user(&user("alice")).await.unwrap();
    s.close().await;
    let s = SqlStore::open(&url).await.unwrap();
    assert!(s.user_by_name("alice").await.unwrap().is_some());
    assert!(matches!(
        SqlStore::open("mysql://x").await,
        Err(StoreError::InvalidUrl(_))
    ));
}

/// Child side of the kill -9 test: commits users and sessions in a loop, printing each id only
/// after its commit returned. Does nothing unless started by `kill9_loses_no_committed_row`.
#[tokio::test]
async fn kill9_child() {
    let Ok(url) = std::env::var("RAMPART_STORE_KILL9_URL") else {
        return;
    };
    let s = SqlStore::open(&url).await.unwrap();
    for i in 0.. {
        let name = format!("user{i}");
        s.create_user(&user(&name)).await.unwrap();
        s.create_session(
            &session(&format!("sid{i}"), &format!("u-{name}"), i),
            Some(&token(&(i as u32).to_be_bytes(), &format!("sid{i}"), 0, i)),
        )
        .await
        .unwrap();
        s.insert_signing_key(&SigningKeyRecord {
            kid: format!("kid{i}"),
            alg: "EdDSA".into(),
            private_key_enc: vec![1; 60],
            public_jwk: "{}".into(),
            created_at: i,
            not_before: i,
            retire_after: None,
        })
        .await
        .unwrap();
        println!("committed {i}");
    }
}

#[tokio::test]
async fn kill9_loses_no_committed_row() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/crash.db", dir.path().display());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
        .env("RAMPART_STORE_KILL9_URL", &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut committed = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while committed.len() < 40 {
        let line = lines.next().expect("child ended early").unwrap();
        if let Some(n) = line.strip_prefix("committed ") {
            committed.push(n.parse::<i64>().unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no checkpoint, mid-transaction
    child.wait().unwrap();
    // Anything already printed but not yet read also counts as reported.
    for line in lines.map_while(Result::ok) {
        if let Some(Ok(n)) = line.strip_prefix("committed ").map(str::parse) {
            committed.push(n);
        }
    }
    let s = SqlStore::open(&url).await.unwrap();
    let committed_copy = committed.clone();
    for i in committed {
        assert!(
            s.user_by_name(&format!("user{i}")).await.unwrap().is_some(),
            "user{i} lost"
        );
        let sess = s.session(&format!("sid{i}")).await.unwrap();
        assert!(sess.is_some(), "sid{i} lost");
        assert!(
            s.refresh_token(&(i as u32).to_be_bytes())
                .await
                .unwrap()
                .is_some(),
            "token {i} lost"
        );
    }
    let keys: std::collections::HashSet<String> = s
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    for i in &committed_copy {
        assert!(keys.contains(&format!("kid{i}")), "key {i} lost");
    }
}
