//! The network layer: one `Connector` for every HTTP client of a job (trust, proxy), and
//! how a transport error is read. Above the leaves; below TDP and storage.

pub mod blocked;
pub mod connect;
pub(crate) mod http_error;
pub mod trust;
