// Draws the state into the page. User and server text only ever goes in via textContent.

import { bytes, duration, plural } from './format.js';

const ERROR_TITLES = {
  auth: 'Wrong or expired token',
  forbidden: 'No access to this org',
  network: 'Cannot reach TDP',
  tls: 'Secure connection failed',
  proxy: 'The proxy refused',
  throttled: 'TDP is busy',
  server: 'TDP or storage failed',
  protocol: 'Unexpected answer',
  integrity: 'The bytes did not verify',
  'not-found': 'Not found in TDP',
  keychain: 'Keychain unavailable',
  'keychain-locked': 'Keychain locked',
  'disk-full': 'The disk is full',
  destination: 'The folder cannot be written',
  input: 'Check the file IDs',
  config: 'Check the connection settings',
  busy: 'A download is running',
  internal: 'Something went wrong',
};

const STATE_LABELS = {
  resolving: 'resolving',
  downloading: 'downloading',
  verifying: 'verifying',
  retrying: 'retrying',
  done: 'done',
  skipped: 'skipped: already downloaded',
  failed: 'failed',
};

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function setValue(el, value) {
  if (document.activeElement !== el && el.value !== String(value)) el.value = value;
}

function rowLabel(r) {
  if (r.state === 'downloading' && r.size) {
    return `downloading ${Math.floor((100 * r.bytes) / Math.max(r.size, 1))}% of ${bytes(r.size)}`;
  }
  if (r.state === 'retrying') return `retrying: ${r.reason}`;
  if (r.state === 'failed') return `failed: ${r.reason}`;
  if (r.state === 'done') return `done (${bytes(r.bytes)})`;
  return STATE_LABELS[r.state] || r.state;
}

function renderDiagnosis(list, lines) {
  list.hidden = !lines;
  const text = (lines || []).map((l) => `${l.ok ? '✓' : '✗'} ${l.what}${l.fix ? ` — fix: ${l.fix}` : ''}`);
  if (list.dataset.shown === text.join('\n')) return;
  list.dataset.shown = text.join('\n');
  list.replaceChildren(...text.map((t, i) => {
    const li = document.createElement('li');
    li.textContent = t;
    li.className = lines[i].ok ? 'ok' : 'bad';
    return li;
  }));
}

// What the job is doing, where a running job shows its speed.
function jobLine(job, p) {
  if (job.waitingForNetwork) return 'waiting for the network: the download goes on by itself when it is back';
  if (job.needsToken) return 'waiting for a new auth token (above): files already downloading go on';
  if (job.paused) return 'paused: nothing is downloading; Resume goes on where it stopped';
  if (job.state === 'stopping') return 'stopping: finishing writes and saving what arrived';
  return `${bytes(Math.round(p.bytesPerSecond))}/s`;
}

export function render(h, state, fileList) {
  renderDiagnosis(h.diagnosis, state.diagnosis);
  setValue(h['base-url'], state.baseUrl);
  setValue(h.org, state.org);
  setValue(h.ids, state.ids);
  setValue(h.dest, state.dest);
  setValue(h.layout, state.layout);
  setValue(h.concurrency, state.concurrency ?? '');
  setValue(h.proxy, state.proxy);
  setValue(h['ca-cert'], state.caCert);
  if (h['allow-sleep'].checked !== state.allowSleep) h['allow-sleep'].checked = state.allowSleep;
  if (state.defaults.maxConcurrency) h.concurrency.max = String(state.defaults.maxConcurrency);
  setText(h.version, state.version ? `TDP Bulk Downloader ${state.version}` : '');

  // Connection: whether a token is saved, never the token itself.
  const c = state.cred;
  h.forget.hidden = !c.saved;
  h.remember.disabled = !c.keychainAvailable;
  let conn = state.connStatus.text;
  let tone = state.connStatus.tone;
  if (!conn) {
    if (!c.keychainAvailable) {
      conn = `${c.message || 'The OS keychain is not available'}. A token you type is used for this session only.`;
      tone = 'bad';
    } else if (c.saved) {
      conn = 'A token is saved in the keychain for this org.';
      tone = 'ok';
    } else if (c.session) {
      conn = 'A token is set for this session.';
      tone = 'ok';
    }
  }
  setText(h['conn-status'], conn);
  h['conn-status'].className = `status ${tone}`;
  h.token.placeholder = c.saved || c.session ? 'saved: leave empty to use it' : 'paste your TDP token';

  // Files: counts at once, invalid lines with their numbers.
  const k = state.idCheck;
  setText(h['ids-status'], k
    ? `${plural(k.valid, 'valid ID', 'valid IDs')}, ${plural(k.duplicates, 'duplicate', 'duplicates')}, ${plural(k.invalid, 'invalid line', 'invalid lines')}`
    : '');
  h['ids-status'].className = `status ${k && k.invalid ? 'bad' : ''}`;
  const list = h['invalid-lines'];
  const lines = k ? k.invalidLines : [];
  if (list.childElementCount !== lines.length || list.dataset.sig !== String(state.ids.length)) {
    list.replaceChildren(...lines.map((l) => {
      const li = document.createElement('li');
      li.dataset.hook = 'invalid-line';
      li.textContent = `line ${l.line}: ${l.reason}`;
      return li;
    }));
    list.dataset.sig = String(state.ids.length);
  }

  // Download.
  const job = state.job;
  const running = !!(job && job.running);
  h.start.disabled = running || !k || k.valid === 0;
  h.cancel.hidden = !running;
  h.pause.hidden = !running || job.id == null;
  setText(h.pause, job && job.paused ? 'Resume' : 'Pause');

  // A token TDP rejected mid-job: ask for a new one, focus on its field once.
  const asking = running && !!job.needsToken;
  if (h.renew.hidden === asking) {
    h.renew.hidden = !asking;
    if (asking) h['renew-token'].focus();
  }
  const rs = (job && job.renewStatus) || { text: '', tone: '' };
  setText(h['renew-status'], rs.text);
  h['renew-status'].className = `status ${rs.tone}`;
  h.demo.disabled = running;
  const failed = job ? job.order.filter((r) => r.state === 'failed').length : 0;
  h.retry.hidden = running || !job || !job.summary || failed === 0;
  h.open.hidden = running || !job || !job.summary;

  const warnings = (job && job.warnings) || [];
  h.warnings.hidden = warnings.length === 0;
  setText(h.warnings, warnings.map((w) => `Note: ${w}`).join('\n'));
  h.error.hidden = !(job && job.error);
  if (job && job.error) {
    const title = ERROR_TITLES[job.error.kind] || ERROR_TITLES.internal;
    setText(h.error, `${title}: ${job.error.message}`);
    h.error.dataset.kind = job.error.kind;
  }

  h['progress-box'].hidden = !job || (!job.progress && !job.summary);
  if (job && job.progress) {
    const p = job.progress;
    const total = p.filesTotal || job.totalFiles;
    h.bar.max = Math.max(total, 1);
    h.bar.value = p.filesDone;
    setText(h['files-count'], `${p.filesDone.toLocaleString()} of ${plural(total, 'file', 'files')}`);
    setText(h['bytes-count'], bytes(p.bytesDone));
    const speed = jobLine(job, p);
    setText(h.speed, running ? speed : '');
    const perFile = p.filesDone ? p.bytesDone / p.filesDone : 0;
    const eta = p.bytesPerSecond > 0 && perFile > 0 ? ((total - p.filesDone) * perFile) / p.bytesPerSecond : NaN;
    setText(h.eta, running && isFinite(eta) ? `about ${duration(eta)} left` : '');
  }

  h.summary.hidden = !(job && job.summary);
  if (job && job.summary) {
    const s = job.summary;
    const parts = [
      `${plural(s.downloaded, 'file', 'files')} downloaded`,
      `${s.skipped.toLocaleString()} already there`,
      `${s.failed.toLocaleString()} failed`,
    ];
    if (s.invalid) parts.push(`${plural(s.invalid, 'invalid line', 'invalid lines')}`);
    if (s.cancelled) parts.push(`${s.cancelled.toLocaleString()} not finished (Download resumes them)`);
    setText(h.summary, `${parts.join(', ')} — ${bytes(s.bytes)} in ${duration(s.seconds)}. Report: ${s.report}`);
    h.summary.className = `summary ${s.failed || s.cancelled || s.invalid ? 'partial' : ''}`;
    h.summary.dataset.downloaded = s.downloaded;
    h.summary.dataset.skipped = s.skipped;
    h.summary.dataset.failed = s.failed;
  }

  h.filelist.hidden = !job || job.order.length === 0;
  if (job) {
    fileList.show(job.order.map((r) => ({ id: r.id, name: r.name, state: r.state, label: rowLabel(r) })));
  }
}
