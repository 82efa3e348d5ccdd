// The fraud report and fraud settings shapes, in one place (GET /v1/reports/fraud,
// GET/PUT /v1/apps/{id}/fraud, docs/fraud.md). Missing members read as null, never as 0.

const COUNTERS = [
  'rejected_clicks', 'rejected_impressions', 'rejected_installs', 'rejected_events', 'flagged_clicks',
  'flagged_installs', 'flagged_events', 'installs', 'clicks', 'install_rejection_rate', 'click_rejection_rate',
];

function num(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function counters(o) {
  const out = {};
  for (const k of COUNTERS) out[k] = num(o?.[k]);
  return out;
}

/** CTIT bucket labels from the bounds in seconds: <10s, 10s–1m, ..., ≥7d. */
export function ctitLabels(bounds) {
  const f = (s) =>
    s % 86400 === 0 ? `${s / 86400}d` : s % 3600 === 0 ? `${s / 3600}h` : s % 60 === 0 ? `${s / 60}m` : `${s}s`;
  const out = [];
  for (let i = 0; i <= bounds.length; i++) {
    if (i === 0) out.push(`<${f(bounds[0])}`);
    else if (i === bounds.length) out.push(`≥${f(bounds[i - 1])}`);
    else out.push(`${f(bounds[i - 1])}–${f(bounds[i])}`);
  }
  return out;
}

/** The fraud report answer -> {rows, totals, ctit: {bounds, labels, rows}, model}. */
export function parseFraudReport(j) {
  const rows = Array.isArray(j?.rows)
    ? j.rows.map((r) => ({ source: r.source ?? null, site: r.site ?? null, reason: r.reason ?? null, ...counters(r) }))
    : [];
  const bounds = Array.isArray(j?.ctit?.bounds_s) ? j.ctit.bounds_s.filter((x) => typeof x === 'number') : [];
  const ctitRows = Array.isArray(j?.ctit?.rows)
    ? j.ctit.rows.map((r) => ({ source: r.source ?? '', counts: Array.isArray(r.counts) ? r.counts.map((c) => num(c) ?? 0) : [] }))
    : [];
  const m = j?.model;
  const model = m
    ? {
        mode: m.mode ?? 'off',
        threshold: num(m.threshold),
        bounds: Array.isArray(m.bounds) ? m.bounds : [],
        counts: Array.isArray(m.counts) ? m.counts : [],
        scored: num(m.scored),
        over_threshold: num(m.over_threshold),
        // named rule_rejected_and_over in the first announcement of the shape
        over_and_rejected_by_rules: num(m.over_and_rejected_by_rules ?? m.rule_rejected_and_over),
        under_and_rejected_by_rules: num(m.under_and_rejected_by_rules),
      }
    : null;
  return {
    rows,
    totals: counters(j?.totals),
    ctit: { bounds, labels: bounds.length ? ctitLabels(bounds) : [], rows: ctitRows },
    model,
  };
}

/** Sums counters of rows by one key (reason or source) for the "by reason" / "by source" views
 * when the report was asked grouped by that key alone the rows are already one per value. */
export function byKey(rows, key) {
  const m = new Map();
  for (const r of rows) {
    const k = r[key] ?? '';
    if (!m.has(k)) m.set(k, r);
  }
  return [...m.values()];
}

/** Fraud settings -> a form model: rules as [{name, fields: [{key, value, type}]}]. */
export function settingsToForm(s) {
  const rules = Object.entries(s?.rules || {}).map(([name, r]) => ({
    name,
    fields: Object.entries(r || {}).map(([key, value]) => ({
      key,
      value,
      type: typeof value === 'boolean' ? 'bool' : typeof value === 'number' ? 'number' : 'text',
    })),
  }));
  return {
    rules,
    // Only sent back when the server has it (the settings as built have no such member).
    has_require_signature: typeof s?.require_signature === 'boolean',
    require_signature: !!s?.require_signature,
    model: {
      mode: s?.model?.mode ?? 'off',
      threshold: num(s?.model?.threshold),
      shadow_sample: num(s?.model?.shadow_sample),
    },
  };
}

/** The form back to the PUT body (the full object; the endpoint takes partial ones too). */
export function formToSettings(f) {
  const rules = {};
  for (const r of f.rules) {
    rules[r.name] = {};
    for (const fl of r.fields) {
      // A cleared number is left out (unchanged), not sent as 0.
      if (fl.type === 'number' && (fl.value === null || fl.value === '' || !Number.isFinite(Number(fl.value)))) continue;
      rules[r.name][fl.key] = fl.type === 'number' ? Number(fl.value) : fl.type === 'bool' ? !!fl.value : fl.value;
    }
  }
  const model = { mode: f.model.mode };
  if (f.model.threshold !== null && f.model.threshold !== '') model.threshold = Number(f.model.threshold);
  if (f.model.shadow_sample !== null && f.model.shadow_sample !== '') model.shadow_sample = Number(f.model.shadow_sample);
  const out = { rules, model };
  if (f.has_require_signature) out.require_signature = !!f.require_signature;
  return out;
}
