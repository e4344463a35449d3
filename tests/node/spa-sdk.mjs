// The real auth0-spa-js (v2, pinned in package-lock.json) in a real headless Chromium (Debian's
// chromium, driven by playwright-core) against the local service: loginWithRedirect → the
// service's login form → back to the app → handleRedirectCallback (code + PKCE S256) →
// getTokenSilently twice (each rotates the refresh token) → the oldest token presented again
// (a breach: the family is revoked) → the SDK's next getTokenSilently rejects with invalid_grant;
// then a second sign-in and the SDK's revokeRefreshToken. Run by tests/api/spa_sdk.rs, which
// checks the store afterwards.
//
// The app is served by this script on http://localhost:<port>: an origin the service does not
// own, and a secure context (crypto.subtle, which PKCE needs). The service is
// http://127.0.0.1:<port>, so every token call is a cross-origin, preflighted fetch. The page is
// served by a real loopback server rather than by Playwright's routing: Chromium's Local Network
// Access checks treat a routed page as public and block its fetches to a loopback service.
//
// Environment:
//   RT_BASE            the service, e.g. http://127.0.0.1:41234 (spa-js `domain`, with its scheme)
//   RT_APP_ORIGIN      the app's origin, e.g. http://localhost:41235 (this script listens there)
//   RT_CLIENT_ID       a single-page app client (public, rotating) with that origin and callback
//   RT_USER_EMAIL, RT_USER_PASSWORD, RT_USER_ID   the user who signs in
//   RT_MGMT_TOKEN      a Management API token with read:device_credentials
//   RT_SHOTS           a directory for screenshots
//   CHROMIUM           default /usr/bin/chromium
// The last stdout line is `result: {json}`.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} must be set`);
  return v;
};
const base = env('RT_BASE').replace(/\/+$/, '');
const appOrigin = env('RT_APP_ORIGIN').replace(/\/+$/, '');
const clientId = env('RT_CLIENT_ID');
const userId = env('RT_USER_ID');
const shots = env('RT_SHOTS');
mkdirSync(shots, { recursive: true });

const require = createRequire(import.meta.url);
const spaPackage = require('@auth0/auth0-spa-js/package.json');
const spaDist = join(dirname(require.resolve('@auth0/auth0-spa-js/package.json')), 'dist');
const bundle = readFileSync(join(spaDist, 'auth0-spa-js.production.js'), 'utf8');

const pageUrl = `${appOrigin}/app.html`;
const pageHtml = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>SPA under test</title>
<script src="/auth0-spa-js.production.js"></script></head>
<body><h1>auth0-spa-js ${spaPackage.version} test app</h1><p id="status">loaded</p></body>
</html>`;

/** spa-js's configuration for the first sign-in: tokens in localStorage, requests from the page. */
const config = {
  domain: base,
  clientId,
  useRefreshTokens: true,
  cacheLocation: 'localstorage',
  authorizationParams: { redirect_uri: pageUrl },
};

/** Every POST the page made to /oauth/token and /oauth/revoke, as Chromium saw it on the network. */
const calls = [];
const logs = [];

function step(name, detail) {
  console.log(`ok - ${name}${detail ? `: ${detail}` : ''}`);
}

async function record(request) {
  const path = new URL(request.url()).pathname;
  if (request.method() !== 'POST' || !request.url().startsWith(base) || !['/oauth/token', '/oauth/revoke'].includes(path)) {
    return;
  }
  const entry = { path, done: false };
  calls.push(entry);
  try {
    const headers = await request.allHeaders();
    const raw = request.postData() ?? '';
    const form = (headers['content-type'] ?? '').startsWith('application/json')
      ? new URLSearchParams(JSON.parse(raw))
      : new URLSearchParams(raw);
    entry.grantType = form.get('grant_type');
    entry.sent = form.get('refresh_token');
    entry.form = Object.fromEntries(form);
    entry.contentType = headers['content-type'];
    entry.auth0Client = headers['auth0-client'];
    entry.origin = headers.origin;
    const response = await request.response();
    const responseHeaders = (await response?.allHeaders()) ?? {};
    entry.status = response?.status();
    entry.allowOrigin = responseHeaders['access-control-allow-origin'];
    entry.contentLength = responseHeaders['content-length'];
    const body = path === '/oauth/token' ? await response?.json().catch(() => undefined) : undefined;
    entry.text = path === '/oauth/revoke' ? await response?.text().catch(() => '') : undefined;
    entry.received = body?.refresh_token;
    entry.error = body?.error;
  } catch (e) {
    entry.failure = String(e);
  } finally {
    entry.done = true;
  }
}

/** Waits until `n` calls have been recorded completely (the events trail the page). */
async function settled(n) {
  const deadline = Date.now() + 5000;
  while (calls.length < n || calls.some((c) => !c.done)) {
    assert.ok(Date.now() < deadline, `expected ${n} /oauth calls, saw ${calls.length}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(calls.length, n, `exactly ${n} /oauth calls`);
  return calls;
}

/** loginWithRedirect → the service's login form → back to the app with a code. */
async function signIn(shot) {
  await page.evaluate((cfg) => {
    void new window.auth0.Auth0Client(cfg).loginWithRedirect();
  }, config);
  await page.waitForURL((u) => u.href.startsWith(`${base}/authorize?`));
  const authorize = new URL(page.url()).searchParams;
  await page.getByLabel('Email').fill(env('RT_USER_EMAIL'));
  await page.getByLabel('Password').fill(env('RT_USER_PASSWORD'));
  if (shot) {
    await page.screenshot({ path: join(shots, shot) });
  }
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.href.startsWith(`${pageUrl}?`));
  const callback = new URL(page.url()).searchParams;
  assert.match(callback.get('code') ?? '', /^ac_/);
  assert.equal(callback.get('state'), authorize.get('state'));
  return authorize;
}

/** handleRedirectCallback on a fresh client (`window.spa`): the code exchange. */
async function handleCallback(cfg) {
  return page.evaluate(async (cfg) => {
    window.spa = new window.auth0.Auth0Client(cfg);
    const r = await window.spa.handleRedirectCallback();
    window.history.replaceState({}, '', window.location.pathname);
    const claims = await window.spa.getIdTokenClaims();
    return {
      r,
      authenticated: await window.spa.isAuthenticated(),
      user: await window.spa.getUser(),
      nonce: claims.nonce,
      // spa-js's own field: the Web Worker that holds refresh tokens with the memory cache
      worker: Boolean(window.spa.worker),
    };
  }, cfg);
}

/** A refresh from the page itself, as a script (no SDK): form-encoded, not preflighted. */
async function presentFromPage(token) {
  return page.evaluate(
    async ({ base, clientId, token }) => {
      const r = await fetch(`${base}/oauth/token`, {
        method: 'POST',
        body: new URLSearchParams({ client_id: clientId, grant_type: 'refresh_token', refresh_token: token }),
      });
      return { status: r.status, body: await r.json() };
    },
    { base, clientId, token },
  );
}

const refused = { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' };

function checkWire(c, what, contentType = 'application/x-www-form-urlencoded') {
  assert.equal(c.failure, undefined, `${what}: ${c.failure}`);
  assert.equal(c.origin, appOrigin, `${what}: sent from the app's origin`);
  assert.equal(c.allowOrigin, appOrigin, `${what}: CORS lets the app read the answer`);
  assert.equal(c.contentType, contentType, what);
  const telemetry = JSON.parse(Buffer.from(c.auth0Client ?? '', 'base64').toString('utf8'));
  assert.deepEqual(
    [telemetry.name, telemetry.version],
    ['auth0-spa-js', spaPackage.version],
    `${what}: Auth0-Client header`,
  );
  assert.equal(c.form.client_id, clientId);
}

// The app's own web server: the page and the SDK bundle, nothing else.
const server = http.createServer((req, res) => {
  const path = new URL(req.url, appOrigin).pathname;
  const [status, type, body] =
    path === '/app.html'
      ? [200, 'text/html; charset=utf-8', pageHtml]
      : path === '/auth0-spa-js.production.js'
        ? [200, 'text/javascript; charset=utf-8', bundle]
        : [404, 'text/plain', 'not found'];
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
});
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(new URL(appOrigin).port), '127.0.0.1', resolve);
});
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
}).catch((e) => {
  server.close();
  throw e;
});
const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
const page = await context.newPage();
page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
page.on('pageerror', (e) => logs.push(`pageerror: ${e}`));
page.on('request', (r) => { void record(r); });

let result;
try {
  // --- the app, in a secure context, with the SDK loaded
  await page.goto(pageUrl);
  const context0 = await page.evaluate(() => ({
    secure: window.isSecureContext,
    subtle: typeof crypto.subtle?.digest === 'function',
    sdk: typeof window.auth0?.Auth0Client,
    userAgent: navigator.userAgent,
  }));
  assert.deepEqual([context0.secure, context0.subtle, context0.sdk], [true, true, 'function'], JSON.stringify(context0));
  step('app page', `${pageUrl}, secure context, auth0-spa-js ${spaPackage.version}`);

  // --- loginWithRedirect: the service's /authorize, code + PKCE S256, no `device`
  const authorize = await signIn('spa-sdk-1-login.png');
  assert.equal(authorize.get('client_id'), clientId);
  assert.equal(authorize.get('response_type'), 'code');
  assert.equal(authorize.get('response_mode'), 'query');
  assert.equal(authorize.get('redirect_uri'), pageUrl);
  assert.equal(authorize.get('code_challenge_method'), 'S256');
  assert.match(authorize.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
  assert.ok(authorize.get('scope').split(' ').includes('offline_access'), 'useRefreshTokens asks for offline_access');
  assert.ok(authorize.get('nonce') && authorize.get('state') && authorize.get('auth0Client'));
  assert.equal(authorize.get('device'), null, 'spa-js names no device');
  step('loginWithRedirect', `GET /authorize scope="${authorize.get('scope')}" response_mode=query S256, signed in`);

  // --- handleRedirectCallback: the code exchange; spa-js verifies the id_token (iss, aud, nonce)
  const signedIn = await handleCallback(config);
  assert.equal(signedIn.authenticated, true);
  assert.equal(signedIn.worker, false, 'localStorage: no worker');
  assert.equal(signedIn.user.sub, userId);
  assert.equal(signedIn.user.email, env('RT_USER_EMAIL'));
  assert.equal(signedIn.nonce, authorize.get('nonce'), 'the id_token carries the sign-in nonce');
  const [exchange] = await settled(1);
  checkWire(exchange, 'code exchange');
  assert.equal(exchange.grantType, 'authorization_code');
  assert.equal(exchange.status, 200);
  assert.ok(exchange.form.code_verifier, 'PKCE verifier sent');
  const t0 = exchange.received;
  assert.match(t0 ?? '', /^rt2_/, 'a rotating family member');
  step('handleRedirectCallback', `POST /oauth/token authorization_code -> 200, user ${signedIn.user.email}`);

  // --- getTokenSilently twice, bypassing the cache: each uses the current token and rotates it
  for (const n of [1, 2]) {
    const got = await page.evaluate(() => window.spa.getTokenSilently({ cacheMode: 'off', detailedResponse: true }));
    assert.ok(got.access_token && got.id_token && got.expires_in > 0, JSON.stringify(Object.keys(got)));
    const c = (await settled(1 + n))[n];
    checkWire(c, `refresh ${n}`);
    assert.equal(c.grantType, 'refresh_token');
    assert.equal(c.status, 200);
    assert.equal(c.sent, calls[n - 1].received, `refresh ${n} presents the token the previous call returned`);
    assert.match(c.received ?? '', /^rt2_/);
    step(`getTokenSilently #${n}`, `POST /oauth/token refresh_token t${n - 1} -> 200, returned t${n}`);
  }
  const [t1, t2] = [calls[1].received, calls[2].received];
  assert.equal(new Set([t0, t1, t2]).size, 3, 'three distinct refresh tokens t0 -> t1 -> t2');

  // The credential is listed on the Management API under a name derived from the User-Agent.
  const listing = await fetch(
    `${base}/api/v2/device-credentials?type=refresh_token&user_id=${encodeURIComponent(userId)}&client_id=${clientId}`,
    { headers: { authorization: `Bearer ${env('RT_MGMT_TOKEN')}` } },
  );
  assert.equal(listing.status, 200);
  const credentials = await listing.json();
  assert.equal(credentials.length, 1, JSON.stringify(credentials));
  const deviceName = credentials[0].device_name;
  step('device credential', `one, named "${deviceName}"`);

  // --- t0 again, from the page: two generations back, so a reuse whatever the retry window
  const reuse = await presentFromPage(t0);
  assert.equal(reuse.status, 403);
  assert.deepEqual(reuse.body, refused);
  assert.equal((await settled(4))[3].allowOrigin, appOrigin);
  step('reuse of t0', '403 invalid_grant (readable cross-origin): the family is revoked');

  // --- the SDK's next refresh presents t2, which went with the family
  const failed = await page.evaluate(async () => {
    try {
      await window.spa.getTokenSilently({ cacheMode: 'off' });
      return { resolved: true };
    } catch (e) {
      return { error: e?.error, error_description: e?.error_description, message: e?.message };
    }
  });
  assert.deepEqual({ error: failed.error, error_description: failed.error_description }, refused, JSON.stringify(failed));
  const last = (await settled(5))[4];
  checkWire(last, 'refresh after reuse');
  assert.equal(last.sent, t2, 'the SDK presented its newest token');
  assert.equal(last.status, 403);
  step('getTokenSilently after the reuse', `rejects: error=${failed.error} "${failed.error_description}"`);

  // --- sign in again (a new family), this time with spa-js's default memory cache (refresh
  // tokens held in a Web Worker, which makes the token calls) and JSON bodies (`useFormData:
  // false`, spa-js v1's default); one refresh, then the SDK's revokeRefreshToken (preflighted)
  const json = 'application/json';
  await signIn();
  const second = await handleCallback({ ...config, cacheLocation: 'memory', useFormData: false });
  assert.deepEqual([second.authenticated, second.worker], [true, true]);
  const again = (await settled(6))[5];
  checkWire(again, 'second code exchange (JSON)', json);
  assert.equal(again.status, 200);
  const t3 = again.received;
  assert.ok(t3 && ![t0, t1, t2].includes(t3), 'a new family');
  await page.evaluate(() => window.spa.getTokenSilently({ cacheMode: 'off' }));
  const fromWorker = (await settled(7))[6];
  checkWire(fromWorker, 'refresh from the worker (JSON)', json);
  assert.deepEqual([fromWorker.status, fromWorker.sent], [200, t3]);
  const t4 = fromWorker.received;
  assert.ok(t4 && t4 !== t3, 'rotated');
  await page.evaluate(() => window.spa.revokeRefreshToken());
  const revoke = (await settled(8))[7];
  checkWire(revoke, 'revoke (JSON)', json);
  assert.equal(revoke.path, '/oauth/revoke');
  assert.deepEqual(revoke.form, { client_id: clientId, token_type_hint: 'refresh_token', token: t4 });
  assert.equal(revoke.status, 200);
  assert.equal(revoke.text, '', 'an empty body');
  assert.ok([undefined, '0'].includes(revoke.contentLength), `content-length ${revoke.contentLength}`);
  step('second sign-in (memory cache, worker, JSON)', 'code exchange -> 200 (t3), refresh from the worker -> 200 (t4)');
  step('revokeRefreshToken', 'POST /oauth/revoke (JSON, preflighted) -> 200, empty body');
  const afterRevoke = await presentFromPage(t4);
  assert.deepEqual([afterRevoke.status, afterRevoke.body], [403, refused], 'the revoked token is refused');
  await settled(9);
  step('the revoked token', '403 invalid_grant');

  await page.evaluate((text) => {
    document.getElementById('status').textContent = text;
  }, `signed in, rotated twice, family revoked after reuse (${failed.error}); signed in again and revoked`);
  await page.screenshot({ path: join(shots, 'spa-sdk-2-done.png') });
  const errors = logs.filter((l) => l.startsWith('pageerror'));
  assert.deepEqual(errors, [], 'no uncaught page error');
  result = { user_agent: context0.userAgent, device_name: deviceName, oauth_calls: calls.length };
} catch (err) {
  console.error(`not ok - ${err?.stack ?? err}`);
  console.error(`page: ${page.url()}`);
  await page.screenshot({ path: join(shots, 'spa-sdk-failure.png') }).catch(() => {});
  console.error(`screenshot: ${join(shots, 'spa-sdk-failure.png')}`);
  console.error('token calls:');
  for (const c of calls) {
    const { form: _form, sent, received, ...rest } = c;
    const tail = (t) => (t ? `…${t.slice(-6)}` : t);
    console.error(`  ${JSON.stringify({ ...rest, sent: tail(sent), received: tail(received) })}`);
  }
  console.error('browser log:');
  for (const l of logs) {
    console.error(`  ${l}`);
  }
  process.exitCode = 1;
} finally {
  await browser.close();
  server.close();
}
if (result) {
  console.log(`result: ${JSON.stringify(result)}`);
}
