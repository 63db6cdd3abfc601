//! A job: its stages (`run`), one file's task by step (`file`), and what they share: the
//! context, the network gate, token renewal, events, the report, the manifest, sync and
//! shards. Above `store`; below `session`.

pub(crate) mod conclude;
pub(crate) mod config;
pub(crate) mod context;
pub mod error;
pub mod events;
pub(crate) mod file;
pub(crate) mod lifecycle;
pub mod manifest;
pub(crate) mod outage;
pub(crate) mod paging;
pub(crate) mod renewal;
pub mod report;
pub(crate) mod run;
pub mod shard;
pub mod sync;
pub(crate) mod ticker;
