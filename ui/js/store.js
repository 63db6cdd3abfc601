// The one place that talks to the app's Rust side: every invoke and the job channel live
// here. Views read `state` and call the actions; `subscribe` re-renders after changes.

import { newJob, reduce, setFiles } from './reducer.js';
import { emptySearch, fromTdpUrl, isEmpty, toRequest } from './search.js';

const tauri = () => window.__TAURI__;
const call = (cmd, args) => tauri().core.invoke(cmd, args);


export function createStore() {
  const listeners = [];
  let scheduled = false;
  const state = {
    version: '',
    downloadsDir: '',
    baseUrl: '',
    org: '',
    remember: true,
    cred: { saved: false, session: false, keychainAvailable: true, message: '' },
    connStatus: { text: '', tone: '' },
    ids: '',
    idCheck: null,
    // 'ids' or 'search': which tab of Files the download takes its files from.
    source: 'ids',
    search: emptySearch(),
    searchUrlNote: { text: '', tone: '' },
    preview: { text: '', tone: '', busy: false },
    dest: '',
    layout: 'flat',
    concurrency: null,
    proxy: '',
    caCert: '',
    allowSleep: false,
    limitMbps: null,
    diagnosis: null,
    defaults: { concurrency: null, maxConcurrency: null },
    demo: false,
    job: null,
    // The Jobs view, as the folders say (list_jobs), and what the last action there said.
    jobs: [],
    jobsStatus: { text: '', tone: '' },
    // How the transfer list is shown: the chip, the text filter, the sort, the selected file.
    list: { filter: 'all', find: '', sort: { key: null, dir: 1 }, selected: null, status: { text: '', tone: '' } },
  };

  function changed() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      listeners.forEach((fn) => fn(state));
    });
  }

  const errorText = (e) => (e && e.message) || String(e);
  const errorKind = (e) => (e && e.kind) || 'internal';

  const touched = new Set();
  let saveTimer = null;
  function writeSettings() {
    clearTimeout(saveTimer);
    if (state.demo) return Promise.resolve(); // demo values are not the user's settings
    return call('save_settings', {
      settings: {
        baseUrl: state.baseUrl, org: state.org, dest: state.dest,
        layout: state.layout, concurrency: state.concurrency,
        proxy: state.proxy, caCert: state.caCert, allowSleep: state.allowSleep,
        limitMbps: state.limitMbps,
      },
    }).catch(() => {});
  }

  const network = () => ({ proxy: state.proxy, caCert: state.caCert });

  // A typed proxy password goes to the keychain, under the proxy's address.
  async function takeProxyPassword(password) {
    if (!password || !state.proxy.trim()) return true;
    try {
      await call('save_proxy_password', { proxy: state.proxy, password });
      return true;
    } catch (e) {
      state.connStatus = { text: errorText(e), tone: 'bad' };
      return false;
    }
  }

  function saveSettings() {
    clearTimeout(saveTimer);
    saveTimer = setTimeout(writeSettings, 300);
  }

  async function refreshCredentials() {
    if (!state.baseUrl.trim() || !state.org.trim()) {
      state.cred = { saved: false, session: false, keychainAvailable: true, message: '' };
      changed();
      return;
    }
    try {
      const s = await call('credentials_status', { baseUrl: state.baseUrl, org: state.org });
      state.cred = { ...s, message: s.message || '' };
    } catch (e) {
      state.cred = { saved: false, session: false, keychainAvailable: true, message: '' };
      state.connStatus = { text: errorText(e), tone: 'bad' };
    }
    changed();
  }

  let credTimer = null;
  function credentialsSoon() {
    clearTimeout(credTimer);
    credTimer = setTimeout(refreshCredentials, 300);
  }

  let idsTimer = null;
  function validateSoon() {
    clearTimeout(idsTimer);
    idsTimer = setTimeout(async () => {
      state.idCheck = state.ids.trim() ? await call('validate_ids', { text: state.ids }) : null;
      changed();
    }, 150);
  }

  // A token typed in the field is handed to Rust (session, and keychain if asked) and the
  // field is cleared: it never comes back to the page.
  async function takeToken(token) {
    if (!token.trim()) return true;
    try {
      await call('save_token', {
        baseUrl: state.baseUrl, org: state.org, token, remember: state.remember && state.cred.keychainAvailable,
      });
      return true;
    } catch (e) {
      if (errorKind(e).startsWith('keychain')) {
        state.connStatus = { text: `${errorText(e)}. The token is used for this session only.`, tone: 'bad' };
        return true;
      }
      state.connStatus = { text: errorText(e), tone: 'bad' };
      return false;
    } finally {
      await refreshCredentials();
    }
  }

  // Starts a job with `cmd` (start_job, resume_job): its events feed `job` from then on.
  async function begin(job, cmd, args) {
    const channel = new (tauri().core.Channel)();
    channel.onmessage = (batch) => {
      for (const ev of batch) reduce(job, ev, performance.now());
      if (!job.running) {
        setTimeout(refreshCredentials, 200);
        setTimeout(() => actions.refreshJobs(), 200);
      }
      changed();
    };
    try {
      const started = await call(cmd, { ...args, onEvent: channel });
      job.id = started.job;
      setFiles(job, started.ids);
      state.list.selected = null;
      state.list.status = { text: '', tone: '' };
    } catch (e) {
      job.running = false;
      job.error = { kind: errorKind(e), message: errorText(e) };
    }
    changed();
    actions.refreshJobs();
  }

  const actions = {
    async init() {
      const info = await call('app_info');
      state.version = info.version;
      state.downloadsDir = info.downloadsDir || '';
      // The engine's defaults, from the app: written in one place (JobConfig).
      state.defaults = info.defaults;
      const s = await call('load_settings');
      const saved = {
        baseUrl: s.baseUrl || '', org: s.org || '', dest: s.dest || '',
        layout: s.layout || 'flat', concurrency: s.concurrency || info.defaults.concurrency,
        proxy: s.proxy || '', caCert: s.caCert || '', allowSleep: s.allowSleep === true,
        limitMbps: s.limitMbps || null,
      };
      // What the person typed (or the demo filled in) meanwhile wins over saved settings.
      for (const [k, v] of Object.entries(saved)) if (!touched.has(k)) state[k] = v;
      changed();
      await refreshCredentials();
      await actions.refreshJobs();
      if (info.demoRequested) await actions.startDemo();
    },
    setRemember(on) {
      state.remember = !!on;
      changed();
    },
    setField(name, value) {
      touched.add(name);
      state[name] = name === 'concurrency' || name === 'limitMbps' ? Number(value) || null : value;
      // A running job takes a new choice about sleep at once.
      if (name === 'allowSleep' && state.job && state.job.running && state.job.id != null) {
        call('set_allow_sleep', { job: state.job.id, allowed: !!value }).catch(() => {});
      }
      // A running job takes a new speed limit at once.
      if (name === 'limitMbps' && state.job && state.job.running && state.job.id != null) {
        call('set_rate_limit', { job: state.job.id, limitMbps: state.limitMbps }).catch(() => {});
      }
      if (name === 'baseUrl' || name === 'org') {
        state.demo = false;
        state.connStatus = { text: '', tone: '' };
        credentialsSoon();
      }
      if (name === 'ids') validateSoon();
      saveSettings();
      changed();
    },
    async checkConnection(token, proxyPassword) {
      state.connStatus = { text: 'Checking…', tone: '' };
      changed();
      await writeSettings();
      if (!(await takeToken(token)) || !(await takeProxyPassword(proxyPassword))) { changed(); return; }
      try {
        const r = await call('check_connection', { baseUrl: state.baseUrl, org: state.org, network: network() });
        state.connStatus = { text: r.message, tone: 'ok' };
      } catch (e) {
        state.connStatus = { text: errorText(e), tone: 'bad' };
      }
      changed();
    },
    async diagnose(token, proxyPassword) {
      state.connStatus = { text: 'Checking each layer…', tone: '' };
      state.diagnosis = null;
      changed();
      await writeSettings();
      if (!(await takeToken(token)) || !(await takeProxyPassword(proxyPassword))) { changed(); return; }
      try {
        const lines = await call('diagnose_connection', {
          baseUrl: state.baseUrl, org: state.org, network: network(), ids: state.ids,
        });
        state.diagnosis = lines;
        const bad = lines.filter((l) => !l.ok).length;
        state.connStatus = bad
          ? { text: 'A check failed: see below (safe to copy into a support ticket).', tone: 'bad' }
          : { text: 'All checks passed.', tone: 'ok' };
      } catch (e) {
        state.connStatus = { text: errorText(e), tone: 'bad' };
      }
      changed();
    },
    async forgetToken() {
      try {
        await call('forget_token', { baseUrl: state.baseUrl, org: state.org });
        state.connStatus = { text: 'The saved token was removed from the keychain.', tone: 'ok' };
      } catch (e) {
        state.connStatus = { text: errorText(e), tone: 'bad' };
      }
      await refreshCredentials();
    },
    async importIds() {
      const path = await tauri().dialog.open({
        multiple: false, directory: false,
        filters: [{ name: 'File IDs', extensions: ['txt', 'csv', 'tsv'] }],
      });
      if (!path) return;
      try {
        actions.setField('ids', await call('read_id_file', { path }));
      } catch (e) {
        state.job = { ...newJob(state.dest, Date.now()), running: false, error: { kind: errorKind(e), message: errorText(e) } };
        changed();
      }
    },
    async browse() {
      const path = await tauri().dialog.open({ directory: true, multiple: false, defaultPath: state.dest || undefined });
      if (path) actions.setField('dest', path);
    },
    async start(token, ids, proxyPassword) {
      if (state.job && state.job.running) return;
      // An empty search would be every file of the org: never by accident.
      if (ids === undefined && state.source === 'search' && isEmpty(state.search)) {
        state.preview = { text: 'Give at least one filter, or an EQL search.', tone: 'bad', busy: false };
        changed();
        return;
      }
      if (ids !== undefined) actions.setField('ids', ids);
      const job = newJob(state.dest, Date.now());
      state.job = job;
      changed();
      await writeSettings();
      if (!(await takeToken(token))) {
        job.running = false;
        job.error = { kind: 'auth', message: state.connStatus.text };
        changed();
        return;
      }
      if (!(await takeProxyPassword(proxyPassword))) {
        job.running = false;
        job.error = { kind: 'keychain', message: state.connStatus.text };
        changed();
        return;
      }
      await begin(job, 'start_job', {
        request: {
          baseUrl: state.baseUrl, org: state.org, ids: state.ids, dest: state.dest,
          layout: state.layout, concurrency: Number(state.concurrency) || null,
          network: network(), allowSleep: state.allowSleep, limitMbps: state.limitMbps,
          search: state.source === 'search' ? toRequest(state.search) : null,
        },
      });
    },
    setSource(source) {
      state.source = source === 'search' ? 'search' : 'ids';
      changed();
    },
    setSearch(name, value) {
      state.search = { ...state.search, [name]: value };
      state.preview = { text: '', tone: '', busy: false };
      changed();
    },
    // A TDP search page's address fills the form; what does not map is listed.
    applySearchUrl(text) {
      if (!text.trim()) {
        state.searchUrlNote = { text: '', tone: '' };
        changed();
        return;
      }
      const r = fromTdpUrl(text, state.search);
      if (r.error) {
        state.searchUrlNote = { text: r.error, tone: 'bad' };
      } else {
        state.search = r.search;
        state.preview = { text: '', tone: '', busy: false };
        state.searchUrlNote = r.unmapped.length
          ? { text: `Filled the form. Not used (no such filter here): ${r.unmapped.join(', ')}`, tone: 'warn' }
          : { text: 'Filled the form from the address.', tone: 'ok' };
      }
      changed();
    },
    // Pages through the search in Rust and shows "1,234 files, 56.7 GiB, 12 already in this folder".
    async previewSearch(token, proxyPassword) {
      if (isEmpty(state.search)) {
        state.preview = { text: 'Give at least one filter, or an EQL search.', tone: 'bad', busy: false };
        changed();
        return;
      }
      state.preview = { text: 'Searching…', tone: '', busy: true };
      changed();
      if (!(await takeToken(token)) || !(await takeProxyPassword(proxyPassword))) {
        state.preview = { text: state.connStatus.text, tone: 'bad', busy: false };
        changed();
        return;
      }
      try {
        const p = await call('preview_search', {
          request: {
            baseUrl: state.baseUrl, org: state.org, dest: state.dest,
            search: toRequest(state.search), network: network(),
          },
        });
        state.preview = { text: p.line, tone: 'ok', busy: false, result: p };
      } catch (e) {
        state.preview = { text: errorText(e), tone: 'bad', busy: false };
      }
      changed();
    },
    // The job of a folder in the Jobs view, again: it goes on where it stopped.
    async resumeJob(dest) {
      if (state.job && state.job.running) return;
      const job = newJob(state.dest, Date.now());
      job.dest = dest;
      state.job = job;
      changed();
      await begin(job, 'resume_job', { path: dest });
    },
    async refreshJobs() {
      try {
        state.jobs = await call('list_jobs');
      } catch (e) {
        state.jobsStatus = { text: errorText(e), tone: 'bad' };
      }
      changed();
    },
    async addJobFolder(path) {
      try {
        await call('add_job_folder', { path });
        state.jobsStatus = { text: '', tone: '' };
      } catch (e) {
        state.jobsStatus = { text: errorText(e), tone: 'bad' };
      }
      await actions.refreshJobs();
    },
    async forgetJob(path) {
      await call('forget_job', { path }).catch(() => {});
      await actions.refreshJobs();
    },
    async togglePause() {
      const job = state.job;
      if (!job || job.id == null || !job.running) return;
      await call('pause_job', { job: job.id, paused: !job.paused });
    },
    // The new token goes to Rust, which checks it with TDP before the job takes it; it never
    // comes back to the page.
    async renewToken(token, remember) {
      const job = state.job;
      if (!job || job.id == null) return;
      job.renewStatus = { text: 'Checking the new token with TDP…', tone: '' };
      changed();
      try {
        const r = await call('renew_token', { job: job.id, token, remember: remember && state.cred.keychainAvailable });
        job.renewStatus = { text: `${r.message}. Continuing…`, tone: 'ok' };
      } catch (e) {
        job.renewStatus = { text: errorText(e), tone: 'bad' };
      }
      changed();
      refreshCredentials();
    },
    async cancel() {
      if (state.job && state.job.id != null) await call('cancel_job', { job: state.job.id });
    },
    async retryFailed() {
      if (!state.job) return;
      const failed = state.job.order.filter((r) => r.state === 'failed').map((r) => r.id);
      if (failed.length) await actions.start('', failed.join('\n'));
    },
    setFilter(filter) {
      state.list.filter = filter;
      changed();
    },
    setFind(text) {
      state.list.find = text;
      changed();
    },
    // A column's first press sorts up, the next down, the third back to input order.
    sortBy(key) {
      const s = state.list.sort;
      state.list.sort = s.key !== key ? { key, dir: 1 } : s.dir === 1 ? { key, dir: -1 } : { key: null, dir: 1 };
      changed();
    },
    select(id) {
      state.list.selected = id;
      changed();
    },
    async exportFailed() {
      const job = state.job;
      if (!job) return;
      const ids = job.order.filter((r) => r.state === 'failed').map((r) => r.id);
      try {
        const path = await call('export_failed', { dest: job.dest, ids });
        state.list.status = { text: `Saved ${ids.length} failed ${ids.length === 1 ? 'ID' : 'IDs'} to ${path}: paste or import it to try them again.`, tone: 'ok' };
      } catch (e) {
        state.list.status = { text: errorText(e), tone: 'bad' };
      }
      changed();
    },
    async copy(text, what) {
      try {
        await navigator.clipboard.writeText(text);
        state.list.status = { text: `${what} copied.`, tone: 'ok' };
      } catch (e) {
        state.list.status = { text: `Could not copy: ${errorText(e)}`, tone: 'bad' };
      }
      changed();
    },
    async showInFolder(id) {
      const job = state.job;
      const r = job && job.files.get(id);
      if (!r || !r.name) return;
      try {
        await call('show_in_folder', { dest: job.dest, path: r.name });
      } catch (e) {
        state.list.status = { text: errorText(e), tone: 'bad' };
        changed();
      }
    },
    async openFolder() {
      const dest = (state.job && state.job.dest) || state.dest;
      try { await call('open_folder', { path: dest }); } catch (e) { /* nothing to open */ }
    },
    async startDemo() {
      state.connStatus = { text: 'Starting the demo server…', tone: '' };
      changed();
      try {
        const d = await call('start_demo');
        Object.assign(state, { baseUrl: d.baseUrl, org: d.org, ids: d.ids, dest: d.dest });
        // The demo's files carry tags: a search to try on the Search tab.
        state.search = { ...emptySearch(), category: 'RAW', tags: 'hplc' };
        ['baseUrl', 'org', 'ids', 'dest'].forEach((k) => touched.add(k));
        state.demo = true;
        state.connStatus = {
          text: 'Demo server running on this computer; its token is used for this session only.',
          tone: 'ok',
        };
        validateSoon();
        await refreshCredentials();
      } catch (e) {
        state.connStatus = { text: errorText(e), tone: 'bad' };
      }
      changed();
    },
  };

  return {
    state,
    actions,
    subscribe(fn) { listeners.push(fn); },
  };
}
