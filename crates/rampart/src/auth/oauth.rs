//! The OAuth 2.0 / OIDC endpoints over HTTP (`/oauth2/*`, discovery) and the consent page.
//! What each endpoint decides lives in `rampart-oauth`; this file parses, renders and answers.
//!
//! The code flow in a browser: `GET /oauth2/authorize` validates the request (a bad client or
//! redirect URI gets an error page, never a redirect), sends a visitor without a session to
//! `/auth/signin` and back, then shows the consent page: server-rendered, no script, strict CSP,
//! a CSRF token (cookie + hidden field), every value escaped. Its form posts the original
//! parameters back, which are validated again before a code is issued.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use rampart_oauth::{AuthorizeError, AuthorizeRequest, ClientCredentials, OAuthError};
use rampart_proxy::ProxyBody;

use super::signin::{
    CSRF_COOKIE, cookie_value, csrf_form_page, escape, html, same_bytes, see_other,
};
use super::{AuthServer, EndpointAnswer};

fn pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes)
        .take(64)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A JSON answer as the auth endpoints give it, plus `Pragma: no-cache` (RFC 6749 §5.1).
fn json(status: StatusCode, body: &serde_json::Value) -> Response<ProxyBody> {
    let mut r = super::json(status, body);
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// An RFC 6749 error answer, logged as `event`.
fn oauth_error(e: &OAuthError, basic: bool, event: &'static str) -> EndpointAnswer {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = json(status, &e.body());
    if status == StatusCode::UNAUTHORIZED {
        let challenge = if basic {
            "Basic realm=\"rampart\"".to_owned()
        } else if e.code == "invalid_token" {
            format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                e.description
            )
        } else {
            "Basic realm=\"rampart\"".to_owned()
        };
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    if status == StatusCode::FORBIDDEN
        && let Ok(v) =
            HeaderValue::from_str("Bearer error=\"insufficient_scope\", scope=\"openid\"")
    {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    EndpointAnswer::Logged {
        response: r,
        event,
        reason: format!("{}: {}", e.code, e.description),
    }
}

fn error_page(message: &str) -> Response<ProxyBody> {
    html(
        StatusCode::BAD_REQUEST,
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Authorization error</title></head>\n<body><main><h1>This sign-in request cannot continue</h1>\n<p role=\"alert\">{}</p>\n<p>Go back to the application and try again.</p></main></body>\n</html>\n",
            escape(message)
        ),
    )
}

/// The consent page for `req`, carrying `params` (the original request) and a fresh CSRF
/// token.
fn consent_page(req: &AuthorizeRequest, params: &[(String, String)]) -> Response<ProxyBody> {
    let hidden: String = params
        .iter()
        .filter(|(k, _)| k != "csrf" && k != "decision")
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let scopes: String = if req.scopes.is_empty() {
        "<li>your identity only</li>\n".to_owned()
    } else {
        req.scopes
            .iter()
            .map(|s| format!("<li><code>{}</code></li>\n", escape(s)))
            .collect()
    };
    // Browsers apply form-action to the redirect that follows the post: the client's
    // redirect origin is allowed, nothing else.
    let origin = req
        .redirect_uri
        .split_once("://")
        .map(|(scheme, rest)| format!("{scheme}://{}", rest.split(['/', '?']).next().unwrap_or("")))
        .unwrap_or_default();
    let site = origin.split_once("://").map_or("", |(_, host)| host);
    let mut r = csrf_form_page(StatusCode::OK, |csrf| {
        format!(
            r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin"><title>Allow access?</title></head>
<body>
<main>
<h1>Allow <strong>{name}</strong> to access your account?</h1>
<p>It asks for:</p>
<ul aria-label="Requested access">
{scopes}</ul>
<p>You will be sent back to <strong>{site}</strong>.</p>
<form method="post" action="/oauth2/authorize">
<input type="hidden" name="csrf" value="{csrf}">
{hidden}<p><button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></p>
</form>
</main>
</body>
</html>
"#,
            name = escape(&req.client.name),
            site = escape(site),
        )
    });
    if let Ok(v) = HeaderValue::from_str(&format!(
        "default-src 'none'; form-action 'self' {origin}; frame-ancestors 'none'; base-uri 'none'"
    )) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

impl AuthServer {
    /// `/oauth2/*` and the discovery documents.
    pub(super) async fn oauth(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
        client: &str,
    ) -> EndpointAnswer {
        let get_only = || {
            (method != Method::GET && method != Method::HEAD)
                .then(|| EndpointAnswer::MethodNotAllowed(vec![Method::GET, Method::HEAD]))
        };
        let post_only = || {
            (method != Method::POST).then(|| EndpointAnswer::MethodNotAllowed(vec![Method::POST]))
        };
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        match path {
            "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" => {
                if let Some(a) = get_only() {
                    return a;
                }
                let mut r = json(StatusCode::OK, &self.oauth.metadata());
                r.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=60"),
                );
                r.headers_mut().remove(header::PRAGMA);
                EndpointAnswer::Response(r)
            }
            "/oauth2/authorize" => self.authorize(method, query, headers, body).await,
            "/oauth2/token" => {
                if let Some(a) = post_only() {
                    return a;
                }
                let form = pairs(body);
                let creds = match ClientCredentials::from_request(authorization, &form) {
                    Ok(c) => c,
                    Err(e) => return oauth_error(&e, true, "oauth.token.fail"),
                };
                match self
                    .oauth
                    .token(&form, &creds, Some(client), user_agent)
                    .await
                {
                    Ok(v) => EndpointAnswer::Logged {
                        response: json(StatusCode::OK, &v),
                        event: "oauth.token",
                        reason: format!(
                            "{} for client {}",
                            form.iter()
                                .find(|(k, _)| k == "grant_type")
                                .map_or("", |(_, g)| g.as_str()),
                            creds.id.as_deref().unwrap_or("")
                        ),
                    },
                    Err(e) => oauth_error(&e, creds.basic, "oauth.token.fail"),
                }
            }
            "/oauth2/revoke" => {
                if let Some(a) = post_only() {
                    return a;
                }
                let form = pairs(body);
                let creds = match ClientCredentials::from_request(authorization, &form) {
                    Ok(c) => c,
                    Err(e) => return oauth_error(&e, true, "oauth.revoke.fail"),
                };
                match self.oauth.revoke(&form, &creds).await {
                    Ok(()) => {
                        EndpointAnswer::Response(json(StatusCode::OK, &serde_json::json!({})))
                    }
                    Err(e) => oauth_error(&e, creds.basic, "oauth.revoke.fail"),
                }
            }
            "/oauth2/introspect" => {
                if let Some(a) = post_only() {
                    return a;
                }
                let form = pairs(body);
                let creds = match ClientCredentials::from_request(authorization, &form) {
                    Ok(c) => c,
                    Err(e) => return oauth_error(&e, true, "oauth.introspect.fail"),
                };
                match self.oauth.introspect(&form, &creds).await {
                    Ok(v) => EndpointAnswer::Response(json(StatusCode::OK, &v)),
                    Err(e) => oauth_error(&e, creds.basic, "oauth.introspect.fail"),
                }
            }
            "/oauth2/userinfo" => {
                if method != Method::GET && method != Method::POST {
                    return EndpointAnswer::MethodNotAllowed(vec![Method::GET, Method::POST]);
                }
                let token = authorization.and_then(|v| {
                    v.split_once(' ')
                        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                        .map(|(_, t)| t.trim())
                });
                let Some(token) = token else {
                    return oauth_error(
                        &OAuthError::invalid_token("a bearer token is required"),
                        false,
                        "oauth.userinfo.fail",
                    );
                };
                match self.oauth.userinfo(token).await {
                    Ok(v) => EndpointAnswer::Response(json(StatusCode::OK, &v)),
                    Err(e) => oauth_error(&e, false, "oauth.userinfo.fail"),
                }
            }
            _ => EndpointAnswer::NotFound,
        }
    }

    async fn authorize(
        &self,
        method: &Method,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> EndpointAnswer {
        let posted = *method == Method::POST;
        if !posted && *method != Method::GET && *method != Method::HEAD {
            return EndpointAnswer::MethodNotAllowed(vec![Method::GET, Method::HEAD, Method::POST]);
        }
        if posted && !self.same_site(headers) {
            return EndpointAnswer::CrossSite;
        }
        let params = if posted {
            pairs(body)
        } else {
            pairs(query.unwrap_or("").as_bytes())
        };
        let field = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let request_params: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "csrf" && k != "decision")
            .cloned()
            .collect();
        let req = match self.oauth.authorize_request(&request_params).await {
            Ok(r) => r,
            Err(AuthorizeError::Page(m)) => {
                return EndpointAnswer::Logged {
                    response: error_page(&m),
                    event: "oauth.authorize.fail",
                    reason: m,
                };
            }
            Err(AuthorizeError::Redirect(location)) => {
                return EndpointAnswer::Logged {
                    response: see_other(&location),
                    event: "oauth.authorize.fail",
                    reason: "error sent to the client's redirect URI".to_owned(),
                };
            }
        };
        // Who is asking: the browser's session, else sign in first and come back.
        let cookie = Self::session_cookie_value(headers);
        let Ok(identity) = self.session_identity(cookie.as_deref()).await else {
            let mut back = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &request_params {
                back.append_pair(k, v);
            }
            let return_to = format!("/oauth2/authorize?{}", back.finish());
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("return_to", &return_to);
            return EndpointAnswer::Response(see_other(&format!("/auth/signin?{}", q.finish())));
        };
        if !posted {
            return EndpointAnswer::Response(consent_page(&req, &request_params));
        }
        let csrf_ok = cookie_value(headers, CSRF_COOKIE)
            .is_some_and(|c| !c.is_empty() && same_bytes(c, field("csrf")));
        if !csrf_ok {
            return EndpointAnswer::Page {
                response: consent_page(&req, &request_params),
                event: Some("auth.csrf"),
            };
        }
        if field("decision") != "approve" {
            return EndpointAnswer::Logged {
                response: see_other(&self.oauth.deny(&req)),
                event: "oauth.authorize.deny",
                reason: format!("the user declined client {}", req.client.client_id),
            };
        }
        match self
            .oauth
            .approve(&req, &identity.user_id, &identity.sid)
            .await
        {
            Ok(location) => EndpointAnswer::Logged {
                response: see_other(&location),
                event: "oauth.code",
                reason: format!("code issued to client {}", req.client.client_id),
            },
            Err(e) => EndpointAnswer::Logged {
                response: error_page(&e.description),
                event: "oauth.authorize.fail",
                reason: e.description.clone(),
            },
        }
    }
}
