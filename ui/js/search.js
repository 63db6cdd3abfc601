// A search as the form holds it, turned into what the app's Rust side takes (fileinfo
// parameters in URL-query form), and a TDP web search URL turned into the form. Pure.

export const emptySearch = () => ({
  category: '', sourceType: '', tags: '', metadata: '', from: '', to: '', eql: '', includeOutdated: false,
});

// `key = value` lines (or `key=value`), blank lines skipped.
function metadataPairs(text) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
    const at = l.indexOf('=');
    return at < 0 ? [l, ''] : [l.slice(0, at).trim(), l.slice(at + 1).trim()];
  });
}

// The form as fileinfo search parameters, e.g. `category=RAW&tags=hplc&metadata.project=P-1`.
export function toQuery(s) {
  const q = new URLSearchParams();
  if (s.category) q.append('category', s.category);
  if (s.sourceType.trim()) q.append('sourceType', s.sourceType.trim());
  for (const t of s.tags.split(',').map((x) => x.trim()).filter(Boolean)) q.append('tags', t);
  for (const [k, v] of metadataPairs(s.metadata)) q.append(`metadata.${k}`, v);
  if (s.from) q.append('fromDate', s.from);
  if (s.to) q.append('toDate', s.to);
  return q.toString();
}

// What the window sends: the EQL body when there is one, else the form's parameters.
export function toRequest(s) {
  return { query: toQuery(s), eql: s.eql.trim(), includeOutdated: s.includeOutdated };
}

export function isEmpty(s) {
  return !s.eql.trim() && toQuery(s) === '';
}

// A TDP web search URL (shareable since TDP 4.5): the parameters that map onto the form fill
// it; the others are listed, never silently dropped. The web's grammar is not published, so
// only what is clear is mapped: category, source type, tags, metadata, created-at bounds.
export function fromTdpUrl(text, current) {
  let url;
  try {
    url = new URL(text.trim());
  } catch {
    return { search: current, unmapped: [], error: 'That is not a URL: paste the address of a TDP search page.' };
  }
  const s = { ...current, category: '', sourceType: '', tags: '', metadata: '', from: '', to: '', eql: '' };
  const tags = [];
  const meta = [];
  const unmapped = [];
  // `created-at>=2025-01-01` arrives as the key `created-at>` with the value `2025-01-01`.
  for (const [rawKey, value] of url.searchParams) {
    const key = rawKey.trim();
    const k = key.toLowerCase();
    if (k === 'category') s.category = value.toUpperCase();
    else if (k === 'sourcetype' || k === 'source.type' || k === 'source-type') s.sourceType = value;
    else if (k === 'tags' || k === 'tag') tags.push(...value.split(',').map((t) => t.trim()).filter(Boolean));
    else if (k.startsWith('metadata.')) meta.push(`${key.slice(9)} = ${value}`);
    else if (/^(created-?at|createdat)>$/.test(k) || k === 'fromdate') s.from = value.slice(0, 10);
    else if (/^(created-?at|createdat)<$/.test(k) || k === 'todate') s.to = value.slice(0, 10);
    else unmapped.push(value === '' ? key : `${key}=${value}`);
  }
  s.tags = tags.join(', ');
  s.metadata = meta.join('\n');
  return { search: s, unmapped, error: '' };
}
