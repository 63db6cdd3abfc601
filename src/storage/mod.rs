//! Storage: the pre-signed GET to S3 and its answers. Beside `tdp`, above `net`.

pub mod error;
pub(crate) mod s3;
