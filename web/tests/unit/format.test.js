import { describe, it, expect } from 'vitest';
import { fmtInt, fmtMoney, fmtPct, fmtRatio, change, fmtMetric, DASH } from '../../src/lib/format.js';

describe('format', () => {
  it('formats integers with grouping and missing values as a dash', () => {
    expect(fmtInt(1234567)).toBe('1,234,567');
    expect(fmtInt(0)).toBe('0');
    expect(fmtInt(null)).toBe(DASH);
    expect(fmtInt(undefined)).toBe(DASH);
    expect(fmtInt(NaN)).toBe(DASH);
  });
  it('formats money in the app currency with two decimals', () => {
    expect(fmtMoney(1234.5, 'USD')).toBe('$1,234.50');
    expect(fmtMoney(0.005, 'EUR')).toBe('€0.01');
    expect(fmtMoney(12, 'JPY')).toBe('¥12.00');
    expect(fmtMoney(null, 'USD')).toBe(DASH);
    expect(fmtMoney(3, 'XXX1')).toBe('3.00 XXX1');
  });
  it('formats ratios and percentages', () => {
    expect(fmtPct(0.4567)).toBe('45.7%');
    expect(fmtPct(1)).toBe('100.0%');
    expect(fmtRatio(0.48298755186721992)).toBe('0.48×');
    expect(fmtRatio(null)).toBe(DASH);
  });
  it('picks the format by metric', () => {
    expect(fmtMetric('installs', 12, 'USD')).toBe('12');
    expect(fmtMetric('cost', 120.5, 'USD')).toBe('$120.50');
    expect(fmtMetric('cpi', 2.5, 'EUR')).toBe('€2.50');
    expect(fmtMetric('roas', 2, 'USD')).toBe('2.00×');
    expect(fmtMetric('ctr', 0.0425, 'USD')).toBe('4.25%');
  });
});

describe('change against the previous period', () => {
  it('is the relative change with a sign', () => {
    expect(change(120, 100)).toEqual({ ratio: 0.2, text: '+20.0%', dir: 'up' });
    expect(change(80, 100).text).toBe('-20.0%');
    expect(change(80, 100).dir).toBe('down');
    expect(change(100, 100)).toEqual({ ratio: 0, text: '0.0%', dir: 'flat' });
  });
  it('has no value without a base', () => {
    expect(change(5, 0).ratio).toBe(null);
    expect(change(5, 0).text).toBe(DASH);
    expect(change(null, 3).ratio).toBe(null);
    expect(change(3, undefined).ratio).toBe(null);
  });
  it('compares against a negative base by its size', () => {
    expect(change(-50, -100).ratio).toBeCloseTo(0.5);
  });
});

import { tiles, unconverted } from '../../src/lib/reports.js';

describe('tiles from the overview totals', () => {
  it('adds attributed and organic installs and takes the rest as the API has it', () => {
    const t = tiles({ installs: 30, organic_installs: 10, cost: 12.5, revenue: 5, roas: 0.4, revenue_unconverted: { EUR: 4.99 } });
    expect(t).toMatchObject({ installs: 40, attributed: 30, organic: 10, organic_share: 0.25, cost: 12.5, revenue: 5, roas: 0.4 });
    expect(t.rejected_installs).toBe(null);
    expect(t.revenue_unconverted).toBe('4.99 EUR');
    expect(tiles({ installs: 0, organic_installs: 0, roas: null }).organic_share).toBe(null);
    expect(tiles({ installs: 1, organic_installs: 0, rejected_installs: 3 }).rejected_installs).toBe(3);
    expect(tiles(null)).toBe(null);
  });
  it('lists amounts without a rate', () => {
    expect(unconverted({ EUR: 1.5, GBP: 0, JPY: 100 })).toBe('1.5 EUR, 100 JPY');
    expect(unconverted(undefined)).toBe('');
  });
});
