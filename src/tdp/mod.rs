pub mod client;
pub mod error;
pub mod files;
pub mod pager;
pub mod search;
