//! Session tests: a deterministic two-session simulator, scenario stories,
//! property tests, and the fuzz drivers on pseudo-random scripts.

mod congestion;
mod fuzz_smoke;
mod props;
mod scenarios;
pub(crate) mod sim;
mod version;
