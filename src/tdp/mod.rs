//! The TDP API: its client, its errors, a search and its pages. Beside `storage`, above
//! `net`.

pub mod client;
pub mod error;
pub mod files;
pub mod pager;
pub mod search;
