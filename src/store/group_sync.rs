//! Group commit: the durability steps of many files share one sync of the file system.
//!
//! The protocol in `durable` asks, per file, for a sync of its `.part`, of the journal and of
//! the folder it is moved into. One `fdatasync` costs a journal commit and a cache flush of
//! the disk: at thousands of small files a second those are the job's critical path. Where
//! the system has `syncfs` (Linux) and the state folder and the destination are on one file
//! system, each such step instead waits for a `syncfs` that *started after it asked*: what
//! it wrote before asking is then on disk, and every file that asked meanwhile is served by
//! the same call. On macOS and Windows the shared call is one full flush of the disk's
//! cache (`F_FULLFSYNC`, `FlushFileBuffers`), after each step has written back its own
//! files without one (`durable::write_back`), and the round writes back the journal: git's
//! batched fsync. Elsewhere each step syncs what it names, as before.

use crate::store::durable;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<(), Arc<std::io::Error>>>;
/// Blocking work a round does before its sync (a write, a rename): what it made is then
/// covered by that sync, and the file needs no hop of its own to the blocking pool.
type Work = Box<dyn FnOnce() + Send>;

pub(crate) struct GroupSync {
    /// An open handle on the state folder, when one `syncfs` of it covers everything.
    root: Option<(Arc<std::fs::File>, PathBuf)>,
    /// Written back before each shared flush where that flush does not do it itself.
    journal: Option<Arc<crate::store::durable::Journal>>,
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    replies: Vec<Reply>,
    work: Vec<Work>,
    /// A task is syncing; whoever asks now is served by its next round.
    running: bool,
}

impl GroupSync {
    /// Group commit for `state_dir` when it and `dest` share a file system that `syncfs`
    /// can sync; one sync per step otherwise (`enabled` false, or no `syncfs`).
    pub fn new(
        dest: &Path,
        state_dir: &Path,
        enabled: bool,
        journal: Option<crate::store::durable::Journal>,
    ) -> Arc<Self> {
        let root = enabled
            .then(|| durable::fs_syncer(dest, state_dir))
            .flatten()
            .map(|f| (Arc::new(f), state_dir.to_path_buf()));
        Arc::new(GroupSync {
            root,
            journal: journal.map(Arc::new),
            waiting: Mutex::new(Waiting::default()),
        })
    }

    /// Whether steps share syncs (else each syncs what it names).
    pub fn grouped(&self) -> bool {
        self.root.is_some()
    }

    /// Returns once a sync of the whole file system, started after this call, has ended.
    /// Only for a grouped `GroupSync`; otherwise returns at once.
    pub async fn sync(self: &Arc<Self>) -> std::io::Result<()> {
        self.wait(None).await
    }

    /// Runs `work` on the blocking pool, then returns its result once a sync of the whole
    /// file system that began after it has ended. Only for a grouped `GroupSync`.
    pub async fn after<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> std::io::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.wait(Some(Box::new(move || {
            let _ = tx.send(work());
        })))
        .await?;
        rx.await
            .map_err(|_| std::io::Error::other("the work before a file system sync was lost"))
    }

    async fn wait(self: &Arc<Self>, work: Option<Work>) -> std::io::Result<()> {
        let Some((file, path)) = self.root.clone() else {
            if let Some(w) = work {
                tokio::task::spawn_blocking(w)
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            }
            return Ok(());
        };
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            w.replies.push(tx);
            w.work.extend(work);
            !std::mem::replace(&mut w.running, true)
        };
        if lead {
            let me = self.clone();
            tokio::spawn(async move { me.rounds(file, path).await });
        }
        match rx.await {
            Ok(r) => r.map_err(|e| std::io::Error::new(e.kind(), e.to_string())),
            Err(_) => Err(std::io::Error::other(
                "the file system sync was interrupted",
            )),
        }
    }

    /// Syncs while anyone waits: each round serves those who asked before it began.
    async fn rounds(self: Arc<Self>, file: Arc<std::fs::File>, path: PathBuf) {
        loop {
            let (replies, work) = {
                let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
                if w.replies.is_empty() {
                    w.running = false;
                    return;
                }
                (std::mem::take(&mut w.replies), std::mem::take(&mut w.work))
            };
            let (f, p, j) = (file.clone(), path.clone(), self.journal.clone());
            let r = tokio::task::spawn_blocking(move || {
                for w in work {
                    w();
                }
                if let Some(j) = j {
                    j.write_back()?;
                }
                durable::sync_fs(&f, &p)
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
            .map_err(Arc::new);
            for reply in replies {
                let _ = reply.send(r.clone());
            }
        }
    }
}
