//! Pure logic shared by Tessera's edge (a Cloudflare Worker, wasm32) and origin (axum, native).
//!
//! Nothing in this crate performs I/O, reads a clock or draws randomness: the current time and
//! random bytes are arguments, so that every rule here behaves the same on both targets and is
//! testable with fixed inputs. Each rule lives in exactly one place:
//!
//! - [`jwt`]: access-token claims, signing, strict verification, key sets and JWKS.
//! - [`totp`]: RFC 6238 codes with replay protection and `otpauth://` URIs.
//! - [`headers`]: the security-header policy applied to every response.
//! - [`edge`]: the contract between edge and origin (trusted headers, revocations).
//! - [`identity`]: the Ed25519-signed identity the edge attaches for an application's upstream.
//! - [`policy`]: the rulebook, one row per route (class, accepted credentials, wording,
//!   account field, verification or sign-out), read by both halves.
//! - [`tenant`]: the one rule for the tenant a request names (`X-Tenant`, subdomain, default).
//! - [`ratelimit`]: GCRA and the route classes with their quotas.
//! - [`refresh`]: the refresh-token rule (rotate, grace replay, reuse, invalid).
//! - [`sign_in`]: what a correct credential leads to (open, challenge, enrol-only, refusals).
//! - [`token`]: opaque token formats (refresh, session, MFA challenge, email link, API token).
//! - [`otp`]: emailed one-time codes (format, attempt limit).
//! - [`model`]: newtypes parsed once at the door (`TenantSlug`, `Email`, ids).
//! - [`lifetimes`]: how long each kind of token lives.
//! - [`api`]: API-wide rules and wire types (body size, time format, Bearer parsing, the
//!   tenant header, problem and verification bodies).

pub mod api;
pub mod edge;
pub mod headers;
pub mod identity;
pub mod jwt;
pub mod lifetimes;
pub mod model;
pub mod oidc;
pub mod otp;
pub mod policy;
pub mod ratelimit;
pub mod refresh;
pub mod secret;
pub mod sign_in;
pub mod tenant;
pub mod token;
pub mod totp;
