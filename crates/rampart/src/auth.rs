//! The auth server as the gateway runs it: opening the store, the master key, the built-in
//! endpoints (`/auth/*`, `/.well-known/jwks.json`) and the housekeeping timers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use rampart_auth::throttle::{LoginThrottle, Throttled};
use rampart_auth::{
    AuthError, AuthOptions, AuthService, KeyAlgorithm, LoginRequest, MasterKey, VerifiedToken,
};
use rampart_config::ValidatedConfig;
use rampart_proxy::ProxyBody;

mod oauth;
mod signin;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Paths the auth server answers, ahead of every route.
pub fn is_builtin_path(path: &str) -> bool {
    path.starts_with("/auth/")
        || path.starts_with("/oauth2/")
        || matches!(
            path,
            "/.well-known/jwks.json"
                | "/.well-known/openid-configuration"
                | "/.well-known/oauth-authorization-server"
        )
}

/// The running auth server.
pub struct AuthServer {
    /// Users, sessions, tokens, keys.
    pub svc: Arc<AuthService>,
    issuer_origin: String,
    cors_origins: Vec<String>,
    throttle: LoginThrottle,
    /// The OAuth 2.0 / OIDC authorization server on the same users, sessions and keys.
    oauth: rampart_oauth::OAuthServer,
    /// The throttle's counters on every node (`[shared] url` is Redis); the local ones above
    /// still count and decide whenever the shared store cannot answer.
    shared_throttle: std::sync::OnceLock<rampart_limit::SharedCounters>,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("issuer_origin", &self.issuer_origin)
            .finish_non_exhaustive()
    }
}

/// The key that encrypts signing keys at rest: the environment variable named by
/// `auth.key_encryption_env`, else `data_dir/master.key`, created on first use (mode 0600).
fn master_key(config: &ValidatedConfig, env_name: &str) -> Result<MasterKey, String> {
    if let Some(value) = rampart_config::secret_from_env(env_name) {
        return MasterKey::from_secret(value.as_bytes()).map_err(|e| format!("{env_name}: {e}"));
    }
    let path = config.data_dir.join("master.key");
    if let Ok(bytes) = std::fs::read(&path) {
        return MasterKey::from_secret(&bytes).map_err(|e| format!("{}: {e}", path.display()));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("no randomness for a master key: {e}"))?;
    let encoded: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, encoded.as_bytes())?;
    tracing::warn!(path = %path.display(), "created a master key file; set {env_name} to manage the key yourself");
    MasterKey::from_secret(encoded.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn origin_of(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(u) => match (u.scheme_str(), u.authority()) {
            (Some(s), Some(a)) => format!("{s}://{}", a.as_str().to_ascii_lowercase()),
            _ => url.to_owned(),
        },
        Err(_) => url.to_owned(),
    }
}

impl AuthServer {
    /// Opens the store and the auth service of a config (`None` without `[auth]`).
    pub async fn open(config: &ValidatedConfig) -> Result<Option<Arc<AuthServer>>, String> {
        let Some(a) = &config.auth else {
            return Ok(None);
        };
        let url = config.store.url.clone().unwrap_or_default();
        if let Some(path) = url.strip_prefix("sqlite://")
            && let Some(dir) = Path::new(path).parent()
        {
            std::fs::create_dir_all(dir).map_err(|e| format!("store: {}: {e}", dir.display()))?;
        }
        let store = rampart_store::open(&url)
            .await
            .map_err(|e| format!("store.url: {e}"))?;
        let mut opts = AuthOptions::new(a.issuer.clone(), a.audience.clone());
        opts.access_ttl = a.access_ttl.get();
        opts.refresh_ttl = a.refresh_ttl.get();
        opts.session_idle_timeout = a.session_idle_timeout.get();
        opts.session_absolute_timeout = a.session_absolute_timeout.get();
        opts.refresh_reuse_grace = a.refresh_reuse_grace.get();
        opts.key_algorithm = match a.key_algorithm.as_str() {
            "ES256" => KeyAlgorithm::ES256,
            "RS256" => KeyAlgorithm::RS256,
            _ => KeyAlgorithm::EdDSA,
        };
        opts.key_encryption_env = a.key_encryption_env.clone();
        opts.default_scopes = a.default_scopes.clone();
        let master = master_key(config, &a.key_encryption_env)?;
        let svc = AuthService::new(store, opts, master)
            .await
            .map_err(|e| format!("auth: {e}"))?;
        let cors_origins = a
            .cors
            .as_ref()
            .and_then(|name| config.cors_policy(name))
            .map(|p| p.allow_origins.clone())
            .unwrap_or_default();
        let svc = Arc::new(svc);
        Ok(Some(Arc::new(AuthServer {
            oauth: rampart_oauth::OAuthServer::new(Arc::clone(&svc)),
            svc,
            issuer_origin: origin_of(&a.issuer),
            cors_origins,
            throttle: LoginThrottle::new(Default::default()),
            shared_throttle: std::sync::OnceLock::new(),
        })))
    }

    /// Revocations of other nodes through Redis, a catch-up from the store, and the timers.
    pub async fn start_background(self: &Arc<Self>, shared_url: &str, access_ttl: Duration) {
        match rampart_limit::SharedCounters::open(
            shared_url,
            "login-throttle",
            &rampart_limit::StoreOptions::default(),
        ) {
            Ok(Some(c)) => {
                let _ = self.shared_throttle.set(c);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "login throttle is per node: shared store unusable")
            }
        }
        if shared_url.starts_with("redis://") {
            match rampart_auth::redis_sync::RedisRevocations::new(shared_url) {
                Ok(r) => {
                    self.svc.set_revocation_sink(Arc::new(r.clone()));
                    r.start_subscriber(self.svc.revocations());
                }
                Err(e) => {
                    tracing::error!(error = %e, "revocations are not shared: Redis unavailable")
                }
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let since = now - access_ttl.as_secs() as i64 - 60;
        if let Err(e) = self.svc.resync_revocations_from_store(since).await {
            tracing::error!(error = %e, "could not load recent revocations");
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                n += 1;
                if let Err(e) = me.svc.reload_keys().await {
                    tracing::warn!(error = %e, "signing keys not reloaded");
                }
                me.svc.purge();
                me.throttle.sweep(now_ms());
                if n % 120 == 0 {
                    let _ = me.svc.purge_expired_rows().await;
                }
            }
        });
    }

    /// Checks a password against the failure counters of its username and the client's
    /// network, and counts the outcome: attempts past the thresholds are refused (429) before
    /// the password hash is touched.
    async fn throttled_login<T>(
        &self,
        username: &str,
        client: &str,
        attempt: impl std::future::Future<Output = Result<T, AuthError>>,
    ) -> Result<T, AuthError> {
        let network = client
            .parse::<std::net::IpAddr>()
            .map(|ip| rampart_listen::ip_group(ip).to_string())
            .unwrap_or_else(|_| client.to_owned());
        let local = self.throttle.check(username, &network, now_ms()).err();
        let shared = self.shared_wait(username, &network).await;
        if let Some(t) = LoginThrottle::longer(local, shared) {
            return Err(AuthError::TooManyAttempts {
                retry_after_secs: t.retry_after.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        let outcome = attempt.await;
        match &outcome {
            Ok(_) => {
                self.throttle.succeeded(username);
                if let Some(c) = self.shared_throttle.get()
                    && let Err(e) = c.clear(&LoginThrottle::user_key(username)).await
                {
                    tracing::warn!(error = %e, "shared login throttle: counter not cleared");
                }
            }
            Err(AuthError::InvalidCredentials) => {
                self.throttle.failed(username, &network, now_ms());
                if let Some(c) = self.shared_throttle.get() {
                    let forget = self.throttle.policy().forget_after;
                    let (user_key, net_key) = (
                        LoginThrottle::user_key(username),
                        LoginThrottle::network_key(&network),
                    );
                    let (u, n) =
                        tokio::join!(c.record(&user_key, forget), c.record(&net_key, forget));
                    if let Err(e) = u.and(n) {
                        tracing::warn!(error = %e, "shared login throttle: failure counted on this node only");
                    }
                }
            }
            Err(_) => {}
        }
        outcome
    }

    /// The wait the shared counters impose (None without a shared store, or when it cannot
    /// answer: the local counters then decide alone).
    async fn shared_wait(&self, username: &str, network: &str) -> Option<Throttled> {
        let c = self.shared_throttle.get()?;
        let policy = self.throttle.policy();
        let (user_key, net_key) = (
            LoginThrottle::user_key(username),
            LoginThrottle::network_key(network),
        );
        let (u, n) = tokio::join!(c.read(&user_key), c.read(&net_key));
        let wait = |limits, r: Result<(Option<rampart_limit::Hits>, i64), _>| match r {
            Ok((Some(h), now)) => LoginThrottle::wait_for(limits, h.count, h.last_ms, now),
            Ok((None, _)) => None,
            Err(e) => {
                tracing::warn!(error = %e, "shared login throttle unavailable: local counters only");
                None
            }
        };
        LoginThrottle::longer(wait(&policy.per_user, u), wait(&policy.per_network, n))
    }

    /// Whether an unsafe request to a cookie endpoint may come from this page (CSRF defense
    /// beside SameSite): no `Origin`, or the issuer's or an allowed CORS origin, and never
    /// `Sec-Fetch-Site: cross-site`.
    fn same_site(&self, headers: &HeaderMap) -> bool {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        rampart_auth::cookie::cookie_request_allowed(
            get("origin"),
            get("sec-fetch-site"),
            &self.issuer_origin,
            &self.cors_origins,
        )
    }
}

/// What an endpoint answered, before the gateway's common response headers.
pub enum EndpointAnswer {
    /// A response to send.
    Response(Response<ProxyBody>),
    /// A refusal, with the event to write.
    Refused {
        /// The auth error (status, `WWW-Authenticate`).
        error: AuthError,
        /// Event name (`auth.login.fail`, `auth.refresh.reuse`, `auth.token.fail`).
        event: &'static str,
        /// Clear the refresh cookie on the way out.
        clear_cookie: bool,
    },
    /// No such endpoint or method.
    NotFound,
    /// The endpoint exists, not with this method.
    MethodNotAllowed(Vec<Method>),
    /// A cookie endpoint called from another site.
    CrossSite,
    /// A response with the event it stands for: a refusal (status 400 and up: a security
    /// event) or a grant (an info event).
    Logged {
        /// The response.
        response: Response<ProxyBody>,
        /// Event name (`oauth.token`, `oauth.token.fail`, `oauth.code`…).
        event: &'static str,
        /// Why, for the event (never a secret).
        reason: String,
    },
    /// A page (the sign-in form), with the security event it stands for when it refuses.
    Page {
        /// The page.
        response: Response<ProxyBody>,
        /// Event name when the page answers a refusal (`auth.login.fail`, `auth.csrf`).
        event: Option<&'static str>,
    },
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<ProxyBody> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let mut r = Response::new(
        Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn no_content() -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = StatusCode::NO_CONTENT;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn with_cookie(mut r: Response<ProxyBody>, cookie: &str) -> Response<ProxyBody> {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(serde::Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

impl AuthServer {
    fn bearer(&self, headers: &HeaderMap) -> Result<Arc<VerifiedToken>, AuthError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::MissingCredentials)?;
        match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                self.svc.verifier().verify(token.trim())
            }
            _ => Err(AuthError::MissingCredentials),
        }
    }

    /// Answers a built-in endpoint. `body` is the request body, read whole (bounded).
    pub async fn answer(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
        client: &str,
    ) -> EndpointAnswer {
        let refused = |error, event| EndpointAnswer::Refused {
            error,
            event,
            clear_cookie: false,
        };
        let cookie = || {
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|c| rampart_auth::cookie::find_cookie(c, "rampart_refresh"))
                .map(str::to_owned)
        };
        let post_only = |m: &Method| {
            if m == Method::POST {
                None
            } else {
                Some(EndpointAnswer::MethodNotAllowed(vec![Method::POST]))
            }
        };
        match path {
            "/.well-known/jwks.json" => {
                if method != Method::GET && method != Method::HEAD {
                    return EndpointAnswer::MethodNotAllowed(vec![Method::GET, Method::HEAD]);
                }
                let mut r = json(StatusCode::OK, &self.svc.jwks());
                r.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=60"),
                );
                EndpointAnswer::Response(r)
            }
            "/auth/signin" => self.signin(method, headers, query, body, client).await,
            p if p.starts_with("/oauth2/")
                || p == "/.well-known/openid-configuration"
                || p == "/.well-known/oauth-authorization-server" =>
            {
                self.oauth(method, p, query, headers, body, client).await
            }
            "/auth/signout" => self.signout(method, headers).await,
            "/auth/login" => {
                if let Some(a) = post_only(method) {
                    return a;
                }
                if !self.same_site(headers) {
                    return EndpointAnswer::CrossSite;
                }
                let Ok(creds) = serde_json::from_slice::<LoginBody>(body) else {
                    return refused(AuthError::InvalidCredentials, "auth.login.fail");
                };
                let ua = headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok());
                let req = LoginRequest {
                    username: &creds.username,
                    password: &creds.password,
                    client_addr: Some(client),
                    user_agent: ua,
                };
                match self
                    .throttled_login(&creds.username, client, self.svc.login(req))
                    .await
                {
                    Ok(grant) => EndpointAnswer::Response(with_cookie(
                        json(StatusCode::OK, &grant.body_json()),
                        &grant.set_cookie(),
                    )),
                    Err(e @ AuthError::TooManyAttempts { .. }) => {
                        refused(e, "auth.login.throttled")
                    }
                    Err(e) => refused(e, "auth.login.fail"),
                }
            }
            "/auth/refresh" => {
                if let Some(a) = post_only(method) {
                    return a;
                }
                if !self.same_site(headers) {
                    return EndpointAnswer::CrossSite;
                }
                let Some(token) = cookie() else {
                    return EndpointAnswer::Refused {
                        error: AuthError::InvalidRefresh,
                        event: "auth.refresh.fail",
                        clear_cookie: true,
                    };
                };
                match self.svc.refresh(&token).await {
                    Ok(grant) => EndpointAnswer::Response(with_cookie(
                        json(StatusCode::OK, &grant.body_json()),
                        &grant.set_cookie(),
                    )),
                    Err(e @ AuthError::RefreshReuse { .. }) => EndpointAnswer::Refused {
                        error: e,
                        event: "auth.refresh.reuse",
                        clear_cookie: true,
                    },
                    Err(e) => EndpointAnswer::Refused {
                        error: e,
                        event: "auth.refresh.fail",
                        clear_cookie: true,
                    },
                }
            }
            "/auth/logout" => {
                if let Some(a) = post_only(method) {
                    return a;
                }
                if !self.same_site(headers) {
                    return EndpointAnswer::CrossSite;
                }
                if let Some(token) = cookie() {
                    let _ = self.svc.logout_refresh_token(&token).await;
                } else if let Ok(t) = self.bearer(headers)
                    && let Some(sid) = &t.session_id
                {
                    let _ = self.svc.revoke_session(sid).await;
                }
                EndpointAnswer::Response(with_cookie(
                    no_content(),
                    &rampart_auth::cookie::clear_refresh_cookie(),
                ))
            }
            "/auth/logout-all" => {
                if let Some(a) = post_only(method) {
                    return a;
                }
                match self.bearer(headers) {
                    Ok(t) => match self.svc.logout_all(&t.subject).await {
                        Ok(_) => EndpointAnswer::Response(with_cookie(
                            no_content(),
                            &rampart_auth::cookie::clear_refresh_cookie(),
                        )),
                        Err(e) => refused(e, "auth.logout.fail"),
                    },
                    Err(e) => refused(e, "auth.token.fail"),
                }
            }
            "/auth/sessions" => {
                if method != Method::GET {
                    return EndpointAnswer::MethodNotAllowed(vec![Method::GET]);
                }
                match self.bearer(headers) {
                    Ok(t) => match self
                        .svc
                        .list_sessions(&t.subject, t.session_id.as_deref())
                        .await
                    {
                        Ok(list) => EndpointAnswer::Response(json(
                            StatusCode::OK,
                            &serde_json::json!({ "sessions": list }),
                        )),
                        Err(e) => refused(e, "auth.sessions.fail"),
                    },
                    Err(e) => refused(e, "auth.token.fail"),
                }
            }
            p if p.starts_with("/auth/sessions/") => {
                if method != Method::DELETE {
                    return EndpointAnswer::MethodNotAllowed(vec![Method::DELETE]);
                }
                let sid = &p["/auth/sessions/".len()..];
                match self.bearer(headers) {
                    Ok(t) => match self.svc.revoke_own_session(&t.subject, sid).await {
                        Ok(()) => EndpointAnswer::Response(no_content()),
                        Err(e) => refused(e, "auth.sessions.fail"),
                    },
                    Err(e) => refused(e, "auth.token.fail"),
                }
            }
            _ => EndpointAnswer::NotFound,
        }
    }
}
