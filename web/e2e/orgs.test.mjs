// Organisations on the dashboard, with two people in two browser contexts:
// Ana creates an organisation and invites Ben as an admin with a link shown
// once (copied with its button); Ben opens the link signed out, creates his
// account on the way and joins; he creates an organisation key; Ana sees it,
// created by Ben, and removes him; Ben no longer sees the organisation, and
// the key keeps working: verification answers for the organisation, with
// Ben as its creator. Steps run in order; a failed one stops the rest.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertNoCSPViolations, baseURL, dashboardSession, open, post, shoot, signIn, stepper, verifyKey, waitForText,
} from './browser.mjs';

const KEY_PATTERN = /^atiru_[0-9A-Za-z]{38}$/;
const LINK_PATTERN = /#invite\/inv_[0-9A-Za-z]{32}$/;

const password = process.env.APIKEYD_E2E_PASSWORD || 'correct horse battery staple';
const anaEmail = `ana-${Date.now()}@example.com`;
const benEmail = `ben-${Date.now()}@example.com`;
const orgName = 'Acme Robotics';
const keyName = 'CI deploy';

let ana; // { browser, context, page, offsite, problems }
let ben;

before(async () => {
  ana = await open();
  ben = await open({ browser: ana.browser }); // another context: another person
});

after(async () => {
  await ana?.browser.close();
});

/** Runs a GraphQL query with page's login token, from the test. */
async function graphqlAs(page, query, variables = {}) {
  const { token } = await dashboardSession(page);
  const res = await fetch(new URL('/graphql', baseURL), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

test('organisations', async (t) => {
  const step = stepper(t);
  const a = () => ana.page;
  const bp = () => ben.page;
  const status = (page) => page.locator('#page-status');
  const workspace = (page) => page.getByLabel('Workspace');
  let orgId;
  let link;
  let key;
  let benId;

  await step('Ana signs in and creates an organisation; a bad name is refused in the dialog', async () => {
    assert.equal((await post('/auth/register', { email: anaEmail, password })).status, 201);
    await a().goto('/');
    await signIn(a(), anaEmail, password);
    await a().getByRole('heading', { name: 'No API keys yet' }).waitFor();
    assert.equal(await workspace(a()).inputValue(), '', 'Personal to begin with');

    await a().getByRole('button', { name: 'New organisation' }).click();
    const dialog = a().getByRole('dialog', { name: 'New organisation' });
    await dialog.waitFor();
    const name = dialog.getByLabel('Name');
    assert.ok(await name.evaluate((el) => el === document.activeElement), 'the focus starts on the name');
    await name.fill('   ');
    await dialog.getByRole('button', { name: 'Create organisation' }).click();
    const error = await waitForText(dialog.getByRole('alert'), /\S/);
    assert.match(error, /name/i, `the server's message is shown: ${error}`);

    await name.fill(orgName);
    await dialog.getByRole('button', { name: 'Create organisation' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await a().getByRole('heading', { name: 'Members', exact: true }).waitFor();
    await waitForText(status(a()), /Created Acme Robotics/);
    orgId = await workspace(a()).inputValue();
    assert.ok(orgId, 'the switcher shows the new organisation');
    assert.equal(await a().getByRole('link', { name: 'Members' }).getAttribute('aria-current'), 'page');
    const me = a().getByRole('row', { name: new RegExp(anaEmail.replace(/[.]/g, '\\.')) });
    await waitForText(me, /Owner/);
    assert.match(await me.textContent(), /You/);
  });

  await step('Ana invites Ben as an admin: the link is shown once, with a Copy button', async () => {
    const invite = a().getByRole('region', { name: 'Invite someone' });
    await invite.getByLabel('Role').selectOption({ label: 'Admin' });
    await invite.getByLabel('Email').fill(benEmail);
    await invite.getByRole('button', { name: 'Create invitation link' }).click();

    const shown = a().locator('#invite-link-value');
    link = (await waitForText(shown, LINK_PATTERN)).trim();
    assert.ok(link.startsWith(new URL('/', baseURL).href.replace(/\/$/, '')), `a link to this dashboard: ${link}`);
    const copy = invite.getByRole('button', { name: 'Copy link' });
    assert.ok(await copy.evaluate((el) => el === document.activeElement), 'the focus moves to Copy');
    assert.match(await invite.textContent(), /will not be shown again/);
    assert.match(await invite.textContent(), /an admin of Acme Robotics/);
    await copy.click();
    await waitForText(invite.locator('#invite-copy-status'), /clipboard/);
    assert.equal(await a().evaluate(() => navigator.clipboard.readText()), link, 'Copy puts the link on the clipboard');
    const pending = a().getByRole('region', { name: 'Pending invitations' });
    await waitForText(pending, new RegExp(benEmail.replace(/[.]/g, '\\.')));
    await shoot(a(), '60-members-invite-link');

    await invite.getByRole('button', { name: 'Done' }).click();
    assert.equal(await shown.textContent(), '', 'the link leaves the page');
    assert.ok(!(await a().content()).includes(link.split('#invite/')[1]), 'the token is nowhere on the page');
  });

  await step('Ben opens the link signed out, creates his account and joins', async () => {
    await bp().goto(link);
    await bp().getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
    await waitForText(bp().locator('#signin-lead'), /accept your invitation/);
    assert.ok(!bp().url().includes('inv_'), `the token leaves the address bar: ${bp().url()}`);
    await shoot(bp(), '61-invitation-sign-in');

    await bp().getByRole('link', { name: 'Create an account' }).click();
    const form = bp().getByRole('region', { name: 'Create an account' });
    await form.getByText('accept your invitation').waitFor();
    await form.getByLabel('Email').fill(benEmail);
    await form.getByLabel('Password').fill(password);
    await bp().getByRole('button', { name: 'Create account' }).click();

    await waitForText(status(bp()), /You joined Acme Robotics as an admin/);
    await bp().getByRole('heading', { name: 'No API keys yet' }).waitFor();
    assert.equal(await workspace(bp()).inputValue(), orgId, 'the switcher shows the organisation joined');
    assert.match(await bp().locator('#keys-lead-org').textContent(), /Acme Robotics/);
    const stored = await bp().evaluate(() => JSON.stringify({ ...sessionStorage }));
    assert.ok(!stored.includes('inv_'), 'the invitation token is forgotten once used');
    benId = (await dashboardSession(bp())).userId;
    assert.ok(benId);
  });

  await step('Ben creates an organisation key', async () => {
    await bp().getByRole('button', { name: 'Create API key' }).click();
    const form = bp().getByRole('dialog', { name: 'Create API key' });
    await form.getByLabel('Name', { exact: true }).fill(keyName);
    await form.getByRole('button', { name: 'Create', exact: true }).click();
    const dialog = bp().getByRole('dialog', { name: 'Your new API key' });
    await dialog.waitFor();
    key = (await dialog.locator('#key-value').textContent()).trim();
    assert.match(key, KEY_PATTERN);
    await dialog.getByRole('button', { name: 'Done' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const row = bp().getByRole('row', { name: new RegExp(`^${keyName}`) });
    await waitForText(row, /by you/);
    await shoot(bp(), '62-organisation-keys');

    const v = await verifyKey(key);
    assert.equal(v.status, 200, JSON.stringify(v.body));
    assert.equal(v.body.org_id, orgId);
    assert.equal(v.body.user_id, null);
    assert.equal(v.body.created_by, benId);
  });

  await step('Ana sees the key, created by Ben; her personal keys stay apart', async () => {
    await workspace(a()).selectOption({ label: 'Personal' });
    await waitForText(status(a()), /Showing your personal keys/);
    await a().getByRole('heading', { name: 'No API keys yet' }).waitFor();
    assert.equal(await a().getByRole('link', { name: 'Members' }).count(), 0, 'no members page for personal keys');

    await workspace(a()).selectOption({ label: orgName });
    await waitForText(status(a()), /Showing Acme Robotics, where you are an owner/);
    const row = a().getByRole('row', { name: new RegExp(`^${keyName}`) });
    const text = await waitForText(row, new RegExp(`by ${benEmail.replace(/[.]/g, '\\.')}`));
    assert.ok(text.includes(key.slice(0, 10)), text);
    await shoot(a(), '63-organisation-key-created-by');
  });

  await step('Ana removes Ben', async () => {
    await a().getByRole('link', { name: 'Members' }).click();
    await a().getByRole('heading', { name: 'Members', exact: true }).waitFor();
    const row = a().getByRole('row', { name: new RegExp(benEmail.replace(/[.]/g, '\\.')) });
    await waitForText(row, /Admin/);
    assert.equal(await a().getByRole('region', { name: 'Pending invitations' }).count(), 0, 'the invitation was used');
    await row.getByRole('button', { name: `Remove ${benEmail}` }).click();
    const confirm = a().getByRole('dialog', { name: `Remove ${benEmail}?` });
    await confirm.waitFor();
    assert.match(await confirm.textContent(), /keys they created keep working/);
    await confirm.getByRole('button', { name: 'Remove member' }).click();
    await confirm.waitFor({ state: 'hidden' });
    await waitForText(status(a()), /Removed ben-/);
    await row.waitFor({ state: 'detached' });
    await shoot(a(), '64-members-after-removal');
  });

  await step('Ben no longer sees the organisation; the key keeps working', async () => {
    await bp().reload();
    await waitForText(bp().locator('#page-error'), /no longer a member of Acme Robotics/);
    await bp().getByRole('heading', { name: 'No API keys yet' }).waitFor();
    assert.equal(await workspace(bp()).inputValue(), '');
    const options = await workspace(bp()).locator('option').allTextContents();
    assert.deepEqual(options, ['Personal']);
    const answer = await graphqlAs(bp(), '{ organizations { id } }');
    assert.deepEqual(answer.data, { organizations: [] }, JSON.stringify(answer));
    await shoot(bp(), '65-removed-member');

    const v = await verifyKey(key);
    assert.equal(v.status, 200, JSON.stringify(v.body));
    assert.equal(v.body.org_id, orgId);
    assert.equal(v.body.created_by, benId);

    // Ana still has it, created by a former member.
    await a().getByRole('link', { name: 'API Keys' }).click();
    const row = a().getByRole('row', { name: new RegExp(`^${keyName}`) });
    await waitForText(row, /by a former member/);

    for (const who of [ana, ben]) {
      await assertNoCSPViolations(who.page);
      assert.deepEqual(who.offsite, []);
      assert.deepEqual(who.problems, []);
    }
  });
});
