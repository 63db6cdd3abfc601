pub mod error;
pub(crate) mod s3;
