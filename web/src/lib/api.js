// The dashboard's only way to the server: the public HTTP API with the user's access token.
// A 401 with an expired or revoked access token is answered by one refresh (shared by every
// request waiting at that moment) and the request is sent again; when the refresh fails too,
// the session ends and onExpired() sends the user back to the login page.

export class ApiError extends Error {
  constructor(status, body) {
    const e = body?.error || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || null;
    this.field = e.field || null;
    this.body = body;
  }
}

const KEY = 'umg.session';

export function createApi({ fetchFn = (...a) => fetch(...a), storage = null, onExpired = () => {} } = {}) {
  let session = null;
  try {
    session = storage ? JSON.parse(storage.getItem(KEY) || 'null') : null;
  } catch {
    session = null;
  }
  let refreshing = null;

  function save(s) {
    session = s;
    if (storage) {
      if (s) storage.setItem(KEY, JSON.stringify(s));
      else storage.removeItem(KEY);
    }
  }

  async function parse(res) {
    const ct = res.headers.get('content-type') || '';
    if (ct.includes('application/json')) {
      try {
        return await res.json();
      } catch {
        return null;
      }
    }
    return await res.text();
  }

  async function refresh() {
    if (!session?.refresh_token) return false;
    if (!refreshing) {
      const rt = session.refresh_token;
      refreshing = (async () => {
        try {
          const res = await fetchFn('/v1/auth/refresh', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ refresh_token: rt }),
          });
          if (!res.ok) return false;
          const j = await res.json();
          save({ ...session, access_token: j.access_token, refresh_token: j.refresh_token });
          return true;
        } catch {
          return false;
        } finally {
          setTimeout(() => (refreshing = null), 0);
        }
      })();
    }
    return refreshing;
  }

  /** fetch() with the access token; one refresh and retry on 401. Returns the Response. */
  async function authFetch(path, opts = {}) {
    const go = () =>
      fetchFn(path, {
        ...opts,
        headers: { ...(opts.headers || {}), Authorization: `Bearer ${session?.access_token || ''}` },
      });
    let res = await go();
    if (res.status === 401 && session) {
      if (await refresh()) res = await go();
      if (res.status === 401) {
        save(null);
        onExpired();
      }
    }
    return res;
  }

  /** A JSON POST that carries no session (a login, accepting an invitation): resolves with the
   * body, rejects with ApiError. */
  async function publicPost(path, body) {
    const res = await fetchFn(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const j = await parse(res);
    if (!res.ok) throw new ApiError(res.status, j);
    return j;
  }

  /** A JSON request: resolves with the body, rejects with ApiError. */
  async function request(method, path, body) {
    const opts = { method };
    if (body !== undefined) {
      opts.headers = { 'Content-Type': 'application/json' };
      opts.body = JSON.stringify(body);
    }
    const res = await authFetch(path, opts);
    const j = await parse(res);
    if (!res.ok) throw new ApiError(res.status, j);
    return j;
  }

  return {
    get session() {
      return session;
    },
    async login(email, password) {
      const j = await publicPost('/v1/auth/login', { email, password });
      save({ access_token: j.access_token, refresh_token: j.refresh_token, user_id: j.user_id });
      return j;
    },
    /** Accepting an invitation (POST /v1/invitations/accept) needs no session: the token is the
     * credential, and no Authorization header goes with it. Resolves with the new user. */
    acceptInvitation: (token, password) => publicPost('/v1/invitations/accept', { token, password }),
    /** POST /v1/me/password: the caller's own password. Every other session of the user ends;
     * this one goes on with the tokens in the answer. Rejects with ApiError (403
     * invalid_credentials for a wrong current password, never 401). */
    async changePassword(current, next) {
      const j = await request('POST', '/v1/me/password', { current_password: current, new_password: next });
      save({ ...session, access_token: j.access_token, refresh_token: j.refresh_token });
      return j;
    },
    async logout() {
      const rt = session?.refresh_token;
      save(null);
      if (rt) {
        try {
          await fetchFn('/v1/auth/logout', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ refresh_token: rt }),
          });
        } catch {
          /* the session is gone locally either way */
        }
      }
    },
    refresh,
    authFetch,
    get: (p) => request('GET', p),
    post: (p, b) => request('POST', p, b),
    patch: (p, b) => request('PATCH', p, b),
    put: (p, b) => request('PUT', p, b),
    del: (p) => request('DELETE', p),
    /** GET that answers null for 404 (endpoints a server may not have yet). */
    async getOptional(p) {
      try {
        return await request('GET', p);
      } catch (e) {
        if (e instanceof ApiError && e.status === 404 && (e.code === 'not_found' || e.code === null) && e.field !== 'app') {
          return null;
        }
        throw e;
      }
    },
  };
}

/** A query string from an object, leaving out undefined and null. */
export function qs(o) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null) p.set(k, String(v));
  return p.toString();
}
