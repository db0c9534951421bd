//! Routing and forwarding layer: matches a request to a route (host, path prefix, method),
//! picks an upstream with round-robin and passive health, rewrites the forwarding headers and
//! streams the request and response. It also holds the per-route response policies (CORS,
//! security headers). It never decides who the client is: it is told.
#![forbid(unsafe_code)]

pub mod body;
pub mod cors;
pub mod forward;
pub mod head;
pub mod path;
mod pool;
pub mod route;
pub mod secheaders;
pub mod tls;
pub mod upstream;

pub use body::{BodyPace, BodyTooLarge, BodyTooSlow, LimitedBody, PacedBody, ProxyBody};
pub use cors::{CorsDecision, CorsPolicy};
pub use forward::{ForwardContext, Forwarder, ProxyError};
pub use pool::UpstreamBody;
pub use route::{RouteEntry, RouteMatch, RouteTable};
pub use tls::{UpstreamTlsConfig, upstream_tls};
pub use upstream::UpstreamPool;
