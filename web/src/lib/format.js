// Number, money, percent and change formatting for tiles and tables. Pure: no DOM, no state.
// Values come straight from the API; formatting never rounds a figure that is shown as exact
// (tables show counters in full and amounts with the currency's usual decimals).

export const DASH = '—';

export function isNum(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

/** 12345 -> "12,345"; null/undefined -> "—". */
export function fmtInt(v) {
  if (!isNum(v)) return DASH;
  return Math.round(v).toLocaleString('en-US');
}

/** An amount in a currency: 1234.5, "EUR" -> "€1,234.50". */
export function fmtMoney(v, currency = 'USD') {
  if (!isNum(v)) return DASH;
  try {
    return new Intl.NumberFormat('en-US', {
      style: 'currency',
      currency,
      minimumFractionDigits: 2,
      maximumFractionDigits: 2,
    }).format(v);
  } catch {
    return `${v.toFixed(2)} ${currency}`;
  }
}

/** A ratio as a percentage: 0.4567 -> "45.7%" (digits after the point). */
export function fmtPct(v, digits = 1) {
  if (!isNum(v)) return DASH;
  return `${(v * 100).toFixed(digits)}%`;
}

/** ROAS is revenue over cost: 1.234 -> "1.23×" (also shown as a percentage by some tools). */
export function fmtRatio(v, digits = 2) {
  if (!isNum(v)) return DASH;
  return `${v.toFixed(digits)}×`;
}

/** A plain decimal with at most `digits` decimals, no grouping: for credits and shares. */
export function fmtDec(v, digits = 2) {
  if (!isNum(v)) return DASH;
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/**
 * The change of a figure against the previous period: {ratio, text, dir}. ratio is
 * (cur - prev) / prev; null when either is missing or prev is 0 (no base to compare to).
 */
export function change(cur, prev) {
  if (!isNum(cur) || !isNum(prev) || prev === 0) {
    return { ratio: null, text: DASH, dir: 'flat' };
  }
  const ratio = (cur - prev) / Math.abs(prev);
  const dir = ratio > 0.0005 ? 'up' : ratio < -0.0005 ? 'down' : 'flat';
  const sign = ratio > 0 ? '+' : '';
  return { ratio, text: `${sign}${(ratio * 100).toFixed(1)}%`, dir };
}

/** Formats a metric value by its kind (see METRIC_KIND). */
export function fmtMetric(name, v, currency) {
  switch (METRIC_KIND[name]) {
    case 'money':
      return fmtMoney(v, currency);
    case 'pct':
      return fmtPct(v, 2);
    case 'ratio':
      return fmtRatio(v);
    case 'int':
      return fmtInt(v);
    default:
      return isNum(v) ? String(v) : DASH;
  }
}

export const METRIC_KIND = {
  installs: 'int',
  organic_installs: 'int',
  clicks: 'int',
  impressions: 'int',
  sessions: 'int',
  reinstalls: 'int',
  re_engagements: 'int',
  rejected_installs: 'int',
  active_devices: 'int',
  paying_devices: 'int',
  revenue: 'money',
  cost: 'money',
  cpi: 'money',
  ecpi: 'money',
  arpu: 'money',
  arppu: 'money',
  roas: 'ratio',
  ctr: 'pct',
  conversion_rate: 'pct',
};
