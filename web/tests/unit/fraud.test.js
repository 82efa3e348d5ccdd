import { describe, it, expect } from 'vitest';
import { parseFraudReport, ctitLabels, settingsToForm, formToSettings } from '../../src/lib/fraud.js';

describe('fraud shapes', () => {
  it('labels CTIT buckets from the bounds', () => {
    expect(ctitLabels([10, 60, 600, 3600, 86400, 604800])).toEqual(['<10s', '10s–1m', '1m–10m', '10m–1h', '1h–1d', '1d–7d', '≥7d']);
  });
  it('parses the report and keeps missing counters as null', () => {
    const r = parseFraudReport({
      rows: [{ source: 'adnet', reason: 'click_injection', rejected_installs: 3, installs: 100, install_rejection_rate: 0.03 }],
      totals: { rejected_installs: 3 },
      ctit: { bounds_s: [10, 60], rows: [{ source: 'adnet', counts: [1, 2, 3] }] },
      model: { mode: 'shadow', scored: 12 },
    });
    expect(r.rows[0]).toMatchObject({ source: 'adnet', reason: 'click_injection', rejected_installs: 3, rejected_clicks: null });
    expect(r.totals.rejected_installs).toBe(3);
    expect(r.ctit.labels).toEqual(['<10s', '10s–1m', '≥1m']);
    expect(r.model).toMatchObject({ mode: 'shadow', scored: 12, over_threshold: null, over_and_rejected_by_rules: null });
    expect(parseFraudReport({ model: { rule_rejected_and_over: 4 } }).model.over_and_rejected_by_rules).toBe(4);
    expect(parseFraudReport({ model: { over_and_rejected_by_rules: 5, threshold: 0.9 } }).model).toMatchObject({ over_and_rejected_by_rules: 5, threshold: 0.9 });
    expect(parseFraudReport({}).rows).toEqual([]);
  });
  it('turns settings into a form and back', () => {
    const s = {
      rules: { click_injection: { enabled: true, action: 'reject', min_ctit_s: 10 } },
      model: { mode: 'off', threshold: 0.9, shadow_sample: 1 },
    };
    const f = settingsToForm(s);
    expect(f.rules[0].fields.map((x) => x.type)).toEqual(['bool', 'text', 'number']);
    f.rules[0].fields[2].value = '15';
    f.model.mode = 'shadow';
    expect(formToSettings(f)).toEqual({
      rules: { click_injection: { enabled: true, action: 'reject', min_ctit_s: 15 } },
      model: { mode: 'shadow', threshold: 0.9, shadow_sample: 1 },
    });
    // A member the server sends comes back; one it does not is never invented.
    expect(formToSettings(settingsToForm({ ...s, require_signature: true })).require_signature).toBe(true);
    // A cleared number field is left out (the setting stays), never sent as 0.
    f.rules[0].fields[2].value = null;
    expect(formToSettings(f).rules.click_injection).toEqual({ enabled: true, action: 'reject' });
  });
});
