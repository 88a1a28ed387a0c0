// Scopes on the dashboard: the create dialog says plainly that no choice
// means full access; a person picks scopes from the server's catalogue
// (checkboxes) or, when it has none, types them; the list shows each key's
// scopes, "Full access" for an unrestricted key; and apikeyd enforces what
// was chosen.
//
// Two servers: APIKEYD_URL has no catalogue (SCOPES unset, free-form
// names); APIKEYD_SCOPES_URL has one (TestBrowser sets both).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { assertNoCSPViolations, open, shoot, waitForText } from './browser.mjs';

const scopedURL = process.env.APIKEYD_SCOPES_URL || '';
const password = process.env.APIKEYD_E2E_PASSWORD || 'correct horse battery staple';

let b;
let page;

before(async () => {
  b = await open();
  page = b.page;
});

after(async () => {
  await b?.browser.close();
});

/** Registers a new account on the server at origin and lands on its key list. */
async function register(origin, who) {
  await page.goto(new URL('/#register', origin).href);
  const form = page.getByRole('region', { name: 'Create an account' });
  await form.getByLabel('Email').fill(`${who}-${Date.now()}@example.com`);
  await form.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'No API keys yet' }).waitFor();
}

/** Creates a key named name through the dialog; choose picks its scopes. */
async function createKey(name, choose) {
  await page.getByRole('button', { name: 'Create API key' }).click();
  const form = page.getByRole('dialog', { name: 'Create API key' });
  await form.waitFor();
  await form.getByLabel('Name', { exact: true }).fill(name);
  await choose(form);
  await form.getByRole('button', { name: 'Create', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Your new API key' });
  await dialog.waitFor();
  const key = (await dialog.locator('#key-value').textContent()).trim();
  await dialog.getByRole('button', { name: 'Done' }).click();
  await dialog.waitFor({ state: 'hidden' });
  return key;
}

/** The text of the Scopes cell of the row of the key named name. */
async function listedScopes(name) {
  const row = page.getByRole('row', { name: new RegExp(name) });
  await row.waitFor();
  return (await row.locator('td[data-label=Scopes]').textContent()).trim();
}

/** /auth/verify?scope=… for key on the server at origin. */
async function verify(origin, key, scope) {
  const res = await fetch(new URL(`/auth/verify?scope=${encodeURIComponent(scope)}`, origin), { headers: { 'X-Api-Key': key } });
  return { status: res.status, scopes: res.headers.get('X-Auth-Scopes'), body: await res.json() };
}

test('scopes typed in when the server has no catalogue', async () => {
  const origin = process.env.APIKEYD_URL;
  await register(origin, 'free');

  const key = await createKey('CI reports', async (form) => {
    assert.match(await form.getByRole('group', { name: 'Scopes' }).textContent(), /No scope chosen means full access/);
    assert.equal(await form.getByRole('checkbox').count(), 0, 'no catalogue: no checkboxes');
    await form.getByLabel('Scope names').fill('reports:read, orders:read reports:read');
    await shoot(page, '20-create-scopes-typed');
  });
  assert.equal(await listedScopes('CI reports'), 'orders:readreports:read');
  assert.deepEqual((await verify(origin, key, 'reports:read')).body.scopes, ['orders:read', 'reports:read']);
  const refused = await verify(origin, key, 'orders:write');
  assert.equal(refused.status, 403);
  assert.equal(refused.body.code, 'INSUFFICIENT_SCOPE');

  const full = await createKey('Everything', async () => {});
  assert.equal(await listedScopes('Everything'), 'Full access');
  const v = await verify(origin, full, 'orders:write');
  assert.equal(v.status, 200);
  assert.equal(v.scopes, '*');
  await shoot(page, '21-list-with-scopes');

  // A malformed name is refused in words, naming it, and nothing is made.
  await page.getByRole('button', { name: 'Create API key' }).click();
  const form = page.getByRole('dialog', { name: 'Create API key' });
  await form.getByLabel('Scope names').fill('Reports:Read');
  await form.getByRole('button', { name: 'Create', exact: true }).click();
  await waitForText(page.locator('#create-error'), /"Reports:Read" is malformed/);
  await form.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await page.getByRole('row').count(), 3, 'a header row and the two keys');
  await assertNoCSPViolations(page);
});

test('scopes chosen from the catalogue', { skip: !scopedURL && 'APIKEYD_SCOPES_URL is not set' }, async () => {
  await register(scopedURL, 'catalogue');
  const key = await createKey('Partner', async (form) => {
    const boxes = form.getByRole('checkbox');
    assert.deepEqual(await boxes.evaluateAll((els) => els.map((e) => e.value)), ['orders:read', 'orders:write', 'reports:read']);
    assert.ok(await form.getByLabel('Scope names').isHidden(), 'a catalogue: no free text');
    await form.getByRole('checkbox', { name: 'reports:read' }).check();
    await shoot(page, '22-create-scopes-catalogue');
  });
  assert.equal(await listedScopes('Partner'), 'reports:read');
  assert.equal((await verify(scopedURL, key, 'reports:read')).status, 200);
  assert.equal((await verify(scopedURL, key, 'orders:read')).status, 403);

  // Nothing ticked: full access, as the dialog says.
  await createKey('Admin', async () => {});
  assert.equal(await listedScopes('Admin'), 'Full access');
  await assertNoCSPViolations(page);
  assert.deepEqual(b.offsite, []);
  assert.deepEqual(b.problems, []);
});
