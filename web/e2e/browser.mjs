// Shared set-up of the browser tests: Debian's chromium driven by
// playwright-core, with every request that is not to this machine refused
// and recorded, and screenshots saved as test artifacts.
//
// Environment (TestBrowser in the Go suite sets it):
//   APIKEYD_URL     the apikeyd under test, e.g. http://127.0.0.1:PORT
//   CHROMIUM_PATH   the browser (default: /usr/bin/chromium)
//   SCREENSHOT_DIR  where screenshots go (default: artifacts/screenshots at
//                   the top of the repository)

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));

export const baseURL = process.env.APIKEYD_URL || '';
if (!baseURL) {
  throw new Error('APIKEYD_URL is not set. Run these tests with `go test -run TestBrowser .` ' +
    '(or ./scripts/test), which starts apikeyd and sets it.');
}

export const screenshotDir = resolve(process.env.SCREENSHOT_DIR || join(here, '..', '..', 'artifacts', 'screenshots'));
mkdirSync(screenshotDir, { recursive: true });

// The flags the project runs chromium with: no sandbox (containers, root),
// and none of the browser's own background traffic.
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 812 };

/** Whether url is on this machine (the only place the browser may reach). */
export function isLocal(url) {
  const u = new URL(url);
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:') return true;
  return ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
}

/**
 * Launches chromium (playwright gives each launch a fresh, temporary
 * user-data directory), or takes browser, one already launched, and opens a
 * context (a separate person: its own storage), in the time zone timezoneId
 * (default UTC), whose requests beyond localhost are aborted. Returns
 * { browser, context, page, offsite, problems }: offsite lists the refused
 * URLs, problems the page errors and CSP violations seen; both should stay
 * empty.
 */
export async function open({ timezoneId = 'UTC', browser = null } = {}) {
  browser ??= await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
  });
  const context = await browser.newContext({ baseURL, viewport: DESKTOP, locale: 'en-GB', timezoneId });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(baseURL).origin });

  const offsite = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLocal(url)) return route.continue();
    offsite.push(url);
    return route.abort('blockedbyclient');
  });

  const problems = [];
  // Runs before any page script and is not subject to the page's CSP.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations = window.__cspViolations || [];
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline code'}`);
    });
  });
  context.on('page', (p) => watch(p, problems));
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  return { browser, context, page, offsite, problems };
}

function watch(page, problems) {
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) {
      problems.push(`console: ${msg.text()}`);
    }
  });
}

/** Fails on any CSP violation recorded by the page so far. */
export async function assertNoCSPViolations(page) {
  const v = await page.evaluate(() => window.__cspViolations || []);
  assert.deepEqual(v, [], `CSP violations on ${page.url()}`);
}

/**
 * Saves a full-page screenshot of page as NN-name-WIDTH.png at each width,
 * and checks that nothing forces sideways scrolling there.
 */
export async function shoot(page, name, { sizes = [DESKTOP, PHONE], fitWidth = true } = {}) {
  const before = page.viewportSize();
  for (const size of sizes) {
    await page.setViewportSize(size);
    await page.waitForTimeout(100); // let layout settle after the resize
    await page.screenshot({ path: join(screenshotDir, `${name}-${size.width}.png`), fullPage: true });
    if (fitWidth) {
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= size.width, `${name}: the page is ${width}px wide in a ${size.width}px window`);
    }
  }
  await page.setViewportSize(before);
}

/** Waits until locator's text matches re, then returns the text. */
export async function waitForText(locator, re, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  let text = '';
  for (;;) {
    text = (await locator.textContent({ timeout })) || '';
    if (re.test(text)) return text;
    if (Date.now() > deadline) assert.fail(`text ${JSON.stringify(text)} never matched ${re}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Asks apikeyd's /auth/verify about key, from the test (not the browser). */
export async function verifyKey(key) {
  const res = await fetch(new URL('/auth/verify', baseURL), { headers: { 'X-Api-Key': key } });
  return { status: res.status, body: await res.json() };
}

/** POSTs body as JSON to apikeyd's path, from the test (with token, a login token). */
export async function post(path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(new URL(path, baseURL), { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

/** Signs in on the dashboard's form (page on the signed-out dashboard). */
export async function signIn(page, email, password) {
  const form = page.getByRole('region', { name: 'Sign in' });
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** The dashboard session kept in the page's sessionStorage. */
export async function dashboardSession(page) {
  return page.evaluate(() => JSON.parse(sessionStorage.getItem('apikeyd.session') || 'null'));
}

// stepper returns step(title, fn): a subtest of t that is skipped once an
// earlier one has failed, for tests whose steps each need the ones before.
export function stepper(t) {
  let broken = false;
  return (title, fn) => t.test(title, async (st) => {
    if (broken) {
      st.skip('an earlier step failed');
      return;
    }
    try {
      await fn(st);
    } catch (err) {
      broken = true;
      throw err;
    }
  });
}
