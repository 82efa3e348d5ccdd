// CSV both ways (RFC 4180): writing the table the user sees, and reading a cost file to import
// (docs/costs.md: the columns in any order, adset/ad/country optional, a BOM skipped, blank
// lines skipped, CRLF or LF).

/** One field, quoted when it holds a comma, quote, CR or LF; cells starting with =, +, -, @, a tab
 * or a CR get a leading apostrophe so a spreadsheet does not run them as formulas (names come from
 * ad clicks), and so do cells starting with an apostrophe, so that unguard gives them back whole.
 * Numbers are written as JavaScript prints them. */
export function csvField(v) {
  if (v == null) return '';
  let s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  if (typeof v !== 'number' && /^[=+\-@\t\r']/.test(s)) s = `'${s}`;
  if (/[",\r\n]/.test(s)) s = `"${s.replace(/"/g, '""')}"`;
  return s;
}

/** columns: [{key, label}]; rows: objects. CRLF line ends, as the API's own CSV. */
export function toCsv(columns, rows) {
  const lines = [columns.map((c) => csvField(c.label ?? c.key)).join(',')];
  for (const r of rows) lines.push(columns.map((c) => csvField(r[c.key])).join(','));
  return lines.join('\r\n') + '\r\n';
}

/**
 * Parses CSV text into records: [{line, fields}] where line is the 1-based line the record
 * starts on. Throws {line, message} on an unterminated quote or a stray quote.
 */
export function parseCsv(text) {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const out = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  while (i < n) {
    const start = line;
    const fields = [];
    let field = '';
    let quoted = false;
    let atStart = true;
    for (;;) {
      if (i >= n) {
        if (quoted) throw { line: start, message: 'a quoted field is not closed' };
        fields.push(field);
        break;
      }
      const c = text[i];
      if (quoted) {
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else {
            quoted = false;
            i++;
            if (i < n && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n') {
              throw { line, message: 'text after a closing quote' };
            }
          }
        } else {
          if (c === '\n') line++;
          field += c;
          i++;
        }
        continue;
      }
      if (c === '"' && atStart) {
        quoted = true;
        atStart = false;
        i++;
      } else if (c === '"') {
        throw { line, message: 'a quote inside an unquoted field' };
      } else if (c === ',') {
        fields.push(field);
        field = '';
        atStart = true;
        i++;
      } else if (c === '\r' || c === '\n') {
        fields.push(field);
        i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
        line++;
        break;
      } else {
        field += c;
        atStart = false;
        i++;
      }
    }
    if (!(fields.length === 1 && fields[0] === '')) out.push({ line: start, fields });
  }
  return out;
}

// micros: optional, as GET /v1/costs?format=csv writes it; when given it must be the cost in millionths.
export const COST_COLUMNS = ['date', 'source', 'campaign', 'adset', 'ad', 'country', 'cost', 'currency', 'micros'];
const COST_REQUIRED = ['date', 'source', 'campaign', 'cost', 'currency'];

/**
 * A cost CSV file -> {rows, lines, errors}: rows in the POST /v1/costs form, lines[i] the file
 * line of rows[i], errors [{line, field, message}] for lines that cannot be sent at all (the
 * server checks every value again and answers per row). A bad header is one error at line 1
 * and no rows.
 */
export function parseCostCsv(text) {
  let recs;
  try {
    recs = parseCsv(text);
  } catch (e) {
    return { rows: [], lines: [], errors: [{ line: e.line, field: null, message: e.message }] };
  }
  if (recs.length === 0) {
    return { rows: [], lines: [], errors: [{ line: 1, field: null, message: 'the file is empty' }] };
  }
  const header = recs[0].fields.map((h) => h.trim().toLowerCase());
  const seen = new Set();
  for (const h of header) {
    if (!COST_COLUMNS.includes(h)) {
      return { rows: [], lines: [], errors: [{ line: 1, field: h, message: `unknown column "${h}"` }] };
    }
    if (seen.has(h)) {
      return { rows: [], lines: [], errors: [{ line: 1, field: h, message: `column "${h}" appears twice` }] };
    }
    seen.add(h);
  }
  for (const r of COST_REQUIRED) {
    if (!seen.has(r)) {
      return { rows: [], lines: [], errors: [{ line: 1, field: r, message: `the column "${r}" is missing` }] };
    }
  }
  const rows = [];
  const lines = [];
  const errors = [];
  for (const rec of recs.slice(1)) {
    if (rec.fields.length !== header.length) {
      errors.push({
        line: rec.line,
        field: null,
        message: `${rec.fields.length} fields where the header has ${header.length}`,
      });
      continue;
    }
    const row = {};
    header.forEach((h, k) => {
      row[h] = rec.fields[k];
    });
    const cost = row.cost.trim();
    if (!/^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(cost)) {
      errors.push({ line: rec.line, field: 'cost', message: 'must be a plain non-negative number' });
      continue;
    }
    const micros = row.micros ?? '';
    if (micros !== '' && (!/^\d{1,19}$/.test(micros) || BigInt(micros) !== decimalMicros(cost))) {
      errors.push({ line: rec.line, field: 'micros', message: 'must be the cost in millionths, as the export writes it' });
      continue;
    }
    const out = {
      date: row.date,
      source: unguard(row.source),
      campaign: unguard(row.campaign),
      cost: Number(cost),
      currency: row.currency,
    };
    for (const k of ['adset', 'ad', 'country']) if (row[k] !== undefined && row[k] !== '') out[k] = unguard(row[k]);
    rows.push(out);
    lines.push(rec.line);
  }
  return { rows, lines, errors };
}

/** A plain decimal (digits, an optional fraction and exponent) in millionths, rounded half up, from its
 * digits (a double cannot hold every millionth above about 4e9), as the server counts it; null when it is
 * far too large. */
export function decimalMicros(text) {
  const m = /^(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return null;
  const digits = (m[1] || '') + (m[2] || '');
  const pos = (m[1] || '').length + Number(m[3] || 0) + 6; // digits before the millionths' point
  if (pos > 40) return null;
  let v = pos > 0 ? BigInt(digits.slice(0, pos).padEnd(pos, '0') || '0') : 0n;
  if (pos >= 0 && (digits[pos] ?? '0') >= '5') v += 1n;
  return v;
}

/** A name as it was before csvField's formula guard: the apostrophe before =, +, -, @, tab, CR or
 * another apostrophe dropped (GET /v1/costs?format=csv writes names so; importing its file gives
 * the same names). */
export function unguard(s) {
  return /^'[=+\-@\t\r']/.test(s) ? s.slice(1) : s;
}

/** Splits rows into batches of at most n rows and at most maxBytes of JSON each (POST /v1/costs takes
 * 10,000 rows and the server 1 MiB a body; long ad names reach that well before 10,000 rows). */
export function batches(rows, n, maxBytes = 900 * 1024) {
  const out = [];
  let cur = [];
  let bytes = 16; // {"costs":[...]}
  for (const r of rows) {
    const size = new TextEncoder().encode(JSON.stringify(r)).length + 1;
    if (cur.length && (cur.length >= n || bytes + size > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 16;
    }
    cur.push(r);
    bytes += size;
  }
  if (cur.length) out.push(cur);
  return out;
}
