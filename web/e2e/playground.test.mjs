// The GraphQL playground on its own: GraphiQL's scripts and styles come from
// apikeyd, so it renders and runs a query with no network beyond localhost.
// (dashboard.test.mjs opens it signed in, with the token in its headers.)

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { assertNoCSPViolations, DESKTOP, isLocal, open, shoot, waitForText } from './browser.mjs';

let b;

before(async () => {
  b = await open();
});

after(async () => {
  await b?.browser.close();
});

test('playground renders offline and runs { viewer { userId } }', async () => {
  const { page } = b;
  const requested = [];
  page.on('request', (r) => requested.push(r.url()));

  await page.goto('/playground');
  const editor = page.locator('.graphiql-query-editor .CodeMirror');
  await editor.waitFor();
  // Signed out, the page says how to add a token.
  await waitForText(page.locator('#auth-note'), /Not signed in/);
  // The schema arrives by introspection: the docs explorer can open.
  await page.getByRole('button', { name: /Show Documentation Explorer/ }).click();
  await page.getByText('Query', { exact: true }).first().waitFor();

  await editor.evaluate((el) => el.CodeMirror.setValue('{ viewer { userId } }'));
  await page.getByRole('button', { name: /^Execute query/ }).click();
  const result = page.locator('.result-window .CodeMirror');
  await waitForText(result, /viewer/);
  // Anonymous: viewer is null, and no error.
  assert.deepEqual(JSON.parse(await result.evaluate((el) => el.CodeMirror.getValue())), { data: { viewer: null } });
  await shoot(page, '11-playground-signed-out', { sizes: [DESKTOP], fitWidth: false });

  await assertNoCSPViolations(page);
  assert.deepEqual(b.offsite, [], 'requests beyond localhost');
  assert.ok(requested.length >= 5, `the page loaded its files (${requested.length} requests)`);
  assert.deepEqual(requested.filter((u) => !isLocal(u)), []);
  assert.deepEqual(b.problems, []);
});
