//! Rate limiting layer: keys, GCRA windows and decisions, with in-memory and Redis backends,
//! and behaviour bans. It runs early because it is the cheapest rejection; it never sees a
//! request body and never blocks on the network without a deadline.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), rampart_limit::LimitError> {
//! use rampart_limit::{Bans, BanPolicy, LimitKey, Limiter, Offence, Policy, RateVerdict, StoreOptions};
//!
//! // Load: policies from [[rate_limit]], the limiter from [shared] url.
//! let per_ip = Policy::parse("per-ip", "ip", "100/s", 2, true)?;
//! let limiter = Limiter::from_url("memory://", StoreOptions::default())?;
//! let bans = Bans::new(BanPolicy::default())?;
//!
//! // Per request.
//! let client = "2001:db8::7".parse().unwrap();
//! assert!(bans.is_banned(client).is_none()); // at accept
//! let key = LimitKey::ip(&per_ip, client);
//! for _ in 0..2 {
//!     let verdict = limiter.check_all(&[(&per_ip, &key)]).await;
//!     assert!(verdict.is_allowed());
//! }
//! let verdict = limiter.check_all(&[(&per_ip, &key)]).await;
//! let headers = verdict.headers(&[&per_ip]);
//! assert!(matches!(verdict, RateVerdict::Limited { index: 0, .. }));
//! assert_eq!(headers.rate_limit_policy, "\"per-ip\";q=2;w=1");
//! assert_eq!(headers.rate_limit, "\"per-ip\";r=0;t=1");
//! assert_eq!(headers.retry_after, Some(1));
//! bans.record(client, Offence::RateLimited);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ban;
mod clock;
mod counters;
mod decision;
mod error;
mod gcra;
mod key;
mod limiter;
mod memory;
mod policy;
mod redis_backend;
mod store;

pub use ban::{BanInfo, BanPolicy, BanReason, BanStore, Bans, Offence, OffenceWeights, Scored};
pub use clock::{Clock, ManualClock, SystemClock};
pub use counters::{Hits, SharedCounters};
pub use decision::{RateDecision, RateLimitHeaders, RateVerdict};
pub use error::LimitError;
pub use key::{ClientNet, LimitKey};
pub use limiter::Limiter;
pub use memory::MemoryBackend;
pub use policy::{KeyKind, Period, Policy, Rate};
pub use redis_backend::RedisBackend;
pub use store::{StoreOptions, StoreUrl};
