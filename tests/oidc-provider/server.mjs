// Test OpenID Provider for Signoff end-to-end tests.
//
// Runs panva's `oidc-provider` (9.13.3) on 127.0.0.1 with:
//   - fixed test clients and users (overridable through OIDC_CONFIG),
//   - a tiny login form (no consent page: consent is granted automatically),
//   - redirect URIs accepted for any port on http://127.0.0.1,
//   - a test-only clock control (POST/GET /__test/clock).
//
// When ready it prints exactly one line to stdout:
//   {"issuer":"http://127.0.0.1:PORT"}
// Everything else goes to stderr. See README.md.

import * as http from 'node:http';

// ---------------------------------------------------------------------------
// stdout is reserved for the single "ready" line. oidc-provider prints its
// notices with console.info (stdout): send all console output to stderr.
// This must happen before oidc-provider is loaded (hence the dynamic import).
// ---------------------------------------------------------------------------
const toStderr = (...args) => console.error(...args);
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;

// ---------------------------------------------------------------------------
// Clock control: an offset (seconds) added to Date.now() for the whole process.
// ---------------------------------------------------------------------------
const realDateNow = Date.now.bind(Date);
let clockOffsetS = 0;
Date.now = () => realDateNow() + clockOffsetS * 1000;

function log(...args) {
  process.stderr.write(`[oidc-provider-test] ${args.join(' ')}\n`);
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------
let config = {};
if (process.env.OIDC_CONFIG && process.env.OIDC_CONFIG.trim() !== '') {
  try {
    config = JSON.parse(process.env.OIDC_CONFIG);
  } catch (err) {
    log(`OIDC_CONFIG is not valid JSON: ${err.message}`);
    process.exit(2);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    log('OIDC_CONFIG must be a JSON object');
    process.exit(2);
  }
}

const port = config.port === undefined ? 0 : Number(config.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  log(`invalid port in OIDC_CONFIG: ${config.port}`);
  process.exit(2);
}

// Any http://127.0.0.1:<port>/auth/callback (the RP under test binds port 0).
const LOOPBACK_CALLBACK = /^http:\/\/127\.0\.0\.1:([0-9]{1,5})\/auth\/callback$/;
// Any http://127.0.0.1:<port>/ or http://127.0.0.1:<port>/auth/logged-out
const LOOPBACK_POST_LOGOUT = /^http:\/\/127\.0\.0\.1:([0-9]{1,5})\/(auth\/logged-out)?$/;

function matchesLoopback(re, value) {
  if (typeof value !== 'string') return false;
  const m = re.exec(value);
  if (!m) return false;
  const p = Number(m[1]);
  return p >= 1 && p <= 65535 && String(p) === m[1];
}

function defaultClient(clientId, clientSecret) {
  return {
    client_id: clientId,
    client_secret: clientSecret,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    // Placeholders: the real check accepts any port (see redirectUriAllowed below).
    redirect_uris: ['http://127.0.0.1/auth/callback'],
    post_logout_redirect_uris: ['http://127.0.0.1/', 'http://127.0.0.1/auth/logged-out'],
  };
}

const clientsById = new Map();
for (const c of [
  defaultClient('signoff-web', 'signoff-web-secret'),
  defaultClient('signoff-other', 'signoff-other-secret'),
]) {
  clientsById.set(c.client_id, c);
}
if (config.clients !== undefined) {
  if (!Array.isArray(config.clients)) {
    log('OIDC_CONFIG.clients must be an array');
    process.exit(2);
  }
  for (const c of config.clients) {
    if (!c || typeof c.client_id !== 'string') {
      log('every OIDC_CONFIG.clients entry needs a client_id');
      process.exit(2);
    }
    clientsById.set(c.client_id, c); // replaces a default client with the same id
  }
}
const clients = [...clientsById.values()];

const defaultUsers = [
  { login: 'alice', password: 'pw', sub: 'u-alice', email: 'alice@example.com', name: 'Alice Reviewer', groups: ['signoff-reviewers'] },
  { login: 'bob', password: 'pw', sub: 'u-bob', email: 'bob@example.com', name: 'Bob Reviewer', groups: ['signoff-reviewers'] },
  { login: 'carol', password: 'pw', sub: 'u-carol', email: 'carol@example.com', name: 'Carol Admin', groups: ['signoff-admins', 'signoff-reviewers'] },
  { login: 'dave', password: 'pw', sub: 'u-dave', email: 'dave@example.com', name: 'Dave Nobody', groups: ['staff'] },
  { login: 'olga', password: 'pw', sub: 'u-olga', email: 'olga@example.com', name: 'Olga Auditor', groups: ['signoff-auditors'] },
  { login: 'erin', password: 'pw', sub: 'u-erin', email: 'erin@example.com', name: 'Erin Requester', groups: ['signoff-reviewers'] },
  // The provider does not vouch for uma's email, and sends none for nia.
  { login: 'uma', password: 'pw', sub: 'u-uma', email: 'uma@example.com', email_verified: false, name: 'Uma Unverified', groups: ['signoff-reviewers'] },
  { login: 'nia', password: 'pw', sub: 'u-nia', email: null, name: 'Nia Noemail', groups: ['signoff-reviewers'] },
];
let users = defaultUsers;
if (config.users !== undefined) {
  if (!Array.isArray(config.users)) {
    log('OIDC_CONFIG.users must be an array');
    process.exit(2);
  }
  users = config.users.map((u) => {
    const login = u.login ?? (typeof u.email === 'string' ? u.email.split('@')[0] : undefined);
    return {
      login,
      password: u.password ?? 'pw',
      sub: u.sub ?? `u-${login}`,
      email: u.email === null ? null : (u.email ?? `${login}@example.com`),
      email_verified: u.email_verified ?? true,
      name: u.name ?? login,
      groups: u.groups ?? [],
    };
  });
}
const usersByLogin = new Map(users.map((u) => [u.login, u]));
const usersBySub = new Map(users.map((u) => [u.sub, u]));

// ---------------------------------------------------------------------------
// Provider (created once the port is known, because the issuer contains it)
// ---------------------------------------------------------------------------
const { default: Provider, errors } = await import('oidc-provider');

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', () => {
    server.off('error', reject);
    resolve();
  });
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const htmlEscape = (s) => String(s)
  .replace(/&/g, '&amp;')
  .replace(/</g, '&lt;')
  .replace(/>/g, '&gt;')
  .replace(/"/g, '&quot;')
  .replace(/'/g, '&#39;');

const provider = new Provider(issuer, {
  clients,
  cookies: {
    // Fixed test keys; cookies are not marked secure because the issuer is
    // plain http (oidc-provider only sets `secure` on https requests).
    keys: ['signoff-test-cookie-key-1', 'signoff-test-cookie-key-2'],
  },
  findAccount: async (ctx, sub) => {
    const user = usersBySub.get(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      claims: async () => ({
        sub: user.sub,
        email: user.email ?? undefined,
        email_verified: user.email ? user.email_verified !== false : undefined,
        name: user.name,
        groups: user.groups,
      }),
    };
  },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  pkce: {
    required: () => true, // only S256 is supported by oidc-provider 9
  },
  allowOmittingSingleRegisteredRedirectUri: false,
  clientBasedCORS: () => false,
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      // Auto-confirm: the page holds the form (xsrf + logout=yes) and submits
      // itself in a browser; a test client can POST the same form fields.
      logoutSource: async (ctx, form) => {
        const autoForm = form.replace('</form>',
          '<input type="hidden" name="logout" value="yes"/><button type="submit">Sign out</button></form>');
        ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign out</title></head><body>${autoForm}<script>document.forms[0].submit()</script></body></html>`;
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.body = '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Signed out</title></head><body><p>Signed out.</p></body></html>';
      },
    },
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Error</title></head><body><h1>${htmlEscape(out.error)}</h1><p>${htmlEscape(out.error_description ?? '')}</p></body></html>`;
  },
  ttl: {
    AccessToken: 3600,
    IdToken: 3600,
    AuthorizationCode: 60,
  },
});

// Accept any port on the 127.0.0.1 loopback for redirect_uri and
// post_logout_redirect_uri (exact paths only), in addition to registered URIs.
const origRedirectUriAllowed = provider.Client.prototype.redirectUriAllowed;
provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
  return matchesLoopback(LOOPBACK_CALLBACK, value) || origRedirectUriAllowed.call(this, value);
};
const origPostLogoutAllowed = provider.Client.prototype.postLogoutRedirectUriAllowed;
provider.Client.prototype.postLogoutRedirectUriAllowed = function postLogoutRedirectUriAllowed(value) {
  return matchesLoopback(LOOPBACK_POST_LOGOUT, value) || origPostLogoutAllowed.call(this, value);
};

provider.on('server_error', (ctx, err) => log('server_error', err?.stack ?? err));
provider.on('authorization.error', (ctx, err) => log('authorization.error', err.message, err.error_description ?? ''));
provider.on('grant.error', (ctx, err) => log('grant.error', err.message, err.error_description ?? ''));
provider.on('end_session.error', (ctx, err) => log('end_session.error', err.message, err.error_description ?? ''));

const providerCallback = provider.callback();

// ---------------------------------------------------------------------------
// Interactions (login form; consent granted automatically)
// ---------------------------------------------------------------------------
function loginPage(uid, error) {
  const err = error ? `<p class="error">${htmlEscape(error)}</p>` : '';
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign in</title></head><body>
<h1>Sign in</h1>
${err}<form method="post" action="/interaction/${htmlEscape(uid)}/login">
<input type="text" name="login" autofocus>
<input type="password" name="password">
<button type="submit">Sign in</button>
</form>
</body></html>
`;
}

function sendHtml(res, status, body) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(body);
}

function sendJson(res, status, obj) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(obj));
}

async function readBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function autoConsent(req, res, details) {
  const { prompt: { details: missing }, params, session } = details;
  let grant;
  if (details.grantId) {
    grant = await provider.Grant.find(details.grantId);
  }
  if (!grant) {
    grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  }
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  log(`auto-consent for ${params.client_id} (${details.prompt.reasons.join(', ')})`);
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

async function handleInteraction(req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    const status = err instanceof errors.SessionNotFound ? 400 : 500;
    sendHtml(res, status, `<!DOCTYPE html><html><body><h1>interaction error</h1><p>${htmlEscape(err.message)}: ${htmlEscape(err.error_description ?? "")}</p></body></html>`);
    return;
  }
  if (details.uid !== uid) {
    sendHtml(res, 400, '<!DOCTYPE html><html><body><h1>interaction error</h1><p>interaction mismatch</p></body></html>');
    return;
  }

  if (action === undefined && req.method === 'GET') {
    if (details.prompt.name === 'consent') {
      await autoConsent(req, res, details);
      return;
    }
    sendHtml(res, 200, loginPage(uid));
    return;
  }

  if (action === 'login' && req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    const login = form.get('login') ?? '';
    const password = form.get('password') ?? '';
    const user = usersByLogin.get(login);
    if (!user || user.password !== password) {
      log(`login failed for "${login}"`);
      sendHtml(res, 401, loginPage(uid, 'Invalid login or password.'));
      return;
    }
    log(`login ok for "${login}" (${user.sub})`);
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    return;
  }

  sendHtml(res, 405, '<!DOCTYPE html><html><body><h1>method not allowed</h1></body></html>');
}

// ---------------------------------------------------------------------------
// Request routing
// ---------------------------------------------------------------------------
// Cookie expiry dates are computed from the shifted Date.now(); shift them back
// to real time so that clients (which use the real clock) keep the cookies
// while a clock offset is set. Deletions (expires=epoch 0) are left alone.
function unshiftCookieExpiry(value) {
  if (clockOffsetS === 0) return value;
  const fix = (c) => String(c).replace(/;\s*expires=([^;]+)/i, (all, date) => {
    const t = Date.parse(date);
    if (!Number.isFinite(t) || t <= 0) return all;
    return `; expires=${new Date(t - clockOffsetS * 1000).toUTCString()}`;
  });
  return Array.isArray(value) ? value.map(fix) : fix(value);
}

server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  const origSetHeader = res.setHeader;
  res.setHeader = function setHeader(name, value) {
    if (String(name).toLowerCase() === 'set-cookie') {
      return origSetHeader.call(this, name, unshiftCookieExpiry(value));
    }
    return origSetHeader.call(this, name, value);
  };
  try {
    if (url.pathname === '/__test/clock') {
      if (req.method === 'GET') {
        sendJson(res, 200, { offset_s: clockOffsetS });
        return;
      }
      if (req.method === 'POST') {
        let body;
        try {
          body = JSON.parse(await readBody(req));
        } catch {
          sendJson(res, 400, { error: 'body must be JSON {"offset_s": N}' });
          return;
        }
        const n = Number(body?.offset_s);
        if (!Number.isFinite(n)) {
          sendJson(res, 400, { error: 'offset_s must be a number' });
          return;
        }
        clockOffsetS = n;
        log(`clock offset set to ${n}s`);
        sendJson(res, 200, { offset_s: clockOffsetS });
        return;
      }
      sendJson(res, 405, { error: 'method not allowed' });
      return;
    }

    const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?\/?$/.exec(url.pathname);
    if (m) {
      await handleInteraction(req, res, m[1], m[2]);
      return;
    }

    providerCallback(req, res);
  } catch (err) {
    log('request error', err?.stack ?? err);
    if (!res.headersSent) {
      sendHtml(res, 500, '<!DOCTYPE html><html><body><h1>internal error</h1></body></html>');
    } else {
      res.end();
    }
  }
});

// ---------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------
let shuttingDown = false;
function shutdown(reason) {
  if (shuttingDown) return;
  shuttingDown = true;
  log(`shutting down (${reason})`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (config.exit_on_stdin_close !== false) {
  process.stdin.on('end', () => shutdown('stdin end'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

log(`listening on ${issuer}`);
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
