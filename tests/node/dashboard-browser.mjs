// The administrators' dashboard in a real headless Chromium (Debian's chromium, driven by
// playwright-core): sign in → Users → the user → Devices (my-device, 2 tokens) → X → UNLINK.
// Also: a device named like an HTML payload renders as text and runs nothing; the flow works
// without JavaScript (confirmation page); a non-administrator cannot sign in; the layout on a
// phone; the History tab lists the user's audit events (sign-ins, exchanges, the UNLINK just
// done, by the dashboard) newest first, 25 a page with a cursor to the older ones. Screenshots
// of each step go to RT_SHOTS. Run by tests/api/dashboard_browser.rs.
//
// Environment: RT_BASE, RT_ADMIN_EMAIL, RT_ADMIN_PASSWORD, RT_USER_EMAIL, RT_USER_PASSWORD,
// RT_XSS_DEVICE, RT_HISTORY_EVENTS (how many events the user has after the UNLINK), RT_SHOTS (a
// directory), CHROMIUM (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} must be set`);
  return v;
};
const base = env('RT_BASE');
const shots = env('RT_SHOTS');
const xssDevice = env('RT_XSS_DEVICE');
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

/** A fresh browser context that records dialogs, page errors and console errors (CSP reports). */
async function open(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 620 }, ...options });
  const page = await context.newPage();
  const trouble = { dialogs: [], errors: [] };
  page.on('dialog', async (d) => { trouble.dialogs.push(d.message()); await d.dismiss(); });
  page.on('pageerror', (e) => trouble.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') trouble.errors.push(m.text()); });
  return { context, page, trouble };
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`) });
  console.log(`screenshot ${name}.png`);
}

async function signIn(page, email, password) {
  await page.goto(`${base}/dashboard/users`);
  assert.match(page.url(), /\/dashboard\/login$/, 'anonymous visitors land on the sign-in page');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

const deviceRow = (page, name) => page.locator('table.devices tbody tr').filter({ has: page.locator('td.device', { hasText: name }) });

// 1. The main flow, with JavaScript.
{
  const { context, page, trouble } = await open();
  await page.goto(`${base}/dashboard/users`);
  await shot(page, '1-sign-in');
  await signIn(page, env('RT_ADMIN_EMAIL'), env('RT_ADMIN_PASSWORD'));
  await page.waitForURL(/\/dashboard\/users$/);
  const userLink = page.getByRole('link', { name: env('RT_USER_EMAIL'), exact: true });
  await userLink.waitFor();
  await shot(page, '2-users');
  console.log('ok - signed in, Users lists the user');

  await userLink.click();
  await page.waitForURL(/\/dashboard\/users\/auth0%7C[0-9a-f]{24}$/);
  await page.getByRole('link', { name: 'Devices' }).click();
  await page.waitForURL(/\/devices$/);
  const row = deviceRow(page, 'my-device');
  await row.waitFor();
  assert.equal((await row.locator('td.tokens').textContent()).trim(), '2', 'my-device has 2 refresh tokens');
  assert.equal((await row.locator('td.expires').textContent()).trim(), 'never', "the seed's tokens never expire");
  await shot(page, '3-devices');
  console.log('ok - Devices shows my-device with 2 refresh tokens');

  // The device named like an HTML payload is shown as text.
  const xssRow = deviceRow(page, xssDevice);
  assert.equal(await xssRow.count(), 1, 'the payload device name is shown literally');
  assert.equal(await page.locator('table.devices img').count(), 0, 'no element was injected');

  await page.getByRole('button', { name: 'Unlink my-device' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /my-device/);
  await shot(page, '4-unlink-dialog');
  // Cancel first: nothing happens.
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await dialog.isVisible(), false);
  assert.equal(await deviceRow(page, 'my-device').count(), 1);
  await page.getByRole('button', { name: 'Unlink my-device' }).click();
  await dialog.getByRole('button', { name: 'UNLINK' }).click();
  await page.waitForURL(/\/devices\?unlinked=my-device$/);
  assert.equal(await deviceRow(page, 'my-device').count(), 0, 'the row is gone');
  await page.getByRole('status').waitFor();
  await shot(page, '5-unlinked');
  console.log('ok - X → UNLINK removed my-device');

  // Opening the dialog of the payload device runs nothing either.
  await page.getByRole('button', { name: `Unlink ${xssDevice}` }).click();
  assert.equal(await page.getByRole('dialog').locator('[data-device-name]').textContent(), xssDevice);
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();

  const devicesUrl = page.url();
  // History: the audit events, newest first — the UNLINK just done, by the dashboard, on top.
  await page.getByRole('link', { name: 'History' }).click();
  await page.waitForURL(/\/history$/);
  const rows = page.locator('table.history tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 25, 'a page holds 25 events');
  const top = rows.first();
  assert.equal(await top.getAttribute('data-type'), 'srrt');
  assert.match(await top.textContent(), /Refresh tokens of the device revoked in the dashboard/);
  assert.equal((await top.locator('td.device').textContent()).trim(), 'my-device');
  const types = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.type));
  for (const t of ['s', 'sd', 'sertft']) assert.ok(types.includes(t), `${t} is listed: ${types}`);
  // The sign-ins were by the test's HTTP client, from the loopback address.
  const signInRow = page.locator('table.history tbody tr[data-type="s"]').first();
  assert.equal((await signInRow.locator('td.ip').textContent()).trim(), '127.0.0.1');
  // The payload-named device is shown as text here too.
  assert.ok(await page.locator('table.history td.device', { hasText: xssDevice }).count() >= 1);
  assert.equal(await page.locator('table.history img').count(), 0, 'no element was injected');
  await shot(page, '8-history');
  // The next page, by its cursor: the older events, none twice.
  const firstPage = await rows.evaluateAll((trs) => trs.map((tr) => tr.textContent));
  await page.getByRole('link', { name: 'Older events →' }).click();
  await page.waitForURL(/\/history\?before=\d{13}[A-Za-z0-9]{12}$/);
  const secondPage = await page.locator('table.history tbody tr').evaluateAll((trs) => trs.map((tr) => tr.textContent));
  assert.equal(firstPage.length + secondPage.length, Number(env('RT_HISTORY_EVENTS')), 'every event once');
  assert.ok(secondPage.every((row) => row.includes('OlderAgent/1.0') && row.includes('198.51.100.7')), 'the older ones');
  assert.equal(await page.getByRole('link', { name: 'Older events →' }).count(), 0, 'the last page');
  console.log('ok - History lists the sign-ins, exchanges and the UNLINK, two pages by cursor');
  await page.goto(devicesUrl);

  // On a phone.
  await page.setViewportSize({ width: 390, height: 760 });
  await shot(page, '6-phone');
  assert.deepEqual(trouble.dialogs, [], 'no script dialog fired');
  assert.deepEqual(trouble.errors, [], 'no page or CSP error');
  await context.close();
  console.log('ok - payload device name rendered as text, no dialog, no CSP error');
}

// 2. Without JavaScript: the X leads to a confirmation page with UNLINK.
{
  const { context, page, trouble } = await open({ javaScriptEnabled: false });
  await signIn(page, env('RT_ADMIN_EMAIL'), env('RT_ADMIN_PASSWORD'));
  await page.waitForURL(/\/dashboard\/users$/);
  await page.getByRole('link', { name: env('RT_USER_EMAIL'), exact: true }).click();
  await page.getByRole('link', { name: 'Devices' }).click();
  await page.getByRole('button', { name: 'Unlink laptop' }).click();
  await page.waitForURL(/\/devices\/unlink\?device=laptop$/);
  await shot(page, '7-no-js-confirm');
  await page.getByRole('button', { name: 'UNLINK' }).click();
  await page.waitForURL(/\/devices\?unlinked=laptop$/);
  assert.equal(await deviceRow(page, 'laptop').count(), 0);
  assert.deepEqual(trouble.dialogs, []);
  await context.close();
  console.log('ok - without JavaScript: X → confirmation page → UNLINK');
}

// 3. A user who is not an administrator cannot sign in.
{
  const { context, page } = await open();
  await signIn(page, env('RT_USER_EMAIL'), env('RT_USER_PASSWORD'));
  await page.getByRole('alert').waitFor();
  assert.match(page.url(), /\/dashboard\/login$/);
  assert.match(await page.getByRole('alert').textContent(), /not an administrator/);
  await page.goto(`${base}/dashboard/users`);
  assert.match(page.url(), /\/dashboard\/login$/, 'still no access');
  await context.close();
  console.log('ok - a non-administrator stays on the sign-in page');
}

await browser.close();
