//! Auth service flows, each run against SQLite and PostgreSQL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use rampart_auth::*;

const T0: i64 = 1_800_000_000;

fn login_req<'a>(u: &'a str, p: &'a str) -> LoginRequest<'a> {
    LoginRequest {
        username: u,
        password: p,
        client_addr: Some("198.51.100.7"),
        user_agent: Some("test-agent"),
    }
}

#[tokio::test]
async fn login_refresh_rotation_and_reuse() {
    with_stores(|store, label| async move {
        let clock = FakeClock::new(T0);
        let svc = service(store, opts(), clock.clone()).await;
        svc.add_user("alice", "correct horse").await.unwrap();
        assert!(matches!(
            svc.add_user("alice", "x2").await,
            Err(AuthError::UserExists)
        ));

        // Same error for unknown user and wrong password.
        let e1 = svc.login(login_req("alice", "wrong")).await.unwrap_err();
        let e2 = svc.login(login_req("nobody", "wrong")).await.unwrap_err();
        assert!(
            matches!(e1, AuthError::InvalidCredentials)
                && matches!(e2, AuthError::InvalidCredentials),
            "{label}"
        );
        assert_eq!(e1.to_string(), e2.to_string());
        assert_eq!(e1.status(), 401);

        let g = svc
            .login(login_req("alice", "correct horse"))
            .await
            .unwrap();
        assert_eq!(g.token_type, "Bearer");
        assert_eq!(g.expires_in, 900);
        assert_eq!(g.refresh_max_age, 7 * 86400);
        let v = svc.verifier();
        let t = v.verify_at(&g.access_token, T0).unwrap();
        assert_eq!(t.subject, g.user_id);
        assert_eq!(t.session_id.as_deref(), Some(g.sid.as_str()));
        assert_eq!(t.issuer, "https://auth.test");

        clock.advance(60);
        let r1 = svc.refresh(&g.refresh_token).await.unwrap();
        assert_ne!(r1.refresh_token, g.refresh_token);
        assert_eq!(r1.sid, g.sid);
        // A second tab presents the same (now predecessor) token within the grace window.
        clock.advance(2);
        let r1b = svc.refresh(&g.refresh_token).await.unwrap();
        assert_eq!(
            r1b.refresh_token, r1.refresh_token,
            "{label}: grace returns the same successor"
        );

        // Outside the grace window the old token is reuse: the whole family is revoked.
        clock.advance(30);
        match svc.refresh(&g.refresh_token).await {
            Err(AuthError::RefreshReuse { sid, .. }) => assert_eq!(sid, g.sid),
            other => panic!("{label}: {other:?}"),
        }
        assert!(
            matches!(
                svc.refresh(&r1.refresh_token).await,
                Err(AuthError::InvalidRefresh)
            ),
            "{label}: family revoked"
        );
        assert!(matches!(
            v.verify_at(&r1.access_token, clock.get()),
            Err(AuthError::SessionRevoked)
        ));
        assert!(matches!(
            svc.refresh("garbage").await,
            Err(AuthError::InvalidRefresh)
        ));
    })
    .await;
}

#[tokio::test]
async fn grace_applies_only_to_the_immediate_predecessor() {
    with_stores(|store, label| async move {
        let clock = FakeClock::new(T0);
        let svc = service(store, opts(), clock.clone()).await;
        svc.add_user("bob", "pw-bob-123").await.unwrap();
        let g = svc.login(login_req("bob", "pw-bob-123")).await.unwrap();
        let r1 = svc.refresh(&g.refresh_token).await.unwrap();
        let _r2 = svc.refresh(&r1.refresh_token).await.unwrap();
        // g's successor r1 is no longer live: presenting g even within the window is reuse.
        assert!(
            matches!(
                svc.refresh(&g.refresh_token).await,
                Err(AuthError::RefreshReuse { .. })
            ),
            "{label}"
        );
    })
    .await;
}

#[tokio::test]
async fn racing_refreshes_get_one_successor() {
    with_stores(|store, label| async move {
        let clock = FakeClock::new(T0);
        let svc = Arc::new(service(store, opts(), clock.clone()).await);
        svc.add_user("carol", "pw-carol-123").await.unwrap();
        let g = svc.login(login_req("carol", "pw-carol-123")).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (svc, tok) = (svc.clone(), g.refresh_token.clone());
            tasks.push(tokio::spawn(async move { svc.refresh(&tok).await }));
        }
        let mut tokens = std::collections::HashSet::new();
        for t in tasks {
            tokens.insert(t.await.unwrap().unwrap().refresh_token);
        }
        assert_eq!(tokens.len(), 1, "{label}");
    })
    .await;
}

#[tokio::test]
async fn idle_and_absolute_timeouts_and_cookie_max_age() {
    with_stores(|store, label| async move {
        let clock = FakeClock::new(T0);
        let mut o = opts();
        o.session_idle_timeout = Duration::from_secs(1800);
        o.session_absolute_timeout = Duration::from_secs(3600);
        let svc = service(store, o, clock.clone()).await;
        svc.add_user("dave", "pw-dave-123").await.unwrap();

        let g = svc.login(login_req("dave", "pw-dave-123")).await.unwrap();
        assert_eq!(
            g.refresh_max_age, 3600,
            "{label}: never past the absolute end"
        );
        clock.advance(1801);
        assert!(
            matches!(
                svc.refresh(&g.refresh_token).await,
                Err(AuthError::SessionExpired)
            ),
            "{label}: idle"
        );

        let g = svc.login(login_req("dave", "pw-dave-123")).await.unwrap();
        clock.advance(1500);
        let r = svc.refresh(&g.refresh_token).await.unwrap(); // activity moves the idle end
        clock.advance(1500);
        let r = svc.refresh(&r.refresh_token).await.unwrap();
        assert_eq!(r.refresh_max_age, 600, "{label}: capped by absolute end");
        clock.advance(601);
        assert!(
            matches!(
                svc.refresh(&r.refresh_token).await,
                Err(AuthError::SessionExpired)
            ),
            "{label}: absolute"
        );
    })
    .await;
}

#[tokio::test]
async fn logout_logout_all_disable_and_sessions() {
    with_stores(|store, label| async move {
        let clock = FakeClock::new(T0);
        let svc = service(store, opts(), clock.clone()).await;
        svc.add_user("erin", "pw-erin-123").await.unwrap();
        svc.add_user("frank", "pw-frank-123").await.unwrap();
        let v = svc.verifier();
        let a = svc.login(login_req("erin", "pw-erin-123")).await.unwrap();
        let b = svc.login(login_req("erin", "pw-erin-123")).await.unwrap();
        let c = svc.login(login_req("erin", "pw-erin-123")).await.unwrap();
        let f = svc.login(login_req("frank", "pw-frank-123")).await.unwrap();

        let list = svc.list_sessions(&a.user_id, Some(&a.sid)).await.unwrap();
        assert_eq!(list.len(), 3, "{label}");
        assert!(list.iter().any(|s| s.sid == a.sid
            && s.current
            && s.client_addr.as_deref() == Some("198.51.100.7")));

        // Logout by refresh cookie.
        assert_eq!(
            svc.logout_refresh_token(&a.refresh_token)
                .await
                .unwrap()
                .as_deref(),
            Some(a.sid.as_str())
        );
        assert!(matches!(
            v.verify_at(&a.access_token, T0),
            Err(AuthError::SessionRevoked)
        ));
        assert!(svc.refresh(&a.refresh_token).await.is_err());
        assert_eq!(
            svc.logout_refresh_token("unknown-token-value-xxxxxxx")
                .await
                .unwrap(),
            None
        );

        // Sign out another device; someone else's session is "not found".
        assert!(matches!(
            svc.revoke_own_session(&a.user_id, &f.sid).await,
            Err(AuthError::NotFound)
        ));
        svc.revoke_own_session(&a.user_id, &b.sid).await.unwrap();
        assert!(matches!(
            v.verify_at(&b.access_token, T0),
            Err(AuthError::SessionRevoked)
        ));

        // Logout-all.
        let sids = svc.logout_all(&a.user_id).await.unwrap();
        assert_eq!(sids, vec![c.sid.clone()]);
        assert!(matches!(
            v.verify_at(&c.access_token, T0),
            Err(AuthError::SessionRevoked)
        ));
        assert!(v.verify_at(&f.access_token, T0).is_ok());

        // Disable: sessions revoked, login refused with the same error.
        let sids = svc.disable_user("frank").await.unwrap();
        assert_eq!(sids, vec![f.sid.clone()]);
        assert!(matches!(
            v.verify_at(&f.access_token, T0),
            Err(AuthError::SessionRevoked)
        ));
        assert!(matches!(
            svc.login(login_req("frank", "pw-frank-123")).await,
            Err(AuthError::InvalidCredentials)
        ));
        assert!(
            svc.list_users()
                .await
                .unwrap()
                .iter()
                .any(|u| u.username == "frank" && u.disabled)
        );
        svc.enable_user("frank").await.unwrap();
        svc.login(login_req("frank", "pw-frank-123")).await.unwrap();

        // Revocations made on another node arrive through the store re-sync too.
        let other = service(svc.store().clone(), opts(), clock.clone()).await;
        assert_eq!(
            other.resync_revocations_from_store(T0 - 10).await.unwrap(),
            4
        );
        assert!(matches!(
            other.verifier().verify_at(&c.access_token, T0),
            Err(AuthError::SessionRevoked)
        ));
    })
    .await;
}

#[tokio::test]
async fn key_rotation_publishes_first_and_retires_late() {
    with_stores(|store, label| async move {
        let clock = FakeClock::new(T0);
        let svc = service(store.clone(), opts(), clock.clone()).await;
        svc.add_user("gina", "pw-gina-123").await.unwrap();
        let before = svc.login(login_req("gina", "pw-gina-123")).await.unwrap();
        let k0 = svc.list_keys();
        assert_eq!(k0.len(), 1, "{label}");
        assert_eq!(k0[0].alg, "EdDSA");

        let new = svc.rotate_keys(None).await.unwrap();
        assert!(!new.signing && new.published);
        let jwks = svc.jwks();
        assert_eq!(
            jwks["keys"].as_array().unwrap().len(),
            2,
            "{label}: new key published before it signs"
        );
        // Still signing with the old key until the publish delay passed.
        let mid = svc.login(login_req("gina", "pw-gina-123")).await.unwrap();
        assert_eq!(
            svc.verifier().verify_at(&mid.access_token, T0).unwrap().kid,
            k0[0].kid
        );

        clock.advance(61);
        let after = svc.login(login_req("gina", "pw-gina-123")).await.unwrap();
        let v = svc.verifier();
        assert_eq!(
            v.verify_at(&after.access_token, clock.get()).unwrap().kid,
            new.kid
        );
        assert!(
            v.verify_at(&before.access_token, clock.get()).is_ok(),
            "{label}: old key still verifies"
        );

        // After the longest access lifetime the old key retires.
        clock.advance(900 + 30 + 1);
        svc.reload_keys().await.unwrap();
        let jwks = svc.jwks();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, vec![new.kid.as_str()], "{label}");

        // Private keys are encrypted: another master key cannot load them.
        let wrong = AuthService::with_clock(
            store,
            opts(),
            MasterKey::from_secret(&[1u8; 32]).unwrap(),
            clock.clone(),
        )
        .await;
        assert!(matches!(wrong, Err(AuthError::KeyDecrypt)), "{label}");
    })
    .await;
}

#[tokio::test]
async fn es256_and_rs256_keys_sign_and_verify() {
    let (store, _dir) = sqlite_store().await;
    let clock = FakeClock::new(T0);
    for alg in [KeyAlgorithm::ES256, KeyAlgorithm::RS256] {
        let mut o = opts();
        o.key_algorithm = alg;
        o.key_publish_delay = Duration::ZERO;
        let svc = service(store.clone(), o, clock.clone()).await;
        svc.rotate_keys(Some(alg)).await.unwrap();
        let (tok, _) = svc
            .issue_access_token(
                "svc-client",
                None,
                &["items:read".into()],
                Some("svc-client"),
            )
            .unwrap();
        let t = svc.verifier().verify_at(&tok, T0).unwrap();
        assert_eq!(t.client_id.as_deref(), Some("svc-client"));
        assert_eq!(t.scopes, vec!["items:read".to_string()]);
        let kinfo = svc.list_keys().into_iter().find(|k| k.signing).unwrap();
        assert_eq!(kinfo.alg, alg.as_str());
        clock.advance(1);
    }
}

#[tokio::test]
async fn oauth_sessions_keep_client_and_scopes_across_refresh() {
    with_stores(|store, label| async move {
        let clock = FakeClock::new(T0);
        let svc = service(store, opts(), clock.clone()).await;
        let u = svc.add_user("ivy", "pw-ivy-1234").await.unwrap();
        let scopes = vec!["openid".to_string(), "items:read".to_string()];
        let g = svc
            .start_session(&u.id, Some("app"), &scopes, None, None)
            .await
            .unwrap();
        let r = svc.refresh(&g.refresh_token).await.unwrap();
        let t = svc.verifier().verify_at(&r.access_token, T0).unwrap();
        assert_eq!(t.scopes, scopes, "{label}");
        assert_eq!(t.client_id.as_deref(), Some("app"));
        assert_eq!(r.body_json()["token_type"], "Bearer");
        assert!(r.body_json().get("refresh_token").is_none());
        assert!(r.set_cookie().starts_with("rampart_refresh="));
        assert!(
            svc.start_session(&u.id, None, &["a b".into()], None, None)
                .await
                .is_err()
        );
    })
    .await;
}

#[tokio::test]
async fn api_keys_and_session_cookies() {
    with_stores(|store, label| async move {
        let clock = FakeClock::new(T0);
        let svc = service(store, opts(), clock.clone()).await;
        let k = svc
            .create_api_key("ci", Some("team"), &["items:read".into()], Some(T0 + 100))
            .await
            .unwrap();
        assert!(k.key.starts_with("rk_"));
        let id = svc.verify_api_key(&k.key).await.unwrap();
        assert_eq!(id.scopes, vec!["items:read".to_string()]);
        let mut forged = k.key.clone();
        forged.pop();
        forged.push(if k.key.ends_with('A') { 'B' } else { 'A' });
        assert!(svc.verify_api_key(&forged).await.is_err(), "{label}");
        assert_eq!(svc.list_api_keys().await.unwrap().len(), 1);
        svc.revoke_api_key(&k.record.prefix).await.unwrap();
        assert!(svc.verify_api_key(&k.key).await.is_err());
        assert!(matches!(
            svc.revoke_api_key("nope").await,
            Err(AuthError::NotFound)
        ));
        let k2 = svc
            .create_api_key("short", None, &[], Some(T0 + 10))
            .await
            .unwrap();
        clock.advance(11);
        assert!(
            svc.verify_api_key(&k2.key).await.is_err(),
            "{label}: expired"
        );

        svc.add_user("hana", "pw-hana-123").await.unwrap();
        let s1 = svc
            .login_session(login_req("hana", "pw-hana-123"))
            .await
            .unwrap();
        let s2 = svc
            .login_session(login_req("hana", "pw-hana-123"))
            .await
            .unwrap();
        assert_ne!(s1.sid, s2.sid, "a new session id at every login");
        assert_ne!(s1.cookie_value, s2.cookie_value);
        let id = svc
            .authenticate_session_cookie(&s1.cookie_value)
            .await
            .unwrap();
        assert_eq!(id.sid, s1.sid);
        svc.revoke_session(&s1.sid).await.unwrap();
        assert!(
            svc.authenticate_session_cookie(&s1.cookie_value)
                .await
                .is_err()
        );
        assert!(svc.authenticate_session_cookie("x").await.is_err());
    })
    .await;
}
