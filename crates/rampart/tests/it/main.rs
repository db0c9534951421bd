//! End-to-end tests: the real `rampart` binary on loopback, real upstreams, real clients.

mod auth;
mod config;
mod edge;
mod limits;
mod observe;
mod proxy;
mod ratelimit;
mod support;
mod validate;
mod waf;
