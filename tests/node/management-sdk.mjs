// Drives the real auth0 Node SDK v7 ManagementClient against the local service.
// Run by tests/api/node_sdk.rs (which seeds the data and checks the side effects afterwards);
// needs `npm ci` in tests/node. Every step prints one summary line; the last line is
// `result: {json}` for the Rust side. Any failed assertion exits non-zero.
//
// Environment:
//   RT_BASE               the local server, e.g. http://127.0.0.1:41234
//   RT_DOMAIN             the tenant domain the SDK is given (the issuer's host), e.g. tenant.test
//   RT_CLIENT_ID          a machine-to-machine client holding every Management API scope
//   RT_CLIENT_SECRET      its secret
//   RT_USER_ID            the seeded user, whose device credentials are listed
//   RT_APP_CLIENT_ID      the native app client the credentials belong to
//   RT_EXPECTED_COUNT     how many refresh-token credentials the user has
//   RT_PHONE_DEVICE       the device name of the one credential to delete (sdk-phone)
//   RT_PHONE_CREDENTIAL_ID  its id (dcr_…)
//   RT_NEW_USER_EMAIL     the e-mail of the user to create and delete

import assert from 'node:assert/strict';
import { ManagementClient, ManagementError, Management } from 'auth0';

function env(name) {
  const v = process.env[name];
  assert.ok(v, `${name} must be set`);
  return v;
}

const base = env('RT_BASE').replace(/\/+$/, '');
const domain = env('RT_DOMAIN');
const clientId = env('RT_CLIENT_ID');
const clientSecret = env('RT_CLIENT_SECRET');
const userId = env('RT_USER_ID');
const appClientId = env('RT_APP_CLIENT_ID');
const expectedCount = Number(env('RT_EXPECTED_COUNT'));
const phoneDevice = env('RT_PHONE_DEVICE');
const phoneCredentialId = env('RT_PHONE_CREDENTIAL_ID');
const newUserEmail = env('RT_NEW_USER_EMAIL');

const origin = `https://${domain}`;

/** Every request the SDK made, after rewriting: method, path+query, a few headers, status. */
const wire = [];

/**
 * The SDK hard-codes `https://${domain}`: send it to the local server over plain HTTP instead,
 * through the global fetch, and record what went out and what came back.
 */
async function shim(input, init = {}) {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  assert.ok(url.startsWith(`${origin}/`), `the SDK called ${url}, outside ${origin}`);
  const target = base + url.slice(origin.length);
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  const method = init.method ?? (input instanceof Request ? input.method : 'GET');
  const u = new URL(target);
  const entry = {
    method,
    path: u.pathname + u.search,
    contentType: headers.get('content-type'),
    authorization: headers.get('authorization'),
    auth0Client: headers.get('auth0-client'),
    body: typeof init.body === 'string' ? init.body : undefined,
    status: undefined,
  };
  wire.push(entry);
  const res = await fetch(target, { ...init, headers, method });
  entry.status = res.status;
  return res;
}

function step(name, detail) {
  console.log(`ok - ${name}${detail ? `: ${detail}` : ''}`);
}

function requestsTo(prefix) {
  return wire.filter((w) => w.path.startsWith(prefix));
}

async function main() {
  const management = new ManagementClient({ domain, clientId, clientSecret, fetch: shim });

  // --- device credentials: list, auto-paged (v7 always sends page=0&per_page=50&include_totals=true)
  const first = await management.deviceCredentials.list({ user_id: userId, type: 'refresh_token' });

  // The token came from the service itself, by client_credentials, form-encoded.
  const tokenCalls = requestsTo('/oauth/token');
  assert.equal(tokenCalls.length, 1, 'one client_credentials request');
  const tc = tokenCalls[0];
  assert.equal(tc.method, 'POST');
  assert.equal(tc.status, 200, 'the token endpoint answered 200');
  assert.match(tc.contentType ?? '', /^application\/x-www-form-urlencoded/);
  const form = new URLSearchParams(tc.body);
  assert.equal(form.get('grant_type'), 'client_credentials');
  assert.equal(form.get('client_id'), clientId);
  assert.equal(form.get('audience'), `${origin}/api/v2/`);
  step('token', `POST /oauth/token (form, audience ${form.get('audience')}) -> ${tc.status}`);

  assert.equal(first.data.length, 50, 'the first page is full (per_page defaults to 50)');
  assert.equal(first.response.total, expectedCount, 'include_totals=true: the envelope carries the total');
  assert.equal(first.response.start, 0);
  assert.equal(first.response.limit, 50);
  assert.ok(first.hasNextPage(), 'a full page has a next page');
  const firstList = requestsTo('/api/v2/device-credentials?')[0];
  assert.ok(firstList.authorization?.startsWith('Bearer '), 'the list call carries the bearer token');
  assert.ok(firstList.auth0Client, 'telemetry header sent');

  const items = [];
  for await (const item of first) {
    items.push(item);
  }
  const listCalls = requestsTo('/api/v2/device-credentials?');
  const pages = listCalls.map((w) => new URL(w.path, base).searchParams.get('page'));
  assert.equal(items.length, expectedCount, 'auto-paging yields every credential');
  assert.ok(listCalls.length >= 3, `auto-paging took ${listCalls.length} requests`);
  assert.deepEqual(
    pages,
    listCalls.map((_, i) => String(i)),
    'pages requested in order from 0',
  );
  for (const w of listCalls) {
    const q = new URL(w.path, base).searchParams;
    assert.equal(q.get('per_page'), '50');
    assert.equal(q.get('include_totals'), 'true');
    assert.equal(q.get('user_id'), userId);
    assert.equal(q.get('type'), 'refresh_token');
    assert.equal(w.status, 200);
  }
  assert.equal(new Set(items.map((i) => i.id)).size, items.length, 'no credential listed twice across pages');
  for (const item of items) {
    assert.match(item.id, /^dcr_[A-Za-z0-9]{16}$/);
    assert.equal(item.type, 'refresh_token');
    assert.equal(item.user_id, userId);
    assert.equal(item.client_id, appClientId);
    assert.equal(typeof item.device_name, 'string');
  }
  const phones = items.filter((i) => i.device_name === phoneDevice);
  assert.equal(phones.length, 1, `exactly one ${phoneDevice} credential`);
  assert.equal(phones[0].id, phoneCredentialId);
  step(
    'deviceCredentials.list',
    `${items.length} credentials over ${listCalls.length} requests (pages ${pages.join(',')}), total=${first.response.total}`,
  );

  // --- device credentials: delete the phone's refresh token (204 -> resolves)
  const deleted = await management.deviceCredentials.delete(phoneCredentialId);
  assert.equal(deleted, undefined, 'delete resolves to undefined');
  const del = requestsTo(`/api/v2/device-credentials/${phoneCredentialId}`).at(-1);
  assert.equal(del.method, 'DELETE');
  assert.equal(del.status, 204);
  step('deviceCredentials.delete', `${phoneCredentialId} -> ${del.status}`);

  // The list now has one fewer, and not that one.
  const after = await management.deviceCredentials.list({ user_id: userId, type: 'refresh_token' });
  assert.equal(after.response.total, expectedCount - 1);
  const remaining = [];
  for await (const item of after) {
    remaining.push(item.id);
  }
  assert.equal(remaining.length, expectedCount - 1);
  assert.ok(!remaining.includes(phoneCredentialId), 'the deleted credential is no longer listed');
  step('deviceCredentials.list after delete', `${remaining.length} credentials`);

  // --- users: create, get (the id holds a `|`), search by e-mail, delete
  const password = `Sdk-${Math.random().toString(36).slice(2)}-Aa1!`;
  const created = await management.users.create({
    connection: 'Username-Password-Authentication',
    email: newUserEmail,
    password,
    name: 'SDK Test User',
  });
  assert.match(created.user_id, /^auth0\|[0-9a-f]{24}$/);
  assert.equal(created.email, newUserEmail);
  assert.equal(created.name, 'SDK Test User');
  assert.equal(requestsTo('/api/v2/users').filter((w) => w.method === 'POST').at(-1).status, 201);
  step('users.create', `${created.user_id} -> 201`);

  const got = await management.users.get(created.user_id);
  const getCall = wire.filter((w) => w.method === 'GET' && w.path.startsWith('/api/v2/users/')).at(-1);
  assert.ok(
    getCall.path.startsWith(`/api/v2/users/${encodeURIComponent(created.user_id)}`),
    `the SDK percent-encodes the id: ${getCall.path}`,
  );
  assert.equal(got.user_id, created.user_id);
  assert.equal(got.email, newUserEmail);
  assert.equal(got.name, 'SDK Test User');
  assert.ok(Array.isArray(got.identities) && got.identities[0].connection === 'Username-Password-Authentication');
  step('users.get', `${getCall.path} -> ${getCall.status}`);

  const search = await management.users.list({ q: `email:"${newUserEmail}"` });
  const found = [];
  for await (const u of search) {
    found.push(u);
  }
  assert.equal(found.length, 1, 'the search finds the new user');
  assert.equal(found[0].user_id, created.user_id);
  assert.equal(search.response.total, 1);
  step('users.list q=email', `${found.length} found`);

  // Auto-paged list of every user: the seeded user and the new one are both there.
  const everyone = [];
  for await (const u of await management.users.list()) {
    everyone.push(u.user_id);
  }
  assert.ok(everyone.includes(created.user_id), 'the new user is listed');
  assert.ok(everyone.includes(userId), 'the seeded user is listed');
  step('users.list', `${everyone.length} users`);

  const gone = await management.users.delete(created.user_id);
  assert.equal(gone, undefined);
  const delUser = wire.filter((w) => w.method === 'DELETE' && w.path.startsWith('/api/v2/users/')).at(-1);
  assert.equal(delUser.path, `/api/v2/users/${encodeURIComponent(created.user_id)}`);
  assert.equal(delUser.status, 204);
  step('users.delete', `${delUser.path} -> ${delUser.status}`);

  // --- errors: typed NotFoundError for an unknown user (and for the one just deleted)
  for (const id of ['auth0|000000000000000000000000', created.user_id]) {
    await assert.rejects(
      () => management.users.get(id),
      (err) => {
        assert.ok(err instanceof Management.NotFoundError, `NotFoundError expected, got ${err?.constructor?.name}: ${err}`);
        assert.ok(err instanceof ManagementError);
        assert.equal(err.statusCode, 404);
        assert.equal(err.body?.statusCode, 404);
        assert.equal(err.body?.error, 'Not Found');
        assert.equal(typeof err.body?.message, 'string');
        return true;
      },
    );
  }
  step('users.get unknown', 'Management.NotFoundError 404');

  // --- clients: the refresh_token object, token_endpoint_auth_method and allowed_logout_urls
  const rotating = {
    rotation_type: 'rotating',
    expiration_type: 'expiring',
    leeway: 3,
    token_lifetime: 86400,
    infinite_token_lifetime: false,
    idle_token_lifetime: 1296000,
    infinite_idle_token_lifetime: true,
  };
  const spa = await management.clients.create({
    name: 'SDK SPA',
    app_type: 'spa',
    allowed_logout_urls: ['https://spa.example.com/bye'],
    refresh_token: {
      rotation_type: 'rotating',
      expiration_type: 'expiring',
      leeway: 3,
      token_lifetime: 86400,
      infinite_token_lifetime: false,
    },
  });
  assert.equal(spa.token_endpoint_auth_method, 'none', 'a public client authenticates with none');
  assert.equal(spa.client_secret, undefined);
  assert.deepEqual(spa.allowed_logout_urls, ['https://spa.example.com/bye']);
  assert.deepEqual(spa.refresh_token, rotating, 'unset properties take the defaults');
  const { rotation_type: rotation, expiration_type: expiration } = spa.refresh_token;
  step('clients.create', `${spa.client_id} refresh_token ${rotation}/${expiration}`);

  // The SDK's types require rotation_type and expiration_type; the rest is merged.
  const updated = await management.clients.update(spa.client_id, {
    refresh_token: { rotation_type: 'non-rotating', expiration_type: 'expiring' },
  });
  const patch = wire.filter((w) => w.method === 'PATCH').at(-1);
  assert.equal(patch.path, `/api/v2/clients/${spa.client_id}`);
  assert.match(patch.contentType ?? '', /^application\/json/);
  assert.deepEqual(updated.refresh_token, { ...rotating, rotation_type: 'non-rotating' }, 'the other properties stay');
  const fetched = await management.clients.get(spa.client_id);
  assert.deepEqual(fetched.refresh_token, updated.refresh_token);
  step('clients.update', `PATCH ${patch.path} -> ${patch.status}`);

  await assert.rejects(
    () =>
      management.clients.update(spa.client_id, {
        refresh_token: { rotation_type: 'rotating', expiration_type: 'expiring', leeway: 61 },
      }),
    (err) => {
      assert.ok(
        err instanceof Management.BadRequestError,
        `BadRequestError expected, got ${err?.constructor?.name}: ${err}`,
      );
      assert.equal(err.statusCode, 400);
      assert.equal(err.body?.errorCode, 'invalid_body');
      return true;
    },
  );
  step('clients.update leeway 61', 'Management.BadRequestError 400');

  // Only one client_credentials exchange for the whole run: the SDK cached the token.
  assert.equal(requestsTo('/oauth/token').length, 1, 'the token was reused');
  const unexpected = wire.filter((w) => w.status >= 500);
  assert.deepEqual(unexpected, [], 'no server errors (the SDK retries those silently)');
  step('wire', `${wire.length} requests, 1 token request`);

  console.log(
    `result: ${JSON.stringify({
      listed: items.length,
      deleted_credential: phoneCredentialId,
      created_user: created.user_id,
      created_client: spa.client_id,
      requests: wire.length,
    })}`,
  );
}

main().catch((err) => {
  console.error(`not ok - ${err?.stack ?? err}`);
  if (err?.body !== undefined) {
    console.error(`response body: ${JSON.stringify(err.body)}`);
  }
  console.error('requests so far:');
  for (const w of wire) {
    console.error(`  ${w.method} ${w.path} -> ${w.status}`);
  }
  process.exit(1);
});
