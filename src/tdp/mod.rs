pub mod client;
pub mod error;
pub mod files;
pub mod search;
