import { describe, it, expect } from 'vitest';
import {
  dayNum, dayStr, addDays, previousPeriod, presetRange, todayIn, validateRange, localMidnightUtc, daysOf, rangeDays,
} from '../../src/lib/period.js';

describe('periods', () => {
  it('counts days and goes back and forth', () => {
    expect(dayStr(dayNum('2026-11-27'))).toBe('2026-11-27');
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
    expect(addDays('2024-03-01', -1)).toBe('2024-02-29');
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
    expect(rangeDays('2026-11-21', '2026-11-27')).toBe(7);
    expect(daysOf('2026-11-29', '2026-12-02')).toEqual(['2026-11-29', '2026-11-30', '2026-12-01', '2026-12-02']);
  });
  it('takes the previous period of the same length right before', () => {
    expect(previousPeriod('2026-11-21', '2026-11-27')).toEqual({ from: '2026-11-14', to: '2026-11-20' });
    expect(previousPeriod('2026-11-27', '2026-11-27')).toEqual({ from: '2026-11-26', to: '2026-11-26' });
    expect(previousPeriod('2026-03-01', '2026-03-31')).toEqual({ from: '2026-01-29', to: '2026-02-28' });
  });
  it('finds today in the app time zone', () => {
    const t = Date.parse('2026-11-27T23:30:00Z');
    expect(todayIn('UTC', t)).toBe('2026-11-27');
    expect(todayIn('Europe/Berlin', t)).toBe('2026-11-28');
    expect(todayIn('America/Los_Angeles', t)).toBe('2026-11-27');
    expect(todayIn('Pacific/Kiritimati', Date.parse('2026-11-27T10:00:00Z'))).toBe('2026-11-28');
    expect(todayIn('Not/AZone', t)).toBe('2026-11-27');
  });
  it('makes preset ranges ending today there', () => {
    const t = Date.parse('2026-11-27T23:30:00Z');
    expect(presetRange('7d', 'Europe/Berlin', t)).toEqual({ from: '2026-11-22', to: '2026-11-28' });
    expect(presetRange('today', 'UTC', t)).toEqual({ from: '2026-11-27', to: '2026-11-27' });
  });
  it('checks a range as the server does', () => {
    expect(validateRange('2026-11-01', '2026-11-02')).toBe(null);
    expect(validateRange('2026-11-02', '2026-11-01').field).toBe('to');
    expect(validateRange('2026-02-30', '2026-03-01').field).toBe('from');
    expect(validateRange('2025-01-01', '2026-01-02').field).toBe('to');
    expect(validateRange('2025-01-01', '2026-01-01')).toBe(null);
  });
  it('converts a local midnight to an instant, across DST', () => {
    expect(new Date(localMidnightUtc('2026-11-27', 'UTC')).toISOString()).toBe('2026-11-27T00:00:00.000Z');
    expect(new Date(localMidnightUtc('2026-07-01', 'Europe/Berlin')).toISOString()).toBe('2026-06-30T22:00:00.000Z');
    expect(new Date(localMidnightUtc('2026-12-01', 'Europe/Berlin')).toISOString()).toBe('2026-11-30T23:00:00.000Z');
    expect(new Date(localMidnightUtc('2026-03-29', 'Europe/Berlin')).toISOString()).toBe('2026-03-28T23:00:00.000Z');
    expect(new Date(localMidnightUtc('2026-11-01', 'America/Los_Angeles')).toISOString()).toBe('2026-11-01T07:00:00.000Z');
  });
});
