//! Place: the name a file gets, a file already at it taken as this one, and the move of the
//! verified `.part` into place.

use super::state::{internal, lock, sink_failure, FileError, FileRun};
use super::verify::{multipart_sizes, search_md5};
use crate::job::context::Ctx;
use crate::job::events::{Event, FileStage};
use crate::job::report::{FileOutcome, Status};
use crate::storage::s3::ObjectInfo;
use crate::store::finalize;
use crate::store::naming::{disposition_filename, is_name_refused, relative_path};
use crate::store::sink::{self, Md5Follower, SinkError};
use crate::store::state::{join_rel, DoneInfo, Verified};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Whether a regular file is at one of the names this file may get.
pub(super) async fn may_be_present(ctx: &Ctx, run: &FileRun) -> Result<bool, FileError> {
    // The URL is needed anyway; it names the object.
    run.url(ctx).await?;
    let wanted = wanted_name(ctx, run, None);
    Ok(ctx.store().may_be_present(&run.id, &wanted))
}

/// The relative path the file asks for: its `Content-Disposition` name when storage sent
/// one, else the object key's last part, else its ID; placed by the job's layout.
pub(super) fn wanted_name(ctx: &Ctx, run: &FileRun, disposition: Option<&str>) -> String {
    let key = lock(&run.key).clone();
    let own_name = disposition
        .and_then(disposition_filename)
        .or_else(|| key.last().cloned())
        .unwrap_or_else(|| run.id.clone());
    let rel = relative_path(ctx.cfg.layout, &key, &own_name);
    rel.to_string_lossy().replace('\\', "/")
}

/// After the one-byte probe: the file at this one's name (or at its next names) with this
/// object's length and MD5 is this file, taken as it is. None: download it.
pub(super) async fn adopt_present(
    ctx: &Ctx,
    run: &FileRun,
) -> Result<Option<FileOutcome>, FileError> {
    let Some(info) = run.info() else {
        return Ok(None);
    };
    // Other ETags (KMS, multipart) say nothing of the bytes, and a gzip object's file is
    // its decoded form: those are downloaded and compared at placing.
    let Some(expected) = info.etag_md5().map(str::to_ascii_lowercase) else {
        return Ok(None);
    };
    if info.is_gzip() {
        return Ok(None);
    }
    loop {
        let Some(rel) = lock(&run.path).clone() else {
            return Ok(None);
        };
        let target = join_rel(&ctx.cfg.dest, &rel);
        let same_length = target
            .symlink_metadata()
            .is_ok_and(|m| m.is_file() && m.len() == info.size);
        if !same_length {
            return Ok(None);
        }
        let size = info.size;
        let md5 = tokio::task::spawn_blocking(move || {
            let mut h = Md5Follower::default();
            h.advance(&target, size).map(|()| h.hex())
        })
        .await
        .map_err(internal)?;
        if md5.as_deref().ok() == Some(expected.as_str()) {
            return adopt(ctx, run, &info, rel, expected).map(Some);
        }
        let tried = {
            let mut given_up = lock(&run.given_up);
            given_up.push(rel);
            given_up.clone()
        };
        if tried.len() > 4 {
            return Ok(None);
        }
        let next = ctx.store().next_name(&run.id, &tried, Some(info.size));
        match next {
            Ok(p) => renamed_to(ctx, run, &p, info.size),
            Err(_) => return Ok(None),
        }
    }
}

/// Takes the file at `rel` as this one's, done: what the probe fetched is dropped.
pub(super) fn adopt(
    ctx: &Ctx,
    run: &FileRun,
    info: &ObjectInfo,
    rel: String,
    md5: String,
) -> Result<FileOutcome, FileError> {
    let done = DoneInfo {
        path: rel.clone(),
        bytes: info.size,
        etag: info.etag.clone(),
        md5: Some(md5.clone()),
        verified: Verified::Md5,
        decoded: false,
    };
    if let Err(e) = ctx.store().record_done(&run.id, done.clone()) {
        ctx.stop(ctx.state_error(&e));
        return Err(FileError::Cancelled);
    }
    let _ = std::fs::remove_file(&run.part);
    let fetched = run.bytes.swap(0, Ordering::Relaxed);
    ctx.progress
        .bytes_done
        .fetch_sub(fetched, Ordering::Relaxed);
    ctx.progress
        .bytes_known
        .fetch_sub(info.size, Ordering::Relaxed);
    ctx.events.send(Event::FileSkipped {
        file_id: run.id.clone(),
        path: rel.clone(),
        reason: "already in the folder (same MD5)".into(),
    });
    Ok(FileOutcome::placed(
        Status::Skipped,
        done,
        lock(&run.attempts).total,
    ))
}

/// Takes the object's details: name, journal, hasher, progress.
pub(super) fn adopt_info(ctx: &Ctx, run: &FileRun, info: ObjectInfo) {
    let whole = info.etag_md5().is_some() || search_md5(run, &info).is_some();
    let part_sizes = multipart_sizes(&info);
    if whole || !part_sizes.is_empty() {
        let mut h = lock(&run.hasher);
        if h.is_none() {
            *h = Some(Md5Follower::new(whole, &part_sizes));
        }
    }
    let name = lock(&run.path).clone();
    ctx.progress
        .bytes_known
        .fetch_add(info.size, Ordering::Relaxed);
    ctx.progress.update(&run.id, |a| {
        a.size = Some(info.size);
        a.name = name;
        a.stage = FileStage::Downloading;
    });
    *lock(&run.info) = Some(info);
    run.info_known.notify_one();
}

/// The file's name changed at placing: the run and the window learn the new one.
pub(super) fn renamed_to(ctx: &Ctx, run: &FileRun, rel: &str, size: u64) {
    *lock(&run.path) = Some(rel.to_string());
    ctx.events.send(Event::FileResolved {
        file_id: run.id.clone(),
        name: rel.rsplit('/').next().unwrap_or(rel).to_string(),
        path: rel.to_string(),
        size,
    });
}

/// Moves the verified `.part` into place under the file's name (or the next free one, or its
/// ID where the file system refuses the name), then records it done.
pub(super) async fn place(
    ctx: &Arc<Ctx>,
    run: &Arc<FileRun>,
    info: ObjectInfo,
    verified: Verified,
    md5: Option<String>,
) -> Result<FileOutcome, FileError> {
    let rel = lock(&run.path)
        .clone()
        .ok_or_else(|| internal("no file name was assigned"))?;
    let (dest, part, scratch, journal) = {
        let store = ctx.store();
        (
            store.dest().to_path_buf(),
            store.part_path(&run.id),
            store.scratch_path(&run.id),
            store.journal(),
        )
    };
    let journal = match journal {
        Ok(j) => j,
        Err(e) => {
            ctx.stop(ctx.state_error(&e));
            return Err(FileError::Cancelled);
        }
    };
    let journal = Arc::new(journal);
    let gzip = info.is_gzip();
    let ratio = ctx.cfg.gzip_max_ratio;
    let mut rel = rel;
    let mut fell_back = false;
    let mut tried = lock(&run.given_up).clone();
    tried.push(rel.clone());
    let bytes = loop {
        let rel_path = join_rel(std::path::Path::new(""), &rel);
        let (d, p, sc, j) = (
            dest.clone(),
            part.clone(),
            scratch.clone(),
            Arc::clone(&journal),
        );
        // The file's records are durable before its name is, and its name before its done
        // record (the protocol in `durable`): in the group's syncs, or each on its own.
        let grouped = ctx.syncs.grouped();
        if grouped {
            ctx.syncs
                .sync()
                .await
                .map_err(|e| sink_failure(ctx, sink::io_error("sync", journal.path(), e)))?;
        }
        let place = move || {
            if !grouped {
                j.sync().map_err(|source| SinkError::Io {
                    what: "sync",
                    path: j.path().to_path_buf(),
                    source,
                })?;
            }
            finalize::finalize(&d, &rel_path, &p, &sc, gzip, ratio, !grouped)
        };
        let placed = if grouped && !gzip {
            // The move rides in a round of the group, before the sync that makes it durable.
            ctx.syncs
                .after(place)
                .await
                .unwrap_or_else(|e| Err(sink::io_error("sync", &dest, e)))
        } else {
            let placed = tokio::task::spawn_blocking(place).await.map_err(internal)?;
            match placed {
                Ok(bytes) if grouped => match ctx.syncs.sync().await {
                    Ok(()) => Ok(bytes),
                    Err(e) => Err(sink::io_error("sync", &dest, e)),
                },
                other => other,
            }
        };
        match placed {
            Ok(bytes) => break bytes,
            // The file system will not take this name (too long for it, an encoding it
            // refuses): this file alone gets `<fileId><ext>`, and the job goes on.
            Err(e) if !fell_back && e.io_error().is_some_and(is_name_refused) => {
                fell_back = true;
                let renamed = ctx.store().fall_back(&run.id, &rel);
                match renamed {
                    Ok(p) => {
                        tracing::warn!("the file system refused the name {rel}; using {p}");
                        rel = p;
                        renamed_to(ctx, run, &rel, info.size);
                    }
                    Err(_) => return Err(sink_failure(ctx, e)),
                }
            }
            // Something arrived at our name meanwhile. The same bytes: it is this file, kept
            // where it is. Other bytes: they keep their place, ours takes the next name.
            Err(SinkError::Occupied { target, complete }) if tried.len() <= 4 => {
                let (t, src) = (target.clone(), complete.clone());
                let same = tokio::task::spawn_blocking(move || finalize::same_bytes(&src, &t))
                    .await
                    .map_err(internal)?
                    .unwrap_or(false);
                if same {
                    let _ = std::fs::remove_file(&complete);
                    let _ = std::fs::remove_file(&part);
                    // The decoded size for a gzip object: what is on disk.
                    break std::fs::metadata(&target).map_or(info.size, |m| m.len());
                }
                let final_len = (!gzip).then_some(info.size);
                let next = ctx.store().next_name(&run.id, &tried, final_len);
                match next {
                    Ok(p) => {
                        tracing::warn!("{rel} is taken by another file; using {p}");
                        rel = p;
                        tried.push(rel.clone());
                        renamed_to(ctx, run, &rel, info.size);
                    }
                    Err(_) => {
                        return Err(sink_failure(ctx, SinkError::Occupied { target, complete }))
                    }
                }
            }
            Err(SinkError::Decode(err)) => {
                return Err(FileError::Integrity(format!(
                    "could not decode the gzip-encoded file ({err})"
                )))
            }
            Err(other) => return Err(sink_failure(ctx, other)),
        }
    };
    // Decoding checked the gzip trailer's CRC-32 and length of what it gave.
    let verified = match verified {
        Verified::Size if gzip => Verified::GzipCrc32,
        v => v,
    };
    let done = DoneInfo {
        path: rel.clone(),
        bytes,
        etag: info.etag.clone(),
        md5: md5.clone(),
        verified,
        decoded: gzip,
    };
    if let Err(e) = ctx.store().record_done(&run.id, done.clone()) {
        ctx.stop(ctx.state_error(&e));
        return Err(FileError::Cancelled);
    }
    ctx.events.send(Event::FileDone {
        file_id: run.id.clone(),
        path: rel.clone(),
        bytes,
        verified: verified.as_str().to_string(),
    });
    Ok(FileOutcome::placed(
        Status::Downloaded,
        done,
        lock(&run.attempts).total,
    ))
}
