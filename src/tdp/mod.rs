pub mod client;
pub mod files;
pub mod search;
