//! The server-rendered sign-in page of `auth = ["session"]` routes: `GET /auth/signin` shows a
//! plain HTML form (no script, strict CSP, labelled fields, every value escaped) that works
//! without JavaScript; `POST /auth/signin` checks the CSRF token (a `__Host-` cookie that must
//! match the form's hidden field, beside the same-site check of every cookie endpoint) and the
//! credentials, then sets the `__Host-rampart_session` cookie and redirects (303) to a local
//! `return_to` path. `POST /auth/signout` ends the session at once.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use rampart_auth::cookie::{SESSION_COOKIE, clear_session_cookie, find_cookie, session_cookie};
use rampart_auth::{AuthError, LoginRequest, SessionIdentity};
use rampart_proxy::ProxyBody;

use super::{AuthServer, EndpointAnswer};

/// The CSRF cookie of the sign-in form.
pub(super) const CSRF_COOKIE: &str = "__Host-rampart_csrf";

/// The sign-in page's Content-Security-Policy: nothing but the form posting to itself.
pub const PAGE_CSP: &str =
    "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path on this site to go back to after signing in; anything else (another host, a
/// scheme, `//host`, backslashes, control characters) becomes `/`.
pub fn safe_return_to(candidate: Option<&str>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control)
                && p.len() <= 2048 =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// A page whose form is protected by a fresh CSRF token: `render` gets the token for the
/// hidden field, and the token is set as the `__Host-` cookie the post must match.
pub(super) fn csrf_form_page(
    status: StatusCode,
    render: impl FnOnce(&str) -> String,
) -> Response<ProxyBody> {
    let Ok(csrf) = rampart_auth::random_token() else {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            "<!doctype html><title>Unavailable</title><p>Try again shortly.</p>".to_owned(),
        );
    };
    let mut r = html(status, render(&csrf));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{CSRF_COOKIE}={csrf}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=3600"
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub(super) fn same_bytes(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub(super) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| find_cookie(c, name))
}

pub(super) fn html(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    r
}

/// The sign-in form with a fresh CSRF token (also set as its cookie). Its referrer policy is
/// `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` with the
/// form post, which the cross-site check must refuse.
fn form(
    status: StatusCode,
    return_to: &str,
    username: &str,
    error: Option<&str>,
) -> Response<ProxyBody> {
    csrf_form_page(status, |csrf| {
        let error_html = error
            .map(|e| format!("<p id=\"error\" role=\"alert\">{}</p>\n", escape(e)))
            .unwrap_or_default();
        let described = if error.is_some() {
            " aria-describedby=\"error\""
        } else {
            ""
        };
        let body = format!(
            r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin"><title>Sign in</title></head>
<body>
<main>
<h1>Sign in</h1>
{error_html}<form method="post" action="/auth/signin"{described}>
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="return_to" value="{return_to}">
<p><label for="username">Username</label><br>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required value="{username}"></p>
<p><label for="password">Password</label><br>
<input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button type="submit">Sign in</button></p>
</form>
</main>
</body>
</html>
"#,
            return_to = escape(return_to),
            username = escape(username),
        );
        body
    })
}

pub(super) fn see_other(location: &str) -> Response<ProxyBody> {
    let mut r = html(StatusCode::SEE_OTHER, String::new());
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

impl AuthServer {
    /// `GET` / `POST /auth/signin`.
    pub(super) async fn signin(
        &self,
        method: &Method,
        headers: &HeaderMap,
        query: Option<&str>,
        body: &[u8],
        client: &str,
    ) -> EndpointAnswer {
        if method == Method::GET || method == Method::HEAD {
            let return_to = query.and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "return_to")
                    .map(|(_, v)| v.into_owned())
            });
            return EndpointAnswer::Response(form(
                StatusCode::OK,
                &safe_return_to(return_to.as_deref()),
                "",
                None,
            ));
        }
        if method != Method::POST {
            return EndpointAnswer::MethodNotAllowed(vec![Method::GET, Method::HEAD, Method::POST]);
        }
        if !self.same_site(headers) {
            return EndpointAnswer::CrossSite;
        }
        let mut fields = std::collections::HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if matches!(k.as_ref(), "username" | "password" | "csrf" | "return_to") {
                fields.entry(k.into_owned()).or_insert(v.into_owned());
            }
        }
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
        let return_to = safe_return_to(fields.get("return_to").map(String::as_str));
        let csrf_ok = cookie_value(headers, CSRF_COOKIE)
            .is_some_and(|c| !c.is_empty() && same_bytes(c, field("csrf")));
        if !csrf_ok {
            return EndpointAnswer::Page {
                response: form(
                    StatusCode::FORBIDDEN,
                    &return_to,
                    field("username"),
                    Some("This form expired. Please sign in again."),
                ),
                event: Some("auth.csrf"),
            };
        }
        let req = LoginRequest {
            username: field("username"),
            password: field("password"),
            client_addr: Some(client),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
        };
        match self
            .throttled_login(field("username"), client, self.svc.login_session(req))
            .await
        {
            Ok(grant) => {
                let mut r = see_other(&return_to);
                for c in [
                    session_cookie(&grant.cookie_value, grant.max_age),
                    format!("{CSRF_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"),
                ] {
                    if let Ok(v) = HeaderValue::from_str(&c) {
                        r.headers_mut().append(header::SET_COOKIE, v);
                    }
                }
                EndpointAnswer::Response(r)
            }
            Err(e @ AuthError::TooManyAttempts { .. }) => EndpointAnswer::Refused {
                error: e,
                event: "auth.login.throttled",
                clear_cookie: false,
            },
            Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => EndpointAnswer::Refused {
                error: e,
                event: "auth.login.fail",
                clear_cookie: false,
            },
            Err(_) => EndpointAnswer::Page {
                response: form(
                    StatusCode::UNAUTHORIZED,
                    &return_to,
                    field("username"),
                    Some("Wrong username or password."),
                ),
                event: Some("auth.login.fail"),
            },
        }
    }

    /// `POST /auth/signout`: ends the cookie's session everywhere at once.
    pub(super) async fn signout(&self, method: &Method, headers: &HeaderMap) -> EndpointAnswer {
        if method != Method::POST {
            return EndpointAnswer::MethodNotAllowed(vec![Method::POST]);
        }
        if !self.same_site(headers) {
            return EndpointAnswer::CrossSite;
        }
        if let Some(value) = cookie_value(headers, SESSION_COOKIE)
            && let Ok(id) = self.svc.authenticate_session_cookie(value).await
        {
            let _ = self.svc.revoke_session(&id.sid).await;
        }
        let mut r = see_other("/auth/signin");
        if let Ok(v) = HeaderValue::from_str(&clear_session_cookie()) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        EndpointAnswer::Response(r)
    }

    /// The value of the `__Host-rampart_session` cookie among `headers`.
    pub fn session_cookie_value(headers: &HeaderMap) -> Option<String> {
        cookie_value(headers, SESSION_COOKIE).map(str::to_owned)
    }

    /// The session a `__Host-rampart_session` cookie value belongs to.
    pub async fn session_identity(
        &self,
        cookie: Option<&str>,
    ) -> Result<SessionIdentity, AuthError> {
        let value = cookie.ok_or(AuthError::MissingCredentials)?;
        self.svc.authenticate_session_cookie(value).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_stays_on_this_site() {
        assert_eq!(safe_return_to(Some("/app/x?y=1")), "/app/x?y=1");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "evil",
            "/a\nb",
            "",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/");
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[tokio::test]
    async fn the_form_is_plain_html_with_labels_and_a_csrf_cookie() {
        let r = form(StatusCode::OK, "/a\"b", "<u>", Some("<bad>"));
        assert_eq!(r.headers()["content-security-policy"], PAGE_CSP);
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.starts_with("__Host-rampart_csrf=") && cookie.contains("HttpOnly"));
        let token = cookie
            .trim_start_matches("__Host-rampart_csrf=")
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let page = String::from_utf8(body.to_vec()).unwrap();
        assert!(page.contains(&format!("name=\"csrf\" value=\"{token}\"")));
        assert!(
            page.contains("<label for=\"username\">") && page.contains("<label for=\"password\">")
        );
        assert!(!page.contains("<script") && !page.contains(" style="));
        assert!(!page.contains("<u>") && !page.contains("<bad>") && !page.contains("/a\"b"));
    }
}
