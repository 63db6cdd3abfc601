//! What a destination holds of ours, by name, and how the state folder's files are opened:
//! a leaf that the journal, the lock, the manifest and the shards all name things by.

/// The state folder, in the destination.
pub const STATE_DIR: &str = ".tdp-download";

/// Options that never follow a symbolic link at the last component: the state folder's
/// files are ours, and a link planted there must not redirect a write.
pub fn no_follow() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut o = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    o
}
