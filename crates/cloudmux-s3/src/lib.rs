//! The cloudmux S3 front end.
//!
//! This crate is the only one that knows HTTP, XML and request signing. It
//! accepts connections ([`server`]), authenticates requests ([`auth`]),
//! classifies them into operations ([`router`]), turns them into the typed
//! inputs of `cloudmux_core::Gateway` ([`handlers`]), and renders results and
//! errors as S3 does ([`error`] is the only place S3 error codes are chosen).
//!
//! Invariants:
//! - Request bodies are streamed into the core; only XML documents (at most
//!   2 MiB) are read into memory.
//! - No request body is read before its signature has been checked, so a
//!   client that sent `Expect: 100-continue` is refused before it uploads.
//! - Every response carries `x-amz-request-id`.
//! - The operational endpoints ([`ops`]: health probes, metrics) are answered
//!   before authentication and never shadow a bucket that a signed request
//!   addresses.

pub mod auth;
pub mod body;
pub mod client_ip;
pub mod context;
pub mod error;
pub mod fuzzing;
mod handlers;
pub mod headers;
pub mod limits;
pub mod ops;
mod policy_env;
pub mod router;
pub mod server;
pub mod xml;

pub use server::{tls_acceptor, FrontConfig, S3Service};
