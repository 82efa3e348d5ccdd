import { describe, it, expect } from 'vitest';
import { createApi, ApiError, qs } from '../../src/lib/api.js';

function res(status, body) {
  return { status, ok: status < 300, headers: new Map([['content-type', 'application/json']]), json: async () => body, text: async () => JSON.stringify(body) };
}
function memStore() {
  const m = new Map();
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k) };
}

describe('api session', () => {
  it('changes the password and goes on with the new tokens; a wrong one keeps the session', async () => {
    const store = memStore();
    store.setItem('umg.session', JSON.stringify({ access_token: 'a1', refresh_token: 'r1', user_id: 'usr_1' }));
    let expired = 0;
    const fetchFn = async (url, o) => {
      const b = JSON.parse(o.body);
      expect(url).toBe('/v1/me/password');
      expect(o.headers.Authorization).toBe('Bearer a1');
      return b.current_password === 'right-one'
        ? res(200, { access_token: 'a2', refresh_token: 'r2', user_id: 'usr_1' })
        : res(403, { error: { code: 'invalid_credentials', field: 'current_password', message: 'wrong' } });
    };
    const api = createApi({ fetchFn, storage: store, onExpired: () => expired++ });
    const e = await api.changePassword('wrong-one', 'new-password').catch((x) => x);
    expect(e.code).toBe('invalid_credentials');
    expect(api.session.access_token).toBe('a1');
    await api.changePassword('right-one', 'new-password');
    expect(api.session).toEqual({ access_token: 'a2', refresh_token: 'r2', user_id: 'usr_1' });
    expect(JSON.parse(store.getItem('umg.session')).refresh_token).toBe('r2');
    expect(expired).toBe(0);
  });
  it('accepts an invitation without an Authorization header, and names the refusal', async () => {
    const calls = [];
    const fetchFn = async (url, o) => {
      calls.push([url, o.headers?.Authorization, JSON.parse(o.body)]);
      return JSON.parse(o.body).token === 'inv_ok'
        ? res(201, { user_id: 'usr_1', email: 'new@x.test', role: 'viewer' })
        : res(401, { error: { code: 'invalid_token', field: 'token', message: 'the invitation is unknown' } });
    };
    const store = memStore();
    store.setItem('umg.session', JSON.stringify({ access_token: 'someone-else', refresh_token: 'r' }));
    const api = createApi({ fetchFn, storage: store });
    const u = await api.acceptInvitation('inv_ok', 'a-password');
    expect(u.email).toBe('new@x.test');
    expect(calls[0]).toEqual(['/v1/invitations/accept', undefined, { token: 'inv_ok', password: 'a-password' }]);
    const e = await api.acceptInvitation('inv_bad', 'a-password').catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.code).toBe('invalid_token');
    expect(api.session.access_token).toBe('someone-else'); /* whoever is logged in stays so */
  });
  it('refreshes once on 401 and retries with the new token', async () => {
    const calls = [];
    const fetchFn = async (url, o) => {
      calls.push([url, o.headers?.Authorization]);
      if (url === '/v1/auth/login') return res(200, { access_token: 'a1', refresh_token: 'r1' });
      if (url === '/v1/auth/refresh') return res(200, { access_token: 'a2', refresh_token: 'r2' });
      return o.headers.Authorization === 'Bearer a2' ? res(200, { ok: 1 }) : res(401, { error: { code: 'token_expired' } });
    };
    const api = createApi({ fetchFn, storage: memStore() });
    await api.login('a@b.c', 'pw');
    const [x, y] = await Promise.all([api.get('/v1/me'), api.get('/v1/apps')]);
    expect(x).toEqual({ ok: 1 });
    expect(y).toEqual({ ok: 1 });
    expect(calls.filter((c) => c[0] === '/v1/auth/refresh').length).toBe(1);
    expect(api.session.refresh_token).toBe('r2');
  });
  it('ends the session when the refresh fails', async () => {
    let expired = 0;
    const store = memStore();
    store.setItem('umg.session', JSON.stringify({ access_token: 'a', refresh_token: 'r' }));
    const api = createApi({
      fetchFn: async (url) => (url === '/v1/auth/refresh' ? res(401, { error: { code: 'invalid_token' } }) : res(401, { error: { code: 'token_expired' } })),
      storage: store,
      onExpired: () => expired++,
    });
    await expect(api.get('/v1/me')).rejects.toBeInstanceOf(ApiError);
    expect(expired).toBe(1);
    expect(api.session).toBe(null);
    expect(store.getItem('umg.session')).toBe(null);
  });
  it('carries the error code and field', async () => {
    const api = createApi({ fetchFn: async () => res(400, { error: { code: 'invalid_value', field: 'from', message: 'bad' } }) });
    const e = await api.get('/x').catch((x) => x);
    expect([e.status, e.code, e.field, e.message]).toEqual([400, 'invalid_value', 'from', 'bad']);
  });
  it('treats a missing endpoint as absent, but not a missing app', async () => {
    const a1 = createApi({ fetchFn: async () => res(404, { error: { code: 'not_found', message: 'no such endpoint' } }) });
    expect(await a1.getOptional('/v1/reports/fraud')).toBe(null);
    const a2 = createApi({ fetchFn: async () => res(404, { error: { code: 'not_found', field: 'app', message: 'no such app' } }) });
    await expect(a2.getOptional('/v1/reports/fraud')).rejects.toBeInstanceOf(ApiError);
  });
  it('builds query strings without empty members', () => {
    expect(qs({ app: 'a', group_by: '', x: null, y: undefined, n: 0 })).toBe('app=a&group_by=&n=0');
  });
});
