// The job's progress where a user sees it from another window: the window's title ("42% ·")
// and, where the desktop supports it (Unity launcher API on Linux, the Windows taskbar, the
// macOS dock), a progress bar on the app's icon.

const APP = 'TDP Bulk Downloader';
let shown = '';

export function syncTaskbar(state) {
  const job = state.job;
  const p = job && job.progress;
  const total = p ? p.filesTotal || job.totalFiles : 0;
  const pct = job && job.running && total ? Math.floor((100 * p.filesDone) / total) : null;
  const waiting = job && job.running && (job.needsToken || job.waitingForNetwork || job.paused);
  const title = pct == null ? APP : `${pct}%${waiting ? ' (waiting)' : ''} · ${APP}`;
  if (title === shown) return;
  shown = title;
  document.title = title;
  const win = window.__TAURI__.window.getCurrentWindow();
  win.setTitle(title).catch(() => {});
  const status = pct == null ? 'none' : waiting ? 'paused' : 'normal';
  win.setProgressBar({ status, progress: pct ?? 0 }).catch(() => {});
}
