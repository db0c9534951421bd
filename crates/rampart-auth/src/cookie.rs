//! Cookie strings and the CSRF check of the cookie endpoints (DESIGN §5), so every caller
//! writes them the same way.

/// Name of the refresh cookie.
pub const REFRESH_COOKIE: &str = "rampart_refresh";
/// Name of the server-side session cookie (`__Host-`: Secure, Path=/, no Domain).
pub const SESSION_COOKIE: &str = "__Host-rampart_session";

/// `Set-Cookie` value for a refresh token: HttpOnly; Secure; SameSite=Strict; Path=/auth.
pub fn refresh_cookie(value: &str, max_age: i64) -> String {
    format!(
        "{REFRESH_COOKIE}={value}; HttpOnly; Secure; SameSite=Strict; Path=/auth; Max-Age={}",
        max_age.max(0)
    )
}

/// `Set-Cookie` value that clears the refresh cookie (logout, reuse, expiry).
pub fn clear_refresh_cookie() -> String {
    format!("{REFRESH_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/auth; Max-Age=0")
}

/// `Set-Cookie` value for a server-side session: HttpOnly; Secure; SameSite=Lax; Path=/.
pub fn session_cookie(value: &str, max_age: i64) -> String {
    format!(
        "{SESSION_COOKIE}={value}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={}",
        max_age.max(0)
    )
}

/// `Set-Cookie` value that clears the session cookie.
pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=0")
}

/// Finds a cookie's value in a `Cookie` request header.
pub fn find_cookie<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    cookie_header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v.trim())
    })
}

/// CSRF defense of the cookie endpoints beside SameSite: an unsafe method is accepted only
/// when `Sec-Fetch-Site` is not `cross-site` and `Origin` is absent (non-browser client), the
/// issuer's origin, or one of `allowed_origins` (the `[auth] cors` policy). Exact comparison,
/// `null` never allowed.
pub fn cookie_request_allowed(
    origin: Option<&str>,
    sec_fetch_site: Option<&str>,
    issuer_origin: &str,
    allowed_origins: &[String],
) -> bool {
    if sec_fetch_site.is_some_and(|s| s.trim().eq_ignore_ascii_case("cross-site")) {
        return false;
    }
    match origin.map(str::trim) {
        None => true,
        Some("null") => false,
        Some(o) => {
            o == issuer_origin.trim_end_matches('/') || allowed_origins.iter().any(|a| a == o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_csrf() {
        assert_eq!(
            refresh_cookie("abc", 60),
            "rampart_refresh=abc; HttpOnly; Secure; SameSite=Strict; Path=/auth; Max-Age=60"
        );
        assert!(clear_refresh_cookie().ends_with("Max-Age=0"));
        assert!(session_cookie("v", 5).starts_with("__Host-rampart_session=v; HttpOnly; Secure"));
        assert_eq!(
            find_cookie("a=1; rampart_refresh=tok; b=2", REFRESH_COOKIE),
            Some("tok")
        );
        assert_eq!(find_cookie("a=1", REFRESH_COOKIE), None);
        let spa = vec!["https://app.example.com".to_string()];
        let iss = "https://auth.example.com";
        assert!(cookie_request_allowed(None, None, iss, &spa));
        assert!(cookie_request_allowed(
            Some("https://auth.example.com"),
            Some("same-origin"),
            iss,
            &spa
        ));
        assert!(cookie_request_allowed(
            Some("https://app.example.com"),
            Some("same-site"),
            iss,
            &spa
        ));
        assert!(!cookie_request_allowed(
            Some("https://evil.example"),
            None,
            iss,
            &spa
        ));
        assert!(!cookie_request_allowed(Some("null"), None, iss, &spa));
        assert!(!cookie_request_allowed(None, Some("cross-site"), iss, &spa));
        assert!(!cookie_request_allowed(
            Some("https://app.example.com"),
            Some("cross-site"),
            iss,
            &spa
        ));
    }
}
