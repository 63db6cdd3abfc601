pub(crate) mod s3;
