// Dates in the app's reporting time zone: today there, presets, the previous period of a range,
// and the UTC instant of a local midnight (for the endpoints that take instants, like MTA).
// Dates are 'YYYY-MM-DD' strings; arithmetic is on UTC calendar days, so no DST drift.

const DAY_MS = 86400000;

/** 'YYYY-MM-DD' -> days since 1970-01-01. */
export function dayNum(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || '');
  if (!m) return NaN;
  return Math.floor(Date.UTC(+m[1], +m[2] - 1, +m[3]) / DAY_MS);
}

/** days since 1970-01-01 -> 'YYYY-MM-DD'. */
export function dayStr(n) {
  return new Date(n * DAY_MS).toISOString().slice(0, 10);
}

export function addDays(s, k) {
  return dayStr(dayNum(s) + k);
}

export function isDate(s) {
  return Number.isFinite(dayNum(s)) && dayStr(dayNum(s)) === s;
}

/** Today's date in time zone tz (IANA; falls back to UTC when unknown). now: ms since epoch. */
export function todayIn(tz, now = Date.now()) {
  try {
    return new Intl.DateTimeFormat('en-CA', {
      timeZone: tz || 'UTC',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    }).format(new Date(now));
  } catch {
    return new Date(now).toISOString().slice(0, 10);
  }
}

/** Days in a range, both ends included. */
export function rangeDays(from, to) {
  return dayNum(to) - dayNum(from) + 1;
}

/** The period of the same length right before from..to. */
export function previousPeriod(from, to) {
  const n = rangeDays(from, to);
  return { from: addDays(from, -n), to: addDays(from, -1) };
}

export const PRESETS = [
  { id: 'today', label: 'Today', days: 1 },
  { id: '7d', label: 'Last 7 days', days: 7 },
  { id: '14d', label: 'Last 14 days', days: 14 },
  { id: '30d', label: 'Last 30 days', days: 30 },
  { id: '90d', label: 'Last 90 days', days: 90 },
];

/** A preset's range ending today in tz. */
export function presetRange(id, tz, now = Date.now()) {
  const p = PRESETS.find((x) => x.id === id) || PRESETS[1];
  const to = todayIn(tz, now);
  return { from: addDays(to, -(p.days - 1)), to };
}

/** Checks a range as the reports do (docs/reports.md): both dates, to >= from, at most 366 days. */
export function validateRange(from, to) {
  if (!isDate(from)) return { field: 'from', message: 'Pick a start date.' };
  if (!isDate(to)) return { field: 'to', message: 'Pick an end date.' };
  if (dayNum(to) < dayNum(from)) return { field: 'to', message: 'The end date is before the start date.' };
  if (rangeDays(from, to) > 366) return { field: 'to', message: 'Reports cover at most 366 days.' };
  return null;
}

/** The offset of tz from UTC at instant ms, in ms (positive east of Greenwich). */
export function tzOffsetMs(tz, ms) {
  const dtf = new Intl.DateTimeFormat('en-US', {
    timeZone: tz || 'UTC',
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  const p = {};
  for (const part of dtf.formatToParts(new Date(ms))) p[part.type] = part.value;
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/**
 * The UTC instant (ms) where local day `date` begins in tz. Across a DST jump at midnight the
 * day begins at the jump, as the reports' days do.
 */
export function localMidnightUtc(date, tz) {
  const guess = dayNum(date) * DAY_MS;
  let t = guess - tzOffsetMs(tz, guess);
  const off2 = tzOffsetMs(tz, t);
  t = guess - off2;
  // A skipped midnight (the clock jumped past it): the day starts at the first instant in it.
  if (todayIn(tz, t) !== date) {
    t = guess - tzOffsetMs(tz, guess + DAY_MS / 2);
  }
  return t;
}

/** The local days of a range as an array of strings. */
export function daysOf(from, to) {
  const out = [];
  for (let d = dayNum(from); d <= dayNum(to); d++) out.push(dayStr(d));
  return out;
}
