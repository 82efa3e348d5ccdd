import { describe, it, expect } from 'vitest';
import { csvField, toCsv, parseCsv, parseCostCsv, batches, decimalMicros } from '../../src/lib/csv.js';

describe('CSV out', () => {
  it('quotes as RFC 4180 requires and guards formulas', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('line\nbreak')).toBe('"line\nbreak"');
    expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvField("'-sale")).toBe("''-sale"); // an apostrophe first is guarded too: it comes back whole
    expect(csvField("'plain")).toBe("''plain");
    expect(csvField(-1.5)).toBe('-1.5');
    expect(csvField(null)).toBe('');
    expect(csvField(0.1 + 0.2)).toBe('0.30000000000000004');
  });
  it('writes a header and rows with CRLF', () => {
    const csv = toCsv([{ key: 'source' }, { key: 'installs', label: 'installs' }, { key: 'roas' }], [
      { source: 'meta', installs: 3, roas: null },
      { source: 'a,b', installs: 0, roas: 1.5 },
    ]);
    expect(csv).toBe('source,installs,roas\r\nmeta,3,\r\n"a,b",0,1.5\r\n');
  });
});

describe('CSV in', () => {
  it('parses quotes, CRLF, LF, a BOM and blank lines with line numbers', () => {
    const recs = parseCsv('\ufeffa,b\r\n"x, y","say ""hi"""\n\n"multi\nline",2\n');
    expect(recs).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['x, y', 'say "hi"'] },
      { line: 4, fields: ['multi\nline', '2'] },
    ]);
  });
  it('refuses broken quoting with the line', () => {
    expect(() => parseCsv('a,b\n"open,1\n')).toThrow();
    try {
      parseCsv('a\nb"c\n');
    } catch (e) {
      expect(e.line).toBe(2);
    }
  });
  it('reads a cost file with columns in any order and optional ones left out', () => {
    const r = parseCostCsv('currency,cost,date,source,campaign,country\r\nEUR,120.5,2026-11-20,meta,summer,US\r\nUSD,80,2026-11-20,google,"black friday, EU",\r\n');
    expect(r.errors).toEqual([]);
    expect(r.rows).toEqual([
      { date: '2026-11-20', source: 'meta', campaign: 'summer', cost: 120.5, currency: 'EUR', country: 'US' },
      { date: '2026-11-20', source: 'google', campaign: 'black friday, EU', cost: 80, currency: 'USD' },
    ]);
    expect(r.lines).toEqual([2, 3]);
  });
  it('takes back the names the formula guard wrote (an exported cost file)', () => {
    const file = toCsv(
      [{ key: 'date' }, { key: 'source' }, { key: 'campaign' }, { key: 'cost' }, { key: 'currency' }],
      [{ date: '2026-11-20', source: '@net', campaign: '=1+1,x', cost: 2, currency: 'USD' }],
    );
    expect(file).toContain(`'@net,"'=1+1,x"`);
    const r = parseCostCsv(file);
    expect(r.errors).toEqual([]);
    expect(r.rows[0]).toMatchObject({ source: '@net', campaign: '=1+1,x' });
    const m = parseCostCsv('date,source,campaign,cost,currency,micros\n2026-11-20,a,b,1.5,USD,1500000\n2026-11-20,a,b,1,USD,7\n');
    expect(m.rows.map((x) => x.cost)).toEqual([1.5]);
    expect(m.errors).toMatchObject([{ line: 3, field: 'micros' }]);
    expect(parseCostCsv("date,source,campaign,cost,currency\n2026-11-20,'plain,'-x,1,USD\n").rows[0]).toMatchObject({
      source: "'plain",
      campaign: '-x',
    });
    // Names starting with an apostrophe, and large costs with their millionths, come back whole.
    const big = toCsv(
      [{ key: 'date' }, { key: 'source' }, { key: 'campaign' }, { key: 'cost' }, { key: 'currency' }, { key: 'micros' }],
      [{ date: '2026-11-20', source: "'-net", campaign: "'plain", cost: '8905122611.79', currency: 'VND', micros: '8905122611790000' }],
    );
    const b = parseCostCsv(big);
    expect(b.errors).toEqual([]);
    expect(b.rows[0]).toMatchObject({ source: "'-net", campaign: "'plain", cost: 8905122611.79 });
    expect(parseCostCsv('date,source,campaign,cost,currency,micros\n2026-11-20,a,b,1e12,IRR,1000000000000000000\n').errors).toEqual([]);
  });

  it('counts millionths from the digits', () => {
    expect(decimalMicros('120.5')).toBe(120500000n);
    expect(decimalMicros('8905122611.79')).toBe(8905122611790000n);
    expect(decimalMicros('0.0000005')).toBe(1n);
    expect(decimalMicros('0.00000049999')).toBe(0n);
    expect(decimalMicros('007.125e2')).toBe(712500000n);
    expect(decimalMicros('.5')).toBe(500000n);
    expect(decimalMicros('1e-99999')).toBe(0n);
    expect(decimalMicros('1e99999')).toBe(null);
  });
  it('names bad headers and lines', () => {
    expect(parseCostCsv('date,source,campaign,cost\n').errors[0]).toMatchObject({ line: 1, field: 'currency' });
    expect(parseCostCsv('date,source,campaign,cost,currency,spend\n').errors[0].field).toBe('spend');
    expect(parseCostCsv('date,date,source,campaign,cost,currency\n').errors[0].message).toMatch(/twice/);
    const r = parseCostCsv('date,source,campaign,cost,currency\n2026-11-01,m,c,-1,USD\n2026-11-01,m,c\n2026-11-01,m,c,1e3,USD\n');
    expect(r.errors.map((e) => [e.line, e.field])).toEqual([[2, 'cost'], [3, null]]);
    expect(r.rows[0].cost).toBe(1000);
    expect(r.lines).toEqual([4]);
    expect(parseCostCsv('').errors[0].message).toMatch(/empty/);
  });
  it('splits into batches', () => {
    expect(batches([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(batches([], 2)).toEqual([]);
    // Long names: batches stay under the server's 1 MiB a body, however many rows that leaves.
    const row = { date: '2026-11-20', source: 's'.repeat(60), campaign: 'c'.repeat(60), adset: 'a'.repeat(50), ad: 'd'.repeat(40), cost: 1.5, currency: 'USD' };
    const rows = Array.from({ length: 5000 }, () => row);
    const bs = batches(rows, 5000);
    expect(bs.length).toBeGreaterThan(1);
    expect(bs.flat().length).toBe(5000);
    for (const b of bs) expect(JSON.stringify({ costs: b }).length).toBeLessThan(1 << 20);
  });
});
