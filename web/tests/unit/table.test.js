import { describe, it, expect } from 'vitest';
import { filterRows, sortRows, nextSort, paginate, levelDims, displayDim } from '../../src/lib/table.js';

const rows = [
  { source: 'meta', campaign: 'summer', installs: 10, roas: 0.5 },
  { source: 'google', campaign: 'Winter Sale', installs: 30, roas: null },
  { source: '', campaign: '', installs: 0, roas: null },
  { source: 'meta', campaign: 'black friday', installs: 30, roas: 2 },
];

describe('table', () => {
  it('filters on every word, case-insensitively, within a scope', () => {
    expect(filterRows(rows, ['source', 'campaign'], 'META').length).toBe(2);
    expect(filterRows(rows, ['source', 'campaign'], 'meta friday').map((r) => r.campaign)).toEqual(['black friday']);
    expect(filterRows(rows, ['source', 'campaign'], 'sale').map((r) => r.source)).toEqual(['google']);
    expect(filterRows(rows, ['source'], '(none)').length).toBe(1);
    expect(filterRows(rows, ['source', 'campaign'], '', { source: 'meta' }).length).toBe(2);
    expect(filterRows(rows, ['source', 'campaign'], '   ').length).toBe(4);
  });
  it('sorts numbers, keeps ties stable and nulls last either way', () => {
    expect(sortRows(rows, 'installs', 'desc').map((r) => r.campaign)).toEqual(['Winter Sale', 'black friday', 'summer', '']);
    expect(sortRows(rows, 'installs', 'asc').map((r) => r.installs)).toEqual([0, 10, 30, 30]);
    expect(sortRows(rows, 'roas', 'desc').map((r) => r.roas)).toEqual([2, 0.5, null, null]);
    expect(sortRows(rows, 'roas', 'asc').map((r) => r.roas)).toEqual([0.5, 2, null, null]);
    expect(sortRows(rows, 'source', 'asc').map((r) => r.source)).toEqual(['', 'google', 'meta', 'meta']);
    expect(rows[0].campaign).toBe('summer');
  });
  it('flips the direction on the same column', () => {
    expect(nextSort({ key: 'installs', dir: 'desc' }, 'installs', false)).toEqual({ key: 'installs', dir: 'asc' });
    expect(nextSort({ key: 'installs', dir: 'desc' }, 'source', true)).toEqual({ key: 'source', dir: 'asc' });
    expect(nextSort({ key: 'source', dir: 'asc' }, 'cost', false)).toEqual({ key: 'cost', dir: 'desc' });
  });
  it('pages 1,000 rows and clamps the page', () => {
    const many = Array.from({ length: 1000 }, (_, i) => ({ i }));
    const p = paginate(many, 3, 50);
    expect(p.rows.length).toBe(50);
    expect(p.rows[0].i).toBe(150);
    expect(p.pages).toBe(20);
    expect(paginate(many, 99, 50).page).toBe(19);
    expect(paginate([], 0, 50)).toEqual({ rows: [], page: 0, pages: 1 });
  });
  it('knows the levels and shows empty values', () => {
    expect(levelDims('adset')).toEqual(['source', 'campaign', 'adset']);
    expect(levelDims('nope')).toEqual(['source']);
    expect(displayDim('')).toBe('(none)');
  });
});
