// A virtual list: however many files a job has, only the rows in view exist in the DOM.

const ROW = 24;
const SPARE = 8;

export function createFileList(viewport, spacer) {
  const pool = [];
  let rows = [];

  function rowEl(i) {
    if (!pool[i]) {
      const el = document.createElement('div');
      el.className = 'filerow';
      el.dataset.hook = 'file-row';
      const name = document.createElement('span');
      name.className = 'name';
      const state = document.createElement('span');
      state.className = 'state';
      el.append(name, state);
      spacer.append(el);
      pool[i] = el;
    }
    return pool[i];
  }

  function draw() {
    spacer.style.height = `${rows.length * ROW}px`;
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW) - SPARE);
    const count = Math.ceil(viewport.clientHeight / ROW) + 2 * SPARE;
    const last = Math.min(rows.length, first + count);
    let used = 0;
    for (let i = first; i < last; i += 1) {
      const r = rows[i];
      const el = rowEl(used);
      el.hidden = false;
      el.style.top = `${i * ROW}px`;
      el.dataset.fileId = r.id;
      el.dataset.state = r.state;
      el.children[0].textContent = r.name || r.id;
      el.children[0].title = r.name ? `${r.name} (${r.id})` : r.id;
      el.children[1].textContent = r.label;
      el.children[1].title = r.label;
      el.children[1].className = `state ${r.state}`;
      used += 1;
    }
    for (let i = used; i < pool.length; i += 1) pool[i].hidden = true;
  }

  viewport.addEventListener('scroll', () => requestAnimationFrame(draw));
  return {
    show(list) { rows = list; draw(); },
  };
}
