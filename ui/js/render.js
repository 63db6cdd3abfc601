// Draws the state into the page. User and server text only ever goes in via textContent.

import { bytes, duration, plural } from './format.js';
import { SORT_LABELS, view, sizeLabel, stateLabel, checkLabel } from './transfers.js';

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
  destination: 'Check the destination folder',
  input: 'Check the file IDs',
  config: 'Check the connection settings',
  busy: 'A download is running',
  internal: 'Something went wrong',
};

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function setValue(el, value) {
  if (document.activeElement !== el && el.value !== String(value)) el.value = value;
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
  setValue(h.limit, state.limitMbps ?? '');
  if (h['allow-sleep'].checked !== state.allowSleep) h['allow-sleep'].checked = state.allowSleep;
  if (h['keep-awake'].checked === state.allowSleep) h['keep-awake'].checked = !state.allowSleep;
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

  // Files: IDs or a search, one tab each.
  const searching = state.source === 'search';
  for (const [tab, on] of [['tab-ids', !searching], ['tab-search', searching]]) {
    h[tab].setAttribute('aria-selected', String(on));
    h[tab].tabIndex = on ? 0 : -1;
  }
  h['panel-ids'].hidden = searching;
  h['panel-search'].hidden = !searching;
  const sv = state.search;
  setValue(h['s-category'], sv.category);
  setValue(h['s-source-type'], sv.sourceType);
  setValue(h['s-tags'], sv.tags);
  setValue(h['s-metadata'], sv.metadata);
  setValue(h['s-from'], sv.from);
  setValue(h['s-to'], sv.to);
  setValue(h['s-eql'], sv.eql);
  h['s-outdated'].checked = sv.includeOutdated;
  setText(h['search-url-status'], state.searchUrlNote.text);
  h['search-url-status'].className = `status ${state.searchUrlNote.tone}`;
  setText(h['preview-status'], state.preview.text);
  h['preview-status'].className = `status ${state.preview.tone}`;
  h.preview.disabled = state.preview.busy;

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
  h.start.disabled = running || (searching ? state.preview.busy : !k || k.valid === 0);
  h.cancel.hidden = !running;
  h['awake-line'].hidden = !running;
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
  const failed = job ? job.counts.failed : 0;
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
  h['error-browse'].hidden = running || !(job && job.error && job.error.kind === 'destination');

  h['progress-box'].hidden = !job || (!job.progress && !job.summary);
  if (job && job.progress) {
    const p = job.progress;
    const total = p.filesTotal || job.totalFiles;
    h.bar.max = Math.max(total, 1);
    h.bar.value = p.filesDone;
    // A search's total grows with its pages until the last one.
    const more = job.found && !job.found.complete ? ' found so far' : '';
    setText(h['files-count'], `${p.filesDone.toLocaleString()} of ${plural(total, 'file', 'files')}${more}`);
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

  renderList(h, state, fileList);
  renderJobs(h, state);
  // On start, the first unfinished job (as its folder says) is offered here, in view.
  const offer = !job ? state.jobs.find((j) => j.left > 0 && !j.runningElsewhere) : null;
  h.offer.hidden = !offer;
  if (offer) {
    setText(h['offer-text'], `An unfinished download into ${offer.dest}: ${plural(offer.left, 'file', 'files')} not finished. `);
    h.offer.dataset.dest = offer.dest;
  }
  announce(h.announce, job);
}

function jobCounts(j) {
  const parts = [plural(j.files, 'file', 'files')];
  const r = j.lastRun;
  if (r) {
    parts.push(`${r.downloaded.toLocaleString()} downloaded`, `${r.skipped.toLocaleString()} already there`, `${r.failed.toLocaleString()} failed`);
  }
  if (j.left) parts.push(`${j.left.toLocaleString()} not finished`);
  return `${parts.join(', ')} · ${j.org} · started ${j.started.slice(0, 16).replace('T', ' ')}`;
}

// The Jobs view: one line per folder, with what can be done there. Rebuilt only when the
// folders' data changes.
function renderJobs(h, state) {
  const running = !!(state.job && state.job.running);
  const sig = JSON.stringify([state.jobs, running]);
  h['jobs-empty'].hidden = state.jobs.length > 0;
  setText(h['jobs-status'], state.jobsStatus.text);
  h['jobs-status'].className = `status ${state.jobsStatus.tone}`;
  if (h.jobs.dataset.sig === sig) return;
  h.jobs.dataset.sig = sig;
  let offered = false;
  h.jobs.replaceChildren(...state.jobs.map((j) => {
    const li = document.createElement('li');
    li.dataset.hook = 'job';
    li.dataset.dest = j.dest;
    const what = document.createElement('span');
    what.className = 'what';
    const name = document.createElement('strong');
    name.textContent = j.dest;
    const counts = document.createElement('span');
    counts.className = 'counts';
    counts.textContent = j.runningElsewhere ? `running elsewhere: ${j.runningElsewhere}` : jobCounts(j);
    what.append(name, counts);
    li.append(what);
    if (j.left > 0 && !j.runningElsewhere) {
      const resume = document.createElement('button');
      resume.type = 'button';
      resume.dataset.action = 'resume';
      resume.textContent = 'Resume';
      resume.setAttribute('aria-label', `Resume the download into ${j.dest}`);
      resume.disabled = running;
      // The first unfinished job is the one offered.
      if (!offered) resume.className = 'primary';
      offered = true;
      li.append(resume);
    } else if (j.search && !j.runningElsewhere) {
      // A search's folder is synced: its search again, fetching only what is new.
      const sync = document.createElement('button');
      sync.type = 'button';
      sync.dataset.action = 'resume';
      sync.textContent = 'Sync';
      sync.title = j.search;
      sync.setAttribute('aria-label', `Sync ${j.dest} with its search again`);
      sync.disabled = running;
      li.append(sync);
    }
    const forget = document.createElement('button');
    forget.type = 'button';
    forget.dataset.action = 'forget';
    forget.textContent = 'Forget';
    forget.setAttribute('aria-label', `Forget the job in ${j.dest} (its files stay)`);
    li.append(forget);
    return li;
  }));
}

// The list's view is worked out again when the filter, the sort or the job's rows change;
// while a big job runs, at most twice a second (a row's own text is always current).
let memo = { key: '', rows: [], at: 0, version: -1 };

function listView(job, list) {
  const key = `${job.started}|${list.filter}|${list.find}|${list.sort.key}|${list.sort.dir}|${job.order.length}`;
  const plain = list.filter === 'all' && !list.find.trim() && !list.sort.key;
  const now = performance.now();
  const stale = job.version !== memo.version && (!job.running || now - memo.at > 500 || job.order.length < 2000);
  if (plain) memo = { key, rows: job.order, at: now, version: job.version };
  else if (key !== memo.key || stale) memo = { key, rows: view(job.order, list), at: now, version: job.version };
  return memo.rows;
}

function renderList(h, state, fileList) {
  const job = state.job;
  const list = state.list;
  h.filelist.hidden = !job || job.order.length === 0;
  if (!job || h.filelist.hidden) return;
  const rows = listView(job, list);
  for (const chip of h.chips.children) {
    const f = chip.dataset.filter;
    chip.setAttribute('aria-pressed', String(f === list.filter));
    setText(chip.querySelector('.count'), job.counts[f].toLocaleString());
  }
  for (const b of h.sorts.querySelectorAll('button')) {
    const k = b.dataset.key;
    const on = list.sort.key === k;
    setText(b, `${SORT_LABELS[k]}${on ? (list.sort.dir === 1 ? ' ▲' : ' ▼') : ''}`);
    b.setAttribute('aria-label', on
      ? `Sort by ${SORT_LABELS[k].toLowerCase()}, now ${list.sort.dir === 1 ? 'ascending' : 'descending'}`
      : `Sort by ${SORT_LABELS[k].toLowerCase()}`);
  }
  setValue(h.find, list.find);
  const narrowed = rows.length !== job.order.length;
  setText(h['shown-count'], narrowed
    ? `${rows.length.toLocaleString()} of ${plural(job.order.length, 'file', 'files')} shown`
    : plural(job.order.length, 'file', 'files'));
  h['export-failed'].hidden = job.running || job.counts.failed === 0;
  fileList.show(rows, list.selected);

  const r = list.selected != null ? job.files.get(list.selected) : null;
  h.detail.hidden = !r;
  if (r) {
    setText(h['detail-name'], r.name || '(not known yet)');
    setText(h['detail-id'], r.id);
    setText(h['detail-size'], sizeLabel(r) || '(not known yet)');
    setText(h['detail-state'], stateLabel(r));
    h['detail-check-term'].hidden = h['detail-check'].hidden = !r.verified;
    setText(h['detail-check'], r.verified ? checkLabel(r.verified) : '');
    h['show-in-folder'].disabled = !(r.state === 'done' || r.state === 'skipped');
    h['copy-error'].hidden = r.state !== 'failed';
  }
  setText(h['list-status'], list.status.text);
  h['list-status'].className = `status ${list.status.tone}`;
}

// Progress for screen readers: at each change of phase, and at most every 20 s between.
let spoken = { phase: '', at: 0 };

function phaseOf(job) {
  if (!job) return '';
  if (job.error) return 'error';
  if (job.summary) return 'finished';
  if (job.needsToken) return 'token';
  if (job.waitingForNetwork) return 'network';
  if (job.paused) return 'paused';
  return job.progress ? 'running' : 'starting';
}

function announce(el, job) {
  const phase = phaseOf(job);
  const now = Date.now();
  if (phase === spoken.phase && (phase !== 'running' || now - spoken.at < 20000)) return;
  spoken = { phase, at: now };
  const p = job && job.progress;
  const count = p ? `${p.filesDone.toLocaleString()} of ${plural(p.filesTotal || job.totalFiles, 'file', 'files')}` : '';
  const words = {
    '': '',
    starting: 'Download started.',
    running: `Downloading: ${count} done.`,
    network: 'Waiting for the network; the download goes on by itself.',
    token: 'TDP no longer accepts the token: enter a new one to continue.',
    paused: 'Paused.',
    finished: job && job.summary ? `Finished: ${plural(job.summary.downloaded, 'file', 'files')} downloaded, ${job.summary.failed.toLocaleString()} failed.` : '',
    error: job && job.error ? `The download stopped: ${job.error.message}` : '',
  };
  setText(el, words[phase] || '');
}
