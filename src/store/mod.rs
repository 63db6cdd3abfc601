//! The destination and its state folder: the journal, the names given out, the bytes of
//! `.part` files, their move into place, durability and the folder's lock. Above `tdp` and
//! `storage` (it records what they told of an object); below `job`.

pub(crate) mod claims;
#[doc(hidden)]
pub mod durable;
pub(crate) mod finalize;
pub mod folder_format;
pub(crate) mod group_sync;
pub(crate) mod journal;
pub(crate) mod lock;
pub(crate) mod naming;
pub(crate) mod paths;
pub(crate) mod sink;
pub mod state;
#[cfg(windows)]
pub mod windows_fs;
