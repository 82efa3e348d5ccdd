// The overview table's logic: filtering, sorting, paging and the source -> campaign -> adset
// levels. Rows are the API's rows as they came (one request per level, so every figure on a
// level is the server's own, never summed in the browser).

export const LEVELS = [
  { id: 'source', label: 'Source', dims: ['source'] },
  { id: 'campaign', label: 'Source › Campaign', dims: ['source', 'campaign'] },
  { id: 'adset', label: 'Source › Campaign › Ad set', dims: ['source', 'campaign', 'adset'] },
];

export function levelDims(id) {
  return (LEVELS.find((l) => l.id === id) || LEVELS[0]).dims;
}

/**
 * Rows whose dimension values contain every word of `query` (case-insensitive), and that
 * match the exact `scope` ({source: 'meta'}) when given.
 */
export function filterRows(rows, dims, query, scope = {}) {
  const words = (query || '').toLowerCase().split(/\s+/).filter(Boolean);
  return rows.filter((r) => {
    for (const [k, v] of Object.entries(scope)) {
      if (v != null && r[k] !== v) return false;
    }
    if (words.length === 0) return true;
    const hay = dims.map((d) => displayDim(r[d])).join(' ').toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

/** How an empty dimension value is shown (the API's "" group: organic or untracked). */
export function displayDim(v) {
  return v === '' || v == null ? '(none)' : String(v);
}

/**
 * Sorts a copy of rows by key: numbers numerically, nulls last in both directions, strings by
 * locale; ties keep their order (stable).
 */
export function sortRows(rows, key, dir = 'desc') {
  const sign = dir === 'asc' ? 1 : -1;
  return rows
    .map((r, i) => [r, i])
    .sort((a, b) => {
      const x = a[0][key];
      const y = b[0][key];
      const xn = x == null || (typeof x === 'number' && !Number.isFinite(x));
      const yn = y == null || (typeof y === 'number' && !Number.isFinite(y));
      if (xn || yn) return xn && yn ? a[1] - b[1] : xn ? 1 : -1;
      let c;
      if (typeof x === 'number' && typeof y === 'number') c = x - y;
      else c = String(x).localeCompare(String(y));
      return c !== 0 ? sign * c : a[1] - b[1];
    })
    .map((p) => p[0]);
}

/** Clicking a header: the same key flips the direction; another key starts descending for
 * numbers and ascending for dimensions. */
export function nextSort(cur, key, isDim) {
  if (cur.key === key) return { key, dir: cur.dir === 'asc' ? 'desc' : 'asc' };
  return { key, dir: isDim ? 'asc' : 'desc' };
}

/** One page of rows (page from 0) and the page count. */
export function paginate(rows, page, size) {
  const pages = Math.max(1, Math.ceil(rows.length / size));
  const p = Math.min(Math.max(0, page), pages - 1);
  return { rows: rows.slice(p * size, p * size + size), page: p, pages };
}
