//! The authorization server: what each endpoint decides, without HTTP. The gateway parses
//! requests, renders the consent page and writes the answers.

use std::sync::Arc;

use base64::Engine as _;
use rampart_auth::{AuthError, AuthService};
use rampart_auth::{random_id, random_token, sign_jwt};
use rampart_store::{AuthCode, CodeOutcome, OAuthClient};
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;

use crate::OAuthError;
use crate::pkce;

/// How long an authorization code may wait for its exchange.
pub const CODE_TTL_SECS: i64 = 60;

/// Grant types a client may be registered for.
pub const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];

/// A client to register (`rampart client add`).
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    /// Display name, shown on the consent page.
    pub name: String,
    /// Exact redirect URIs (`https://`, or `http://` on a loopback host for native apps).
    pub redirect_uris: Vec<String>,
    /// Scopes it may ask for (`openid` for ID tokens).
    pub scopes: Vec<String>,
    /// Grant types from [`GRANT_TYPES`].
    pub grant_types: Vec<String>,
    /// A public client (a browser or native app) has no secret and must use PKCE.
    pub public: bool,
}

/// A validated authorization request (`GET /oauth2/authorize`).
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The client asking.
    pub client: OAuthClient,
    /// Where the answer goes (one of the client's registered URIs).
    pub redirect_uri: String,
    /// Scopes asked for (all allowed to the client).
    pub scopes: Vec<String>,
    /// Opaque client state, returned as is.
    pub state: Option<String>,
    /// PKCE `S256` challenge.
    pub code_challenge: String,
    /// OIDC nonce, put in the ID token.
    pub nonce: Option<String>,
}

/// Why an authorization request fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect.
    Page(String),
    /// Send the error to the client's redirect URI (this location).
    Redirect(String),
}

/// The authorization server.
#[derive(Debug, Clone)]
pub struct OAuthServer {
    svc: Arc<AuthService>,
}

fn valid_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// Whether `uri` may be registered as a redirect URI: absolute, no fragment, `https`, or
/// `http` on a loopback host (RFC 8252 native apps).
pub fn valid_redirect_uri(uri: &str) -> bool {
    if uri.len() > 2000
        || uri.contains('#')
        || uri.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let Some((scheme, rest)) = uri.split_once("://") else {
        return false;
    };
    let host = rest
        .split(['/', '?'])
        .next()
        .unwrap_or("")
        .rsplit_once('@')
        .map_or(rest.split(['/', '?']).next().unwrap_or(""), |(_, h)| h);
    if host.is_empty() || rest.split(['/', '?']).next().unwrap_or("").contains('@') {
        return false;
    }
    let hostname = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']').map(|(a, _)| a))
        .unwrap_or_else(|| host.split(':').next().unwrap_or(""));
    match scheme {
        "https" => true,
        "http" => matches!(hostname, "localhost" | "127.0.0.1" | "::1"),
        _ => false,
    }
}

/// `uri` with `params` appended to its query.
fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", q.finish())
}

/// The value of `name` when it appears exactly once (RFC 6749 §3.1: parameters must not be
/// repeated).
fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ()> {
    let mut found = params.iter().filter(|(k, _)| k == name);
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(());
    }
    Ok(first.filter(|v| !v.is_empty()))
}

/// Client credentials from `Authorization: Basic` or the form (`client_id`,
/// `client_secret`).
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    /// `client_id`.
    pub id: Option<String>,
    /// `client_secret`; absent for public clients.
    pub secret: Option<String>,
    /// Whether they came in a Basic header (401 answers then carry `WWW-Authenticate`).
    pub basic: bool,
}

impl ClientCredentials {
    /// Reads the `Authorization` header value (if Basic) and the form.
    pub fn from_request(
        authorization: Option<&str>,
        form: &[(String, String)],
    ) -> Result<Self, OAuthError> {
        if let Some(v) = authorization
            && let Some((scheme, b64)) = v.split_once(' ')
            && scheme.eq_ignore_ascii_case("basic")
        {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?;
            let raw = String::from_utf8(raw)
                .map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?;
            let (id, secret) = raw
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded.
            let decode = |s: &str| -> String {
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            if form.iter().any(|(k, _)| k == "client_secret") {
                return Err(OAuthError::invalid_request(
                    "client credentials given twice",
                ));
            }
            return Ok(ClientCredentials {
                id: Some(decode(id)),
                secret: Some(decode(secret)),
                basic: true,
            });
        }
        let dup = || OAuthError::invalid_request("a parameter is repeated");
        Ok(ClientCredentials {
            id: single(form, "client_id")
                .map_err(|_| dup())?
                .map(str::to_owned),
            secret: single(form, "client_secret")
                .map_err(|_| dup())?
                .map(str::to_owned),
            basic: false,
        })
    }
}

impl OAuthServer {
    /// The server on top of the auth service (users, sessions, keys, store).
    pub fn new(svc: Arc<AuthService>) -> Self {
        OAuthServer { svc }
    }

    fn issuer(&self) -> &str {
        self.svc.options().issuer.trim_end_matches('/')
    }

    /// RFC 8414 / OpenID Connect Discovery metadata.
    pub fn metadata(&self) -> Value {
        let iss = self.issuer();
        let alg = self
            .svc
            .signing_key()
            .and_then(|k| serde_json::to_value(k.alg).ok())
            .unwrap_or_else(|| json!("EdDSA"));
        let mut scopes = vec!["openid".to_owned()];
        scopes.extend(self.svc.options().default_scopes.iter().cloned());
        json!({
            "issuer": self.svc.options().issuer,
            "authorization_endpoint": format!("{iss}/oauth2/authorize"),
            "token_endpoint": format!("{iss}/oauth2/token"),
            "revocation_endpoint": format!("{iss}/oauth2/revoke"),
            "introspection_endpoint": format!("{iss}/oauth2/introspect"),
            "userinfo_endpoint": format!("{iss}/oauth2/userinfo"),
            "jwks_uri": format!("{iss}/.well-known/jwks.json"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": GRANT_TYPES,
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": scopes,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [alg],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "preferred_username"],
            "authorization_response_iss_parameter_supported": true,
        })
    }

    // ------------------------------------------------------------------ clients

    /// Registers a client; returns it and, for a confidential client, its secret (shown once,
    /// stored only as a keyed hash).
    pub async fn add_client(
        &self,
        spec: NewClient,
    ) -> Result<(OAuthClient, Option<String>), OAuthError> {
        let name: String = spec
            .name
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        if name.trim().is_empty() {
            return Err(OAuthError::invalid_request("a client needs a name"));
        }
        let mut grants = spec.grant_types.clone();
        if grants.is_empty() {
            grants = vec!["authorization_code".into(), "refresh_token".into()];
        }
        if let Some(g) = grants.iter().find(|g| !GRANT_TYPES.contains(&g.as_str())) {
            return Err(OAuthError::invalid_request(format!(
                "unknown grant type {g:?}"
            )));
        }
        if spec.public && grants.iter().any(|g| g == "client_credentials") {
            return Err(OAuthError::invalid_request(
                "a public client cannot use client_credentials",
            ));
        }
        if grants.iter().any(|g| g == "authorization_code") {
            if spec.redirect_uris.is_empty() {
                return Err(OAuthError::invalid_request(
                    "authorization_code needs at least one redirect URI",
                ));
            }
            if let Some(u) = spec.redirect_uris.iter().find(|u| !valid_redirect_uri(u)) {
                return Err(OAuthError::invalid_request(format!(
                    "redirect URI {u:?} must be absolute https (or http on a loopback host), without fragment"
                )));
            }
        }
        if let Some(s) = spec.scopes.iter().find(|s| !valid_scope_token(s)) {
            return Err(OAuthError::invalid_request(format!("bad scope {s:?}")));
        }
        let secret = if spec.public {
            None
        } else {
            Some(random_token()?)
        };
        let client = OAuthClient {
            client_id: random_id()?,
            secret_hash: secret
                .as_ref()
                .map(|s| self.svc.master_key().hash_secret(s.as_bytes())),
            name,
            redirect_uris: spec.redirect_uris,
            scopes: spec.scopes,
            grant_types: grants,
            created_at: self.svc.now(),
        };
        self.svc.store().create_client(&client).await?;
        Ok((client, secret))
    }

    /// Authenticates a client at the token, revocation or introspection endpoint. A public
    /// client passes with its id alone (it has no secret); a confidential one needs its secret.
    pub async fn authenticate_client(
        &self,
        creds: &ClientCredentials,
    ) -> Result<OAuthClient, OAuthError> {
        let id = creds
            .id
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_client("client authentication required"))?;
        let client = self.svc.store().client(id).await?;
        // The same answer whatever failed, so client ids cannot be probed.
        let refused = || OAuthError::invalid_client("unknown client or wrong secret");
        let client = client.ok_or_else(refused)?;
        match (&client.secret_hash, &creds.secret) {
            (None, None) => Ok(client),
            (Some(hash), Some(secret)) => {
                let given = self.svc.master_key().hash_secret(secret.as_bytes());
                if bool::from(given.ct_eq(hash)) {
                    Ok(client)
                } else {
                    Err(refused())
                }
            }
            _ => Err(refused()),
        }
    }

    // ------------------------------------------------------------------ authorize

    /// Validates `GET /oauth2/authorize` parameters. Errors about the client or the redirect
    /// URI are for an error page; the others go back to the client's redirect URI.
    pub async fn authorize_request(
        &self,
        params: &[(String, String)],
    ) -> Result<AuthorizeRequest, AuthorizeError> {
        let page = |m: &str| AuthorizeError::Page(m.to_owned());
        let get = |name: &str| single(params, name).map_err(|_| page("a parameter is repeated"));
        let client_id = get("client_id")?.ok_or_else(|| page("client_id is missing"))?;
        let client = match self.svc.store().client(client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(page("unknown client")),
            Err(_) => return Err(page("the authorization server is unavailable; try again")),
        };
        let redirect_uri = match get("redirect_uri")? {
            Some(u) if client.redirect_uris.iter().any(|r| r == u) => u.to_owned(),
            Some(_) => return Err(page("redirect_uri is not registered for this client")),
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => return Err(page("redirect_uri is missing")),
        };
        let state = get("state")?.map(str::to_owned);
        let back = |code: &str, description: &str| {
            let mut p = vec![
                ("error", code),
                ("error_description", description),
                ("iss", self.svc.options().issuer.as_str()),
            ];
            if let Some(s) = &state {
                p.push(("state", s));
            }
            AuthorizeError::Redirect(with_params(&redirect_uri, &p))
        };
        if !client.grant_types.iter().any(|g| g == "authorization_code") {
            return Err(back(
                "unauthorized_client",
                "this client may not use the authorization code flow",
            ));
        }
        match get("response_type")? {
            Some("code") => {}
            Some(_) => return Err(back("unsupported_response_type", "only code is supported")),
            None => return Err(back("invalid_request", "response_type is missing")),
        }
        let scopes: Vec<String> = match get("scope")? {
            Some(s) => s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect(),
            None => client.scopes.clone(),
        };
        if scopes.iter().any(|s| !client.scopes.contains(s)) {
            return Err(back(
                "invalid_scope",
                "a scope is not allowed to this client",
            ));
        }
        let challenge = get("code_challenge")?
            .ok_or_else(|| back("invalid_request", "PKCE code_challenge is required"))?;
        if get("code_challenge_method")? != Some("S256") {
            return Err(back(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        if !pkce::valid_challenge(challenge) {
            return Err(back("invalid_request", "code_challenge is malformed"));
        }
        let nonce = get("nonce")?.map(str::to_owned);
        if nonce.as_ref().is_some_and(|n| n.len() > 512)
            || state.as_ref().is_some_and(|s| s.len() > 2048)
        {
            return Err(back("invalid_request", "state or nonce too long"));
        }
        Ok(AuthorizeRequest {
            client,
            redirect_uri,
            scopes,
            state,
            code_challenge: challenge.to_owned(),
            nonce,
        })
    }

    /// The user approved: stores a single-use code and returns the redirect location.
    pub async fn approve(
        &self,
        req: &AuthorizeRequest,
        user_id: &str,
        sid: &str,
    ) -> Result<String, OAuthError> {
        let code = random_token()?;
        let now = self.svc.now();
        let row = AuthCode {
            code_hash: self.svc.master_key().hash_secret(code.as_bytes()),
            client_id: req.client.client_id.clone(),
            user_id: user_id.to_owned(),
            sid: Some(sid.to_owned()),
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.clone(),
            code_challenge: req.code_challenge.clone(),
            challenge_method: "S256".into(),
            nonce: req.nonce.clone(),
            created_at: now,
            expires_at: now + CODE_TTL_SECS,
            used: false,
        };
        self.svc.store().insert_auth_code(&row).await?;
        let mut p = vec![
            ("code", code.as_str()),
            ("iss", self.svc.options().issuer.as_str()),
        ];
        if let Some(s) = &req.state {
            p.push(("state", s));
        }
        Ok(with_params(&req.redirect_uri, &p))
    }

    /// The user declined: the redirect location carrying `access_denied`.
    pub fn deny(&self, req: &AuthorizeRequest) -> String {
        let mut p = vec![
            ("error", "access_denied"),
            ("error_description", "the user declined"),
            ("iss", self.svc.options().issuer.as_str()),
        ];
        if let Some(s) = &req.state {
            p.push(("state", s));
        }
        with_params(&req.redirect_uri, &p)
    }

    // ------------------------------------------------------------------ token

    /// `POST /oauth2/token`. Returns the JSON answer.
    pub async fn token(
        &self,
        form: &[(String, String)],
        creds: &ClientCredentials,
        client_addr: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<Value, OAuthError> {
        let get = |name: &str| {
            single(form, name).map_err(|_| OAuthError::invalid_request("a parameter is repeated"))
        };
        let grant = get("grant_type")?
            .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
        if !GRANT_TYPES.contains(&grant) {
            return Err(OAuthError::unsupported_grant_type(
                "supported: authorization_code, refresh_token, client_credentials",
            ));
        }
        let client = self.authenticate_client(creds).await?;
        if !client.grant_types.iter().any(|g| g == grant) {
            return Err(OAuthError::unauthorized_client(
                "this client may not use this grant type",
            ));
        }
        match grant {
            "authorization_code" => {
                let code =
                    get("code")?.ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
                let verifier = get("code_verifier")?
                    .ok_or_else(|| OAuthError::invalid_request("PKCE code_verifier is missing"))?;
                let redirect_uri = get("redirect_uri")?;
                self.exchange_code(
                    &client,
                    code,
                    verifier,
                    redirect_uri,
                    client_addr,
                    user_agent,
                )
                .await
            }
            "refresh_token" => {
                let token = get("refresh_token")?
                    .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
                self.refresh(&client, token).await
            }
            _ => {
                if client.secret_hash.is_none() {
                    return Err(OAuthError::unauthorized_client(
                        "a public client cannot use client_credentials",
                    ));
                }
                let scopes: Vec<String> = match get("scope")? {
                    Some(s) => s
                        .split(' ')
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    None => client.scopes.clone(),
                };
                if scopes
                    .iter()
                    .any(|s| !client.scopes.contains(s) || s == "openid")
                {
                    return Err(OAuthError::invalid_scope(
                        "a scope is not allowed to this client",
                    ));
                }
                let (token, ttl) = self.svc.issue_access_token(
                    &client.client_id,
                    None,
                    &scopes,
                    Some(&client.client_id),
                )?;
                Ok(json!({
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": ttl,
                    "scope": scopes.join(" "),
                }))
            }
        }
    }

    async fn exchange_code(
        &self,
        client: &OAuthClient,
        code: &str,
        verifier: &str,
        redirect_uri: Option<&str>,
        client_addr: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<Value, OAuthError> {
        let now = self.svc.now();
        let hash = self.svc.master_key().hash_secret(code.as_bytes());
        let row = match self.svc.store().consume_auth_code(&hash, now).await? {
            CodeOutcome::Consumed(row) => row,
            CodeOutcome::AlreadyUsed(row) => {
                // A replayed code: whoever holds it should not keep what it bought (RFC 6749
                // §4.1.2). Revoke the sessions this client got for this user since the code.
                if let Ok(sessions) = self
                    .svc
                    .store()
                    .list_active_sessions(&row.user_id, now)
                    .await
                {
                    for s in sessions.iter().filter(|s| {
                        s.client_id.as_deref() == Some(row.client_id.as_str())
                            && s.created_at >= row.created_at
                    }) {
                        let _ = self.svc.revoke_session(&s.sid).await;
                    }
                }
                return Err(OAuthError::invalid_grant("the code was already used"));
            }
            CodeOutcome::NotFound => {
                return Err(OAuthError::invalid_grant("unknown or expired code"));
            }
        };
        if row.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if redirect_uri.is_some_and(|u| u != row.redirect_uri)
            || (redirect_uri.is_none() && client.redirect_uris.len() > 1)
        {
            return Err(OAuthError::invalid_grant("redirect_uri does not match"));
        }
        if !pkce::verify_s256(verifier, &row.code_challenge) {
            return Err(OAuthError::invalid_grant("PKCE verification failed"));
        }
        // The user may have signed out or been disabled since approving.
        let browser_session = match &row.sid {
            Some(sid) => self.svc.store().session(sid).await?,
            None => None,
        };
        if !browser_session.is_some_and(|s| s.is_active(now)) {
            return Err(OAuthError::invalid_grant("the approving session has ended"));
        }
        let grant = self
            .svc
            .start_session(
                &row.user_id,
                Some(&client.client_id),
                &row.scopes,
                client_addr,
                user_agent,
            )
            .await?;
        let mut body = json!({
            "access_token": grant.access_token,
            "token_type": "Bearer",
            "expires_in": grant.expires_in,
            "scope": row.scopes.join(" "),
        });
        if client.grant_types.iter().any(|g| g == "refresh_token") {
            body["refresh_token"] = json!(grant.refresh_token);
        }
        if row.scopes.iter().any(|s| s == "openid") {
            body["id_token"] = json!(self.id_token(&row, &grant.sid, now)?);
        }
        Ok(body)
    }

    fn id_token(&self, row: &AuthCode, sid: &str, now: i64) -> Result<String, OAuthError> {
        let key = self
            .svc
            .signing_key()
            .ok_or_else(OAuthError::server_error)?;
        let ttl = i64::try_from(self.svc.options().access_ttl.as_secs()).unwrap_or(900);
        let mut claims = json!({
            "iss": self.svc.options().issuer,
            "sub": row.user_id,
            "aud": row.client_id,
            "azp": row.client_id,
            "iat": now,
            "exp": now + ttl,
            "auth_time": row.created_at,
            "sid": sid,
        });
        if let Some(n) = &row.nonce {
            claims["nonce"] = json!(n);
        }
        Ok(sign_jwt(&key, "JWT", &claims)?)
    }

    async fn refresh(&self, client: &OAuthClient, token: &str) -> Result<Value, OAuthError> {
        // The token must belong to a session granted to this very client.
        let hash = self.svc.master_key().hash_secret(token.as_bytes());
        let owner = match self.svc.store().refresh_token(&hash).await? {
            Some(t) => self.svc.store().session(&t.sid).await?,
            None => None,
        };
        if owner.as_ref().and_then(|s| s.client_id.as_deref()) != Some(client.client_id.as_str()) {
            return Err(OAuthError::invalid_grant("unknown refresh token"));
        }
        let grant = self.svc.refresh(token).await.map_err(|e| match e {
            AuthError::RefreshReuse { .. } => OAuthError::invalid_grant(
                "the refresh token was already used; the grant is revoked",
            ),
            e if e.status().as_u16() == 503 => OAuthError::unavailable(),
            _ => OAuthError::invalid_grant("invalid refresh token"),
        })?;
        let scopes = owner.map(|s| s.scopes).unwrap_or_default();
        Ok(json!({
            "access_token": grant.access_token,
            "token_type": "Bearer",
            "expires_in": grant.expires_in,
            "refresh_token": grant.refresh_token,
            "scope": scopes.join(" "),
        }))
    }

    // ------------------------------------------------------------------ revoke, introspect

    /// `POST /oauth2/revoke` (RFC 7009): a refresh token or access token of this client ends
    /// its grant (session). Unknown tokens are not an error.
    pub async fn revoke(
        &self,
        form: &[(String, String)],
        creds: &ClientCredentials,
    ) -> Result<(), OAuthError> {
        let client = self.authenticate_client(creds).await?;
        let token = single(form, "token")
            .map_err(|_| OAuthError::invalid_request("a parameter is repeated"))?
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        let hash = self.svc.master_key().hash_secret(token.as_bytes());
        let sid = match self.svc.store().refresh_token(&hash).await? {
            Some(t) => Some(t.sid),
            None => self
                .svc
                .verifier()
                .verify_at(token, self.svc.now())
                .ok()
                .filter(|t| t.client_id.as_deref() == Some(client.client_id.as_str()))
                .and_then(|t| t.session_id.clone()),
        };
        if let Some(sid) = sid
            && let Some(s) = self.svc.store().session(&sid).await?
            && s.client_id.as_deref() == Some(client.client_id.as_str())
        {
            self.svc.revoke_session(&sid).await?;
        }
        Ok(())
    }

    /// `POST /oauth2/introspect` (RFC 7662), for confidential clients.
    pub async fn introspect(
        &self,
        form: &[(String, String)],
        creds: &ClientCredentials,
    ) -> Result<Value, OAuthError> {
        let client = self.authenticate_client(creds).await?;
        if client.secret_hash.is_none() {
            return Err(OAuthError::invalid_client(
                "introspection is for confidential clients",
            ));
        }
        let token = single(form, "token")
            .map_err(|_| OAuthError::invalid_request("a parameter is repeated"))?
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        Ok(match self.svc.verifier().verify_at(token, self.svc.now()) {
            Ok(t) => {
                let mut v = json!({
                    "active": true,
                    "token_type": "Bearer",
                    "sub": t.subject,
                    "iss": t.issuer,
                    "aud": t.audience,
                    "exp": t.expires_at,
                    "scope": t.scopes.join(" "),
                });
                if let Some(iat) = t.issued_at {
                    v["iat"] = json!(iat);
                }
                if let Some(c) = &t.client_id {
                    v["client_id"] = json!(c);
                }
                if let Some(s) = &t.session_id {
                    v["sid"] = json!(s);
                }
                v
            }
            Err(_) => json!({ "active": false }),
        })
    }

    /// `GET /oauth2/userinfo` with a bearer token carrying `openid`.
    pub async fn userinfo(&self, bearer: &str) -> Result<Value, OAuthError> {
        let t = self
            .svc
            .verifier()
            .verify_at(bearer, self.svc.now())
            .map_err(|_| OAuthError::invalid_token("invalid or expired access token"))?;
        if !t.scopes.iter().any(|s| s == "openid") {
            return Err(OAuthError::insufficient_scope(
                "the token lacks the openid scope",
            ));
        }
        let user = self
            .svc
            .store()
            .user_by_id(&t.subject)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(|| OAuthError::invalid_token("no such user"))?;
        Ok(json!({ "sub": user.id, "preferred_username": user.username }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_https_or_loopback_http() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1:8765/callback",
            "http://localhost/cb",
            "http://[::1]:9000/cb",
        ] {
            assert!(valid_redirect_uri(ok), "{ok}");
        }
        for bad in [
            "http://app.example.com/callback",
            "https://app.example.com/cb#frag",
            "javascript:alert(1)",
            "/relative",
            "https:///nohost",
            "https://user@evil.example/cb",
            "https://app.example.com/a b",
            "ftp://x/y",
        ] {
            assert!(!valid_redirect_uri(bad), "{bad}");
        }
    }

    #[test]
    fn parameters_are_appended_encoded() {
        assert_eq!(
            with_params("https://a/cb", &[("code", "x y"), ("state", "s&t")]),
            "https://a/cb?code=x+y&state=s%26t"
        );
        assert_eq!(
            with_params("https://a/cb?k=v", &[("code", "c")]),
            "https://a/cb?k=v&code=c"
        );
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let p = vec![
            ("a".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned()),
        ];
        assert!(single(&p, "a").is_err());
        assert_eq!(single(&p, "b"), Ok(None));
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("my%20client:s%3Acret")
        );
        let c = ClientCredentials::from_request(Some(&header), &[]).unwrap();
        assert_eq!(c.id.as_deref(), Some("my client"));
        assert_eq!(c.secret.as_deref(), Some("s:cret"));
        assert!(c.basic);
        assert!(ClientCredentials::from_request(Some("Basic !!!"), &[]).is_err());
        // One authentication method per request (RFC 6749 §2.3).
        let twice = vec![("client_secret".to_owned(), "s".to_owned())];
        assert_eq!(
            ClientCredentials::from_request(Some(&header), &twice)
                .unwrap_err()
                .code,
            "invalid_request"
        );
    }
}
