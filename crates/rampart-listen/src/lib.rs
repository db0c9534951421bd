//! Edge layer: accepts TCP connections, applies the listener firewall and connection caps
//! before reading a byte, serves HTTP/1.1 and HTTP/2 (h2c by prior knowledge) with header,
//! time and idle limits, terminates TLS (rustls, client certificates), and works out the client address behind trusted proxies. It never
//! interprets a request beyond what those limits need; policy lives in the handler it calls.
#![forbid(unsafe_code)]

mod client;
mod conns;
mod record;
mod server;
pub mod tls;

pub use client::{ClientAddr, ForwardedChain, ip_group};
pub use conns::{ConnGuard, ConnTracker, Refusal};
pub use server::{Admission, ConnInfo, Gate, Handler, HttpLimits, serve};
