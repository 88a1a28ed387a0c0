// The apikeyd dashboard: sign in, then create (optionally limited to
// scopes, and with limits of use), list, rename, roll, disable, limit and
// revoke API keys over the GraphQL API, your own or an organisation's (a
// switcher chooses; docs/organisations.md), and manage an organisation's
// members and invitations. Plain JavaScript, run as written: no framework,
// no build. The usage charts are usage.js's: this module calls its hooks.
//
// The login token lives in sessionStorage (this tab only, gone when it
// closes), never in a URL or a cookie. The playground page reads it from
// there to fill in its Authorization header. An invitation link
// (#invite/TOKEN) leaves the address bar at once: its token waits in
// sessionStorage until the invitation is accepted, after a sign-in if need be.

import { forgetUsage, loadUsage, usageCell } from './usage.js';

const SESSION_KEY = 'apikeyd.session';
const ORG_KEY = 'apikeyd.org'; // the organisation in view: { id, name }
const INVITE_KEY = 'apikeyd.invite'; // an invitation's token, until accepted

const KEY_FIELDS = `id keyPrefix name createdAt lastUsedAt lastUsedIp lastUsedUserAgent expiresAt scopes replacedBy
  enabled rateLimit { limit periodSeconds } credits { remaining refill { amount interval dayOfMonth } } allowedIps createdBy`;
const LEAKS = 'leakedApiKeys { id keyPrefix name url source revokedAt }';
// Keys revoked by a leak report come with the list, so their notice shows
// on every load until dismissed.
const LIST_KEYS = `query ApiKeys {
  apiKeys { ${KEY_FIELDS} }
  availableScopes
  ${LEAKS}
}`;
const ORG_KEYS = `query OrganizationKeys($id: ID!) {
  organization(id: $id) { id name role apiKeys { ${KEY_FIELDS} } }
  availableScopes
  ${LEAKS}
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
const EVENTS_PAGE = `edges { node { id action occurredAt actor { type id } keyId keyPrefix ip userAgent details } }
    pageInfo { hasNextPage endCursor }`;
const AUDIT_EVENTS = `query AuditEvents($first: Int, $after: String) {
  auditEvents(first: $first, after: $after) { ${EVENTS_PAGE} }
}`;
const ORG_AUDIT_EVENTS = `query OrganizationAuditEvents($id: ID!, $first: Int, $after: String) {
  organization(id: $id) { id auditEvents(first: $first, after: $after) { ${EVENTS_PAGE} } }
}`;

const ORG_FIELDS = 'id name role';
const MEMBER_FIELDS = 'userId email role joinedAt';
const INVITATION_FIELDS = 'id role email expiresAt createdAt';
const ORGANIZATIONS = `query Organizations { organizations { ${ORG_FIELDS} } }`;
const ORG_MEMBERS = `query OrganizationMembers($id: ID!) {
  organization(id: $id) { ${ORG_FIELDS} members { ${MEMBER_FIELDS} } }
}`;
const ORG_INVITATIONS = `query OrganizationInvitations($id: ID!) {
  organization(id: $id) { id invitations { ${INVITATION_FIELDS} } }
}`;
const CREATE_ORG = `mutation CreateOrganization($input: CreateOrganizationInput!) {
  createOrganization(input: $input) { ${ORG_FIELDS} }
}`;
const DELETE_ORG = `mutation DeleteOrganization($id: ID!) { deleteOrganization(id: $id) }`;
const CREATE_INVITATION = `mutation CreateInvitation($org: ID!, $input: CreateInvitationInput!) {
  createInvitation(organizationId: $org, input: $input) { token invitation { ${INVITATION_FIELDS} } }
}`;
const REVOKE_INVITATION = `mutation RevokeInvitation($org: ID!, $id: ID!) { revokeInvitation(organizationId: $org, id: $id) }`;
const ACCEPT_INVITATION = `mutation AcceptInvitation($token: String!) { acceptInvitation(token: $token) { ${ORG_FIELDS} } }`;
const UPDATE_MEMBER = `mutation UpdateMember($org: ID!, $user: ID!, $role: OrganizationRole!) {
  updateMember(organizationId: $org, userId: $user, role: $role) { ${MEMBER_FIELDS} }
}`;
const REMOVE_MEMBER = `mutation RemoveMember($org: ID!, $user: ID!) { removeMember(organizationId: $org, userId: $user) }`;

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
  orgs = [];
  org = null;
  names = new Map();
  forgetUsage();
  sessionStorage.clear();
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  $('keys-body').replaceChildren();
  $('activity-body').replaceChildren();
  $('members-body').replaceChildren();
  $('invitations-body').replaceChildren();
  hideInviteLink();
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

const VIEWS = ['loading', 'signin', 'register', 'keys', 'members', 'activity'];

function show(view, { focus = false } = {}) {
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  const signedIn = view === 'keys' || view === 'members' || view === 'activity';
  for (const [v, link] of [['keys', 'keys-link'], ['members', 'members-link'], ['activity', 'activity-link']]) {
    if (v === view) $(link).setAttribute('aria-current', 'page');
    else $(link).removeAttribute('aria-current');
  }
  $('nav').hidden = !signedIn;
  $('members-link').hidden = !org;
  $('workspace').hidden = !signedIn;
  $('account').hidden = !signedIn;
  $('account-name').textContent = signedIn && session ? session.name : '';
  if (view !== 'members') hideInviteLink();
  showScope();
  const where = org ? ` · ${org.name || 'Organisation'}` : '';
  document.title = {
    signin: 'Sign in · apikeyd',
    register: 'Create an account · apikeyd',
    keys: `API Keys${where} · apikeyd`,
    members: `Members${where} · apikeyd`,
    activity: `Activity${where} · apikeyd`,
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
  takeInvitation();
  const invited = Boolean(sessionStorage.getItem(INVITE_KEY));
  $('signin-lead').textContent = invited
    ? 'Sign in, or create an account, to accept your invitation to an organisation.'
    : 'Sign in to manage your API keys.';
  $('register-lead').hidden = !invited;
  if (session && invited) {
    acceptInvitation({ focus });
    return;
  }
  if (session) loadOrgs();
  if (session && location.hash === '#activity') {
    show('activity', { focus });
    loadActivity();
  } else if (session && location.hash === '#members' && org) {
    show('members', { focus });
    loadMembers();
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

/**
 * Reports err: a dead session signs out, anything else is shown by show.
 * Several requests may find the session dead: the first signs out and says
 * why, the others say nothing more.
 */
function handle(err, showError) {
  if (SESSION_ENDED.has(err.code)) {
    if (session) endSession(`Your session is no longer valid (${err.message.replace(/\.$/, '')}). Sign in again.`);
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
  const scope = org;
  try {
    let data;
    if (scope) {
      // Who created each key: the members' emails, when the server has them.
      [data] = await Promise.all([graphql(ORG_KEYS, { id: scope.id }), loadNames(scope)]);
    } else {
      data = await graphql(LIST_KEYS, {});
    }
    if (seq !== loadSeq || !session || scope !== org) return;
    if (scope) {
      updateOrg(data.organization);
      keys = data.organization.apiKeys;
    } else {
      keys = data.apiKeys;
    }
    catalogue = data.availableScopes;
    leaks = data.leakedApiKeys;
    showScope();
    renderKeys();
    renderLeaks();
  } catch (err) {
    if (seq !== loadSeq) return;
    if (scope && scope === org && err.code === 'NOT_FOUND') {
      lostOrg(scope);
      return;
    }
    handle(err, (msg) => {
      showPageError(`Could not load ${scope ? `the API keys of ${scope.name || 'the organisation'}` : 'your API keys'}. ${msg}`);
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
  const buttons = canManage() ? [rename, roll, toggle, limit, revoke] : [];
  return h('tr', { 'data-key-id': k.id, class: k.enabled ? null : 'key-disabled' },
    h('th', { scope: 'row', 'data-label': 'Name' }, k.name ? k.name : h('span', { class: 'muted' }, 'Unnamed key'),
      k.enabled ? null : h('span', { class: 'badge badge-disabled' }, 'Disabled')),
    h('td', { 'data-label': 'Key' }, h('code', { class: 'prefix' }, `${k.keyPrefix}…`)),
    h('td', { 'data-label': 'Scopes' }, scopesCell(k)),
    h('td', { 'data-label': 'Limits' }, limitsCell(k)),
    h('td', { 'data-label': 'Created' }, h('span', { class: 'created' }, timeEl(k.createdAt),
      org ? h('span', { class: 'muted small created-by' }, `by ${nameOf(k.createdBy)}`) : null)),
    h('td', { 'data-label': 'Last used' }, k.lastUsedAt ? lastUse(k) : never()),
    h('td', { 'data-label': 'Last 7 days' }, usageCell(k)),
    h('td', { 'data-label': 'Expires' }, expires),
    h('td', { class: 'row-actions' }, h('div', { class: 'row-buttons' }, ...buttons)),
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
  if (org) input.organizationId = org.id;
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

$('key-copy').addEventListener('click', () => copySecret($('key-value'), $('key-copy'), $('key-copy-status'), 'The key'));

/**
 * Copies the text of el (a secret shown once) to the clipboard, saying so in
 * status; where that is refused, selects it for the user to copy.
 */
async function copySecret(el, button, status, what) {
  try {
    if (!navigator.clipboard) throw new Error('no clipboard API');
    await navigator.clipboard.writeText(el.textContent);
    button.textContent = 'Copied';
    status.textContent = `${what} is on your clipboard.`;
  } catch {
    const range = document.createRange();
    range.selectNodeContents(el);
    const sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    status.textContent = `Could not copy automatically. ${what} is selected: press Ctrl+C (⌘C on a Mac) to copy it.`;
  }
}

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

// Revoking a key is confirmed in the one confirmation dialog (confirmAction).
function askRevoke(k) {
  const label = labelOf(k);
  let note = `Revoked ${label}.`;
  confirmAction({
    title: `Revoke ${label}?`,
    text: 'Anything that uses this key stops working at once. This cannot be undone.',
    ok: 'Revoke key',
    run: async () => {
      try {
        await graphql(REVOKE_KEY, { id: k.id });
      } catch (err) {
        if (err.code !== 'NOT_FOUND') throw err;
        note = `${label} was already revoked.`;
      }
    },
    done: () => {
      keys = keys.filter((x) => x.id !== k.id);
      renderKeys();
      $('create-open').focus();
      announce(note);
    },
  });
}

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
// Workspaces: your personal keys, or an organisation's (docs/organisations.md)

let orgs = []; // the caller's organisations: { id, name, role }
// The organisation in view, null for personal keys. Its id and name outlive
// a reload; the caller's role comes with the next answer about it.
let org = savedOrg();
// The members' emails (null without built-in accounts) by user id: who
// created a key, who did what.
let names = new Map();
let orgsSeq = 0;

const ROLE_TITLES = { OWNER: 'Owner', ADMIN: 'Admin', MEMBER: 'Member' };

function savedOrg() {
  try {
    const o = JSON.parse(sessionStorage.getItem(ORG_KEY) || 'null');
    if (session && o && typeof o.id === 'string' && o.id !== '') return { id: o.id, name: String(o.name || ''), role: '' };
  } catch {
    // unreadable: personal keys
  }
  return null;
}

function saveOrg() {
  if (org) sessionStorage.setItem(ORG_KEY, JSON.stringify({ id: org.id, name: org.name }));
  else sessionStorage.removeItem(ORG_KEY);
}

/** "an admin", "a member": role in a sentence. */
function aRole(role) {
  const name = (ROLE_TITLES[role] || String(role)).toLowerCase();
  return `${/^[aeiou]/.test(name) ? 'an' : 'a'} ${name}`;
}

/** The id of the organisation in view, null for personal keys. */
function orgInView() {
  return org ? org.id : null;
}

/** Whether the caller may create, roll, change and revoke the keys in view. */
function canManage() {
  return !org || org.role === 'OWNER' || org.role === 'ADMIN';
}

/** Who user id is, for "created by" and the activity. */
function nameOf(id) {
  if (!id) return 'someone';
  if (session && id === session.userId) return 'you';
  if (names.has(id)) return names.get(id) || id;
  return names.size > 0 ? 'a former member' : id;
}

/** Loads the members' names of scope (none when the server keeps no members). */
async function loadNames(scope) {
  try {
    const data = await graphql(ORG_MEMBERS, { id: scope.id });
    if (scope === org) names = new Map(data.organization.members.map((m) => [m.userId, m.email]));
  } catch {
    // An identity provider's organisation has no member list here: ids stand in.
  }
}

/** Puts the texts of the organisation in view (or of none) on the pages. */
function showScope() {
  const named = org ? org.name || 'the organisation' : '';
  $('keys-lead').hidden = Boolean(org);
  $('keys-lead-org').hidden = !org;
  $('keys-org-name').textContent = named;
  $('keys-role-note').textContent = !org || !org.role ? '' : org.role === 'MEMBER'
    ? 'As a member you see its keys and their usage; its admins and owners create, roll and revoke them.'
    : `As ${aRole(org.role)} you create, roll and revoke them.`;
  $('keys-empty-personal').hidden = Boolean(org);
  $('keys-empty-org').hidden = !org;
  $('keys-caption').textContent = org ? `API keys of ${named}, newest first` : 'Your API keys, newest first';
  $('create-open').hidden = !canManage();
  $('usage-whose').textContent = org ? 'the organisation’s keys' : 'your keys';
  $('members-org-name').textContent = named;
  $('activity-lead').hidden = Boolean(org);
  $('activity-lead-org').hidden = !org;
  $('activity-org-name').textContent = named;
}

/** Fills the switcher: Personal, then each organisation. */
function renderWorkspaces() {
  const select = $('workspace-select');
  const list = org && !orgs.some((o) => o.id === org.id) ? [...orgs, org] : orgs;
  const options = [['', 'Personal'], ...list.map((o) => [o.id, o.name || 'Organisation'])];
  const same = options.length === select.options.length &&
    options.every(([value, text], i) => select.options[i].value === value && select.options[i].text === text);
  if (!same) select.replaceChildren(...options.map(([value, text]) => h('option', { value }, text)));
  select.value = org ? org.id : '';
}

/** Takes o's name and the caller's role from an answer about it. */
function updateOrg(o) {
  if (!o) return;
  if (org && org.id === o.id) {
    Object.assign(org, { name: o.name, role: o.role });
    saveOrg();
  }
  orgs = orgs.map((x) => (x.id === o.id ? { ...x, name: o.name, role: o.role } : x));
  renderWorkspaces();
  showScope();
}

/** Shows the keys of o (null: the personal ones) from now on. */
function setOrg(o) {
  org = o ? { ...o } : null;
  saveOrg();
  keys = [];
  names = new Map();
  memberList = [];
  invitations = [];
  forgetUsage();
  $('keys-body').replaceChildren();
  $('keys-list').hidden = true;
  $('keys-empty').hidden = true;
  $('members-body').replaceChildren();
  $('invitations-body').replaceChildren();
  hideInviteLink();
  renderWorkspaces();
  showScope();
}

async function loadOrgs() {
  const seq = ++orgsSeq;
  try {
    const data = await graphql(ORGANIZATIONS, {});
    if (seq !== orgsSeq || !session) return;
    orgs = data.organizations;
    const current = org && orgs.find((o) => o.id === org.id);
    if (org && !current) lostOrg(org);
    else if (current) updateOrg(current);
    else renderWorkspaces();
  } catch (err) {
    if (seq === orgsSeq) handle(err, (msg) => showPageError(`Could not load your organisations. ${msg}`));
  }
}

/** The caller left scope, was removed from it, or it was deleted: back to personal keys. */
function lostOrg(scope) {
  if (!org || org.id !== scope.id) return;
  orgs = orgs.filter((o) => o.id !== scope.id);
  setOrg(null);
  if (location.hash === '#members') history.replaceState(null, '', '#keys');
  route();
  showPageError(`You are no longer a member of ${scope.name || 'that organisation'}: your personal keys are shown instead.`);
}

/** After leaving or deleting scope: the personal keys, with message. */
function leftOrg(scope, message) {
  orgs = orgs.filter((o) => o.id !== scope.id);
  setOrg(null);
  history.pushState(null, '', '#keys');
  route({ focus: true });
  announce(message);
}

$('workspace-select').addEventListener('change', (e) => {
  const o = orgs.find((x) => x.id === e.currentTarget.value) || null;
  showPageError('');
  setOrg(o);
  if (!o && location.hash === '#members') history.replaceState(null, '', '#keys');
  route();
  announce(o ? `Showing ${o.name}, where you are ${aRole(o.role)}.` : 'Showing your personal keys.');
});

// Create an organisation

const orgCreateDialog = $('org-create-dialog');

$('org-create-open').addEventListener('click', () => {
  $('org-create-form').reset();
  showFormError('org-create-error', '');
  orgCreateDialog.showModal();
  $('org-name').focus();
});

$('org-create-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  showFormError('org-create-error', '');
  try {
    const data = await busy(form.querySelector('[type=submit]'),
      () => graphql(CREATE_ORG, { input: { name: $('org-name').value.trim() } }));
    const o = data.createOrganization;
    orgs = [...orgs.filter((x) => x.id !== o.id), o];
    setOrg(o);
    orgCreateDialog.close();
    history.pushState(null, '', '#members');
    route({ focus: true });
    announce(`Created ${o.name}. You are its owner: invite the others from this page.`);
  } catch (err) {
    // The one NOT_FOUND here: organisations come from an identity provider.
    handle(err, (msg) => showFormError('org-create-error', err.code === 'NOT_FOUND'
      ? 'Your identity provider makes the organisations on this server: they cannot be created here.'
      : msg));
  }
});

// Invitation links: #invite/TOKEN

/** Moves an invitation's token from the address bar to this tab's storage. */
function takeInvitation() {
  const m = /^#invite\/([^/?#]+)$/.exec(location.hash);
  if (!m) return;
  let token = m[1];
  try {
    token = decodeURIComponent(token);
  } catch {
    // kept as it is: the server says what is wrong with it
  }
  sessionStorage.setItem(INVITE_KEY, token);
  history.replaceState(null, '', `${location.pathname}${location.search}`);
}

let accepting = false;

/** Accepts the waiting invitation and shows the organisation joined. */
async function acceptInvitation({ focus = false } = {}) {
  if (accepting) return;
  accepting = true;
  const token = sessionStorage.getItem(INVITE_KEY);
  show('loading');
  try {
    const data = await graphql(ACCEPT_INVITATION, { token });
    sessionStorage.removeItem(INVITE_KEY);
    const o = data.acceptInvitation;
    orgs = [...orgs.filter((x) => x.id !== o.id), o];
    setOrg(o);
    history.replaceState(null, '', '#keys');
    route({ focus: true });
    announce(`You joined ${o.name} as ${aRole(o.role)}.`);
  } catch (err) {
    // Tried once: a link that failed is not tried again on each page.
    sessionStorage.removeItem(INVITE_KEY);
    if (session && SESSION_ENDED.has(err.code)) {
      handle(err, showPageError);
      return;
    }
    route({ focus });
    showPageError(err.code === 'NOT_FOUND'
      ? 'This invitation link does not work any more: it was used or withdrawn, or it expired. Ask for a new one.'
      : `Could not accept the invitation. ${err.message}`);
  } finally {
    accepting = false;
  }
}

// ---------------------------------------------------------------------------
// Members and invitations of the organisation in view

let memberList = [];
let invitations = [];
let membersSeq = 0;

async function loadMembers() {
  const seq = ++membersSeq;
  const scope = org;
  $('members-loading').hidden = memberList.length > 0;
  renderMembers();
  try {
    const data = await graphql(ORG_MEMBERS, { id: scope.id });
    if (seq !== membersSeq || scope !== org || !session) return;
    updateOrg(data.organization);
    memberList = data.organization.members;
    names = new Map(memberList.map((m) => [m.userId, m.email]));
    renderMembers();
    if (canManage()) {
      const inv = await graphql(ORG_INVITATIONS, { id: scope.id });
      if (seq !== membersSeq || scope !== org) return;
      invitations = inv.organization.invitations;
    } else {
      invitations = [];
    }
    renderInvitations();
  } catch (err) {
    if (seq !== membersSeq) return;
    if (err.code === 'NOT_FOUND' && orgs.some((o) => o.id === scope.id)) {
      // Listed, yet no members here: an identity provider's organisation.
      showPageError('Your identity provider manages the members of this organisation: they are not listed here.');
      return;
    }
    handle(err, (msg) => showPageError(`Could not load the members of ${scope.name || 'the organisation'}. ${msg}`));
  } finally {
    if (seq === membersSeq) $('members-loading').hidden = true;
  }
}

function renderMembers() {
  const owner = Boolean(org) && org.role === 'OWNER';
  $('members-body').replaceChildren(...memberList.map(memberRow));
  $('members-list').hidden = memberList.length === 0;
  $('invite-section').hidden = !canManage() || !org || !org.role;
  // An admin cannot make owners.
  const ownerOption = $('invite-role').querySelector('option[value="OWNER"]');
  ownerOption.disabled = !owner;
  ownerOption.hidden = !owner;
  if (!owner && $('invite-role').value === 'OWNER') $('invite-role').value = 'MEMBER';
  $('org-delete').hidden = !owner;
  $('org-leave-title').textContent = owner ? 'Leave or delete' : 'Leave';
  renderInvitations();
}

/** A member's label: their email, else their user id. */
const memberLabel = (m) => m.email || m.userId;

function memberRow(m) {
  const self = Boolean(session) && m.userId === session.userId;
  const label = memberLabel(m);
  const owner = org && org.role === 'OWNER';
  const change = owner ? h('button', {
    type: 'button',
    class: 'button button-quiet',
    'data-action': 'role',
    'aria-label': `Change the role of ${label}`,
    onclick: () => askRole(m),
  }, 'Change role') : null;
  const remove = owner && !self ? h('button', {
    type: 'button',
    class: 'button button-danger-quiet',
    'data-action': 'remove',
    'aria-label': `Remove ${label}`,
    onclick: () => askRemove(m),
  }, trashIcon(), h('span', { class: 'button-text' }, 'Remove')) : null;
  return h('tr', { 'data-user-id': m.userId },
    h('th', { scope: 'row', 'data-label': 'Member' }, h('span', { class: 'member-name' }, label),
      self ? h('span', { class: 'badge badge-you' }, 'You') : null),
    h('td', { 'data-label': 'Role' }, ROLE_TITLES[m.role] || m.role),
    h('td', { 'data-label': 'Joined' }, timeEl(m.joinedAt)),
    h('td', { class: 'row-actions' }, h('div', { class: 'row-buttons' }, change, remove)),
  );
}

/** Moves the focus to a button of a member's row, else to the page's heading. */
function focusMember(userId, action) {
  const button = $('members-body').querySelector(`tr[data-user-id="${CSS.escape(userId)}"] [data-action="${action}"]`);
  const el = button || $('members-title');
  if (!button) el.tabIndex = -1;
  el.focus();
}

// Change a role

const roleDialog = $('role-dialog');
let roleOf = null;

function askRole(m) {
  roleOf = m;
  $('role-name').textContent = memberLabel(m);
  $('role-select').value = m.role;
  showFormError('role-error', '');
  roleDialog.showModal();
  $('role-select').focus();
}

$('role-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const m = roleOf;
  const scope = org;
  if (!m || !scope) return;
  showFormError('role-error', '');
  const role = $('role-select').value;
  if (role === m.role) {
    roleDialog.close();
    return;
  }
  try {
    const data = await busy(e.currentTarget.querySelector('[type=submit]'),
      () => graphql(UPDATE_MEMBER, { org: scope.id, user: m.userId, role }));
    const updated = data.updateMember;
    memberList = memberList.map((x) => (x.userId === updated.userId ? updated : x));
    if (session && updated.userId === session.userId) updateOrg({ ...scope, role: updated.role });
    renderMembers();
    roleOf = null;
    roleDialog.close();
    focusMember(m.userId, 'role');
    announce(`${memberLabel(m)} is now ${aRole(updated.role)}.`);
  } catch (err) {
    handle(err, (msg) => showFormError('role-error', msg));
  }
});

roleDialog.addEventListener('close', () => {
  roleOf = null;
});

// Revoke, remove, leave, delete, withdraw: one confirmation dialog

const confirmDialog = $('confirm-dialog');
let confirming = null;

/**
 * Asks to confirm an action: run does it (its error stays in the dialog),
 * then done updates the page once the dialog has closed.
 */
function confirmAction({ title, text, ok, run, done }) {
  confirming = { run, done };
  $('confirm-title').textContent = title;
  $('confirm-desc').textContent = text;
  $('confirm-ok').textContent = ok;
  showFormError('confirm-error', '');
  confirmDialog.showModal();
}

$('confirm-ok').addEventListener('click', async (e) => {
  const c = confirming;
  if (!c) return;
  showFormError('confirm-error', '');
  try {
    await busy(e.currentTarget, c.run);
  } catch (err) {
    handle(err, (msg) => showFormError('confirm-error', msg));
    return;
  }
  confirming = null;
  confirmDialog.close();
  c.done();
});

confirmDialog.addEventListener('close', () => {
  confirming = null;
});

function askRemove(m) {
  const scope = org;
  const label = memberLabel(m);
  confirmAction({
    title: `Remove ${label}?`,
    text: `${label} loses access to ${scope.name} and its keys at once. The keys they created keep working.`,
    ok: 'Remove member',
    run: () => graphql(REMOVE_MEMBER, { org: scope.id, user: m.userId }),
    done: () => {
      memberList = memberList.filter((x) => x.userId !== m.userId);
      renderMembers();
      focusMember('', '');
      announce(`Removed ${label} from ${scope.name}.`);
    },
  });
}

$('org-leave').addEventListener('click', () => {
  const scope = org;
  confirmAction({
    title: `Leave ${scope.name}?`,
    text: 'You lose access to the organisation and its keys at once. Its keys, those you created too, keep working. ' +
      'To come back you need a new invitation.',
    ok: 'Leave organisation',
    run: () => graphql(REMOVE_MEMBER, { org: scope.id, user: session.userId }),
    done: () => leftOrg(scope, `You left ${scope.name}.`),
  });
});

$('org-delete').addEventListener('click', () => {
  const scope = org;
  confirmAction({
    title: `Delete ${scope.name}?`,
    text: 'Every key of the organisation is revoked and stops working at once, everywhere, and every member loses access. ' +
      'This cannot be undone.',
    ok: 'Delete organisation',
    run: () => graphql(DELETE_ORG, { id: scope.id }),
    done: () => leftOrg(scope, `Deleted ${scope.name}: its keys no longer work.`),
  });
});

// Invite

const inviteURL = (token) => `${location.origin}${location.pathname}#invite/${encodeURIComponent(token)}`;

$('invite-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const scope = org;
  showFormError('invite-error', '');
  const input = { role: $('invite-role').value };
  const email = $('invite-email').value.trim();
  if (email) input.email = email;
  try {
    const data = await busy(form.querySelector('[type=submit]'),
      () => graphql(CREATE_INVITATION, { org: scope.id, input }));
    if (scope !== org) return;
    const { token, invitation } = data.createInvitation;
    form.reset();
    renderMembers();
    invitations = [invitation, ...invitations.filter((x) => x.id !== invitation.id)];
    renderInvitations();
    showInviteLink(token, invitation);
  } catch (err) {
    handle(err, (msg) => showFormError('invite-error', msg));
  }
});

function showInviteLink(token, inv) {
  const until = dateFormat.format(new Date(inv.expiresAt));
  $('invite-link-terms').textContent = `Send it to the person you invite: it works once, until ${until}, ` +
    `and makes them ${aRole(inv.role)} of ${org.name}.` +
    (inv.email ? ` Only the account with the email ${inv.email} can use it.` : ' Whoever opens it first can use it.');
  $('invite-link-value').textContent = inviteURL(token);
  $('invite-copy').textContent = 'Copy link';
  $('invite-copy-status').textContent = '';
  $('invite-link').hidden = false;
  $('invite-copy').focus();
  announce('Invitation link created. Copy it now: it is shown once.');
}

/** Forgets the link shown: it is not shown again. */
function hideInviteLink() {
  $('invite-link').hidden = true;
  $('invite-link-value').textContent = '';
  $('invite-copy-status').textContent = '';
}

$('invite-copy').addEventListener('click', () => copySecret($('invite-link-value'), $('invite-copy'),
  $('invite-copy-status'), 'The link'));

$('invite-done').addEventListener('click', () => {
  hideInviteLink();
  getSelection().removeAllRanges();
  $('invite-role').focus();
});

function renderInvitations() {
  const shown = canManage() && invitations.length > 0;
  $('invitations-body').replaceChildren(...(shown ? invitations : []).map(invitationRow));
  $('invitations-section').hidden = !shown;
}

function invitationRow(inv) {
  const who = inv.email || 'anyone with the link';
  return h('tr', { 'data-invitation-id': inv.id },
    h('th', { scope: 'row', 'data-label': 'For' }, inv.email || h('span', { class: 'muted' }, 'Anyone with the link')),
    h('td', { 'data-label': 'Role' }, ROLE_TITLES[inv.role] || inv.role),
    h('td', { 'data-label': 'Expires' }, timeEl(inv.expiresAt)),
    h('td', { class: 'row-actions' }, h('div', { class: 'row-buttons' }, h('button', {
      type: 'button',
      class: 'button button-danger-quiet',
      'aria-label': `Withdraw the invitation for ${who} as ${aRole(inv.role).replace(/^an? /, '')}`,
      onclick: () => askWithdraw(inv, who),
    }, trashIcon(), h('span', { class: 'button-text' }, 'Withdraw')))),
  );
}

function askWithdraw(inv, who) {
  const scope = org;
  confirmAction({
    title: 'Withdraw the invitation?',
    text: `The link for ${who} stops working. You can invite them again later.`,
    ok: 'Withdraw invitation',
    run: () => graphql(REVOKE_INVITATION, { org: scope.id, id: inv.id }).catch((err) => {
      if (err.code !== 'NOT_FOUND') throw err; // used or withdrawn meanwhile: gone all the same
    }),
    done: () => {
      invitations = invitations.filter((x) => x.id !== inv.id);
      renderInvitations();
      $('invite-role').focus();
      announce(`Withdrew the invitation for ${who}.`);
    },
  });
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
  'org.created': 'Created the organisation',
  'org.updated': 'Changed the organisation',
  'org.deleted': 'Deleted the organisation',
  'org.member.added': 'Member joined',
  'org.member.removed': 'Member left or removed',
  'org.member.role_changed': 'Changed a role',
  'org.invitation.created': 'Invited someone',
  'org.invitation.accepted': 'Accepted an invitation',
  'org.invitation.revoked': 'Withdrew an invitation',
};

/** Loads the first page of the activity (more: the next one). */
async function loadActivity({ more = false } = {}) {
  const seq = ++activitySeq;
  if (!more) {
    activity = [];
    activityCursor = null;
  }
  $('activity-loading').hidden = more;
  const scope = org;
  try {
    let conn;
    if (scope) {
      const vars = { id: scope.id, first: ACTIVITY_PAGE, after: activityCursor };
      const [data] = await Promise.all([graphql(ORG_AUDIT_EVENTS, vars), more ? null : loadNames(scope)]);
      conn = data.organization.auditEvents;
    } else {
      conn = (await graphql(AUDIT_EVENTS, { first: ACTIVITY_PAGE, after: activityCursor })).auditEvents;
    }
    if (seq !== activitySeq || !session || scope !== org) return;
    activity = [...activity, ...conn.edges.map((e) => e.node)];
    activityCursor = conn.pageInfo.hasNextPage ? conn.pageInfo.endCursor : null;
    renderActivity();
  } catch (err) {
    if (seq !== activitySeq) return;
    handle(err, (msg) => showPageError(`Could not load ${scope ? `the activity of ${scope.name || 'the organisation'}` : 'your activity'}. ${msg}`));
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
  // In an organisation several people act: say who.
  const by = org && ev.actor && ev.actor.type === 'user'
    ? h('span', { class: 'muted small by' }, `by ${nameOf(ev.actor.id)}`) : null;
  const from = [ev.ip, ev.userAgent].filter(Boolean).join(' · ');
  return h('tr', { 'data-event-id': ev.id },
    h('th', { scope: 'row', 'data-label': 'What' }, what, by),
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
export { graphql, h, handle, labelOf, num, orgInView, restGet };
