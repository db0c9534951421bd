//! End-to-end tests: the real `rampart` binary on loopback, real upstreams, real clients.

mod acme;
mod auth;
mod browser;
mod config;
mod ddos;
mod edge;
mod limits;
mod observe;
mod pki;
mod proxy;
mod ratelimit;
mod schemathesis;
mod support;
mod tls;
mod validate;
mod waf;
