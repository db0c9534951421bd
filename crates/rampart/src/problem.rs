//! Every refusal the gateway answers itself, and the one place its response body is built:
//! `application/problem+json` (RFC 9457) with `type`, `title`, `status`, `detail` and
//! `request_id`. Details are fixed texts: nothing from the request is echoed.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use rampart_proxy::cors::PreflightRefusal;
use rampart_proxy::{ProxyBody, ProxyError};

/// What the gateway refused or failed at, and who caused it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// No route takes this host and path. Client → 404.
    #[error("no route")]
    NoRoute,
    /// Routes take this path, not this method. Client → 405 with `Allow`.
    #[error("method not allowed")]
    MethodNotAllowed(Vec<Method>),
    /// The route's `allow_from` refuses the client address. Client → 403.
    #[error("source address not allowed on this route")]
    SourceNotAllowed,
    /// A CORS preflight from an origin, method or header the policy does not allow. Client → 403.
    #[error("CORS preflight refused: {}", .0.as_str())]
    CorsRefused(PreflightRefusal),
    /// The request head is larger than `limits.max_header_bytes`. Client → 431.
    #[error("request headers too large")]
    HeadersTooLarge,
    /// The body is larger than the route's cap. Client → 413.
    #[error("request body too large")]
    BodyTooLarge,
    /// The body came slower than `limits.min_body_rate`, or not by `limits.request_timeout`.
    /// Client → 408 (and the connection is closed).
    #[error("request body too slow")]
    BodyTooSlow,
    /// More requests in flight than `limits.max_requests_in_flight`. Us → 503 with
    /// `Retry-After`.
    #[error("overloaded")]
    Overloaded,
    /// The client is banned (a ban that began while its connection was open). Client → 403
    /// with `Retry-After` (seconds left) and the connection closed.
    #[error("client banned")]
    Banned(u64),
    /// The request is malformed in a way the gateway will not forward. Client → 400.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The request does not match the route's schema. Client → 400 with the violations.
    #[error("request does not match the schema")]
    Invalid(Vec<rampart_validate::Violation>),
    /// The route's schema has no such operation. Client → 404.
    #[error("operation not in the schema")]
    UnknownOperation,
    /// The body's media type is not one the operation accepts. Client → 415.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Credentials missing, invalid, or without a needed scope; or the store behind them is
    /// down. Client → 401 / 403 (with `WWW-Authenticate`); us → 503.
    #[error("authentication: {0}")]
    Auth(rampart_auth::AuthError),
    /// A route that requires a client certificate got none. Client → 401.
    #[error("client certificate required")]
    ClientCertRequired,
    /// The client certificate's identity is not in the route's `allow_identities`. Client → 403.
    #[error("client certificate identity not allowed")]
    IdentityNotAllowed,
    /// A cookie endpoint called from a page of another site. Client → 403.
    #[error("cross-site request to a cookie endpoint")]
    CrossSite,
    /// The WAF's rules blocked the request. Client → the rule's status, 403 by default.
    #[error("blocked by the WAF")]
    WafBlocked(StatusCode),
    /// A rate-limit policy refused the request. Client → 429 (with `Retry-After`).
    #[error("rate limited by policy {0}")]
    RateLimited(String),
    /// A backing service a control needs is down and the control fails closed. Us → 503.
    #[error("{0} unavailable")]
    Unavailable(&'static str),
    /// The upstream failed. Upstream → 502 or 504.
    #[error(transparent)]
    Upstream(#[from] ProxyError),
}

impl GatewayError {
    /// The status answered.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::NoRoute => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::SourceNotAllowed | GatewayError::CorsRefused(_) => StatusCode::FORBIDDEN,
            GatewayError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GatewayError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BodyTooSlow => StatusCode::REQUEST_TIMEOUT,
            GatewayError::Banned(_) => StatusCode::FORBIDDEN,
            GatewayError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::Invalid(_) => StatusCode::BAD_REQUEST,
            GatewayError::Auth(e) => e.status(),
            GatewayError::CrossSite => StatusCode::FORBIDDEN,
            GatewayError::ClientCertRequired => StatusCode::UNAUTHORIZED,
            GatewayError::IdentityNotAllowed => StatusCode::FORBIDDEN,
            GatewayError::UnknownOperation => StatusCode::NOT_FOUND,
            GatewayError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::WafBlocked(status) => *status,
            GatewayError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Upstream(e) => e.status(),
        }
    }

    /// The problem type (a stable identifier, documented in docs/problems.md).
    fn kind(&self) -> &'static str {
        match self {
            GatewayError::NoRoute => "no-route",
            GatewayError::MethodNotAllowed(_) => "method-not-allowed",
            GatewayError::SourceNotAllowed => "source-not-allowed",
            GatewayError::CorsRefused(_) => "cors-refused",
            GatewayError::HeadersTooLarge => "headers-too-large",
            GatewayError::BodyTooLarge => "body-too-large",
            GatewayError::BodyTooSlow => "request-timeout",
            GatewayError::Banned(_) => "banned",
            GatewayError::Overloaded => "overloaded",
            GatewayError::BadRequest(_) => "bad-request",
            GatewayError::RateLimited(_) => "rate-limited",
            GatewayError::Invalid(_) => "invalid-request",
            GatewayError::Auth(e) if e.status() == StatusCode::FORBIDDEN => "insufficient-scope",
            GatewayError::Auth(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            GatewayError::Auth(e) if e.status() == StatusCode::TOO_MANY_REQUESTS => {
                "too-many-attempts"
            }
            GatewayError::Auth(e) if e.status() == StatusCode::UNAUTHORIZED => "unauthorized",
            GatewayError::Auth(_) => "auth-refused",
            GatewayError::CrossSite => "cross-site",
            GatewayError::ClientCertRequired => "client-certificate-required",
            GatewayError::IdentityNotAllowed => "identity-not-allowed",
            GatewayError::UnknownOperation => "unknown-operation",
            GatewayError::UnsupportedMediaType => "unsupported-media-type",
            GatewayError::WafBlocked(_) => "waf-blocked",
            GatewayError::Unavailable(_) => "unavailable",
            GatewayError::Upstream(ProxyError::ConnectTimeout | ProxyError::Timeout(_)) => {
                "upstream-timeout"
            }
            GatewayError::Upstream(_) => "upstream-unavailable",
        }
    }

    /// A short public explanation; internal detail goes to the log only.
    fn detail(&self) -> &'static str {
        match self {
            GatewayError::NoRoute => "No route is configured for this host and path.",
            GatewayError::MethodNotAllowed(_) => {
                "This method is not allowed here; see the Allow header."
            }
            GatewayError::SourceNotAllowed => {
                "Your network address is not allowed to use this resource."
            }
            GatewayError::CorsRefused(_) => {
                "This cross-origin request is not allowed by the CORS policy."
            }
            GatewayError::HeadersTooLarge => {
                "The request headers are larger than this server accepts."
            }
            GatewayError::BodyTooLarge => "The request body is larger than this server accepts.",
            GatewayError::BodyTooSlow => "The request body arrived too slowly.",
            GatewayError::Banned(_) => {
                "Your address is banned for a while after abusive traffic; see Retry-After."
            }
            GatewayError::Overloaded => "The server is busy; retry after the time in Retry-After.",
            GatewayError::BadRequest(why) => why,
            GatewayError::RateLimited(_) => {
                "Too many requests; retry after the time in the Retry-After header."
            }
            GatewayError::WafBlocked(_) => {
                "This request was blocked by the web application firewall."
            }
            GatewayError::Invalid(_) => {
                "The request does not match the API's schema; see violations."
            }
            GatewayError::Auth(e) => e.public_message(),
            GatewayError::CrossSite => "This endpoint does not accept requests from other sites.",
            GatewayError::ClientCertRequired => {
                "This resource requires a valid client certificate."
            }
            GatewayError::IdentityNotAllowed => {
                "Your client certificate's identity is not allowed to use this resource."
            }
            GatewayError::UnknownOperation => "The API does not declare this path.",
            GatewayError::UnsupportedMediaType => "The API does not accept this Content-Type here.",
            GatewayError::Unavailable(_) => {
                "A service this request depends on is unavailable; retry shortly."
            }
            GatewayError::Upstream(ProxyError::ConnectTimeout | ProxyError::Timeout(_)) => {
                "The upstream service did not answer in time."
            }
            GatewayError::Upstream(_) => "The upstream service is unavailable.",
        }
    }

    /// The problem+json response for this error, as HTTP/1.1 bytes on a connection that closes
    /// after it (for answers written below hyper, see `Gate::unparsable`).
    pub fn to_http1_bytes(&self, request_id: &str) -> Vec<u8> {
        let status = self.status();
        let body = self.body(request_id);
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncache-control: no-store\r\n\
             x-content-type-options: nosniff\r\nx-request-id: {request_id}\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error"),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }

    /// The answer to an HTTP/0.9 simple request: the body alone (HTTP/0.9 has no status line
    /// and no header fields), after which the connection closes.
    pub fn to_http09_bytes(&self, request_id: &str) -> Vec<u8> {
        self.body(request_id).to_vec()
    }

    fn body(&self, request_id: &str) -> Bytes {
        let status = self.status();
        let mut body = serde_json::json!({
            "type": format!("urn:rampart:problem:{}", self.kind()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.detail(),
            "request_id": request_id,
        });
        if let GatewayError::Invalid(violations) = self {
            // Pointers and reasons only: the validator never puts a request value in them.
            body["violations"] = serde_json::to_value(violations).unwrap_or_default();
        }
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// The problem+json response for this error.
    pub fn to_response(&self, request_id: &str) -> Response<ProxyBody> {
        let status = self.status();
        let bytes = self.body(request_id);
        let mut resp = Response::new(
            Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if matches!(self, GatewayError::BodyTooSlow | GatewayError::Banned(_)) {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let GatewayError::Banned(secs) = self {
            h.insert(header::RETRY_AFTER, HeaderValue::from((*secs).max(1)));
        }
        if matches!(
            self,
            GatewayError::Unavailable(_) | GatewayError::Overloaded
        ) {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let GatewayError::Auth(rampart_auth::AuthError::TooManyAttempts { retry_after_secs }) =
            self
        {
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(&1).to_owned()),
            );
        }
        if let GatewayError::Auth(e) = self
            && let Some(v) = e
                .www_authenticate()
                .and_then(|w| HeaderValue::from_str(&w).ok())
        {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        if let GatewayError::MethodNotAllowed(allow) = self {
            let list = allow
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(v) = HeaderValue::from_str(&list) {
                h.insert(header::ALLOW, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn problem_bodies_have_the_contract_fields_and_no_request_data() {
        let resp =
            GatewayError::MethodNotAllowed(vec![Method::GET, Method::HEAD]).to_response("rid-7");
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()["allow"], "GET, HEAD");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], 405);
        assert_eq!(v["request_id"], "rid-7");
        assert_eq!(v["type"], "urn:rampart:problem:method-not-allowed");
        assert!(v["title"].is_string() && v["detail"].is_string());
    }
}
