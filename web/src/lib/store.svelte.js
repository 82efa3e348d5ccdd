// The page's shared state (Svelte 5 runes): who is logged in, their apps, the selected app and
// date range, and the current route. The app and range live in the URL query too, so a reload or
// a shared link shows the same view.
import { createApi } from './api.js';
import { presetRange, validateRange } from './period.js';

export const ROUTES = ['overview', 'cohorts', 'attribution', 'fraud', 'live', 'settings', 'account'];
/** Pages for someone not logged in. `accept` takes an invitation's token from the URL's fragment
 * (`/accept#inv_...`), which browsers never send to a server or in a Referer. */
export const PUBLIC_ROUTES = ['login', 'accept'];

/** Permissions that make the Settings page worth showing (docs/security.md). */
export const SETTINGS_PERMS = ['apps:write', 'settings:write', 'keys:manage', 'users:manage', 'costs:write'];

function readUrl() {
  const u = new URL(location.href);
  const seg = u.pathname.replace(/^\/+|\/+$/g, '').split('/')[0] || 'overview';
  return {
    route: seg,
    app: u.searchParams.get('app'),
    from: u.searchParams.get('from'),
    to: u.searchParams.get('to'),
  };
}

export const ui = $state({
  route: 'overview',
  me: null,
  apps: [],
  appId: null,
  from: null,
  to: null,
  preset: '7d',
  loginMessage: '',
  loginEmail: '',
  loading: true,
  error: '',
});

export const api = createApi({
  storage: typeof sessionStorage !== 'undefined' ? sessionStorage : null,
  onExpired: () => {
    ui.me = null;
    ui.loginMessage = 'Your session has ended. Log in again.';
    navigate('login');
  },
});

export function currentApp() {
  return ui.apps.find((a) => a.app_id === ui.appId) || null;
}

export function can(perm) {
  return !!ui.me?.permissions?.includes(perm);
}

export function canSettings() {
  return SETTINGS_PERMS.some(can);
}

function writeUrl(replace) {
  const u = new URL(location.href);
  u.pathname = `/${ui.route}`;
  if (ui.route !== 'accept') u.hash = '';
  const q = new URLSearchParams();
  if (!PUBLIC_ROUTES.includes(ui.route)) {
    if (ui.appId) q.set('app', ui.appId);
    if (ui.from) q.set('from', ui.from);
    if (ui.to) q.set('to', ui.to);
  }
  u.search = q.toString();
  if (u.href !== location.href) history[replace ? 'replaceState' : 'pushState'](null, '', u.href);
}

export function navigate(route, replace = false) {
  ui.route = route;
  writeUrl(replace);
  if (typeof window !== 'undefined') window.scrollTo(0, 0);
}

export function setApp(id) {
  ui.appId = id;
  const a = currentApp();
  if (ui.preset !== 'custom') Object.assign(ui, presetRange(ui.preset, a?.settings?.timezone));
  writeUrl(false);
}

export function setRange(from, to, preset = 'custom') {
  ui.preset = preset;
  ui.from = from;
  ui.to = to;
  writeUrl(false);
}

export function setPreset(id) {
  ui.preset = id;
  Object.assign(ui, presetRange(id, currentApp()?.settings?.timezone));
  writeUrl(false);
}

/** After login or on a reload with a session: who am I, which apps. */
export async function loadSession() {
  ui.loading = true;
  ui.error = '';
  try {
    const [me, apps] = await Promise.all([api.get('/v1/me'), api.get('/v1/apps')]);
    ui.me = me;
    ui.apps = apps.apps || [];
    const url = readUrl();
    ui.appId = ui.apps.some((a) => a.app_id === url.app) ? url.app : ui.apps[0]?.app_id || null;
    const tz = currentApp()?.settings?.timezone;
    if (url.from && url.to && !validateRange(url.from, url.to)) {
      ui.preset = 'custom';
      ui.from = url.from;
      ui.to = url.to;
    } else {
      Object.assign(ui, presetRange(ui.preset, tz));
    }
    ui.route = ROUTES.includes(url.route) ? url.route : 'overview';
    writeUrl(true);
  } catch (e) {
    if (api.session) ui.error = e.message || String(e);
  } finally {
    ui.loading = false;
  }
}

export async function refreshApps() {
  const apps = await api.get('/v1/apps');
  ui.apps = apps.apps || [];
}

export function init() {
  const url = readUrl();
  ui.route = url.route;
  window.addEventListener('popstate', () => {
    const u = readUrl();
    ui.route = ROUTES.includes(u.route) || PUBLIC_ROUTES.includes(u.route) ? u.route : 'overview';
    if (u.app && ui.apps.some((a) => a.app_id === u.app)) ui.appId = u.app;
    if (u.from && u.to && !validateRange(u.from, u.to)) {
      ui.from = u.from;
      ui.to = u.to;
    }
  });
  if (url.route === 'accept') {
    ui.loading = false; /* whoever opens an invitation, logged in or not */
  } else if (api.session) {
    loadSession();
  } else {
    ui.loading = false;
    ui.route = 'login';
    writeUrl(true);
  }
}
