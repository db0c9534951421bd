//! Configuration layer: the config file's types are the schema; `load` parses and validates a
//! file into a `ValidatedConfig`, naming the key path of every error. Nothing else in Rampart
//! reads config files, and this crate does nothing but read and check them.
#![forbid(unsafe_code)]

mod load;
mod origin;
mod types;
mod values;

pub use load::{ConfigError, LoadError, ValidatedConfig, load, load_str};
pub use origin::{OriginPattern, parse_origin_pattern};
pub use types::*;
/// A secret from the environment (for example the key that encrypts signing keys). Only this
/// crate reads the environment; empty values count as unset.
pub fn secret_from_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub use values::{Cidr, CidrList, DurationError, DurationStr, OneOrMany, normalize_ip};
