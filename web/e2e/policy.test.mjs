// Usage policy on the dashboard: create a key with a rate limit, credits
// with a monthly refill and two allowed addresses, see them listed; disable
// it (verification answers KEY_DISABLED) and enable it again; edit its
// limits (a bad address is refused in the dialog, then the rate limit
// changes and the addresses are cleared, sending only those) and see the
// list follow. Steps run in order in one browser.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertNoCSPViolations, open, post, shoot, signIn, stepper, verifyKey, waitForText,
} from './browser.mjs';

const KEY_PATTERN = /^atiru_[0-9A-Za-z]{38}$/;

let b;
let page;
const email = `paula-${Date.now()}@example.com`;
const password = process.env.APIKEYD_E2E_PASSWORD || 'correct horse battery staple';

before(async () => {
  b = await open();
  page = b.page;
});

after(async () => {
  await b?.browser.close();
});

/** The inputs of every updateApiKey the page sends, in order. */
function updatesSent() {
  const sent = [];
  page.on('request', (r) => {
    if (!r.url().endsWith('/graphql') || r.method() !== 'POST') return;
    const body = r.postDataJSON();
    if (body && /updateApiKey/.test(body.query)) sent.push(body.variables.input);
  });
  return sent;
}

test('usage policy', async (t) => {
  const step = stepper(t);
  const name = 'Metered';
  const updates = updatesSent();
  let key;
  const row = () => page.getByRole('row', { name: new RegExp(`^${name}`) });

  await step('sign in', async () => {
    assert.equal((await post('/auth/register', { email, password })).status, 201);
    await page.goto('/');
    await signIn(page, email, password);
    await page.getByRole('heading', { name: 'No API keys yet' }).waitFor();
  });

  await step('create a key with a rate limit, credits refilled monthly and two addresses', async () => {
    await page.getByRole('button', { name: 'Create API key' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create API key' });
    await dialog.waitFor();
    const limits = dialog.getByRole('group', { name: 'Limits' });
    const text = await limits.textContent();
    for (const none of [/no rate limit, unlimited credits,\s+and works from any address/, /Empty: no limit/, /Empty: unlimited/, /Empty: any address/]) {
      assert.match(text, none, 'the dialog says what no limit means');
    }
    assert.equal(await limits.getByLabel('Refill', { exact: true }).isDisabled(), true, 'no refill without credits');

    await dialog.getByLabel('Name', { exact: true }).fill(name);
    await limits.getByLabel('Rate limit', { exact: true }).fill('100');
    await limits.getByLabel('requests per').selectOption({ label: 'minute' });
    await limits.getByLabel('Credits', { exact: true }).fill('5000');
    await limits.getByLabel('Refill', { exact: true }).selectOption({ label: 'Every month' });
    assert.equal(await limits.getByLabel('Refill to').inputValue(), '5000', 'the refill starts at the credits');
    await limits.getByLabel('On day').fill('1');
    await limits.getByLabel('Allowed addresses').fill('10.0.0.0/8\n2001:db8::1');
    await shoot(page, '40-create-limits');
    await dialog.getByRole('button', { name: 'Create', exact: true }).click();

    const shown = page.getByRole('dialog', { name: 'Your new API key' });
    await shown.waitFor();
    key = (await shown.locator('#key-value').textContent()).trim();
    assert.match(key, KEY_PATTERN);
    await shown.getByRole('button', { name: 'Done' }).click();
    await shown.waitFor({ state: 'hidden' });
  });

  await step('the list shows the limits', async () => {
    const text = await waitForText(row(), /100 per minute/);
    for (const want of ['5,000 left', 'back to 5,000 on day 1 of each month', '10.0.0.0/8', '2001:db8::1/128']) {
      assert.ok(text.includes(want), `the row shows ${want}: ${text}`);
    }
    assert.ok(!text.includes('Disabled'), text);
    // Verified from this machine, which is not among the addresses.
    const v = await verifyKey(key);
    assert.equal(v.status, 403, JSON.stringify(v.body));
    assert.equal(v.body.code, 'IP_NOT_ALLOWED');
    await shoot(page, '41-list-with-limits');
  });

  await step('disable the key: verification answers KEY_DISABLED', async () => {
    await row().getByRole('button', { name: `Disable ${name}`, exact: true }).click();
    await waitForText(page.locator('#page-status'), /Disabled Metered/);
    await waitForText(row(), /Disabled/);
    const enable = row().getByRole('button', { name: `Enable ${name}`, exact: true });
    assert.ok(await enable.evaluate((el) => el === document.activeElement), 'the focus stays on the button');
    assert.deepEqual(updates.at(-1), { enabled: false });
    const v = await verifyKey(key);
    assert.equal(v.status, 403, JSON.stringify(v.body));
    assert.equal(v.body.code, 'KEY_DISABLED');
    await shoot(page, '42-key-disabled');
  });

  await step('enable it again, from the keyboard', async () => {
    await page.keyboard.press('Enter'); // the focused Enable button
    await waitForText(page.locator('#page-status'), /Enabled Metered/);
    await row().getByRole('button', { name: `Disable ${name}`, exact: true }).waitFor();
    assert.ok(!(await row().textContent()).includes('Disabled'));
    assert.deepEqual(updates.at(-1), { enabled: true });
    const v = await verifyKey(key);
    assert.equal(v.body.code, 'IP_NOT_ALLOWED', 'no longer disabled, still not from here');
  });

  await step('edit limits: a bad address is refused in the dialog', async () => {
    await row().getByRole('button', { name: `Edit limits of ${name}`, exact: true }).click();
    const dialog = page.getByRole('dialog', { name: `Limits of ${name}` });
    await dialog.waitFor();
    const rate = dialog.getByLabel('Rate limit', { exact: true });
    assert.ok(await rate.evaluate((el) => el === document.activeElement), 'the focus starts on the first field');
    assert.equal(await rate.inputValue(), '100');
    assert.equal(await dialog.getByLabel('requests per').inputValue(), '60');
    assert.equal(await dialog.getByLabel('Credits', { exact: true }).inputValue(), '5000');
    assert.equal(await dialog.getByLabel('Refill', { exact: true }).inputValue(), 'month');
    assert.equal(await dialog.getByLabel('Refill to').inputValue(), '5000');
    assert.equal(await dialog.getByLabel('On day').inputValue(), '1');
    const ips = dialog.getByLabel('Allowed addresses');
    assert.equal(await ips.inputValue(), '10.0.0.0/8\n2001:db8::1/128');

    const sent = updates.length;
    await ips.fill('10.0.0.0/33');
    await dialog.getByRole('button', { name: 'Save' }).click();
    const error = dialog.getByRole('alert');
    const msg = await waitForText(error, /\S/);
    assert.match(msg, /^Allowed addresses, entry 1: .*10\.0\.0\.0\/33/, `the error names the field and the entry: ${msg}`);
    assert.equal(await ips.getAttribute('aria-invalid'), 'true');
    assert.ok(await ips.evaluate((el) => el === document.activeElement), 'the focus moves to the field to fix');
    assert.deepEqual(updates.slice(sent), [{ allowedIps: ['10.0.0.0/33'] }], 'only the changed field is sent');
    await shoot(page, '43-edit-limits-error');
  });

  await step('change the rate limit and clear the addresses', async () => {
    const dialog = page.getByRole('dialog', { name: `Limits of ${name}` });
    await dialog.getByLabel('Rate limit', { exact: true }).fill('10');
    await dialog.getByLabel('requests per').selectOption({ label: 'second' });
    await dialog.getByLabel('Allowed addresses').fill('');
    await shoot(page, '44-edit-limits');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.deepEqual(updates.at(-1), { rateLimit: { limit: 10, periodSeconds: 1 }, allowedIps: null },
      'only what changed is sent; the credits are left alone');

    const text = await waitForText(row(), /10 per second/);
    assert.ok(!text.includes('10.0.0.0/8'), `the addresses are gone: ${text}`);
    assert.ok(text.includes('5,000 left'), text);
    await waitForText(page.locator('#page-status'), /Saved the limits of Metered/);
    const edit = row().getByRole('button', { name: `Edit limits of ${name}`, exact: true });
    assert.ok(await edit.evaluate((el) => el === document.activeElement), 'the focus returns to the key');

    const v = await verifyKey(key);
    assert.equal(v.status, 200, `any address now: ${JSON.stringify(v.body)}`);
    await page.reload();
    await waitForText(row(), /4,999 left/);
    await shoot(page, '45-list-after-edit');
  });

  await step('clear the rate limit; Escape leaves the dialog unchanged', async () => {
    await row().getByRole('button', { name: `Edit limits of ${name}`, exact: true }).click();
    const dialog = page.getByRole('dialog', { name: `Limits of ${name}` });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    const edit = row().getByRole('button', { name: `Edit limits of ${name}`, exact: true });
    assert.ok(await edit.evaluate((el) => el === document.activeElement), 'Escape returns the focus to the key');

    const sent = updates.length;
    await edit.press('Enter');
    await dialog.waitFor();
    await dialog.getByLabel('Rate limit', { exact: true }).fill('');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.deepEqual(updates.slice(sent), [{ rateLimit: null }]);
    const text = await waitForText(row(), /^(?!.*per second)/s);
    assert.ok(text.includes('4,999 left'), text);

    await assertNoCSPViolations(page);
    assert.deepEqual(b.offsite, []);
    assert.deepEqual(b.problems, []);
  });
});
