//! The services behind every API shape: the canonical API and the seed adapters call these and
//! only translate request and response shapes.

pub mod auth;
