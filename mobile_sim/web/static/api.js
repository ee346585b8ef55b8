// The one place that talks HTTP to the wallet server (same origin): every answer comes back in one
// shape, {status, ok, body, error}, where error is the FSPIOP {errorCode, errorDescription} of an
// error body or of a flow's end, so views never parse responses themselves.

export async function call(method, url, body) {
  let res;
  try {
    res = await fetch(url, {
      method,
      headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    return { status: 0, ok: false, body: null, error: { errorCode: 'NETWORK', errorDescription: String(e && e.message || e) }, network: true };
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { text }; }
  const error = (data && typeof data === 'object' && (data.errorInformation || data.error)) || null;
  return { status: res.status, ok: res.ok, body: data, error };
}

export const get = (url) => call('GET', url);
export const post = (url, body) => call('POST', url, body ?? {});
export const put = (url, body) => call('PUT', url, body ?? {});

// /api/sim/<dfsp>/<path...>: the simulators' driving API, proxied.
export function simUrl(dfsp, ...parts) {
  return '/api/sim/' + [dfsp, ...parts].map((p) => encodeURIComponent(String(p))).join('/');
}

let configPromise = null;
// GET /api/config, cached; reload with fresh=true (a customer joined, the stream reconnected).
export function config(fresh = false) {
  if (!configPromise || fresh) {
    configPromise = get('/api/config').then((r) => {
      if (!r.ok || !r.body) throw new Error((r.error && r.error.errorDescription) || `config: HTTP ${r.status}`);
      const c = r.body;
      c.dfsps = Array.isArray(c.dfsps) ? c.dfsps : [];
      c.pisps = Array.isArray(c.pisps) ? c.pisps : [];
      return c;
    });
    configPromise.catch(() => { configPromise = null; });
  }
  return configPromise;
}

// The customers of a DFSP as the simulator has them now (an array either way).
export async function customers(dfsp) {
  const r = await get(simUrl(dfsp, 'customers'));
  if (!r.ok) return null;
  return Array.isArray(r.body) ? r.body : (r.body && r.body.customers) || [];
}
