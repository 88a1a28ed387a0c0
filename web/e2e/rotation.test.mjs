// Rotation on the dashboard: rename a key, roll it with a grace period and
// copy the new secret (both keys work meanwhile, and the old row says when
// it stops and what replaced it), then roll the new key at once (the old one
// is refused and leaves the list). Steps run in order in one browser.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertNoCSPViolations, dashboardSession, open, post, shoot, signIn, stepper, verifyKey, waitForText,
} from './browser.mjs';

const KEY_PATTERN = /^atiru_[0-9A-Za-z]{38}$/;

let b;
let page;
const email = `rita-${Date.now()}@example.com`;
const password = process.env.APIKEYD_E2E_PASSWORD || 'correct horse battery staple';

before(async () => {
  b = await open();
  page = b.page;
});

after(async () => {
  await b?.browser.close();
});

test('rotation', async (t) => {
  const step = stepper(t);

  let first; // the key created through the API
  let second; // the secret of the first roll, as copied
  let expiring; // a key created through the API that expires meanwhile
  const name = 'Billing worker';

  await step('sign in with a key already made', async () => {
    assert.equal((await post('/auth/register', { email, password })).status, 201);
    const login = await post('/auth/login', { email, password });
    assert.equal(login.status, 200);
    const created = await post('/auth/api-keys', { name: 'billing' }, login.body.session.access_token);
    assert.equal(created.status, 201);
    first = created.body;
    const soon = new Date(Date.now() + 2000).toISOString();
    const short = await post('/auth/api-keys', { name: 'Nightly export', expires_at: soon }, login.body.session.access_token);
    assert.equal(short.status, 201);
    expiring = short.body;

    await page.goto('/');
    await signIn(page, email, password);
    await page.getByRole('button', { name: 'Rename billing', exact: true }).waitFor();
  });

  await step('rename the key', async () => {
    await page.getByRole('button', { name: 'Rename billing', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Rename billing' });
    await dialog.waitFor();
    assert.equal(await dialog.getByLabel('Name').inputValue(), 'billing', 'the current name is filled in');
    await dialog.getByLabel('Name').fill(name);
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('button', { name: `Roll ${name}`, exact: true }).waitFor();
    await waitForText(page.locator('#page-status'), /Renamed billing to Billing worker/);
    assert.equal((await verifyKey(first.key)).status, 200, 'a rename leaves the key working');
  });

  await step('roll it with a grace of 1 hour and copy the new secret', async () => {
    await page.getByRole('button', { name: `Roll ${name}`, exact: true }).click();
    const dialog = page.getByRole('dialog', { name: `Roll ${name}?` });
    await dialog.waitFor();
    assert.equal(await dialog.getByLabel('The old key stops working').inputValue(), '0', 'Now is the default');
    await dialog.getByLabel('The old key stops working').selectOption({ label: 'In 1 hour' });
    await shoot(page, '31-roll-dialog');
    await dialog.getByRole('button', { name: 'Roll key' }).click();

    const shown = page.getByRole('dialog', { name: 'Your new API key' });
    await shown.waitFor();
    assert.match(await shown.textContent(), /will not be shown again/);
    await shown.getByRole('button', { name: 'Copy' }).click();
    await waitForText(shown.locator('#key-copy-status'), /clipboard/);
    second = await page.evaluate(() => navigator.clipboard.readText());
    assert.match(second, KEY_PATTERN, 'Copy puts the new key on the clipboard');
    assert.equal((await shown.locator('#key-value').textContent()).trim(), second);
    assert.notEqual(second, first.key);
    await shown.getByRole('button', { name: 'Done' }).click();
    await shown.waitFor({ state: 'hidden' });
    await waitForText(page.locator('#page-status'), /Rolled Billing worker: the old key keeps working until/);

    const v = await verifyKey(second);
    assert.equal(v.status, 200, JSON.stringify(v.body));
    assert.equal(v.body.user_id, (await dashboardSession(page)).userId);
    assert.equal((await verifyKey(first.key)).status, 200, 'the old key works during its grace');
    assert.ok(!(await page.content()).includes(second), 'the new secret is gone from the page');
  });

  await step('the old key shows when it stops and what replaced it', async () => {
    const old = page.getByRole('row', { name: new RegExp(first.key_prefix) });
    const text = await waitForText(old, /Stops working/);
    assert.ok(text.includes(`Replaced by ${second.slice(0, 10)}`), `the row names the new key's prefix: ${text}`);
    assert.equal(await old.getByRole('button', { name: /^Roll/ }).count(), 0, 'a rolled key cannot be rolled again');
    assert.equal(await page.getByRole('row', { name: new RegExp(second.slice(0, 10)) }).count(), 2, 'the new key has its own row');
    await shoot(page, '32-list-during-grace');
  });

  await step('roll the new key now: it is refused and leaves the list', async () => {
    const prefix = second.slice(0, 10);
    const row = page.getByRole('row', { name: new RegExp(`^${name} ${prefix}`) });
    await row.getByRole('button', { name: `Roll ${name}`, exact: true }).click();
    const dialog = page.getByRole('dialog', { name: `Roll ${name}?` });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Roll key' }).click(); // grace: Now
    const shown = page.getByRole('dialog', { name: 'Your new API key' });
    await shown.waitFor();
    const third = (await shown.locator('#key-value').textContent()).trim();
    assert.match(third, KEY_PATTERN);
    await shown.getByRole('button', { name: 'Done' }).click();
    await shown.waitFor({ state: 'hidden' });
    assert.equal((await verifyKey(second)).status, 401, 'a roll without grace revokes the old key');
    assert.equal((await verifyKey(third)).status, 200);
    await row.waitFor({ state: 'detached' });
  });

  await step('an expired key offers no roll', async () => {
    // Its successor would copy the expiry: the server refuses (KEY_EXPIRED).
    await new Promise((resolve) => { setTimeout(resolve, Math.max(0, Date.parse(expiring.expires_at) - Date.now() + 100)); });
    await page.reload();
    const row = page.getByRole('row', { name: /^Nightly export/ });
    await waitForText(row, /Expired/);
    assert.equal(await row.getByRole('button', { name: /^Roll/ }).count(), 0, 'an expired key cannot be rolled');
    assert.equal(await row.getByRole('button', { name: 'Revoke Nightly export', exact: true }).count(), 1, 'an expired key can still be revoked');
    await assertNoCSPViolations(page);
    assert.deepEqual(b.offsite, []);
    assert.deepEqual(b.problems, []);
  });
});
