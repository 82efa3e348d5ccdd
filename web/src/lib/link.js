// The click-link builder: a tracking link for an ad network, /c/{app_id}?... (docs/touches.md),
// with fixed values URL-encoded and the network's macros ({click_id}, __IDFA__, ${GAID}, [ts]...)
// left as they are so the network can substitute them.

/** Link parameters the daemon takes (docs/api.md, "Click link"). */
export const LINK_PARAMS = [
  'source', 'campaign', 'campaign_id', 'adset', 'ad', 'site', 'click_id', 'idfa', 'gaid', 'oaid',
  'android_id', 'idfv', 'custom_id', 'lookback', 'retargeting', 'deep_link', 'sub1', 'sub2', 'sub3',
  'sub4', 'sub5', 'redirect',
];

/** Macro syntaxes networks use: {x}, {{x}}, __X__, ${x}, [x], %%X%%. */
const MACRO = /(\{\{[^{}]+\}\}|\{[^{}]+\}|__[A-Za-z0-9_]+__|\$\{[^{}]+\}|\[[A-Za-z0-9_]+\]|%%[A-Za-z0-9_]+%%)/g;

export function isMacro(s) {
  MACRO.lastIndex = 0;
  const m = MACRO.exec(s);
  return m !== null && m.index === 0 && m[0].length === s.length;
}

/** URL-encodes a value except the macros in it. */
export function encodeValue(v) {
  const s = String(v);
  let out = '';
  let last = 0;
  MACRO.lastIndex = 0;
  for (let m; (m = MACRO.exec(s)); ) {
    out += encodeURIComponent(s.slice(last, m.index)) + m[0];
    last = m.index + m[0].length;
  }
  return out + encodeURIComponent(s.slice(last));
}

/** Macro presets per network for the parameters a network fills in. */
export const NETWORK_MACROS = {
  generic: { click_id: '{click_id}', idfa: '{idfa}', gaid: '{gaid}', site: '{site_id}' },
  meta: { click_id: '{{ad.id}}_{{site_source_name}}', adset: '{{adset.name}}', ad: '{{ad.name}}', site: '{{site_source_name}}' },
  google: { click_id: '{gclid}', site: '{placement}', gaid: '{advertising_id}' },
  tiktok: { click_id: '__CALLBACK_PARAM__', idfa: '__IDFA__', gaid: '__AID__', site: '__CSITE__' },
};

/**
 * Builds the link: base is the daemon's public origin ("https://track.example.com"), kind
 * 'click' (/c/) or 'impression' (/v/), params an object of parameter -> value (empty values
 * left out, in LINK_PARAMS order). Errors: {field, message}.
 */
export function buildLink(base, appId, params, kind = 'click') {
  if (!/^https?:\/\/[^/\s]+$/.test((base || '').replace(/\/+$/, ''))) {
    return { error: { field: 'base', message: 'The base must be http(s)://host[:port] of the daemon, without a path.' } };
  }
  if (!/^app_[0-9a-f]{16}$/.test(appId || '')) {
    return { error: { field: 'app', message: 'Pick an app.' } };
  }
  if (!params.source) {
    return { error: { field: 'source', message: 'The source (network name) is required: reports group by it.' } };
  }
  if (params.lookback && !isMacro(params.lookback) && !/^\d+[dhm]?$/.test(params.lookback)) {
    return { error: { field: 'lookback', message: 'lookback is 7d, 12h, 90m or seconds.' } };
  }
  if (params.retargeting && !['0', '1'].includes(String(params.retargeting))) {
    return { error: { field: 'retargeting', message: 'retargeting is 0 or 1.' } };
  }
  const q = [];
  for (const k of LINK_PARAMS) {
    const v = params[k];
    if (v === undefined || v === null || v === '') continue;
    q.push(`${k}=${encodeValue(v)}`);
  }
  for (const k of Object.keys(params)) {
    if (!LINK_PARAMS.includes(k) && params[k] !== '' && params[k] != null) {
      return { error: { field: k, message: `${k} is not a link parameter.` } };
    }
  }
  const path = kind === 'impression' ? 'v' : 'c';
  return { url: `${base.replace(/\/+$/, '')}/${path}/${appId}?${q.join('&')}` };
}
