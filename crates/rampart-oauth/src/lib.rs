//! The OAuth 2.0 / OpenID Connect authorization server of Rampart: the authorization code
//! flow with PKCE (S256 required), client credentials, refresh-token rotation for the grants it
//! makes, revocation (RFC 7009), introspection (RFC 7662), userinfo, ID tokens and discovery
//! metadata (RFC 8414). Users, sessions, keys and storage come from `rampart-auth`; the
//! gateway owns HTTP and the consent page.
//!
//! Every grant of the code flow is a session of its own (client id and scopes attached), so
//! "log out everywhere", disabling the user, revocation and a replayed code end it like any
//! other session, on every node.

#![forbid(unsafe_code)]

mod error;
pub mod pkce;
mod server;

pub use error::OAuthError;
pub use server::{
    AuthorizeError, AuthorizeRequest, CODE_TTL_SECS, ClientCredentials, GRANT_TYPES, NewClient,
    OAuthServer, valid_redirect_uri,
};
