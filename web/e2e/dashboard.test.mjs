// The dashboard as a person uses it: register, sign in, create a key, copy
// it, check it works, find only its prefix in the list, revoke it and see it
// refused. Each step depends on the one before, so they run in order in one
// browser, and a failed step stops the rest.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertNoCSPViolations, baseURL, dashboardSession, DESKTOP, open, shoot, stepper, verifyKey, waitForText,
} from './browser.mjs';

const KEY_PATTERN = /^atiru_[0-9A-Za-z]{38}$/;

let b; // { browser, context, page, offsite, problems }
let page;
const email = `dana-${Date.now()}@example.com`;
const password = process.env.APIKEYD_E2E_PASSWORD || 'correct horse battery staple';

before(async () => {
  b = await open();
  page = b.page;
});

after(async () => {
  await b?.browser.close();
});

test('dashboard', async (t) => {
  let key; // the secret, as read from the dialog
  const name = 'Production server';

  // Each step needs the ones before it: after a failure the rest are skipped.
  const step = stepper(t);
  const signInForm = () => page.getByRole('region', { name: 'Sign in' });
  const registerForm = () => page.getByRole('region', { name: 'Create an account' });

  await step('signed out, it offers sign-in and registration', async () => {
    await page.goto('/');
    await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
    await page.getByRole('link', { name: 'Create an account' }).waitFor();
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).count(), 0, 'no navigation when signed out');
    await shoot(page, '01-signed-out');
  });

  await step('register, and land on an empty key list', async () => {
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByRole('heading', { name: 'Create an account' }).waitFor();
    await registerForm().getByLabel('Email').fill(email);
    await registerForm().getByLabel('Password').fill(password);
    await shoot(page, '02-register');
    await page.getByRole('button', { name: 'Create account' }).click();

    await page.getByRole('heading', { name: 'API Keys', exact: true }).waitFor();
    const empty = page.getByRole('heading', { name: 'No API keys yet' });
    await empty.waitFor();
    assert.match(await page.locator('#keys-empty').textContent(), /script|CI|server/);
    assert.equal(await page.url(), new URL('/', page.url()).href, 'no token (or anything else) in the URL');
    const s = await dashboardSession(page);
    assert.ok(s && s.token && s.userId, 'the login token is kept in sessionStorage');
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
    await shoot(page, '03-list-empty');
  });

  await step('a wrong password is refused in words', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
    assert.equal(await dashboardSession(page), null, 'signing out forgets the token');
    await signInForm().getByLabel('Email').fill(email);
    await signInForm().getByLabel('Password').fill('not my password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const alert = page.locator('#signin-error');
    const text = await waitForText(alert, /\w{3,}/);
    assert.doesNotMatch(text, /undefined|\[object|^\d+$/, `error in words: ${text}`);
    assert.equal(await alert.getAttribute('role'), 'alert');
    await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
    await shoot(page, '04-wrong-password');
  });

  await step('log in', async () => {
    await signInForm().getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'API Keys', exact: true }).waitFor();
    await page.getByRole('heading', { name: 'No API keys yet' }).waitFor();
    await waitForText(page.locator('#account-name'), new RegExp(email.replace(/[.]/g, '\\.')));
  });

  await step('create a key with a name and read it once', async () => {
    await page.getByRole('button', { name: 'Create API key' }).click();
    const form = page.getByRole('dialog', { name: 'Create API key' });
    await form.waitFor();
    await form.getByLabel('Name', { exact: true }).fill(name);
    await form.getByLabel('Expires').waitFor(); // optional, left at "Never"
    await shoot(page, '05-create-form');
    await form.getByRole('button', { name: 'Create', exact: true }).click();

    const dialog = page.getByRole('dialog', { name: 'Your new API key' });
    await dialog.waitFor();
    key = (await dialog.locator('#key-value').textContent()).trim();
    assert.match(key, KEY_PATTERN);
    assert.match(await dialog.textContent(), /will not be shown again/);

    await dialog.getByRole('button', { name: 'Copy' }).click();
    await waitForText(dialog.locator('#key-copy-status'), /clipboard/);
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key, 'Copy puts the key on the clipboard');
    await shoot(page, '06-key-dialog');

    // The key works, for the user who created it.
    const v = await verifyKey(key);
    assert.equal(v.status, 200, JSON.stringify(v.body));
    assert.equal(v.body.auth_method, 'api_key');
    assert.equal(v.body.user_id, (await dashboardSession(page)).userId);

    await dialog.getByRole('button', { name: 'Done' }).click();
    await dialog.waitFor({ state: 'hidden' });
  });

  await step('the list shows the key by its prefix only', async () => {
    const row = page.getByRole('row', { name: new RegExp(name) });
    await row.waitFor();
    const text = await row.textContent();
    assert.ok(text.includes(key.slice(0, 10)), `the row shows the prefix ${key.slice(0, 10)}: ${text}`);
    assert.match(text, /never/, 'last used: never');
    const html = await page.content();
    assert.ok(!html.includes(key), 'the full key is gone from the page');
    const stored = await page.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }));
    assert.ok(!stored.includes(key), 'the full key is not stored in the browser');
    assert.ok(await page.getByRole('heading', { name: 'No API keys yet' }).isHidden());
    await shoot(page, '07-list-with-key');
  });

  await step('keyboard only: create an unnamed key that expires', async () => {
    const open = page.getByRole('button', { name: 'Create API key' });
    await open.focus();
    await page.keyboard.press('Enter');
    const form = page.getByRole('dialog', { name: 'Create API key' });
    await form.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'key-name', 'focus starts in Name');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'key-expiry');
    await page.keyboard.press('ArrowDown'); // Never -> In 7 days
    await page.keyboard.press('ArrowDown'); // -> In 30 days
    assert.equal(await form.getByLabel('Expires').inputValue(), '30');
    await page.keyboard.press('Tab'); // Scopes, left empty: full access
    assert.equal(await page.evaluate(() => document.activeElement.id), 'key-scopes-text');
    // Limits, left empty: none. Refill waits for credits, so Tab skips it.
    for (const id of ['create-rate', 'create-period', 'create-credits', 'create-ips']) {
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.id), id);
    }
    await page.keyboard.press('Tab'); // Cancel
    await page.keyboard.press('Tab'); // Create
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Create');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Your new API key' });
    await dialog.waitFor();
    const second = (await dialog.locator('#key-value').textContent()).trim();
    assert.match(second, KEY_PATTERN);
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Copy', 'focus on Copy');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Create API key', 'focus back on the opener');

    // Unnamed: listed, and revoked, by its prefix.
    const prefix = second.slice(0, 10);
    const revoke = page.getByRole('button', { name: `Revoke ${prefix}`, exact: true });
    await revoke.waitFor();
    const row = page.getByRole('row', { name: new RegExp(prefix) });
    assert.doesNotMatch(await row.locator('td[data-label=Expires]').textContent(), /never/);
    await revoke.focus();
    await page.keyboard.press('Enter');
    const confirm = page.getByRole('dialog', { name: `Revoke ${prefix}?` });
    await confirm.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Cancel', 'Cancel is the safe default');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter'); // "Revoke key"
    await revoke.waitFor({ state: 'detached' });
    assert.equal((await verifyKey(second)).status, 401);
  });

  await step('the playground opens with the token in its headers', async () => {
    await page.getByRole('link', { name: 'Playground' }).click();
    await page.waitForURL('**/playground');
    const editor = page.locator('.graphiql-query-editor .CodeMirror');
    await editor.waitFor();
    const headers = await page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror').evaluate((el) => el.CodeMirror.getValue());
    const token = (await dashboardSession(page)).token;
    assert.equal(JSON.parse(headers).Authorization, `Bearer ${token}`);
    await editor.evaluate((el) => el.CodeMirror.setValue('{ viewer { userId authMethod } }'));
    await page.getByRole('button', { name: /^Execute query/ }).click();
    const result = page.locator('.result-window .CodeMirror');
    await waitForText(result, /userId/);
    const data = JSON.parse(await result.evaluate((el) => el.CodeMirror.getValue()));
    assert.deepEqual(data, { data: { viewer: { userId: (await dashboardSession(page)).userId, authMethod: 'JWT' } } });
    await assertNoCSPViolations(page);
    await shoot(page, '08-playground', { sizes: [DESKTOP], fitWidth: false });
    assert.ok(!(await page.evaluate(() => JSON.stringify({ ...localStorage }))).includes(token), 'the token stays out of localStorage');
    await page.getByRole('link', { name: 'apikeyd' }).click();
    await page.getByRole('heading', { name: 'API Keys', exact: true }).waitFor();
  });

  await step('revoke the key: confirm, row gone, key refused', async () => {
    await page.getByRole('button', { name: `Revoke ${name}`, exact: true }).click();
    const confirm = page.getByRole('dialog', { name: `Revoke ${name}?` });
    await confirm.waitFor();
    assert.match(await confirm.textContent(), /cannot be undone/);
    await shoot(page, '09-confirm-revoke');
    await confirm.getByRole('button', { name: 'Revoke key' }).click();
    await confirm.waitFor({ state: 'hidden' });
    await page.getByRole('row', { name: new RegExp(name) }).waitFor({ state: 'detached' });
    await page.getByRole('heading', { name: 'No API keys yet' }).waitFor();
    await waitForText(page.locator('#page-status'), /Revoked Production server/);
    await shoot(page, '10-list-after-revoke');

    const v = await verifyKey(key);
    assert.equal(v.status, 401);
    assert.equal(v.body.code, 'INVALID_OR_EXPIRED_TOKEN');
  });

  await step('a token the server no longer accepts signs out, saying why', async () => {
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem('apikeyd.session'));
      s.token = `${s.token.slice(0, -4)}AAAA`;
      sessionStorage.setItem('apikeyd.session', JSON.stringify(s));
    });
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
    await waitForText(page.locator('#page-error'), /no longer valid/);
    assert.equal(await dashboardSession(page), null);
  });

  await step('sign in with a pasted login token', async () => {
    // As with an identity provider: a token obtained elsewhere.
    const res = await fetch(new URL('/auth/login', baseURL), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
    assert.equal(res.status, 200);
    const { session, user } = await res.json();
    await page.getByText('Sign in with a login token').click();
    const field = page.getByLabel('Login token (JWT)');
    await field.fill('not-a-token');
    await page.getByRole('button', { name: 'Use this token' }).click();
    await waitForText(page.locator('#token-error'), /not accepted/);
    await field.fill(session.access_token);
    await page.getByRole('button', { name: 'Use this token' }).click();
    await page.getByRole('heading', { name: 'API Keys', exact: true }).waitFor();
    await waitForText(page.locator('#account-name'), new RegExp(user.id));
    assert.equal((await dashboardSession(page)).token, session.access_token);
  });

  await step('a key reported as leaked shows a notice until dismissed', async () => {
    const { token } = await dashboardSession(page);
    const gql = async (query, variables) => {
      const res = await fetch(new URL('/graphql', baseURL), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      return (await res.json()).data;
    };
    const created = await gql('mutation { createApiKey(input: {name: "Deploy bot"}) { key apiKey { keyPrefix } } }');
    const { key: leaked, apiKey } = created.createApiKey;
    // A code host's secret scanning finds it in public and reports it.
    const location = 'https://gitlab.example/acme/app/-/blob/main/deploy.yml';
    const res = await fetch(new URL('/auth/leaks/gitlab/revoke_tokens', baseURL), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: process.env.APIKEYD_E2E_LEAK_TOKEN },
      body: JSON.stringify([{ type: 'apikeyd_api_key', token: leaked, location }]),
    });
    assert.equal(res.status, 204);
    assert.equal((await verifyKey(leaked)).status, 401);

    await page.reload();
    const notice = page.locator('.leak-notice');
    await notice.waitFor();
    assert.equal(await notice.getAttribute('role'), 'alert');
    const text = await notice.textContent();
    assert.match(text, /Key leaked and revoked/);
    assert.ok(text.includes(`${apiKey.keyPrefix}…`) && text.includes('Deploy bot') && text.includes('gitlab'), text);
    assert.ok(!text.includes(leaked), 'the notice never shows the key');
    assert.equal(await notice.getByRole('link', { name: location }).getAttribute('href'), location);
    await shoot(page, '10b-leak-notice');

    // Signing out forgets the notices with the keys: whoever signs in next
    // at this tab never sees them, even before their own list loads.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
    assert.equal(await page.locator('.leak-notice').count(), 0, 'signing out clears the notices');
    await signInForm().getByLabel('Email').fill(email);
    await signInForm().getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await notice.waitFor();

    await notice.getByRole('button', { name: 'Dismiss the notice about Deploy bot' }).click();
    await notice.waitFor({ state: 'detached' });
    await page.reload();
    await page.getByRole('heading', { name: 'API Keys', exact: true }).waitFor();
    await page.locator('#keys-loading').waitFor({ state: 'hidden' });
    assert.equal(await page.locator('.leak-notice').count(), 0, 'a dismissed notice stays dismissed');
  });

  await step('the key list shows where a key was last used from', async () => {
    const { token } = await dashboardSession(page);
    const gql = async (query, variables) => {
      const res = await fetch(new URL('/graphql', baseURL), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = await res.json();
      assert.equal(body.errors, undefined, JSON.stringify(body.errors));
      return body.data;
    };
    const created = await gql('mutation($input: CreateApiKeyInput) { createApiKey(input: $input) { key } }', { input: { name: 'Billing worker' } });
    const res = await fetch(new URL('/auth/verify', baseURL), {
      headers: { 'X-Api-Key': created.createApiKey.key, 'User-Agent': 'billing-worker/3.1' },
    });
    assert.equal(res.status, 200);
    const row = page.getByRole('row', { name: /Billing worker/ });
    // The use is written within a few seconds: reload until it shows.
    for (let i = 0; ; i++) {
      await page.reload();
      await row.waitFor();
      if (/billing-worker/.test(await row.textContent())) break;
      assert.ok(i < 50, 'the last use never showed');
      await page.waitForTimeout(200);
    }
    assert.match(await row.locator('td[data-label="Last used"]').textContent(), /from 127\.0\.0\.1 · billing-worker\/3\.1/);
    await shoot(page, '11-last-used-from');
    // More events than one page holds, for the next step.
    for (let i = 0; i < 20; i++) {
      await gql('mutation($input: CreateApiKeyInput) { createApiKey(input: $input) { apiKey { id } } }', { input: { name: `Batch ${i}` } });
    }
  });

  await step('the activity page lists what happened, page by page', async () => {
    await page.getByRole('link', { name: 'Activity' }).click();
    await page.getByRole('heading', { name: 'Activity', exact: true }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Activity' }).getAttribute('aria-current'), 'page');
    const rows = page.locator('#activity-body tr');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 20, 'one page of 20');
    const first = await rows.first().textContent();
    assert.match(first, /Created key “Batch 19”/, 'newest first');
    assert.match(first, /127\.0\.0\.1/, 'from where');
    await shoot(page, '12-activity');
    const more = page.getByRole('button', { name: 'Show older activity' });
    await more.click();
    await more.waitFor({ state: 'hidden' });
    const all = await page.locator('#activity-body').textContent();
    for (const what of ['Account created', 'Failed sign-in', 'Signed in', 'Created key “Production server”', 'Revoked key']) {
      assert.ok(all.includes(what), `the activity shows "${what}"`);
    }
    assert.ok(await rows.count() > 20, 'the second page is appended');
    const html = await page.content();
    assert.ok(!html.includes((await dashboardSession(page)).token), 'no token on the page');
    await page.getByRole('link', { name: 'API Keys' }).click();
    await page.getByRole('heading', { name: 'API Keys', exact: true }).waitFor();
  });

  await step('no request left this machine, and the CSP held', async () => {
    await assertNoCSPViolations(page);
    assert.deepEqual(b.offsite, []);
    assert.deepEqual(b.problems, []);
  });
});
