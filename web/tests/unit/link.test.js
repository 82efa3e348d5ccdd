import { describe, it, expect } from 'vitest';
import { buildLink, encodeValue, isMacro, NETWORK_MACROS } from '../../src/lib/link.js';

const APP = 'app_676fdf37ea3da813';

describe('click-link builder', () => {
  it('builds a click link with encoded values in the daemon order', () => {
    const r = buildLink('https://t.example.com/', APP, { campaign: 'black friday', source: 'meta', adset: 'a&b' });
    expect(r.url).toBe(`https://t.example.com/c/${APP}?source=meta&campaign=black%20friday&adset=a%26b`);
  });
  it('keeps network macros as they are', () => {
    expect(encodeValue('{click_id}')).toBe('{click_id}');
    expect(encodeValue('x {{ad.id}}_{{site_source_name}} y')).toBe('x%20{{ad.id}}_{{site_source_name}}%20y');
    expect(encodeValue('__IDFA__')).toBe('__IDFA__');
    expect(encodeValue('${GAID}')).toBe('${GAID}');
    expect(isMacro('{gclid}')).toBe(true);
    expect(isMacro('abc')).toBe(false);
    const r = buildLink('http://127.0.0.1:8080', APP, { source: 'tiktok', ...NETWORK_MACROS.tiktok });
    expect(r.url).toBe(`http://127.0.0.1:8080/c/${APP}?source=tiktok&site=__CSITE__&click_id=__CALLBACK_PARAM__&idfa=__IDFA__&gaid=__AID__`);
  });
  it('makes impression links', () => {
    expect(buildLink('http://h:1', APP, { source: 's' }, 'impression').url).toBe(`http://h:1/v/${APP}?source=s`);
  });
  it('names the field at fault', () => {
    expect(buildLink('ftp://x', APP, { source: 's' }).error.field).toBe('base');
    expect(buildLink('http://x/path', APP, { source: 's' }).error.field).toBe('base');
    expect(buildLink('http://x', 'nope', { source: 's' }).error.field).toBe('app');
    expect(buildLink('http://x', APP, { campaign: 'c' }).error.field).toBe('source');
    expect(buildLink('http://x', APP, { source: 's', lookback: 'soon' }).error.field).toBe('lookback');
    expect(buildLink('http://x', APP, { source: 's', lookback: '7d' }).url).toContain('lookback=7d');
    expect(buildLink('http://x', APP, { source: 's', retargeting: '2' }).error.field).toBe('retargeting');
    expect(buildLink('http://x', APP, { source: 's', bogus: '1' }).error.field).toBe('bogus');
  });
});
