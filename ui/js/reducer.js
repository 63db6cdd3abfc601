// The job's events folded into what the window shows: pure of I/O (no DOM, no timers, no
// IPC; the time comes in as `now`), so `node --test` runs it as the window does. A job holds
// up to 100,000 rows: `reduce` updates the job it is given in place and returns it, rather
// than copying every row per event.

import { category, emptyCounts, FINAL } from './transfers.js';

export function newJob(dest, startedAt) {
  return {
    id: null, running: true, files: new Map(), order: [], counts: emptyCounts(), totalFiles: 0,
    progress: null, summary: null, error: null, started: startedAt, dest: dest.trim(),
    // Bumped on every change to a row: the list's view is worked out again when it moves.
    version: 0,
  };
}

function addRow(job, id) {
  const r = { id, name: '', size: null, bytes: 0, state: 'queued', reason: '', speed: null };
  job.files.set(id, r);
  job.counts.all += 1;
  job.counts.queued += 1;
  return r;
}

function row(job, id) {
  let r = job.files.get(id);
  if (!r) {
    r = addRow(job, id);
    job.order.push(r);
  }
  return r;
}

// Every file of the job, in input order, queued until it starts (events may come first).
// A search's files come with its pages instead (filesFound): those rows stay.
export function setFiles(job, ids) {
  if (ids.length) job.order = ids.map((id) => job.files.get(id) || addRow(job, id));
  job.version += 1;
}

function setState(job, r, next) {
  job.version += 1;
  if (r.state === next) return;
  const [a, b] = [category(r.state), category(next)];
  if (a !== b) {
    job.counts[a] -= 1;
    job.counts[b] += 1;
  }
  r.state = next;
  if (FINAL.has(next)) r.speed = null;
}

// A smoothed speed per active file, from the bytes of successive progress ticks.
function measure(r, bytesNow, now) {
  if (r.seenAt != null && now - r.seenAt >= 200) {
    const v = ((bytesNow - r.seenBytes) * 1000) / (now - r.seenAt);
    r.speed = r.speed == null ? v : 0.6 * r.speed + 0.4 * v;
  }
  if (r.seenAt == null || now - r.seenAt >= 200) {
    r.seenAt = now;
    r.seenBytes = bytesNow;
  }
}

export function reduce(job, ev, now) {
  switch (ev.type) {
    case 'jobStarted':
      job.totalFiles = ev.files;
      break;
    case 'filesFound':
      for (const id of ev.ids) row(job, id);
      job.totalFiles = ev.files;
      job.found = { files: ev.files, bytes: ev.bytes, excluded: ev.excluded, complete: ev.complete };
      job.version += 1;
      break;
    case 'progress': {
      job.progress = ev;
      for (const a of ev.active) {
        const r = row(job, a.fileId);
        if (FINAL.has(r.state)) continue;
        r.bytes = a.bytes;
        if (a.size != null) r.size = a.size;
        if (a.name) r.name = a.name;
        if (r.state !== 'retrying' || a.stage !== 'downloading') setState(job, r, a.stage);
        measure(r, a.bytes, now);
      }
      job.version += 1;
      break;
    }
    case 'fileResolved': {
      const r = row(job, ev.fileId);
      r.name = ev.path;
      r.size = ev.size;
      if (!FINAL.has(r.state)) setState(job, r, 'downloading');
      break;
    }
    case 'fileRetrying': {
      const r = row(job, ev.fileId);
      if (!FINAL.has(r.state)) { setState(job, r, 'retrying'); r.reason = ev.reason; r.kind = ev.kind; }
      break;
    }
    case 'fileDone': {
      const r = row(job, ev.fileId);
      Object.assign(r, { name: ev.path, bytes: ev.bytes, size: ev.bytes, reason: '', verified: ev.verified });
      setState(job, r, 'done');
      break;
    }
    case 'fileSkipped': {
      const r = row(job, ev.fileId);
      Object.assign(r, { name: ev.path, reason: ev.reason });
      setState(job, r, 'skipped');
      break;
    }
    case 'fileFailed': {
      const r = row(job, ev.fileId);
      Object.assign(r, { reason: ev.reason, kind: ev.kind });
      setState(job, r, 'failed');
      break;
    }
    case 'jobState':
      job.state = ev.state;
      job.waitingForNetwork = ev.state === 'waitingForNetwork';
      job.paused = ev.state === 'paused';
      // Asked once per rejection; the answer to the last new token stays until it is proven.
      if (ev.state === 'waitingForToken' && !job.needsToken) job.renewStatus = null;
      if (ev.state === 'waitingForToken') job.needsToken = true;
      if (ev.state === 'running') job.needsToken = false;
      break;
    case 'warning':
      job.warnings = [...(job.warnings || []), ev.message];
      break;
    case 'jobFinished':
      job.summary = ev.summary;
      job.running = false;
      for (const r of job.order) if (!FINAL.has(r.state)) setState(job, r, 'unfinished');
      if (ev.summary.stopped && ev.summary.stopKind !== 'cancelled') {
        job.error = { kind: ev.summary.stopKind, message: ev.summary.stopped };
      }
      break;
    case 'jobError':
      job.error = { kind: ev.kind, message: ev.message };
      job.running = false;
      break;
    default:
      break;
  }
  return job;
}
