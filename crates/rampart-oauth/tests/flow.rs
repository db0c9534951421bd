//! The authorization server's rules on a real store (SQLite) with a controlled clock: what
//! an authorization request must carry, single-use codes bound to client, redirect URI and
//! PKCE verifier, expiry, client authentication, refresh bound to its client, and grants that
//! end with the browser session that approved them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rampart_auth::rampart_store::{SqlStore, Store};
use rampart_auth::{AuthOptions, AuthService, Clock, LoginRequest, MasterKey};
use rampart_oauth::{AuthorizeError, ClientCredentials, NewClient, OAuthServer, pkce};

#[derive(Debug)]
struct FakeClock(AtomicI64);

impl Clock for FakeClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct World {
    _dir: tempfile::TempDir,
    clock: Arc<FakeClock>,
    svc: Arc<AuthService>,
    oauth: OAuthServer,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::open(&format!("sqlite://{}/o.db", dir.path().display()))
            .await
            .unwrap(),
    );
    let clock = Arc::new(FakeClock(AtomicI64::new(1_800_000_000)));
    let svc = Arc::new(
        AuthService::with_clock(
            store,
            AuthOptions::new("https://auth.test", vec!["api".into()]),
            MasterKey::generate().unwrap(),
            clock.clone(),
        )
        .await
        .unwrap(),
    );
    svc.add_user("ada", "correct horse battery staple")
        .await
        .unwrap();
    World {
        _dir: dir,
        clock,
        oauth: OAuthServer::new(svc.clone()),
        svc,
    }
}

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const REDIRECT: &str = "https://app.example.com/cb";

fn creds(id: &str, secret: Option<&str>) -> ClientCredentials {
    ClientCredentials {
        id: Some(id.to_owned()),
        secret: secret.map(str::to_owned),
        basic: false,
    }
}

impl World {
    async fn client(&self, public: bool, grants: &[&str]) -> (String, Option<String>) {
        let (c, s) = self
            .oauth
            .add_client(NewClient {
                name: "App".into(),
                redirect_uris: vec![REDIRECT.into()],
                scopes: vec!["openid".into(), "items:read".into()],
                grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
                public,
            })
            .await
            .unwrap();
        (c.client_id, s)
    }

    /// A signed-in browser session: (user id, sid).
    async fn browser(&self) -> (String, String) {
        let g = self
            .svc
            .login_session(LoginRequest {
                username: "ada",
                password: "correct horse battery staple",
                client_addr: None,
                user_agent: None,
            })
            .await
            .unwrap();
        (g.user_id, g.sid)
    }

    /// A code for `client_id`, approved in browser session `sid`, and its verifier.
    async fn code(&self, client_id: &str, user: &str, sid: &str) -> (String, String) {
        let verifier = "v".repeat(50);
        let req = self
            .oauth
            .authorize_request(&p(&[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", REDIRECT),
                ("scope", "openid items:read"),
                ("state", "st"),
                ("code_challenge", &pkce::challenge_of(&verifier)),
                ("code_challenge_method", "S256"),
            ]))
            .await
            .unwrap();
        let location = self.oauth.approve(&req, user, sid).await.unwrap();
        let code = location
            .split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        (code, verifier)
    }

    async fn exchange(
        &self,
        c: &ClientCredentials,
        code: &str,
        verifier: &str,
    ) -> Result<serde_json::Value, rampart_oauth::OAuthError> {
        self.oauth
            .token(
                &p(&[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", verifier),
                ]),
                c,
                None,
                None,
            )
            .await
    }
}

#[tokio::test]
async fn codes_are_single_use_and_bound_to_client_verifier_and_time() {
    let w = world().await;
    let (app, app_secret) = w.client(false, &[]).await;
    let (other, other_secret) = w.client(false, &[]).await;
    let app_creds = creds(&app, app_secret.as_deref());
    let (user, sid) = w.browser().await;

    // A wrong verifier burns the code: the right one cannot use it afterwards.
    let (code, verifier) = w.code(&app, &user, &sid).await;
    let e = w
        .exchange(&app_creds, &code, &"w".repeat(50))
        .await
        .unwrap_err();
    assert_eq!(e.code, "invalid_grant");
    assert_eq!(
        w.exchange(&app_creds, &code, &verifier)
            .await
            .unwrap_err()
            .code,
        "invalid_grant"
    );

    // Another client cannot redeem it.
    let (code, verifier) = w.code(&app, &user, &sid).await;
    let e = w
        .exchange(&creds(&other, other_secret.as_deref()), &code, &verifier)
        .await
        .unwrap_err();
    assert_eq!(e.code, "invalid_grant");

    // Expired after a minute.
    let (code, verifier) = w.code(&app, &user, &sid).await;
    w.clock.0.fetch_add(61, Ordering::SeqCst);
    assert_eq!(
        w.exchange(&app_creds, &code, &verifier)
            .await
            .unwrap_err()
            .code,
        "invalid_grant"
    );

    // The good path: tokens, refresh bound to this client, rotation with reuse detection.
    let (code, verifier) = w.code(&app, &user, &sid).await;
    let t = w.exchange(&app_creds, &code, &verifier).await.unwrap();
    assert_eq!(t["scope"], "openid items:read");
    let access = t["access_token"].as_str().unwrap();
    let claims = w.svc.verifier().verify_at(access, w.clock.now()).unwrap();
    assert_eq!(claims.client_id.as_deref(), Some(app.as_str()));
    assert_eq!(claims.subject, user);
    assert!(t["id_token"].is_string());
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    let refresh_with = |c: ClientCredentials, token: String| {
        let oauth = w.oauth.clone();
        async move {
            oauth
                .token(
                    &p(&[("grant_type", "refresh_token"), ("refresh_token", &token)]),
                    &c,
                    None,
                    None,
                )
                .await
        }
    };
    let e = refresh_with(creds(&other, other_secret.as_deref()), refresh.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code, "invalid_grant", "another client's refresh token");
    let next = refresh_with(app_creds.clone(), refresh.clone())
        .await
        .unwrap();
    assert!(next["refresh_token"].is_string());
    w.clock.0.fetch_add(120, Ordering::SeqCst);
    assert_eq!(
        refresh_with(app_creds.clone(), refresh)
            .await
            .unwrap_err()
            .code,
        "invalid_grant",
        "a rotated refresh token comes back: the grant is revoked"
    );
}

#[tokio::test]
async fn grants_end_with_the_approving_session_and_revocation() {
    let w = world().await;
    let (app, secret) = w.client(false, &[]).await;
    let c = creds(&app, secret.as_deref());
    let (user, sid) = w.browser().await;
    let (code, verifier) = w.code(&app, &user, &sid).await;
    w.svc.revoke_session(&sid).await.unwrap();
    assert_eq!(
        w.exchange(&c, &code, &verifier).await.unwrap_err().code,
        "invalid_grant",
        "signed out before the exchange"
    );

    let (user, sid) = w.browser().await;
    let (code, verifier) = w.code(&app, &user, &sid).await;
    let t = w.exchange(&c, &code, &verifier).await.unwrap();
    let access = t["access_token"].as_str().unwrap().to_owned();
    assert!(w.svc.verifier().verify_at(&access, w.clock.now()).is_ok());
    w.oauth
        .revoke(&p(&[("token", t["refresh_token"].as_str().unwrap())]), &c)
        .await
        .unwrap();
    assert!(
        w.svc.verifier().verify_at(&access, w.clock.now()).is_err(),
        "revoking the refresh token ends the grant's access tokens"
    );
    let intro = w
        .oauth
        .introspect(&p(&[("token", &access)]), &c)
        .await
        .unwrap();
    assert_eq!(intro["active"], false);
}

#[tokio::test]
async fn authorization_requests_are_checked_before_anything_is_issued() {
    let w = world().await;
    let (app, _) = w.client(false, &[]).await;
    let challenge = pkce::challenge_of(&"v".repeat(50));
    let base = [
        ("response_type", "code"),
        ("client_id", app.as_str()),
        ("redirect_uri", REDIRECT),
        ("state", "st"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let with = |k: &str, v: Option<&str>| {
        let mut v2: Vec<(&str, &str)> = base.iter().copied().filter(|(n, _)| *n != k).collect();
        if let Some(v) = v {
            v2.push((k, v));
        }
        p(&v2)
    };
    assert!(w.oauth.authorize_request(&p(&base)).await.is_ok());
    // Never redirect to something the client did not register, nor for an unknown client.
    for bad in [
        with("redirect_uri", Some("https://evil.example/cb")),
        with("client_id", Some("nope")),
        with("client_id", None),
    ] {
        assert!(matches!(
            w.oauth.authorize_request(&bad).await,
            Err(AuthorizeError::Page(_))
        ));
    }
    let mut repeated = p(&base);
    repeated.push(("state".into(), "again".into()));
    assert!(matches!(
        w.oauth.authorize_request(&repeated).await,
        Err(AuthorizeError::Page(_))
    ));
    // The rest goes back to the client, with its state.
    for (bad, error) in [
        (with("code_challenge", None), "invalid_request"),
        (
            with("code_challenge_method", Some("plain")),
            "invalid_request",
        ),
        (with("code_challenge", Some("short")), "invalid_request"),
        (
            with("response_type", Some("token")),
            "unsupported_response_type",
        ),
        (with("scope", Some("admin")), "invalid_scope"),
    ] {
        match w.oauth.authorize_request(&bad).await {
            Err(AuthorizeError::Redirect(loc)) => {
                assert!(loc.starts_with(REDIRECT), "{loc}");
                assert!(loc.contains(&format!("error={error}")), "{loc}");
                assert!(loc.contains("state=st"), "{loc}");
            }
            other => panic!("{error}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn clients_authenticate_as_registered() {
    let w = world().await;
    let (public, none) = w.client(true, &["authorization_code"]).await;
    assert!(none.is_none(), "a public client has no secret");
    let (machine, secret) = w.client(false, &["client_credentials"]).await;
    let secret = secret.unwrap();
    let cc = |c: ClientCredentials, scope: Option<&'static str>| {
        let oauth = w.oauth.clone();
        async move {
            let mut form = vec![("grant_type", "client_credentials")];
            if let Some(s) = scope {
                form.push(("scope", s));
            }
            oauth.token(&p(&form), &c, None, None).await
        }
    };
    let t = cc(creds(&machine, Some(&secret)), Some("items:read"))
        .await
        .unwrap();
    assert_eq!(t["scope"], "items:read");
    assert!(t.get("refresh_token").is_none());
    for (c, code) in [
        (creds(&machine, Some("wrong")), "invalid_client"),
        (creds(&machine, None), "invalid_client"),
        (creds("unknown", Some(&secret)), "invalid_client"),
        (creds(&public, Some("anything")), "invalid_client"),
        (creds(&public, None), "unauthorized_client"),
    ] {
        assert_eq!(cc(c, None).await.unwrap_err().code, code);
    }
    assert_eq!(
        cc(creds(&machine, Some(&secret)), Some("openid"))
            .await
            .unwrap_err()
            .code,
        "invalid_scope"
    );
    for (bad, why) in [
        (
            NewClient {
                name: "bad".into(),
                redirect_uris: vec!["http://app.example.com/cb".into()],
                ..NewClient::default()
            },
            "plain http redirect URIs are refused off loopback",
        ),
        (
            NewClient {
                name: "bad".into(),
                grant_types: vec!["client_credentials".into()],
                public: true,
                ..NewClient::default()
            },
            "a public client cannot use client credentials",
        ),
        (
            NewClient {
                name: "bad".into(),
                grant_types: vec!["password".into()],
                ..NewClient::default()
            },
            "unknown grant types",
        ),
        (
            NewClient {
                name: " ".into(),
                redirect_uris: vec![REDIRECT.into()],
                ..NewClient::default()
            },
            "a client needs a name",
        ),
    ] {
        assert!(w.oauth.add_client(bad).await.is_err(), "{why}");
    }

    // Introspection is for confidential clients; userinfo needs the openid scope.
    let token = t["access_token"].as_str().unwrap().to_owned();
    let e = w
        .oauth
        .introspect(&p(&[("token", &token)]), &creds(&public, None))
        .await
        .unwrap_err();
    assert_eq!(e.code, "invalid_client");
    let e = w.oauth.userinfo(&token).await.unwrap_err();
    assert_eq!((e.code, e.status), ("insufficient_scope", 403));
    assert_eq!(
        w.oauth.userinfo("not-a-token").await.unwrap_err().code,
        "invalid_token"
    );
}
