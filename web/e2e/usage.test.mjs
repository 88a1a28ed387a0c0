// Usage charts on the dashboard: keys made and used through the API (valid
// verifications, refusals for a missing scope and by a rate limit, credits
// spent) show, within five
// seconds, in each key's last 7 days in the list, in the overview (most
// used first) and in each key's chart, whose bar titles and table give
// exactly the numbers the API returns, for each range, with hours in the
// viewer's time zone (here half an hour off UTC's). Steps run in order in
// one browser.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertNoCSPViolations, baseURL, open, post, shoot, signIn, stepper, waitForText,
} from './browser.mjs';

let b;
let page;
const email = `uma-${Date.now()}@example.com`;
const password = process.env.APIKEYD_E2E_PASSWORD || 'correct horse battery staple';

// The outcomes as the dashboard names them, by the API's field.
const OUTCOMES = {
  valid: 'valid',
  disabled: 'key disabled',
  ip_not_allowed: 'ip not allowed',
  insufficient_scope: 'insufficient scope',
  rate_limited: 'rate limited',
  usage_exceeded: 'usage exceeded',
};
const FIELDS = [...Object.keys(OUTCOMES), 'credits_spent'];
const HOUR = 3600e3;
const DAY = 24 * HOUR;
const ZONE = 'Asia/Kolkata'; // UTC+05:30

before(async () => {
  b = await open({ timezoneId: ZONE });
  page = b.page;
});

after(async () => {
  await b?.browser.close();
});

/** GETs apikeyd's path with a login token. */
async function get(path, token) {
  const res = await fetch(new URL(path, baseURL), { headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json();
  assert.equal(res.status, 200, `GET ${path}: ${JSON.stringify(body)}`);
  return body;
}

/** Verifies key n times, requiring scope; returns the statuses. */
async function verifyMany(key, n, scope) {
  const statuses = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(new URL(`/auth/verify?scope=${encodeURIComponent(scope)}`, baseURL), { headers: { 'X-Api-Key': key } });
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  return statuses;
}

const zero = Object.fromEntries(FIELDS.map((f) => [f, 0]));

/** Counts added up over buckets (or over key totals). */
function sum(list) {
  const out = { ...zero };
  for (const x of list) for (const f of FIELDS) out[f] += x[f];
  return out;
}

const requests = (c) => Object.keys(OUTCOMES).reduce((n, f) => n + c[f], 0);
const int = (text) => Number(text.replace(/[^\d]/g, ''));

/** The counts a bar's title gives ("…: 5 requests: 3 valid, 2 rate limited; 3 credits spent"). */
function titleCounts(title) {
  const c = { ...zero };
  for (const [field, label] of Object.entries(OUTCOMES)) {
    const m = new RegExp(`([\\d,]+) ${label}\\b`).exec(title);
    if (m) c[field] = int(m[1]);
  }
  const credits = /([\d,]+) credits? spent/.exec(title);
  if (credits) c.credits_spent = int(credits[1]);
  const n = /([\d,]+) requests?:/.exec(title);
  assert.equal(n ? int(n[1]) : 0, requests(c), `the total of "${title}"`);
  if (!n) assert.match(title, /: no requests$/);
  return c;
}

/** What the chart in root shows: each bar's start and title, and the table. */
function readChart(root) {
  return root.evaluate((el) => ({
    summary: el.querySelector('.usage-summary').textContent,
    bars: [...el.querySelectorAll('.chart-bar')].map((g) => ({ start: g.dataset.start, title: g.querySelector('title').textContent })),
    headers: [...el.querySelectorAll('.usage-table thead th')].map((th) => th.textContent),
    rows: [...el.querySelectorAll('.usage-table tbody tr')].map((tr) => ({
      start: tr.querySelector('time').getAttribute('datetime'),
      cells: [...tr.querySelectorAll('td')].map((td) => td.textContent),
    })),
  }));
}

/**
 * Checks that the chart in root shows buckets (the API's) exactly: a bar
 * per bucket whose title has its numbers, and a table row per bucket with
 * requests (the table shown on demand).
 */
async function assertChartShows(root, buckets) {
  const toggle = root.getByRole('button', { name: 'Show as a table' });
  if (await toggle.count() > 0) await toggle.click();
  assert.ok(await root.getByRole('table').isVisible(), 'the table shows on demand');
  const shown = await readChart(root);
  assert.deepEqual(shown.bars.map((x) => x.start), buckets.map((x) => x.start), 'a bar per bucket, in order');
  for (const [i, bar] of shown.bars.entries()) {
    const want = Object.fromEntries(FIELDS.map((f) => [f, buckets[i][f]]));
    assert.deepEqual(titleCounts(bar.title), want, `the title of the bar of ${bar.start}`);
  }
  const used = buckets.filter((x) => requests(x) > 0);
  const credits = used.some((x) => x.credits_spent > 0);
  const columns = ['Valid', 'Key disabled', 'IP not allowed', 'Insufficient scope', 'Rate limited', 'Usage exceeded', 'Total'];
  assert.deepEqual(shown.headers.slice(1), credits ? [...columns, 'Credits spent'] : columns);
  assert.deepEqual(shown.rows, used.map((x) => ({
    start: x.start,
    cells: [...Object.keys(OUTCOMES).map((f) => x[f]), requests(x), ...(credits ? [x.credits_spent] : [])].map((n) => n.toLocaleString('en-GB')),
  })), 'the table: a row per bucket with requests');
  return shown;
}

/** The API's [from, to) of the buckets a chart shows, for the same report. */
function rangeOf(bars, step) {
  return `from=${bars[0].start}&to=${new Date(Date.parse(bars.at(-1).start) + step).toISOString()}`;
}

test('usage charts', async (t) => {
  const step = stepper(t);
  let token;
  const keys = {};

  await step('keys made and used through the API', async () => {
    assert.equal((await post('/auth/register', { email, password })).status, 201);
    token = (await post('/auth/login', { email, password })).body.session.access_token;
    for (const [name, policy] of [
      ['Idle', {}],
      ['Metered', { rate_limit: { limit: 3, period_seconds: 3600 }, credits: { remaining: 100, refill: null } }],
      ['Reports', { scopes: ['reports:read'] }],
      ['Busy', {}],
    ]) {
      const created = await post('/auth/api-keys', { name, ...policy }, token);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      keys[name] = created.body;
    }
    const started = Date.now();
    assert.deepEqual(await verifyMany(keys.Reports.key, 5, 'reports:read'), Array(5).fill(200));
    assert.deepEqual(await verifyMany(keys.Reports.key, 2, 'orders:write'), [403, 403]);
    assert.deepEqual(await verifyMany(keys.Busy.key, 9, 'anything'), Array(9).fill(200));
    assert.deepEqual(await verifyMany(keys.Metered.key, 5, 'anything'), [200, 200, 200, 429, 429]);

    // The counts show within five seconds.
    const want = {
      Reports: { ...zero, valid: 5, insufficient_scope: 2 },
      Busy: { ...zero, valid: 9 },
      Metered: { ...zero, valid: 3, rate_limited: 2, credits_spent: 3 },
    };
    for (;;) {
      const got = {};
      for (const name of Object.keys(want)) got[name] = sum((await get(`/auth/api-keys/${keys[name].id}/usage`, token)).buckets);
      try {
        assert.deepEqual(got, want);
        break;
      } catch (err) {
        if (Date.now() - started > 5000) throw err;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  await step("the list shows each key's last 7 days", async () => {
    await page.goto('/');
    await signIn(page, email, password);
    const today = Math.floor(Date.now() / DAY) * DAY;
    const days = `from=${new Date(today - 6 * DAY).toISOString()}&to=${new Date(today + DAY).toISOString()}`;
    for (const [name, label] of [
      ['Reports', 'Usage of Reports: 7 requests in the last 7 days, 2 refused'],
      ['Busy', 'Usage of Busy: 9 requests in the last 7 days'],
      ['Metered', 'Usage of Metered: 5 requests in the last 7 days, 2 refused'],
      ['Idle', 'Usage of Idle: 0 requests in the last 7 days'],
    ]) {
      await page.getByRole('button', { name: label, exact: true }).waitFor();
      const week = (await get(`/auth/api-keys/${keys[name].id}/usage?granularity=day&${days}`, token)).buckets;
      assert.equal(week.length, 7);
      assert.match(label, new RegExp(`: ${requests(sum(week))} requests`), `${name}: as the API counts`);
    }
    await shoot(page, '50-list-with-usage');
  });

  await step('the overview: all keys together, the most used first', async () => {
    const overview = page.getByRole('region', { name: 'Usage' });
    await waitForText(overview.locator('.usage-summary'),
      /^21 requests to your keys in the last 7 days: 17 valid, 2 insufficient scope, 2 rate limited; 3 credits spent\.$/);
    const shown = await readChart(overview);
    assert.equal(shown.bars.length, 168, '7 days by hour');
    const report = await get(`/auth/usage?granularity=hour&${rangeOf(shown.bars, HOUR)}`, token);
    await assertChartShows(overview, report.buckets);

    const listed = await overview.getByRole('list', { name: 'Most used keys' }).getByRole('listitem').allTextContents();
    const top = report.keys.filter((k) => requests(k) > 0);
    assert.deepEqual(top.map((k) => k.name), ['Busy', 'Reports', 'Metered'], 'most used first; unused keys left out');
    assert.deepEqual(listed, top.map((k) => {
      const refused = requests(k) - k.valid;
      const credits = k.credits_spent > 0 ? `; ${k.credits_spent} credit${k.credits_spent === 1 ? '' : 's'} spent` : '';
      return `${k.name} ${k.key_prefix}…${requests(k)} requests${refused > 0 ? `, ${refused} refused` : ''}${credits}Chart`;
    }));
    await shoot(page, '51-usage-overview');
  });

  await step("a key's chart gives the API's numbers, for each range", async () => {
    await page.getByRole('button', { name: /^Usage of Metered:/ }).click();
    const dialog = page.getByRole('dialog', { name: 'Usage of Metered' });
    await dialog.waitFor();
    for (const [range, step, granularity, count] of [['7 days', HOUR, 'hour', 168], ['24 hours', HOUR, 'hour', 24], ['30 days', DAY, 'day', 30]]) {
      const button = dialog.getByRole('button', { name: range, exact: true });
      await button.click();
      assert.equal(await button.getAttribute('aria-pressed'), 'true');
      await waitForText(dialog.locator('.usage-summary'),
        new RegExp(`^5 requests in the last ${range}: 3 valid, 2 rate limited; 3 credits spent\\.$`));
      const { bars } = await readChart(dialog);
      assert.equal(bars.length, count, `${range}: ${count} bars`);
      const report = await get(`/auth/api-keys/${keys.Metered.id}/usage?granularity=${granularity}&${rangeOf(bars, step)}`, token);
      await assertChartShows(dialog, report.buckets);
      assert.deepEqual(sum(report.buckets), { ...zero, valid: 3, rate_limited: 2, credits_spent: 3 });
      const { rows } = await readChart(dialog);
      const when = await dialog.locator('.usage-table tbody th').first().textContent();
      if (granularity === 'hour') {
        // The hour of use, in the viewer's time zone.
        const local = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', timeZone: ZONE });
        assert.ok(when.includes(local.format(new Date(rows[0].start))), `"${when}" is in ${ZONE}`);
        assert.match(when, /:30–\d\d:30$/);
        const zone = await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone); // Asia/Calcutta, to ICU
        assert.equal(await dialog.locator('.chart-axis-title').last().textContent(), `Time (${zone})`);
      } else {
        assert.match(when, /\(UTC\)$/, 'days are UTC days');
      }
    }
    await dialog.getByRole('button', { name: '24 hours', exact: true }).click();
    await waitForText(dialog.locator('.usage-summary'), /in the last 24 hours/);
    await shoot(page, '52-key-chart-table');
    await dialog.getByRole('button', { name: 'Hide the table' }).click();
    assert.equal(await dialog.getByRole('table').count(), 0, 'hidden again');
    await shoot(page, '53-key-chart');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await assertNoCSPViolations(page);
    assert.deepEqual(b.offsite, []);
    assert.deepEqual(b.problems, []);
  });
});
