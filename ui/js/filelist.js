// A virtual list: however many files a job has, only the rows in view exist in the DOM. It is
// a listbox: arrows, Page Up/Down, Home and End move the selection; the selected row is the
// list's active descendant, so a screen reader reads it.

import { fraction, sizeLabel, speedLabel, stateLabel } from './transfers.js';

const ROW = 24;
const SPARE = 8;

export function createFileList(viewport, spacer, onSelect) {
  const pool = [];
  let rows = [];
  let selected = null;

  function rowEl(i) {
    if (!pool[i]) {
      const el = document.createElement('div');
      el.className = 'filerow';
      el.dataset.hook = 'file-row';
      el.setAttribute('role', 'option');
      for (const c of ['name', 'size', 'pct', 'state', 'speed']) {
        const span = document.createElement('span');
        span.className = c;
        el.append(span);
      }
      el.addEventListener('click', () => onSelect(el.dataset.fileId));
      spacer.append(el);
      pool[i] = el;
    }
    return pool[i];
  }

  function set(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function draw() {
    spacer.style.height = `${rows.length * ROW}px`;
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW) - SPARE);
    const count = Math.ceil(viewport.clientHeight / ROW) + 2 * SPARE;
    const last = Math.min(rows.length, first + count);
    let used = 0;
    let active = '';
    for (let i = first; i < last; i += 1) {
      const r = rows[i];
      const el = rowEl(used);
      el.hidden = false;
      el.style.top = `${i * ROW}px`;
      el.id = `file-${r.id}`;
      el.dataset.fileId = r.id;
      el.dataset.state = r.state;
      el.dataset.size = r.size == null ? '' : String(r.size);
      const isSelected = r.id === selected;
      el.setAttribute('aria-selected', String(isSelected));
      if (isSelected) active = el.id;
      const [name, size, pct, state, speed] = el.children;
      set(name, r.name || r.id);
      name.title = r.name ? `${r.name} (${r.id})` : r.id;
      set(size, sizeLabel(r));
      set(pct, r.size || r.state === 'done' || r.state === 'skipped' ? `${Math.floor(100 * fraction(r))}%` : '');
      const label = stateLabel(r);
      set(state, label);
      state.title = label;
      state.className = `state ${r.state}`;
      set(speed, speedLabel(r));
      used += 1;
    }
    for (let i = used; i < pool.length; i += 1) {
      pool[i].hidden = true;
      pool[i].removeAttribute('id');
    }
    if (active) viewport.setAttribute('aria-activedescendant', active);
    else viewport.removeAttribute('aria-activedescendant');
  }

  // Keeps row `i` in view.
  function reveal(i) {
    const top = i * ROW;
    if (top < viewport.scrollTop) viewport.scrollTop = top;
    else if (top + ROW > viewport.scrollTop + viewport.clientHeight) viewport.scrollTop = top + ROW - viewport.clientHeight;
  }

  viewport.addEventListener('scroll', () => requestAnimationFrame(draw));
  viewport.addEventListener('keydown', (e) => {
    if (!rows.length) return;
    const at = rows.findIndex((r) => r.id === selected);
    const page = Math.max(1, Math.floor(viewport.clientHeight / ROW) - 1);
    const moves = {
      ArrowDown: at + 1, ArrowUp: at - 1, PageDown: at + page, PageUp: at - page, Home: 0, End: rows.length - 1,
    };
    if (!(e.key in moves)) return;
    e.preventDefault();
    const next = Math.min(rows.length - 1, Math.max(0, at < 0 ? 0 : moves[e.key]));
    reveal(next);
    onSelect(rows[next].id);
  });

  return {
    show(list, selectedId) {
      rows = list;
      selected = selectedId;
      draw();
    },
  };
}
