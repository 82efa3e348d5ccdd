// Report requests the pages share. Every figure shown comes from one of these answers as it is.
import { qs, ApiError } from './api.js';

// Whether to ask for the rejected_installs metric (the fraud work added it to the overview).
// A server that does not know it answers 400 naming metrics once; the page then asks without
// it for the rest of the session and shows the tile as "—".
const ASK_REJECTED = true;
let rejectedKnown = ASK_REJECTED ? null : false;

/**
 * GET /v1/reports/overview. When `rejected` is set, asks for rejected_installs too and falls back
 * without it on a server that does not know that metric yet (400 naming metrics).
 */
export async function overview(api, p, { rejected = true } = {}) {
  let metrics = p.metrics;
  const want = rejected && rejectedKnown !== false;
  if (want) metrics = `${metrics},rejected_installs`;
  try {
    const j = await api.get(`/v1/reports/overview?${qs({ ...p, metrics })}`);
    if (want) rejectedKnown = true;
    return j;
  } catch (e) {
    if (want && e instanceof ApiError && e.status === 400 && e.field === 'metrics' && /rejected_installs/.test(e.message)) {
      rejectedKnown = false;
      return api.get(`/v1/reports/overview?${qs({ ...p, metrics: p.metrics })}`);
    }
    throw e;
  }
}

export const TABLE_METRICS = 'impressions,clicks,installs,organic_installs,cost,cpi,revenue,roas';
// The table with credit=re_engagement: re-engaged devices' activity under the retargeting click.
export const REENG_TABLE_METRICS = 're_engagements,clicks,sessions,active_devices,cost,revenue,roas';
export const TILE_METRICS = 'installs,organic_installs,cost,revenue,roas';
export const SERIES_METRICS = 'installs,organic_installs,cost,revenue';

/** The tiles' figures from an overview answer's totals (group_by= : one row). */
export function tiles(t) {
  if (!t) return null;
  const inst = t.installs ?? null;
  const org = t.organic_installs ?? null;
  const all = inst !== null && org !== null ? inst + org : null;
  return {
    installs: all,
    attributed: inst,
    organic: org,
    organic_share: all ? org / all : null,
    cost: t.cost ?? null,
    revenue: t.revenue ?? null,
    roas: t.roas ?? null,
    rejected_installs: typeof t.rejected_installs === 'number' ? t.rejected_installs : null,
    // Amounts in currencies without a rate are left out of revenue and cost (docs/reports.md).
    revenue_unconverted: unconverted(t.revenue_unconverted),
    cost_unconverted: unconverted(t.cost_unconverted),
  };
}

/** {"EUR": 4.99} -> "4.99 EUR"; '' when there is none. */
export function unconverted(o) {
  if (!o || typeof o !== 'object') return '';
  return Object.entries(o)
    .filter(([, v]) => typeof v === 'number' && v !== 0)
    .map(([c, v]) => `${v} ${c}`)
    .join(', ');
}
