// Smoke test for server.mjs: `node smoke.mjs` (after `npm ci`).
// Starts the provider as a child process, runs the authorization code + PKCE
// flow as alice for signoff-web, checks the ID token, the clock control,
// wrong-password and bad-redirect handling, logout and shutdown.
// Prints "smoke ok" and exits 0, or prints the failure and exits 1.

import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import * as readline from 'node:readline';

const here = path.dirname(fileURLToPath(import.meta.url));
const REDIRECT_URI = 'http://127.0.0.1:45678/auth/callback';
const POST_LOGOUT_URI = 'http://127.0.0.1:45678/auth/logged-out';
const verbose = process.env.SMOKE_VERBOSE === '1';

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// ---------------------------------------------------------------------------
// Child process
// ---------------------------------------------------------------------------
async function startProvider(env = {}) {
  const child = spawn(process.execPath, [path.join(here, 'server.mjs')], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if (verbose) process.stderr.write(d);
  });
  const rl = readline.createInterface({ input: child.stdout });
  const lines = [];
  rl.on('line', (l) => lines.push(l));
  const deadline = Date.now() + 15000;
  while (lines.length === 0) {
    if (child.exitCode !== null) throw new Error(`provider exited early (${child.exitCode}):\n${stderr}`);
    if (Date.now() > deadline) throw new Error(`provider did not print its issuer line:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const ready = JSON.parse(lines[0]);
  assert(Object.keys(ready).length === 1 && typeof ready.issuer === 'string', `ready line: ${lines[0]}`);
  assert(/^http:\/\/127\.0\.0\.1:\d+$/.test(ready.issuer), `issuer format: ${ready.issuer}`);
  return { child, issuer: ready.issuer, lines, stderr: () => stderr };
}

async function waitExit(child, ms = 5000) {
  if (child.exitCode !== null) return child.exitCode;
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const [code, signal] = await once(child, 'exit');
  clearTimeout(timer);
  return signal ? signal : code;
}

// ---------------------------------------------------------------------------
// Minimal cookie jar (name + path; host is always the provider)
// ---------------------------------------------------------------------------
class CookieJar {
  constructor() { this.cookies = new Map(); }

  store(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let cpath = '/';
      let expired = value === '';
      for (const a of attrs) {
        const [k, v] = a.split('=');
        if (k.toLowerCase() === 'path') cpath = v;
        if (k.toLowerCase() === 'expires' && new Date(v).getTime() <= Date.now()) expired = true;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      const key = `${name}\u0000${cpath}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path: cpath });
    }
  }

  header(urlPath) {
    const matching = [...this.cookies.values()].filter((c) => urlPath === c.path
      || urlPath.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`));
    matching.sort((a, b) => b.path.length - a.path.length);
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

async function request(jar, url, opts = {}) {
  const u = new URL(url);
  const headers = { ...(opts.headers ?? {}) };
  const cookie = jar.header(u.pathname);
  if (cookie) headers.cookie = cookie;
  const res = await fetch(u, { ...opts, headers, redirect: 'manual' });
  jar.store(res);
  const body = await res.text();
  if (verbose) process.stderr.write(`smoke: ${opts.method ?? 'GET'} ${u.pathname} -> ${res.status} ${res.headers.get('location') ?? ''}\n`);
  return { status: res.status, location: res.headers.get('location'), headers: res.headers, body };
}

function formAction(html) {
  const m = /action="(\/interaction\/[^"]+\/login)"/.exec(html);
  return m ? m[1] : undefined;
}

function decodeJwt(jwt) {
  const [h, p, s] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url')),
    payload: JSON.parse(Buffer.from(p, 'base64url')),
    signingInput: `${h}.${p}`,
    signature: Buffer.from(s, 'base64url'),
  };
}

async function verifyJwt(issuer, jwt) {
  const { header, signingInput, signature } = decodeJwt(jwt);
  assert(header.alg === 'RS256', `id token alg ${header.alg}`);
  const jwks = await (await fetch(`${issuer}/jwks`)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert(jwk, 'signing key found in JWKS');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  assert(crypto.verify('sha256', Buffer.from(signingInput), key, signature), 'id token signature verifies');
}

// ---------------------------------------------------------------------------
// Authorization code + PKCE flow
// ---------------------------------------------------------------------------
async function authorize(issuer, jar, { clientId = 'signoff-web', login = 'alice', password = 'pw', checkWrongPassword = false } = {}) {
  const verifier = b64url(crypto.randomBytes(32));
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const state = b64url(crypto.randomBytes(16));
  const nonce = b64url(crypto.randomBytes(16));
  const auth = new URL(`${issuer}/auth`);
  auth.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    scope: 'openid email profile groups',
    redirect_uri: REDIRECT_URI,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();

  let url = auth.toString();
  let res = await request(jar, url);
  let sawLoginForm = false;
  for (let hop = 0; hop < 20; hop += 1) {
    if (res.status >= 300 && res.status < 400) {
      assert(res.location, 'redirect has a Location');
      const next = new URL(res.location, url).toString();
      if (next.startsWith(`${REDIRECT_URI}?`) || next === REDIRECT_URI) {
        const cb = new URL(next);
        assert(!cb.searchParams.get('error'), `callback error: ${next}`);
        assert(cb.searchParams.get('state') === state, 'state round-trips');
        assert(cb.searchParams.get('iss') === issuer, 'iss parameter in callback');
        const code = cb.searchParams.get('code');
        assert(code, 'code in callback');
        return { code, verifier, nonce, state, sawLoginForm };
      }
      assert(next.startsWith(`${issuer}/`), `redirect stays on the provider: ${next}`);
      url = next;
      res = await request(jar, url);
      continue;
    }
    assert(res.status === 200, `unexpected status ${res.status} at ${url}: ${res.body.slice(0, 500)}`);
    const action = formAction(res.body);
    assert(action, `login form found at ${url}: ${res.body.slice(0, 500)}`);
    assert(/<input[^>]*name="login"/.test(res.body) && /<input[^>]*name="password"/.test(res.body), 'login form inputs');
    assert(!/consent/i.test(res.body), 'no consent page');
    sawLoginForm = true;
    const postUrl = `${issuer}${action}`;
    if (checkWrongPassword) {
      checkWrongPassword = false;
      const bad = await request(jar, postUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ login, password: 'wrong' }).toString(),
      });
      assert(bad.status === 401 || bad.status === 200, `wrong password status ${bad.status}`);
      assert(formAction(bad.body) === action, 'wrong password re-renders the same form');
      assert(/Invalid login or password/.test(bad.body), 'wrong password shows an error');
    }
    url = postUrl;
    res = await request(jar, postUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ login, password }).toString(),
    });
  }
  throw new Error('too many redirects');
}

async function exchange(issuer, code, verifier, clientId = 'signoff-web', secret = 'signoff-web-secret') {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    }).toString(),
  });
  const json = await res.json();
  assert(res.status === 200, `token endpoint: ${res.status} ${JSON.stringify(json)}`);
  assert(json.id_token && json.access_token, 'token response has id_token and access_token');
  return json;
}

function arraysEqual(a, b) {
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => x === b[i]);
}

async function main() {
  const { child, issuer, stderr } = await startProvider();
  try {
    // Discovery
    const disco = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    assert(disco.issuer === issuer, 'discovery issuer');
    assert(disco.end_session_endpoint === `${issuer}/session/end`, 'end_session_endpoint in discovery');
    assert(arraysEqual(disco.code_challenge_methods_supported, ['S256']), 'S256 only');
    for (const s of ['openid', 'email', 'profile', 'groups', 'offline_access']) {
      assert(disco.scopes_supported.includes(s), `scope ${s} supported`);
    }

    // Evil / off-pattern redirect URIs are rejected (no redirect to them)
    for (const bad of [
      'http://evil.example/auth/callback',
      'http://localhost:45678/auth/callback',
      'http://127.0.0.1:45678/other',
      'http://127.0.0.1:45678/auth/callback?x=1',
      'https://127.0.0.1:45678/auth/callback',
    ]) {
      const u = new URL(`${issuer}/auth`);
      u.search = new URLSearchParams({
        client_id: 'signoff-web', response_type: 'code', scope: 'openid', redirect_uri: bad,
        state: 's', nonce: 'n', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
      }).toString();
      const r = await request(new CookieJar(), u.toString());
      assert(r.status === 400, `redirect_uri ${bad} rejected with 400 (got ${r.status})`);
      assert(!r.location, `no redirect for ${bad}`);
      assert(/redirect_uri/.test(r.body), `error page mentions redirect_uri for ${bad}`);
    }

    // PKCE is required
    {
      const u = new URL(`${issuer}/auth`);
      u.search = new URLSearchParams({
        client_id: 'signoff-web', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI, state: 's', nonce: 'n',
      }).toString();
      const r = await request(new CookieJar(), u.toString());
      assert(r.status === 303 && r.location?.startsWith(`${REDIRECT_URI}?`), `no-PKCE request redirected with error (${r.status})`);
      const cb = new URL(r.location);
      assert(cb.searchParams.get('error') === 'invalid_request', `no-PKCE error: ${r.location}`);
    }

    // Full flow as alice, with a wrong password attempt first
    const jar = new CookieJar();
    const first = await authorize(issuer, jar, { checkWrongPassword: true });
    assert(first.sawLoginForm, 'login form was shown');
    const tokens = await exchange(issuer, first.code, first.verifier);
    await verifyJwt(issuer, tokens.id_token);
    const { payload } = decodeJwt(tokens.id_token);
    assert(payload.iss === issuer, 'id token iss');
    assert(payload.aud === 'signoff-web', 'id token aud');
    assert(payload.sub === 'u-alice', 'id token sub');
    assert(payload.email === 'alice@example.com', `id token email: ${payload.email}`);
    assert(payload.email_verified === true, 'id token email_verified');
    assert(payload.name === 'Alice Reviewer', `id token name: ${payload.name}`);
    assert(arraysEqual(payload.groups, ['signoff-reviewers']), `id token groups: ${JSON.stringify(payload.groups)}`);
    assert(payload.nonce === first.nonce, 'id token nonce');
    const now = Math.floor(Date.now() / 1000);
    assert(payload.exp > now + 3000 && payload.exp <= now + 3700, `id token exp ~1h (exp ${payload.exp}, now ${now})`);

    // The code cannot be reused
    {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from('signoff-web:signoff-web-secret').toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: first.code, redirect_uri: REDIRECT_URI, code_verifier: first.verifier }).toString(),
      });
      assert(res.status === 400, `code reuse rejected (${res.status})`);
    }

    // Second client (wrong audience for signoff-web), same session, any port works
    {
      const other = await authorize(issuer, jar, { clientId: 'signoff-other' });
      const t = await exchange(issuer, other.code, other.verifier, 'signoff-other', 'signoff-other-secret');
      assert(decodeJwt(t.id_token).payload.aud === 'signoff-other', 'signoff-other id token aud');
    }

    // Clock control: issue an id token that is already expired
    {
      let r = await fetch(`${issuer}/__test/clock`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ offset_s: -7200 }),
      });
      assert(r.status === 200, 'POST /__test/clock');
      r = await fetch(`${issuer}/__test/clock`);
      assert((await r.json()).offset_s === -7200, 'GET /__test/clock returns offset');
      const again = await authorize(issuer, jar);
      const t = await exchange(issuer, again.code, again.verifier);
      const p = decodeJwt(t.id_token).payload;
      const realNow = Math.floor(Date.now() / 1000);
      assert(p.exp < realNow, `expired id token: exp ${p.exp} < now ${realNow}`);
      assert(p.nonce === again.nonce, 'nonce in expired id token');
      r = await fetch(`${issuer}/__test/clock`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ offset_s: 0 }),
      });
      assert((await r.json()).offset_s === 0, 'clock reset');
    }

    // RP-initiated logout: evil post_logout_redirect_uri rejected, good one accepted
    {
      const bad = new URL(`${issuer}/session/end`);
      bad.search = new URLSearchParams({ id_token_hint: tokens.id_token, post_logout_redirect_uri: 'http://evil.example/' }).toString();
      const rb = await request(jar, bad.toString());
      assert(rb.status === 400, `evil post_logout_redirect_uri rejected (${rb.status})`);

      const u = new URL(`${issuer}/session/end`);
      u.search = new URLSearchParams({ id_token_hint: tokens.id_token, post_logout_redirect_uri: POST_LOGOUT_URI, state: 'bye' }).toString();
      const r = await request(jar, u.toString());
      assert(r.status === 200, `logout page (${r.status})`);
      const action = /action="([^"]+)"/.exec(r.body)?.[1];
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(r.body)?.[1];
      assert(action && xsrf && /name="logout" value="yes"/.test(r.body), 'logout form');
      const c = await request(jar, new URL(action, issuer).toString(), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ xsrf, logout: 'yes' }).toString(),
      });
      assert(c.status === 303 && c.location === `${POST_LOGOUT_URI}?state=bye`, `logout redirect: ${c.status} ${c.location}`);
      // After logout, a new authorization shows the login form again
      const after = await authorize(issuer, jar, { login: 'carol' });
      assert(after.sawLoginForm, 'login required after logout');
      const t = await exchange(issuer, after.code, after.verifier);
      const p = decodeJwt(t.id_token).payload;
      assert(p.sub === 'u-carol' && arraysEqual(p.groups, ['signoff-admins', 'signoff-reviewers']), 'carol claims');
    }

    // stdout carried only the ready line so far
    // Clean exit on SIGTERM
    child.kill('SIGTERM');
    const code = await waitExit(child);
    assert(code === 0, `exit on SIGTERM: ${code}`);
  } catch (err) {
    child.kill('SIGKILL');
    if (!verbose) process.stderr.write(`--- provider stderr ---\n${stderr()}\n`);
    throw err;
  }

  // Exit when stdin closes; OIDC_CONFIG port/users/clients honoured
  {
    const p = await startProvider({
      OIDC_CONFIG: JSON.stringify({
        users: [{ login: 'zed', password: 'secret', sub: 'u-zed', email: 'zed@example.com', name: 'Zed', groups: ['g'] }],
        clients: [{
          client_id: 'extra', client_secret: 'extra-secret', token_endpoint_auth_method: 'client_secret_post',
          grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['http://127.0.0.1/auth/callback'],
        }],
      }),
    });
    try {
      const jar = new CookieJar();
      const a = await authorize(p.issuer, jar, { login: 'zed', password: 'secret' });
      const res = await fetch(`${p.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code', code: a.code, redirect_uri: REDIRECT_URI, code_verifier: a.verifier,
          client_id: 'signoff-web', client_secret: 'signoff-web-secret',
        }).toString(),
      });
      // oidc-provider 9 accepts client_secret_post for a client_secret_basic client too
      assert(res.status === 200, `client_secret_post accepted for signoff-web (${res.status})`);
      const b = await authorize(p.issuer, jar, { clientId: 'extra' });
      const res2 = await fetch(`${p.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code', code: b.code, redirect_uri: REDIRECT_URI, code_verifier: b.verifier,
          client_id: 'extra', client_secret: 'extra-secret',
        }).toString(),
      });
      const j = await res2.json();
      assert(res2.status === 200, `extra client token (${res2.status} ${JSON.stringify(j)})`);
      const pl = decodeJwt(j.id_token).payload;
      assert(pl.sub === 'u-zed' && pl.email === 'zed@example.com' && arraysEqual(pl.groups, ['g']), 'custom user claims');
      const denied = await request(new CookieJar(), `${p.issuer}/auth`);
      assert(denied.status === 400, 'sanity');
    } catch (err) {
      p.child.kill('SIGKILL');
      process.stderr.write(`--- provider stderr ---\n${p.stderr()}\n`);
      throw err;
    }
    p.child.stdin.end();
    const code = await waitExit(p.child);
    assert(code === 0, `exit when stdin closes: ${code}`);
    assert(p.lines.length === 1, `exactly one stdout line (got ${p.lines.length})`);
  }
}

main().then(() => {
  console.log('smoke ok');
  process.exit(0);
}, (err) => {
  console.log(`smoke FAILED: ${err.stack ?? err}`);
  process.exit(1);
});
