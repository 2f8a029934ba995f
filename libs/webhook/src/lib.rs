//! The admission server of `injector-webhook`: the AdmissionReview codec, the HTTP handler
//! with its metrics, the config file, and the offline `explain` mode.
//!
//! The mutation itself is `bulwark-inject`'s; this crate only carries requests to it and
//! answers. **Architecture Invariant:** admission calls neither Keeper nor the API server, so
//! `sideEffects: None` is honest and dry-run requests are admitted exactly like real ones.

pub mod config;
pub mod explain;
pub mod fuzzing;
mod handler;
pub mod metrics;
pub mod review;
pub mod server;

pub use handler::{Admitted, MAX_BODY_BYTES, Verdict, Webhook};
