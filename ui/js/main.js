// Wires the page to the store: user input becomes actions, state changes become a render.

import { createStore } from './store.js';
import { render } from './render.js';
import { createFileList } from './filelist.js';
import { syncTaskbar } from './taskbar.js';

const hooks = {};
for (const el of document.querySelectorAll('[data-hook]')) hooks[el.dataset.hook] = el;

const store = createStore();
const { actions } = store;
const fileList = createFileList(hooks.viewport, hooks.spacer, (id) => actions.select(id));

const fields = { 'base-url': 'baseUrl', org: 'org', ids: 'ids', dest: 'dest', layout: 'layout', concurrency: 'concurrency', proxy: 'proxy', 'ca-cert': 'caCert', limit: 'limitMbps' };
for (const [hook, name] of Object.entries(fields)) {
  // 'input' as people type, 'change' for edits that fire no input event (e.g. a cleared field).
  for (const ev of ['input', 'change']) {
    hooks[hook].addEventListener(ev, (e) => {
      if (store.state[name] !== e.target.value) actions.setField(name, e.target.value);
    });
  }
}
// Files: the two tabs, with arrow keys between them as a tab list has.
for (const tab of [hooks['tab-ids'], hooks['tab-search']]) {
  tab.addEventListener('click', () => actions.setSource(tab.dataset.source));
  tab.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    e.preventDefault();
    const other = tab === hooks['tab-ids'] ? hooks['tab-search'] : hooks['tab-ids'];
    actions.setSource(other.dataset.source);
    other.focus();
  });
}
const searchFields = { 's-category': 'category', 's-source-type': 'sourceType', 's-tags': 'tags', 's-metadata': 'metadata', 's-from': 'from', 's-to': 'to', 's-eql': 'eql' };
for (const [hook, name] of Object.entries(searchFields)) {
  for (const ev of ['input', 'change']) {
    hooks[hook].addEventListener(ev, (e) => {
      if (store.state.search[name] !== e.target.value) actions.setSearch(name, e.target.value);
    });
  }
}
hooks['s-outdated'].addEventListener('change', (e) => actions.setSearch('includeOutdated', e.target.checked));
hooks['search-url'].addEventListener('input', (e) => actions.applySearchUrl(e.target.value));
hooks.preview.addEventListener('click', () => actions.previewSearch(takeTypedToken(), takeProxyPassword()));
hooks.remember.addEventListener('change', (e) => actions.setRemember(e.target.checked));
hooks['allow-sleep'].addEventListener('change', (e) => actions.setField('allowSleep', e.target.checked));
hooks['keep-awake'].addEventListener('change', (e) => actions.setField('allowSleep', !e.target.checked));

function takeTypedToken() {
  const t = hooks.token.value;
  hooks.token.value = '';
  return t;
}

// The proxy password goes to the keychain with the next check or download, then the field
// is cleared, as the token's is.
function takeProxyPassword() {
  const p = hooks['proxy-password'].value;
  hooks['proxy-password'].value = '';
  return p;
}

hooks.check.addEventListener('click', () => actions.checkConnection(takeTypedToken(), takeProxyPassword()));
hooks.forget.addEventListener('click', () => actions.forgetToken());
hooks.diagnose.addEventListener('click', () => actions.diagnose(takeTypedToken(), takeProxyPassword()));
hooks.import.addEventListener('click', () => actions.importIds());
hooks.browse.addEventListener('click', () => actions.browse());
hooks.start.addEventListener('click', () => actions.start(takeTypedToken(), undefined, takeProxyPassword()));
hooks.cancel.addEventListener('click', () => actions.cancel());
hooks.pause.addEventListener('click', () => actions.togglePause());
hooks.renew.addEventListener('submit', (e) => {
  e.preventDefault();
  const t = hooks['renew-token'].value;
  hooks['renew-token'].value = '';
  actions.renewToken(t, hooks['renew-remember'].checked);
});
hooks.retry.addEventListener('click', () => actions.retryFailed());
hooks.open.addEventListener('click', () => actions.openFolder());
hooks.demo.addEventListener('click', () => actions.startDemo());
hooks['error-browse'].addEventListener('click', () => actions.browse());
for (const chip of hooks.chips.children) {
  chip.addEventListener('click', () => actions.setFilter(chip.dataset.filter));
}
for (const b of hooks.sorts.querySelectorAll('button')) {
  b.addEventListener('click', () => actions.sortBy(b.dataset.key));
}
hooks.find.addEventListener('input', (e) => actions.setFind(e.target.value));
hooks.jobs.addEventListener('click', (e) => {
  const button = e.target.closest('button');
  const li = e.target.closest('li');
  if (!button || !li) return;
  if (button.dataset.action === 'resume') actions.resumeJob(li.dataset.dest);
  if (button.dataset.action === 'forget') actions.forgetJob(li.dataset.dest);
});
hooks['offer-resume'].addEventListener('click', () => actions.resumeJob(hooks.offer.dataset.dest));
hooks['add-job'].addEventListener('click', () => {
  const path = hooks['job-folder'].value.trim();
  if (path) actions.addJobFolder(path).then(() => { hooks['job-folder'].value = ''; });
});
hooks['export-failed'].addEventListener('click', () => actions.exportFailed());
const selectedRow = () => store.state.job && store.state.job.files.get(store.state.list.selected);
hooks['show-in-folder'].addEventListener('click', () => actions.showInFolder(store.state.list.selected));
hooks['copy-id'].addEventListener('click', () => {
  const r = selectedRow();
  if (r) actions.copy(r.id, 'File ID');
});
hooks['copy-error'].addEventListener('click', () => {
  const r = selectedRow();
  if (r) actions.copy(r.reason, 'Error');
});

store.subscribe((state) => render(hooks, state, fileList));
store.subscribe(syncTaskbar);
actions.init().then(() => {
  // For people nothing changes; tests wait for it before they type.
  document.body.dataset.ready = 'true';
}).catch((e) => {
  hooks.error.hidden = false;
  hooks.error.textContent = `The app could not start: ${(e && e.message) || e}`;
});
