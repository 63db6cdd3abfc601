pub mod blocked;
pub mod connect;
pub(crate) mod http_error;
pub mod trust;
