// The apikeyd dashboard: sign in, then create (optionally limited to
// scopes, and with limits of use), list, rename, roll, disable, limit and
// revoke API keys over the GraphQL API. Plain JavaScript, run as written: no
// framework, no build. The usage charts are usage.js's: this module calls
// its hooks.
//
// The login token lives in sessionStorage (this tab only, gone when it
// closes), never in a URL or a cookie. The playground page reads it from
// there to fill in its Authorization header.

import { forgetUsage, loadUsage, usageCell } from './usage.js';

const SESSION_KEY = 'apikeyd.session';

const KEY_FIELDS = `id keyPrefix name createdAt lastUsedAt lastUsedIp lastUsedUserAgent expiresAt scopes replacedBy
  enabled rateLimit { limit periodSeconds } credits { remaining refill { amount interval dayOfMonth } } allowedIps`;
// Keys revoked by a leak report come with the list, so their notice shows
// on every load until dismissed.
const LIST_KEYS = `query ApiKeys {
  apiKeys { ${KEY_FIELDS} }
  availableScopes
  leakedApiKeys { id keyPrefix name url source revokedAt }
}`;
const DISMISS_LEAK = `mutation DismissLeakNotice($id: ID!) { dismissLeakNotice(id: $id) }`;
const CREATE_KEY = `mutation CreateApiKey($input: CreateApiKeyInput) {
  createApiKey(input: $input) { key apiKey { ${KEY_FIELDS} } }
}`;
const REVOKE_KEY = `mutation RevokeApiKey($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }`;
const ROLL_KEY = `mutation RollApiKey($id: ID!, $grace: Int) {
  rollApiKey(id: $id, gracePeriodSeconds: $grace) { key apiKey { ${KEY_FIELDS} } previous { ${KEY_FIELDS} } }
}`;
const UPDATE_KEY = `mutation UpdateApiKey($id: ID!, $input: UpdateApiKeyInput!) {
  updateApiKey(id: $id, input: $input) { ${KEY_FIELDS} }
}`;
const VIEWER = `query Viewer { viewer { userId authMethod } }`;
const ACTIVITY_PAGE = 20;
const AUDIT_EVENTS = `query AuditEvents($first: Int, $after: String) {
  auditEvents(first: $first, after: $after) {
    edges { node { id action occurredAt actor { type id } keyId keyPrefix ip userAgent details } }
    pageInfo { hasNextPage endCursor }
  }
}`;

// Codes that mean the login token is no good any more.
const SESSION_ENDED = new Set(['INVALID_OR_EXPIRED_TOKEN', 'MISSING_AUTH']);

const $ = (id) => document.getElementById(id);

/** An error to show the user: message is a sentence, code the API's code. */
class ApiError extends Error {
  constructor(message, code = '', status = 0) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

// ---------------------------------------------------------------------------
// Session

let session = loadSession();
let expiryTimer = 0;

function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (s && typeof s.token === 'string' && s.token !== '' && !expired(s)) return s;
  } catch {
    // unreadable: start signed out
  }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

function expired(s) {
  return Boolean(s.expiresAt) && Date.parse(s.expiresAt) <= Date.now();
}

function startSession(s) {
  session = s;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  scheduleExpiry();
}

function scheduleExpiry() {
  clearTimeout(expiryTimer);
  if (!session || !session.expiresAt) return;
  // setTimeout takes at most 2^31-1 ms; a later expiry is checked again then.
  const ms = Math.min(Date.parse(session.expiresAt) - Date.now(), 2 ** 31 - 1);
  expiryTimer = setTimeout(() => {
    if (session && expired(session)) endSession('Your session has expired. Sign in again to continue.');
    else scheduleExpiry();
  }, Math.max(ms, 0));
}

/** Signs out: forgets the token (and the playground's tab state with it). */
function endSession(message) {
  clearTimeout(expiryTimer);
  session = null;
  keys = [];
  activity = [];
  leaks = [];
  forgetUsage();
  sessionStorage.clear();
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  $('keys-body').replaceChildren();
  $('activity-body').replaceChildren();
  renderLeaks();
  route({ focus: true });
  if (message) showPageError(message);
}

/** The expiry of a JWT, as an ISO string, or null. Only used to sign out in time. */
function jwtExpiry(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(payload));
    return typeof claims.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// Talking to apikeyd

/** Turns an API message ("invalid email or password") into a sentence. */
function sentence(msg) {
  const s = String(msg || '').trim();
  if (!s) return 'Something went wrong.';
  const t = s[0].toUpperCase() + s.slice(1);
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/** POSTs body as JSON to path (GETs path when body is undefined). */
async function request(path, body, token) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, {
      method: body === undefined ? 'GET' : 'POST',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError('Could not reach apikeyd. Check your connection and try again.', 'NETWORK');
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    // not JSON: described below from the status
  }
  return { res, data };
}

/** The error of a non-2xx answer in the REST error shape. */
function httpError(res, data) {
  const code = data && typeof data.code === 'string' ? data.code : '';
  let msg = data && typeof data.error === 'string' && data.error
    ? sentence(data.error)
    : `The server answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}.`;
  const retry = res.headers.get('Retry-After');
  if (res.status === 429 && retry) msg += ` Try again in ${retry} second${retry === '1' ? '' : 's'}.`;
  return new ApiError(msg, code, res.status);
}

const UNEXPECTED = 'The server sent an answer the dashboard does not understand.';

/** Runs a GraphQL operation with the session's token (or token). */
async function graphql(query, variables, token = session && session.token) {
  const { res, data } = await request('/graphql', { query, variables }, token);
  if (data && Array.isArray(data.errors) && data.errors.length > 0) {
    const e = data.errors[0];
    const code = (e.extensions && e.extensions.code) || '';
    throw new ApiError(sentence(e.message), code, res.status);
  }
  if (!res.ok) throw httpError(res, data);
  if (!data || !data.data) throw new ApiError(UNEXPECTED, 'BAD_RESPONSE', res.status);
  return data.data;
}

/** POSTs to a REST route of the accounts API and returns the JSON answer. */
async function rest(path, body) {
  const { res, data } = await request(path, body);
  if (!res.ok) throw httpError(res, data);
  return data || {};
}

/** GETs a REST route with the session's token and returns the JSON answer. */
async function restGet(path) {
  const { res, data } = await request(path, undefined, session && session.token);
  if (!res.ok) throw httpError(res, data);
  if (!data) throw new ApiError(UNEXPECTED, 'BAD_RESPONSE', res.status);
  return data;
}

async function login(email, password) {
  const data = await rest('/auth/login', { email, password });
  const s = data.session;
  if (!s || typeof s.access_token !== 'string') throw new ApiError(UNEXPECTED, 'BAD_RESPONSE');
  let expiresAt = s.expires_at || null;
  if (!expiresAt && typeof s.expires_in === 'number') {
    expiresAt = new Date(Date.now() + s.expires_in * 1000).toISOString();
  }
  const user = data.user || {};
  startSession({ token: s.access_token, expiresAt, name: user.email || email, userId: user.id || '' });
}

/** Says why a sign-in failed, with what to do when the server has no accounts. */
function accountsError(err) {
  if (err.status === 404 || err.status === 405) {
    $('token-signin').open = true;
    return 'This server has no built-in accounts: sign-in is handled by an identity provider. ' +
      'Paste a login token from it below.';
  }
  return err.message;
}

// ---------------------------------------------------------------------------
// Small DOM helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...children.filter((c) => c !== null && c !== undefined));
  return el;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function timeEl(iso) {
  return h('time', { datetime: iso, title: iso }, dateFormat.format(new Date(iso)));
}

function trashIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'icon');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M9 3h6l1 2h4v2H4V5h4l1-2zM6 9h12l-1 12H7L6 9zm4 2v8h1.5v-8H10zm3.5 0v8H15v-8h-1.5z');
  svg.append(path);
  return svg;
}

function showFormError(id, message) {
  const el = $(id);
  el.textContent = message;
  el.hidden = !message;
}

function showPageError(message) {
  const el = $('page-error');
  el.textContent = message;
  el.hidden = !message;
}

function announce(message) {
  const el = $('page-status');
  el.textContent = '';
  // A fresh text node, a moment later, so screen readers announce repeats too.
  setTimeout(() => { el.textContent = message; }, 50);
}

async function busy(button, fn) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------
// Views

const VIEWS = ['loading', 'signin', 'register', 'keys', 'activity'];

function show(view, { focus = false } = {}) {
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  const signedIn = view === 'keys' || view === 'activity';
  for (const [v, link] of [['keys', 'keys-link'], ['activity', 'activity-link']]) {
    if (v === view) $(link).setAttribute('aria-current', 'page');
    else $(link).removeAttribute('aria-current');
  }
  $('nav').hidden = !signedIn;
  $('account').hidden = !signedIn;
  $('account-name').textContent = signedIn && session ? session.name : '';
  document.title = {
    signin: 'Sign in · apikeyd',
    register: 'Create an account · apikeyd',
    keys: 'API Keys · apikeyd',
    activity: 'Activity · apikeyd',
  }[view] || 'apikeyd';
  if (focus) {
    const heading = $(`view-${view}`).querySelector('h1');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
  }
}

function route({ focus = false } = {}) {
  if (session && location.hash === '#activity') {
    show('activity', { focus });
    loadActivity();
  } else if (session) {
    show('keys', { focus });
    loadKeys();
  } else if (location.hash === '#register') {
    show('register', { focus });
  } else {
    show('signin', { focus });
  }
}

window.addEventListener('hashchange', () => {
  showPageError('');
  route({ focus: true });
});

$('sign-out').addEventListener('click', () => {
  endSession('');
  announce('You are signed out.');
});

/** Reports err: a dead session signs out, anything else is shown by show. */
function handle(err, showError) {
  if (session && SESSION_ENDED.has(err.code)) {
    endSession(`Your session is no longer valid (${err.message.replace(/\.$/, '')}). Sign in again.`);
    return;
  }
  showError(err.message);
}

// ---------------------------------------------------------------------------
// Sign in and register

$('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  showFormError('signin-error', '');
  showPageError('');
  const email = $('signin-email').value.trim();
  try {
    await busy(form.querySelector('[type=submit]'), () => login(email, $('signin-password').value));
    form.reset();
    route({ focus: true });
    announce(`Signed in as ${session.name}.`);
  } catch (err) {
    showFormError('signin-error', accountsError(err));
    $('signin-password').select();
  }
});

$('register-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  showFormError('register-error', '');
  showPageError('');
  const email = $('register-email').value.trim();
  const password = $('register-password').value;
  try {
    await busy(form.querySelector('[type=submit]'), async () => {
      await rest('/auth/register', { email, password });
      await login(email, password);
    });
    form.reset();
    history.replaceState(null, '', location.pathname);
    route({ focus: true });
    announce(`Account created: you are signed in as ${session.name}.`);
  } catch (err) {
    showFormError('register-error', accountsError(err));
  }
});

$('token-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  showFormError('token-error', '');
  showPageError('');
  const token = $('token-input').value.trim().replace(/^bearer\s+/i, '');
  try {
    const data = await busy(form.querySelector('[type=submit]'), () => graphql(VIEWER, {}, token));
    if (!data.viewer) throw new ApiError('That token was not accepted.');
    if (data.viewer.authMethod !== 'JWT') {
      throw new ApiError('That is an API key. API keys cannot manage keys: paste a login token (JWT) instead.');
    }
    startSession({ token, expiresAt: jwtExpiry(token), name: data.viewer.userId, userId: data.viewer.userId });
    form.reset();
    route({ focus: true });
    announce(`Signed in as ${session.name}.`);
  } catch (err) {
    showFormError('token-error', SESSION_ENDED.has(err.code) ? `That login token was not accepted. ${err.message}` : err.message);
  }
});

// ---------------------------------------------------------------------------
// API keys

let keys = [];
let loadSeq = 0;
// The server's scope catalogue: a list, null when any name goes, undefined
// until the keys have loaded.
let catalogue;

async function loadKeys() {
  const seq = ++loadSeq;
  $('keys-loading').hidden = keys.length > 0;
  try {
    const data = await graphql(LIST_KEYS, {});
    if (seq !== loadSeq || !session) return;
    keys = data.apiKeys;
    catalogue = data.availableScopes;
    leaks = data.leakedApiKeys;
    renderKeys();
    renderLeaks();
  } catch (err) {
    if (seq !== loadSeq) return;
    handle(err, (msg) => {
      showPageError(`Could not load your API keys. ${msg}`);
      const retry = h('button', { type: 'button', class: 'button', onclick: () => { showPageError(''); loadKeys(); } }, 'Try again');
      $('page-error').append(' ', retry);
    });
  } finally {
    if (seq === loadSeq) $('keys-loading').hidden = true;
  }
}

// Leak notices: a key that a code host found in public and reported was
// revoked at once; its owner is told where and when until they dismiss it.

let leaks = [];

function renderLeaks() {
  $('leak-notices').replaceChildren(...leaks.map(leakNotice));
  $('leak-notices').hidden = leaks.length === 0;
}

// linkOrText shows a report's URL as a link only when it is http(s).
function linkOrText(url) {
  try {
    const u = new URL(url);
    if (u.protocol === 'https:' || u.protocol === 'http:') {
      return h('a', { href: u.href, rel: 'noopener noreferrer nofollow', target: '_blank' }, url);
    }
  } catch { /* not a URL: shown as text */ }
  return h('code', {}, url);
}

function leakNotice(k) {
  const where = k.url ? [' at ', linkOrText(k.url)] : [' in public'];
  const kind = k.source ? ` (${k.source.replace(/_/g, ' ')})` : '';
  const dismiss = h('button', {
    type: 'button',
    class: 'button',
    'aria-label': `Dismiss the notice about ${labelOf(k)}`,
    onclick: (e) => dismissLeak(k, e.currentTarget),
  }, 'Dismiss');
  return h('div', { class: 'notice notice-error leak-notice', role: 'alert', 'data-leak-id': k.id },
    h('p', {},
      h('strong', {}, 'Key leaked and revoked: '),
      h('code', { class: 'prefix' }, `${k.keyPrefix}…`), k.name ? ` (${k.name})` : '',
      ' was found', ...where, kind, '. It was revoked ', timeEl(k.revokedAt),
      ' and no longer works. Replace it wherever it was used, and remove it from that place.'),
    dismiss);
}

async function dismissLeak(k, button) {
  try {
    await busy(button, () => graphql(DISMISS_LEAK, { id: k.id }));
    leaks = leaks.filter((x) => x.id !== k.id);
    renderLeaks();
    announce('Notice dismissed.');
  } catch (err) {
    handle(err, (msg) => showPageError(`Could not dismiss the notice. ${msg}`));
  }
}

function labelOf(k) {
  return k.name || k.keyPrefix;
}

function renderKeys() {
  $('keys-body').replaceChildren(...keys.map(keyRow));
  $('keys-empty').hidden = keys.length > 0;
  $('keys-list').hidden = keys.length === 0;
  loadUsage();
}

/** A key's scopes for the list: "Full access" when unrestricted. */
function scopesCell(k) {
  if (k.scopes === null || k.scopes === undefined) return h('span', { class: 'badge badge-full' }, 'Full access');
  if (k.scopes.length === 0) return h('span', { class: 'muted' }, 'No scopes');
  return h('ul', { class: 'scope-list', 'aria-label': 'Scopes' }, ...k.scopes.map((s) => h('li', {}, h('code', {}, s))));
}

function keyRow(k) {
  const never = () => h('span', { class: 'muted' }, 'never');
  const isExpired = k.expiresAt && Date.parse(k.expiresAt) <= Date.now();
  let expires = never();
  if (k.expiresAt) {
    expires = isExpired ? h('span', { class: 'badge badge-expired' }, 'Expired ', timeEl(k.expiresAt)) : timeEl(k.expiresAt);
  }
  if (k.replacedBy && !isExpired) {
    // In a roll's grace period: say when it stops and what replaced it.
    const next = keys.find((x) => x.id === k.replacedBy);
    expires = h('span', { class: 'grace' },
      h('span', { class: 'badge badge-grace' }, 'Stops working ', timeEl(k.expiresAt)),
      h('span', { class: 'replaced-by' }, 'Replaced by ', next ? h('code', { class: 'prefix' }, `${next.keyPrefix}…`) : 'a newer key'));
  }
  const rename = h('button', {
    type: 'button',
    class: 'button button-quiet',
    'aria-label': `Rename ${labelOf(k)}`,
    onclick: () => askRename(k),
  }, 'Rename');
  // A rolled key has a successor already; an expired one's would copy its
  // expiry, so the server refuses (KEY_EXPIRED).
  const roll = k.replacedBy || isExpired ? null : h('button', {
    type: 'button',
    class: 'button button-quiet',
    'aria-label': `Roll ${labelOf(k)}`,
    onclick: () => askRoll(k),
  }, 'Roll');
  const revoke = h('button', {
    type: 'button',
    class: 'button button-danger-quiet',
    'aria-label': `Revoke ${labelOf(k)}`,
    onclick: (e) => askRevoke(k, e.currentTarget),
  }, trashIcon(), h('span', { class: 'button-text' }, 'Revoke'));
  const toggle = h('button', {
    type: 'button',
    class: 'button button-quiet',
    'data-action': 'toggle',
    'aria-label': `${k.enabled ? 'Disable' : 'Enable'} ${labelOf(k)}`,
    onclick: (e) => setEnabled(k, !k.enabled, e.currentTarget),
  }, k.enabled ? 'Disable' : 'Enable');
  const limit = h('button', {
    type: 'button',
    class: 'button button-quiet',
    'data-action': 'limits',
    'aria-label': `Edit limits of ${labelOf(k)}`,
    onclick: () => askLimits(k),
  }, 'Edit limits');
  return h('tr', { 'data-key-id': k.id, class: k.enabled ? null : 'key-disabled' },
    h('th', { scope: 'row', 'data-label': 'Name' }, k.name ? k.name : h('span', { class: 'muted' }, 'Unnamed key'),
      k.enabled ? null : h('span', { class: 'badge badge-disabled' }, 'Disabled')),
    h('td', { 'data-label': 'Key' }, h('code', { class: 'prefix' }, `${k.keyPrefix}…`)),
    h('td', { 'data-label': 'Scopes' }, scopesCell(k)),
    h('td', { 'data-label': 'Limits' }, limitsCell(k)),
    h('td', { 'data-label': 'Created' }, timeEl(k.createdAt)),
    h('td', { 'data-label': 'Last used' }, k.lastUsedAt ? lastUse(k) : never()),
    h('td', { 'data-label': 'Last 7 days' }, usageCell(k)),
    h('td', { 'data-label': 'Expires' }, expires),
    h('td', { class: 'row-actions' }, h('div', { class: 'row-buttons' }, rename, roll, toggle, limit, revoke)),
  );
}

const numberFormat = new Intl.NumberFormat();
const num = (n) => numberFormat.format(n);

/** "minute", "2 minutes", "90 seconds": a rate limit's period, for "per …". */
function periodText(seconds) {
  for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]]) {
    if (seconds % size === 0) {
      const n = seconds / size;
      return n === 1 ? unit : `${num(n)} ${unit}s`;
    }
  }
  return `${seconds} seconds`;
}

/** When a refill happens, e.g. "every day" or "on day 1 of each month". */
function refillText(r) {
  return r.interval === 'day' ? 'every day' : `on day ${r.dayOfMonth} of each month`;
}

/** A key's limits for the list: "No limits" when it has none. */
function limitsCell(k) {
  const items = [];
  if (k.rateLimit) {
    items.push(h('li', {}, h('span', { class: 'limit-label' }, 'Rate limit'),
      `${num(k.rateLimit.limit)} per ${periodText(k.rateLimit.periodSeconds)}`));
  }
  if (k.credits) {
    const c = k.credits;
    const left = c.remaining === 0
      ? h('span', { class: 'badge badge-expired' }, 'No credits left')
      : `${num(c.remaining)} left`;
    items.push(h('li', {}, h('span', { class: 'limit-label' }, 'Credits'), left,
      c.refill ? h('span', { class: 'muted small limit-more' }, `back to ${num(c.refill.amount)} ${refillText(c.refill)}`) : null));
  }
  if (k.allowedIps) {
    items.push(h('li', {}, h('span', { class: 'limit-label' }, 'From'),
      h('span', { class: 'address-list' }, ...k.allowedIps.map((a) => h('code', {}, a)))));
  }
  if (items.length === 0) return h('span', { class: 'muted' }, 'No limits');
  return h('ul', { class: 'limit-list', 'aria-label': 'Limits' }, ...items);
}

/** Moves the focus to a button of k's row (rendered anew), else to Create. */
function focusAction(k, action) {
  const button = $('keys-body').querySelector(`tr[data-key-id="${CSS.escape(k.id)}"] [data-action="${action}"]`);
  (button || $('create-open')).focus();
}

/** Puts k in the list in place of the key with its id. */
function replaceKey(k) {
  keys = keys.map((x) => (x.id === k.id ? k : x));
  renderKeys();
}

/** Disables (enabled false) or enables key k, and keeps the focus on its button. */
async function setEnabled(k, enabled, button) {
  showPageError('');
  try {
    const data = await busy(button, () => graphql(UPDATE_KEY, { id: k.id, input: { enabled } }));
    replaceKey(data.updateApiKey);
    focusAction(k, 'toggle');
    announce(enabled
      ? `Enabled ${labelOf(k)}: it works again.`
      : `Disabled ${labelOf(k)}: it is refused until you enable it again.`);
  } catch (err) {
    handle(err, (msg) => showPageError(`Could not ${enabled ? 'enable' : 'disable'} ${labelOf(k)}. ${msg}`));
  }
}

// ---------------------------------------------------------------------------
// Limits: the same fields in the create and the edit dialogs

/**
 * Puts a copy of the limits fields in place of the element placeholder,
 * their ids prefixed with prefix, and returns its controls.
 */
function mountLimits(placeholder, prefix) {
  const part = $('limits-template').content.firstElementChild.cloneNode(true);
  const ids = (list) => list.split(' ').map((id) => `${prefix}-${id}`).join(' ');
  for (const el of part.querySelectorAll('[data-id]')) el.id = ids(el.dataset.id);
  for (const el of part.querySelectorAll('[data-for]')) el.htmlFor = ids(el.dataset.for);
  for (const el of [part, ...part.querySelectorAll('[data-describedby]')]) {
    if (el.dataset.describedby) el.setAttribute('aria-describedby', ids(el.dataset.describedby));
  }
  placeholder.replaceWith(part);
  const get = (id) => part.querySelector(`[data-id="${id}"]`);
  const l = {
    rate: get('rate'),
    period: get('period'),
    credits: get('credits'),
    refill: get('refill'),
    refillAmount: get('refill-amount'),
    refillAmountField: get('refill-amount-field'),
    refillDay: get('refill-day'),
    refillDayField: get('refill-day-field'),
    ips: get('ips'),
  };
  l.credits.addEventListener('input', () => syncRefill(l));
  l.refill.addEventListener('change', () => {
    syncRefill(l);
    if (l.refill.value && !l.refillAmount.value) l.refillAmount.value = l.credits.value;
  });
  for (const el of part.querySelectorAll('input, select, textarea')) {
    el.addEventListener('input', () => el.removeAttribute('aria-invalid'));
  }
  return l;
}

/** Shows the refill's amount and day as its interval needs; no refill without credits. */
function syncRefill(l) {
  const credited = l.credits.value !== '';
  l.refill.disabled = !credited;
  const interval = credited ? l.refill.value : '';
  l.refillAmountField.hidden = interval === '';
  l.refillAmount.required = interval !== '';
  l.refillDayField.hidden = interval !== 'month';
  l.refillDay.required = interval === 'month';
}

/** Fills the limits fields with k's (none: empty, a new key's). */
function fillLimits(l, k = null) {
  const rl = k && k.rateLimit;
  l.rate.value = rl ? String(rl.limit) : '';
  setPeriod(l.period, rl ? rl.periodSeconds : 60);
  const c = k && k.credits;
  l.credits.value = c ? String(c.remaining) : '';
  l.refill.value = c && c.refill ? c.refill.interval : '';
  l.refillAmount.value = c && c.refill ? String(c.refill.amount) : '';
  l.refillDay.value = c && c.refill && c.refill.dayOfMonth ? String(c.refill.dayOfMonth) : '1';
  l.ips.value = k && k.allowedIps ? k.allowedIps.join('\n') : '';
  for (const el of Object.values(l)) el.removeAttribute('aria-invalid');
  syncRefill(l);
}

/** Chooses seconds in a period select, adding it when it is none of the offered ones. */
function setPeriod(select, seconds) {
  const value = String(seconds);
  if (![...select.options].some((o) => o.value === value)) {
    select.append(h('option', { value }, periodText(seconds)));
  }
  select.value = value;
}

/** The limits as the API takes them: { rateLimit, credits, allowedIps }, null for none. */
function readLimits(l) {
  const whole = (input) => Number(input.value);
  const rateLimit = l.rate.value === '' ? null : { limit: whole(l.rate), periodSeconds: whole(l.period) };
  let credits = null;
  if (l.credits.value !== '') {
    credits = { remaining: whole(l.credits), refill: null };
    if (l.refill.value) {
      credits.refill = { amount: whole(l.refillAmount), interval: l.refill.value };
      if (l.refill.value === 'month') credits.refill.dayOfMonth = whole(l.refillDay);
    }
  }
  const ips = l.ips.value.split(/[\s,]+/).filter(Boolean);
  return { rateLimit, credits, allowedIps: ips.length > 0 ? ips : null };
}

/**
 * Says which field of the dialog an API error is about: its message begins
 * with the field as REST names it (rate_limit.limit, allowed_ips[1], …;
 * GraphQL's messages too), which becomes the field's label. The field is
 * marked invalid and takes the focus, so that the fix is one keystroke
 * away. Returns the message to show.
 */
function limitError(l, message) {
  const m = /^(rate_limit\.limit|rate_limit\.period_seconds|rate_limit|credits\.remaining|credits\.refill\.amount|credits\.refill\.interval|credits\.refill\.day_of_month|credits\.refill|credits|allowed_ips)(?:\[(\d+)\])?\s+(.*)$/is.exec(message);
  if (!m) return message;
  const [, path, index, rest] = m;
  const fields = {
    rate_limit: [l.rate, 'Rate limit'],
    'rate_limit.limit': [l.rate, 'Rate limit'],
    'rate_limit.period_seconds': [l.period, 'Rate limit period'],
    credits: [l.credits, 'Credits'],
    'credits.remaining': [l.credits, 'Credits'],
    'credits.refill': [l.refill, 'Refill'],
    'credits.refill.interval': [l.refill, 'Refill'],
    'credits.refill.amount': [l.refillAmount, 'Refill to'],
    'credits.refill.day_of_month': [l.refillDay, 'On day'],
    allowed_ips: [l.ips, 'Allowed addresses'],
  };
  const [el, label] = fields[path.toLowerCase()];
  el.setAttribute('aria-invalid', 'true');
  el.focus();
  const which = index === undefined ? '' : `, entry ${Number(index) + 1}`;
  return `${label}${which}: ${rest}`;
}

/** When a key was last used, and from where (address and client). */
function lastUse(k) {
  const from = [k.lastUsedIp, k.lastUsedUserAgent].filter(Boolean).join(' · ');
  return h('span', { class: 'last-use' }, timeEl(k.lastUsedAt),
    from ? h('span', { class: 'muted small last-use-from' }, `from ${from}`) : null);
}

// Create

const createDialog = $('create-dialog');
const createForm = $('create-form');
const createLimits = mountLimits($('create-limits'), 'create');

$('create-open').addEventListener('click', () => {
  createForm.reset();
  showFormError('create-error', '');
  $('key-expiry-date-field').hidden = true;
  $('key-expiry-date').required = false;
  const tomorrow = new Date(Date.now() + 864e5);
  $('key-expiry-date').min = localDate(tomorrow);
  renderScopeChoices();
  fillLimits(createLimits);
  createDialog.showModal();
  $('key-name').focus();
});

$('key-expiry').addEventListener('change', (e) => {
  const onDate = e.currentTarget.value === 'date';
  $('key-expiry-date-field').hidden = !onDate;
  $('key-expiry-date').required = onDate;
});

function localDate(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Offers the catalogue as checkboxes, or a text field when there is none. */
function renderScopeChoices() {
  const choices = $('key-scopes-choices');
  const offered = Array.isArray(catalogue) && catalogue.length > 0;
  choices.replaceChildren(...(offered ? catalogue : []).map((s, i) => h('div', { class: 'scope-choice' },
    h('input', { type: 'checkbox', id: `key-scope-${i}`, name: 'scope', value: s }),
    h('label', { for: `key-scope-${i}` }, h('code', {}, s)))));
  choices.hidden = !offered;
  $('key-scopes-free').hidden = offered;
}

/** The chosen scopes; an empty list means none chosen: full access. */
function chosenScopes() {
  if (!$('key-scopes-choices').hidden) {
    return [...$('key-scopes-choices').querySelectorAll('input:checked')].map((c) => c.value);
  }
  return $('key-scopes-text').value.split(/[\s,]+/).filter(Boolean);
}

/** The chosen expiry as an ISO timestamp, null for never. */
function chosenExpiry() {
  const choice = $('key-expiry').value;
  if (choice === '') return null;
  if (choice === 'date') {
    const day = $('key-expiry-date').value;
    // The end of that day, in the user's time zone.
    const at = new Date(`${day}T23:59:59`);
    if (!day || Number.isNaN(at.getTime())) throw new ApiError('Pick the day the key should expire.');
    if (at.getTime() <= Date.now()) throw new ApiError('Pick an expiry date in the future.');
    return at.toISOString();
  }
  return new Date(Date.now() + Number(choice) * 864e5).toISOString();
}

createForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  showFormError('create-error', '');
  const input = {};
  const name = $('key-name').value.trim();
  if (name) input.name = name;
  try {
    const expiresAt = chosenExpiry();
    if (expiresAt) input.expiresAt = expiresAt;
    const scopes = chosenScopes();
    if (scopes.length > 0) input.scopes = scopes;
    for (const [field, value] of Object.entries(readLimits(createLimits))) {
      if (value !== null) input[field] = value;
    }
    const data = await busy(createForm.querySelector('[type=submit]'), () => graphql(CREATE_KEY, { input }));
    const { key, apiKey } = data.createApiKey;
    keys = [apiKey, ...keys.filter((k) => k.id !== apiKey.id)];
    renderKeys();
    createDialog.close();
    showNewKey(key, apiKey);
  } catch (err) {
    handle(err, (msg) => showFormError('create-error', limitError(createLimits, msg)));
  }
});

// The new key, shown once

const keyDialog = $('key-dialog');
let shownKey = null;
let shownNote = '';

function showNewKey(secret, apiKey, note = `Created ${labelOf(apiKey)}.`) {
  shownKey = apiKey;
  shownNote = note;
  $('key-value').textContent = secret;
  $('key-name-shown').textContent = apiKey.name ? `Name: ${apiKey.name}` : '';
  $('key-copy-status').textContent = '';
  $('key-copy').textContent = 'Copy';
  keyDialog.showModal();
  $('key-copy').focus();
}

$('key-copy').addEventListener('click', async () => {
  const secret = $('key-value').textContent;
  try {
    if (!navigator.clipboard) throw new Error('no clipboard API');
    await navigator.clipboard.writeText(secret);
    $('key-copy').textContent = 'Copied';
    $('key-copy-status').textContent = 'The key is on your clipboard.';
  } catch {
    const range = document.createRange();
    range.selectNodeContents($('key-value'));
    const sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    $('key-copy-status').textContent = 'Could not copy automatically. The key is selected: press Ctrl+C (⌘C on a Mac) to copy it.';
  }
});

$('key-done').addEventListener('click', () => keyDialog.close());

keyDialog.addEventListener('close', () => {
  // The secret leaves the page for good.
  $('key-value').textContent = '';
  getSelection().removeAllRanges();
  if (shownKey && session) {
    announce(`${shownNote} From now on only its prefix, ${shownKey.keyPrefix}, is shown.`);
    $('create-open').focus();
  }
  shownKey = null;
});

// Revoke

const revokeDialog = $('revoke-dialog');
let revoking = null;

function askRevoke(k) {
  revoking = k;
  $('revoke-name').textContent = labelOf(k);
  showFormError('revoke-error', '');
  revokeDialog.showModal();
}

$('revoke-confirm').addEventListener('click', async (e) => {
  const k = revoking;
  if (!k) return;
  showFormError('revoke-error', '');
  let note = `Revoked ${labelOf(k)}.`;
  try {
    await busy(e.currentTarget, () => graphql(REVOKE_KEY, { id: k.id }));
  } catch (err) {
    if (err.code !== 'NOT_FOUND') {
      handle(err, (msg) => showFormError('revoke-error', msg));
      return;
    }
    note = `${labelOf(k)} was already revoked.`;
  }
  keys = keys.filter((x) => x.id !== k.id);
  renderKeys();
  revoking = null;
  revokeDialog.close();
  $('create-open').focus();
  announce(note);
});

revokeDialog.addEventListener('close', () => {
  revoking = null;
});

// Roll

const rollDialog = $('roll-dialog');
const rollForm = $('roll-form');
let rolling = null;

function askRoll(k) {
  rolling = k;
  rollForm.reset();
  $('roll-name').textContent = labelOf(k);
  showFormError('roll-error', '');
  rollDialog.showModal();
  $('roll-grace').focus();
}

rollForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const k = rolling;
  if (!k) return;
  showFormError('roll-error', '');
  const grace = Number($('roll-grace').value);
  try {
    const data = await busy(rollForm.querySelector('[type=submit]'), () => graphql(ROLL_KEY, { id: k.id, grace }));
    const { key, apiKey, previous } = data.rollApiKey;
    // Without grace the old key is revoked: it leaves the list.
    const others = keys.filter((x) => x.id !== apiKey.id).flatMap((x) => {
      if (x.id !== k.id) return [x];
      return grace > 0 ? [previous] : [];
    });
    keys = [apiKey, ...others];
    renderKeys();
    rolling = null;
    rollDialog.close();
    const when = grace > 0 ? `keeps working until ${dateFormat.format(new Date(previous.expiresAt))}` : 'no longer works';
    showNewKey(key, apiKey, `Rolled ${labelOf(k)}: the old key ${when}.`);
  } catch (err) {
    if (err.code === 'KEY_ALREADY_ROLLED' || err.code === 'NOT_FOUND') loadKeys();
    handle(err, (msg) => showFormError('roll-error', msg));
  }
});

rollDialog.addEventListener('close', () => {
  rolling = null;
});

// Rename

const renameDialog = $('rename-dialog');
const renameForm = $('rename-form');
let renaming = null;

function askRename(k) {
  renaming = k;
  renameForm.reset();
  $('rename-name').textContent = labelOf(k);
  $('rename-input').value = k.name || '';
  showFormError('rename-error', '');
  renameDialog.showModal();
  $('rename-input').select();
}

renameForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const k = renaming;
  if (!k) return;
  showFormError('rename-error', '');
  const name = $('rename-input').value.trim();
  try {
    const data = await busy(renameForm.querySelector('[type=submit]'),
      () => graphql(UPDATE_KEY, { id: k.id, input: { name: name || null } }));
    const renamed = data.updateApiKey;
    keys = keys.map((x) => (x.id === renamed.id ? renamed : x));
    renderKeys();
    renaming = null;
    renameDialog.close();
    $('create-open').focus();
    announce(name ? `Renamed ${labelOf(k)} to ${name}.` : `Removed the name of ${labelOf(k)}.`);
  } catch (err) {
    handle(err, (msg) => showFormError('rename-error', msg));
  }
});

renameDialog.addEventListener('close', () => {
  renaming = null;
});

// Edit limits

const limitsDialog = $('limits-dialog');
const limitsForm = $('limits-form');
const editLimits = mountLimits($('edit-limits'), 'edit');
let limiting = null; // { key, before: the limits as the dialog showed them }

function askLimits(k) {
  showFormError('limits-error', '');
  $('limits-name').textContent = labelOf(k);
  fillLimits(editLimits, k);
  limiting = { key: k, before: readLimits(editLimits) };
  limitsDialog.showModal();
  editLimits.rate.focus();
}

limitsForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!limiting) return;
  const { key: k, before } = limiting;
  showFormError('limits-error', '');
  // Only what changed is sent: credits left alone keep their balance,
  // whatever was spent while the dialog was open.
  const after = readLimits(editLimits);
  const input = {};
  for (const field of Object.keys(after)) {
    if (JSON.stringify(after[field]) !== JSON.stringify(before[field])) input[field] = after[field];
  }
  if (Object.keys(input).length === 0) {
    limitsDialog.close();
    announce(`Nothing changed: the limits of ${labelOf(k)} are as they were.`);
    return;
  }
  try {
    const data = await busy(limitsForm.querySelector('[type=submit]'),
      () => graphql(UPDATE_KEY, { id: k.id, input }));
    replaceKey(data.updateApiKey);
    limiting = null;
    limitsDialog.close();
    focusAction(k, 'limits');
    announce(`Saved the limits of ${labelOf(k)}.`);
  } catch (err) {
    if (err.code === 'NOT_FOUND') loadKeys();
    handle(err, (msg) => showFormError('limits-error', limitError(editLimits, msg)));
  }
});

limitsDialog.addEventListener('close', () => {
  limiting = null;
});

for (const b of document.querySelectorAll('[data-close]')) {
  b.addEventListener('click', () => b.closest('dialog').close());
}

// ---------------------------------------------------------------------------
// Activity

let activity = [];
let activityCursor = null;
let activitySeq = 0;

const ACTIONS = {
  'api_key.created': 'Created key',
  'api_key.updated': 'Changed key',
  'api_key.rolled': 'Rolled key',
  'api_key.revoked': 'Revoked key',
  'api_key.leaked': 'Revoked key: found leaked',
  'user.registered': 'Account created',
  'user.login': 'Signed in',
  'user.login_failed': 'Failed sign-in',
};

/** Loads the first page of the activity (more: the next one). */
async function loadActivity({ more = false } = {}) {
  const seq = ++activitySeq;
  if (!more) {
    activity = [];
    activityCursor = null;
  }
  $('activity-loading').hidden = more;
  try {
    const data = await graphql(AUDIT_EVENTS, { first: ACTIVITY_PAGE, after: activityCursor });
    if (seq !== activitySeq || !session) return;
    const conn = data.auditEvents;
    activity = [...activity, ...conn.edges.map((e) => e.node)];
    activityCursor = conn.pageInfo.hasNextPage ? conn.pageInfo.endCursor : null;
    renderActivity();
  } catch (err) {
    if (seq !== activitySeq) return;
    handle(err, (msg) => showPageError(`Could not load your activity. ${msg}`));
  } finally {
    if (seq === activitySeq) $('activity-loading').hidden = true;
  }
}

function renderActivity() {
  $('activity-body').replaceChildren(...activity.map(activityRow));
  $('activity-empty').hidden = activity.length > 0;
  $('activity-list').hidden = activity.length === 0;
  $('activity-more').hidden = !activityCursor;
}

function activityRow(ev) {
  const muted = (text) => h('span', { class: 'muted' }, text);
  let what = ACTIONS[ev.action] || ev.action;
  let details = {};
  try {
    details = JSON.parse(ev.details || '{}') || {};
  } catch {
    // shown without details
  }
  if (ev.action === 'api_key.created' && details.name) what += ` “${details.name}”`;
  if (ev.action === 'api_key.updated') what = updateText(details);
  if (ev.actor && ev.actor.type === 'leak_report') what += ' (leak report)';
  const from = [ev.ip, ev.userAgent].filter(Boolean).join(' · ');
  return h('tr', { 'data-event-id': ev.id },
    h('th', { scope: 'row', 'data-label': 'What' }, what),
    h('td', { 'data-label': 'Key' }, ev.keyPrefix ? h('code', { class: 'prefix' }, `${ev.keyPrefix}…`) : muted('—')),
    h('td', { 'data-label': 'When' }, timeEl(ev.occurredAt)),
    h('td', { 'data-label': 'From', class: 'from' }, from || muted('unknown')),
  );
}

/** What an api_key.updated event changed, from its details' fields. */
function updateText(details) {
  const changed = Object.keys(details);
  const parts = [];
  if (changed.includes('name')) parts.push('Renamed key');
  if (changed.includes('enabled')) parts.push(details.enabled && details.enabled.new === false ? 'Disabled key' : 'Enabled key');
  if (changed.some((f) => f !== 'name' && f !== 'enabled')) parts.push('Changed key limits');
  return parts.length > 0 ? parts.join(', ') : 'Changed key';
}

$('activity-more').addEventListener('click', (e) => busy(e.currentTarget, () => loadActivity({ more: true })));

// ---------------------------------------------------------------------------

scheduleExpiry();
route();

// The helpers usage.js uses. Its module imports this one in turn, so it
// calls none of them while the modules load.
export { graphql, h, handle, labelOf, num, restGet };
