// Drives the real auth0 Node SDK's AuthenticationClient (`auth0@7.1.0` ships it as
// `auth0/legacy`, i.e. auth0@4.37.1) against the local service: the code exchange with PKCE,
// refresh with rotation, revocation. Run by tests/api/node_auth_sdk.rs, which signs in over
// HTTP (the code) and checks the store afterwards; needs `npm ci` in tests/node. Every step
// prints one line; the last is `result: {json}`. Any failed assertion exits non-zero.
//
// The SDK validates every id_token it receives (RS256 against the JWKS — it accepts RS256 or HS256
// only, so its clients keep the default jwt_configuration.alg —, iss, aud, exp, iat, and
// nonce: equal to the one passed, and absent when none is passed), so each grant below that
// resolves is also a passed id_token check.
//
// Environment:
//   RT_BASE            the local server, e.g. http://127.0.0.1:41234
//   RT_DOMAIN          the tenant domain the SDK is given (the issuer's host), e.g. tenant.test
//   RT_CLIENT_ID       a confidential regular web client (client_secret_post, rotating)
//   RT_CLIENT_SECRET   its secret
//   RT_REDIRECT_URI    the redirect URI the codes were issued for
//   RT_CODE, RT_CODE_VERIFIER, RT_NONCE
//                      a first sign-in's authorization code, the PKCE verifier of its
//                      challenge and its nonce (exchanged, then replayed)
//   RT_CODE2, RT_CODE_VERIFIER2, RT_NONCE2
//                      a second sign-in's (exchanged, rotated, revoked)
//   RT_USER_ID         the user who signed in

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { AuthenticationClient, AuthApiError } from 'auth0/legacy';

function env(name) {
  const v = process.env[name];
  assert.ok(v, `${name} must be set`);
  return v;
}

const base = env('RT_BASE').replace(/\/+$/, '');
const domain = env('RT_DOMAIN');
const clientId = env('RT_CLIENT_ID');
const clientSecret = env('RT_CLIENT_SECRET');
const code = env('RT_CODE');
const codeVerifier = env('RT_CODE_VERIFIER');
const redirectUri = env('RT_REDIRECT_URI');
const nonce = env('RT_NONCE');
const userId = env('RT_USER_ID');

const origin = `https://${domain}`;
const local = new URL(base);

/** Every API request the SDK made (fetch), after rewriting: method, path, body, status. */
const wire = [];

/**
 * The SDK hard-codes `https://${domain}`: send its fetches to the local server over plain HTTP
 * and record them. The `dispatcher` the SDK adds (its `agent` option, below) is for node's
 * http module, not for fetch: drop it.
 */
async function shim(input, init = {}) {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  assert.ok(url.startsWith(`${origin}/`), `the SDK called ${url}, outside ${origin}`);
  const target = base + url.slice(origin.length);
  const { dispatcher: _ignored, ...rest } = init;
  const headers = new Headers(rest.headers);
  const body = rest.body instanceof URLSearchParams ? rest.body.toString() : rest.body;
  const entry = {
    method: rest.method ?? 'GET',
    path: new URL(target).pathname,
    contentType: headers.get('content-type'),
    auth0Client: headers.get('auth0-client'),
    body: typeof body === 'string' ? body : undefined,
    status: undefined,
  };
  wire.push(entry);
  const res = await fetch(target, { ...rest, headers, body });
  entry.status = res.status;
  return res;
}

/**
 * The JWKS is fetched by jose with node's https module (not fetch), through the SDK's `agent`
 * option: this agent claims `https:` and connects every request to the local server in clear.
 */
class LoopbackAgent extends http.Agent {
  constructor() {
    super({ keepAlive: false });
    this.protocol = 'https:';
    this.connections = 0;
  }

  createConnection(_options, callback) {
    this.connections += 1;
    const socket = net.connect({ host: local.hostname, port: Number(local.port) });
    if (callback) {
      socket.once('connect', () => callback(null, socket));
      socket.once('error', (e) => callback(e));
    }
    return socket;
  }
}

function step(name, detail) {
  console.log(`ok - ${name}${detail ? `: ${detail}` : ''}`);
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

function lastTo(path) {
  return wire.filter((w) => w.path === path).at(-1);
}

/** The SDK's error for a refused refresh: AuthApiError 403 invalid_grant with Auth0's text. */
function invalidGrant(err) {
  assert.ok(err instanceof AuthApiError, `AuthApiError expected, got ${err?.constructor?.name}: ${err}`);
  assert.equal(err.statusCode, 403);
  assert.equal(err.error, 'invalid_grant');
  assert.equal(err.error_description, 'Unknown or invalid refresh token.');
  return true;
}

/** The first sign-in: the code exchange, then a replay of the code. */
async function exchangeAndReplay(auth, agent) {
  // --- the code exchange with PKCE (form, client_secret_post); the id_token carries the nonce
  const exchanged = await auth.oauth.authorizationCodeGrantWithPKCE(
    { code, code_verifier: codeVerifier, redirect_uri: redirectUri },
    { idTokenValidateOptions: { nonce } },
  );
  const ex = lastTo('/oauth/token');
  assert.equal(ex.status, 200);
  assert.match(ex.contentType ?? '', /^application\/x-www-form-urlencoded/);
  const form = new URLSearchParams(ex.body);
  assert.equal(form.get('grant_type'), 'authorization_code');
  assert.equal(form.get('client_id'), clientId);
  assert.equal(form.get('client_secret'), clientSecret);
  assert.equal(form.get('code_verifier'), codeVerifier);
  assert.equal(form.get('redirect_uri'), redirectUri);
  const auth0Client = JSON.parse(Buffer.from(ex.auth0Client, 'base64url').toString('utf8'));
  assert.equal(auth0Client.name, 'node-auth0');
  const t0 = exchanged.data.refresh_token;
  assert.match(t0 ?? '', /^rt2_/, 'a rotating client gets a family member');
  assert.equal(exchanged.data.token_type, 'Bearer');
  assert.equal(typeof exchanged.data.expires_in, 'number');
  assert.ok(exchanged.data.access_token);
  const idToken = claims(exchanged.data.id_token);
  assert.equal(idToken.iss, `${origin}/`);
  assert.equal(idToken.aud, clientId);
  assert.equal(idToken.sub, userId);
  assert.equal(idToken.nonce, nonce);
  assert.ok(agent.connections >= 1, 'the id_token was checked against the JWKS, fetched through the agent');
  step(
    'oauth.authorizationCodeGrantWithPKCE',
    `${ex.status}, scope "${exchanged.data.scope}", id_token verified (JWKS over ${agent.connections} connection(s)), nonce matched`,
  );

  // Exchanging the same code again fails (and revokes what it issued: the service's rule).
  await assert.rejects(
    () => auth.oauth.authorizationCodeGrantWithPKCE({ code, code_verifier: codeVerifier, redirect_uri: redirectUri }),
    (err) => {
      assert.ok(err instanceof AuthApiError, `AuthApiError expected, got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.statusCode, 403);
      assert.equal(err.error, 'invalid_grant');
      return true;
    },
  );
  step('oauth.authorizationCodeGrantWithPKCE again', 'AuthApiError 403 invalid_grant');
  await assert.rejects(() => auth.oauth.refreshTokenGrant({ refresh_token: t0 }), invalidGrant);
  step('oauth.refreshTokenGrant after the code was replayed', 'AuthApiError 403 invalid_grant (revoked)');
}

/** The second sign-in (the first one's family was revoked by the replay): rotate, revoke. */
async function rotateAndRevoke(auth, code2, verifier2, nonce2) {
  const exchanged = await auth.oauth.authorizationCodeGrantWithPKCE(
    { code: code2, code_verifier: verifier2, redirect_uri: redirectUri },
    { idTokenValidateOptions: { nonce: nonce2 } },
  );
  const t0 = exchanged.data.refresh_token;
  assert.match(t0 ?? '', /^rt2_/);

  // --- refresh: a successor each time; the SDK validates the id_token, which has no nonce
  const r1 = await auth.oauth.refreshTokenGrant({ refresh_token: t0 });
  const t1 = r1.data.refresh_token;
  const rf = lastTo('/oauth/token');
  assert.equal(rf.status, 200);
  const form = new URLSearchParams(rf.body);
  assert.equal(form.get('grant_type'), 'refresh_token');
  assert.equal(form.get('refresh_token'), t0);
  assert.equal(form.get('client_secret'), clientSecret);
  assert.match(t1 ?? '', /^rt2_/, 'rotation returns a successor');
  assert.notEqual(t1, t0);
  assert.ok(r1.data.id_token, 'openid was granted: an id_token on refresh');
  assert.equal(claims(r1.data.id_token).nonce, undefined, 'no nonce on a refresh-issued id_token');
  assert.equal(claims(r1.data.id_token).sub, userId);
  assert.ok(r1.headers.get('x-ratelimit-limit'), 'rate-limit headers on refresh');
  step('oauth.refreshTokenGrant', `t0 -> t1, id_token verified, no nonce, scope "${r1.data.scope}"`);

  // The previous token again, within the retry window: the SAME successor, no breach.
  const again = await auth.oauth.refreshTokenGrant({ refresh_token: t0 });
  assert.equal(again.data.refresh_token, t1, 'a retry of t0 gets the same successor');
  step('oauth.refreshTokenGrant t0 again (retry window)', 'the same t1');

  const r2 = await auth.oauth.refreshTokenGrant({ refresh_token: t1 });
  const t2 = r2.data.refresh_token;
  assert.match(t2 ?? '', /^rt2_/);
  assert.ok(t2 !== t1 && t2 !== t0, 'three distinct family members');
  step('oauth.refreshTokenGrant', 't1 -> t2');

  // --- a client with the wrong secret cannot revoke: 401
  const intruder = new AuthenticationClient({ domain, clientId, clientSecret: 'not-the-secret', fetch: shim });
  await assert.rejects(
    () => intruder.oauth.revokeRefreshToken({ token: t2 }),
    (err) => {
      assert.ok(err instanceof AuthApiError, `AuthApiError expected, got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.statusCode, 401);
      assert.equal(err.error, 'invalid_client');
      return true;
    },
  );
  step('oauth.revokeRefreshToken with a wrong secret', 'AuthApiError 401 invalid_client');

  // --- revoke the newest token (JSON, 200 with an empty body)
  const revoked = await auth.oauth.revokeRefreshToken({ token: t2 });
  const rv = lastTo('/oauth/revoke');
  assert.equal(rv.status, 200);
  assert.match(rv.contentType ?? '', /^application\/json/);
  const body = JSON.parse(rv.body);
  assert.deepEqual(Object.keys(body).sort(), ['client_id', 'client_secret', 'token']);
  assert.equal(revoked.data, undefined, 'VoidApiResponse');
  assert.equal(revoked.status, 200);
  step('oauth.revokeRefreshToken', `POST /oauth/revoke (JSON) -> ${rv.status}`);

  // Revoking again is still 200 (RFC 7009: an unknown token is not an error).
  await auth.oauth.revokeRefreshToken({ token: t2 });
  assert.equal(lastTo('/oauth/revoke').status, 200);
  step('oauth.revokeRefreshToken again', '200');

  // The newest token, and every other member of its family, is refused from now on.
  for (const [name, t] of [['t2', t2], ['t1', t1], ['t0', t0]]) {
    await assert.rejects(() => auth.oauth.refreshTokenGrant({ refresh_token: t }), invalidGrant);
    step(`oauth.refreshTokenGrant ${name} after revoke`, 'AuthApiError 403 invalid_grant');
  }
}

async function run() {
  const agent = new LoopbackAgent();
  const auth = new AuthenticationClient({ domain, clientId, clientSecret, fetch: shim, agent });
  await exchangeAndReplay(auth, agent);
  await rotateAndRevoke(auth, env('RT_CODE2'), env('RT_CODE_VERIFIER2'), env('RT_NONCE2'));
  const unexpected = wire.filter((w) => w.status >= 500);
  assert.deepEqual(unexpected, [], 'no server errors');
  const count = (p) => wire.filter((w) => w.path === p).length;
  console.log(
    `result: ${JSON.stringify({
      token_requests: count('/oauth/token'),
      revoke_requests: count('/oauth/revoke'),
      requests: wire.length,
    })}`,
  );
}

run().catch((err) => {
  console.error(`not ok - ${err?.stack ?? err}`);
  if (err?.body !== undefined) {
    console.error(`response body: ${typeof err.body === 'string' ? err.body : JSON.stringify(err.body)}`);
  }
  console.error('requests so far:');
  for (const w of wire) {
    console.error(`  ${w.method} ${w.path} -> ${w.status}`);
  }
  process.exit(1);
});
