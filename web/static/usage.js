// Usage analytics on the dashboard (docs/usage.md): each key's last 7 days
// at a glance in the list, a chart per key (the last 24 hours or 7 days by
// hour, the last 30 days by day) and an overview of the most used keys.
//
// The charts are inline SVG drawn here, no library: bars stacked by outcome
// with a legend, a title on each bar giving its numbers, and a table of the
// same numbers for screen readers (shown on demand). Hours are shown in the
// viewer's time zone; days are UTC days, as apikeyd counts them.
//
// app.js calls the hooks exported here (usageCell for each key row,
// loadUsage whenever the list changes, forgetUsage on sign-out and when the
// workspace changes), and this module uses app.js's helpers in turn; neither
// calls the other while the modules load. The keys are the personal ones, or
// an organisation's when app.js has one in view (orgInView).

import { graphql, h, handle, labelOf, num, orgInView, restGet } from './app.js';

// The outcomes of an authentication, in stacking order (bottom first): key
// is the REST field (GraphQL answers are aliased to the same names), field
// GraphQL's.
const OUTCOMES = [
  { key: 'valid', field: 'valid', label: 'Valid' },
  { key: 'disabled', field: 'disabled', label: 'Key disabled' },
  { key: 'ip_not_allowed', field: 'ipNotAllowed', label: 'IP not allowed' },
  { key: 'insufficient_scope', field: 'insufficientScope', label: 'Insufficient scope' },
  { key: 'rate_limited', field: 'rateLimited', label: 'Rate limited' },
  { key: 'usage_exceeded', field: 'usageExceeded', label: 'Usage exceeded' },
];

const COUNTS = [...OUTCOMES.map((o) => `${o.key}: ${o.field}`), 'credits_spent: creditsSpent'].join(' ');
const BUCKET = `start ${COUNTS}`;
const SUMMARY = `usage(granularity: $granularity, from: $from, to: $to) {
    buckets { ${BUCKET} }
    keys { keyId keyPrefix name ${COUNTS} }
  }`;
// The list's 7 days of every key and the overview, in one request: the
// server reads all the keys' usage together.
const LIST_USAGE = `query ListUsage($weekFrom: Time!, $weekTo: Time!, $granularity: UsageGranularity!, $from: Time!, $to: Time!) {
  apiKeys { id usage(granularity: DAY, from: $weekFrom, to: $weekTo) { ${BUCKET} } }
  ${SUMMARY}
}`;
const USAGE_SUMMARY = `query UsageSummary($granularity: UsageGranularity!, $from: Time!, $to: Time!) {
  ${SUMMARY}
}`;
// The same of an organisation's keys.
const ORG_LIST_USAGE = `query OrganizationListUsage($org: ID!, $weekFrom: Time!, $weekTo: Time!, $granularity: UsageGranularity!, $from: Time!, $to: Time!) {
  organization(id: $org) {
    apiKeys { id usage(granularity: DAY, from: $weekFrom, to: $weekTo) { ${BUCKET} } }
    ${SUMMARY}
  }
}`;
const ORG_USAGE_SUMMARY = `query OrganizationUsageSummary($org: ID!, $granularity: UsageGranularity!, $from: Time!, $to: Time!) {
  organization(id: $org) { ${SUMMARY} }
}`;

/** Runs the personal query, or the organisation's (org) with its answer unwrapped. */
async function keysQuery(personal, ofOrg, vars) {
  const org = orgInView();
  if (!org) return graphql(personal, vars);
  return (await graphql(ofOrg, { org, ...vars })).organization;
}

const HOUR = 3600e3;
const DAY = 24 * HOUR;

// The ranges a chart offers. Each ends with the current bucket.
const RANGES = {
  '24h': { button: '24 hours', granularity: 'hour', step: HOUR, count: 24, text: 'in the last 24 hours' },
  '7d': { button: '7 days', granularity: 'hour', step: HOUR, count: 168, text: 'in the last 7 days' },
  '30d': { button: '30 days', granularity: 'day', step: DAY, count: 30, text: 'in the last 30 days' },
};
const WEEK = { granularity: 'day', step: DAY, count: 7, text: 'in the last 7 days' };
const DEFAULT_RANGE = '7d';

/** The range's [from, to) as the API takes it: ISO strings on bucket boundaries. */
function span(r, now = Date.now()) {
  const to = Math.floor(now / r.step) * r.step + r.step;
  return { from: new Date(to - r.count * r.step).toISOString(), to: new Date(to).toISOString() };
}

// ---------------------------------------------------------------------------
// Numbers and times

const plural = (n, one, many) => `${num(n)} ${n === 1 ? one : many}`;

const total = (b) => OUTCOMES.reduce((n, o) => n + b[o.key], 0);

/** Adds up buckets (or key totals) into one set of counts. */
function sum(list) {
  const out = { credits_spent: 0 };
  for (const o of OUTCOMES) out[o.key] = 0;
  for (const b of list) {
    for (const k of Object.keys(out)) out[k] += b[k];
  }
  return out;
}

/** "10 valid, 2 rate limited", and the credits spent when any. */
function breakdown(c) {
  const parts = OUTCOMES.filter((o) => c[o.key] > 0).map((o) => `${num(c[o.key])} ${o.label.toLowerCase()}`);
  const credits = c.credits_spent > 0 ? `; ${plural(c.credits_spent, 'credit', 'credits')} spent` : '';
  return parts.join(', ') + credits;
}

/** "12 requests: 10 valid, 2 rate limited", or "no requests". */
function countsText(c) {
  const n = total(c);
  return n === 0 ? 'no requests' : `${plural(n, 'request', 'requests')}: ${breakdown(c)}`;
}

const zone = new Intl.DateTimeFormat().resolvedOptions().timeZone;
const hourFormat = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
});
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric' });
const dayFormat = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC',
});
const shortDayFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', timeZone: 'UTC' });

/** When a bucket was: "Tue 1 Dec, 14:00–15:00" (local), or "Tue 1 Dec 2026 (UTC)". */
function bucketTime(start, granularity) {
  const d = new Date(start);
  if (granularity === 'day') return `${dayFormat.format(d)} (UTC)`;
  return `${hourFormat.format(d)}–${clockFormat.format(new Date(d.getTime() + HOUR))}`;
}

// ---------------------------------------------------------------------------
// SVG

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG element, as app.js's h makes HTML ones; numbers are rounded to 0.01. */
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) el.setAttribute(k, typeof v === 'number' ? String(Math.round(v * 100) / 100) : v);
  }
  el.append(...children.filter((c) => c !== null && c !== undefined));
  return el;
}

/** A scale from 0 to max (at least max) in ticks of 1, 2 or 5 times a power of ten. */
function scale(max) {
  const rough = Math.max(max, 1) / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough));
  const top = Math.max(step, Math.ceil(max / step) * step);
  const ticks = [];
  for (let v = 0; v <= top; v += step) ticks.push(v);
  return { top, ticks };
}

/**
 * Which buckets get a label on the time axis, at most about one per 64
 * pixels: whole hours of the clock, local midnights for a week, days.
 */
function labelled(buckets, rangeId, width) {
  const most = Math.max(2, Math.floor(width / 64));
  const starts = buckets.map((b) => new Date(b.start));
  const all = starts.map((_, i) => i);
  if (rangeId === '24h') {
    const step = [1, 2, 3, 4, 6, 12].find((s) => Math.ceil(starts.length / s) <= most) || 12;
    return all.filter((i) => starts[i].getHours() % step === 0);
  }
  const candidates = rangeId === '7d'
    ? all.filter((i) => i > 0 && starts[i].getDate() !== starts[i - 1].getDate())
    : all;
  const every = Math.ceil(candidates.length / most);
  // Counted from the end, so that the latest (today) is always labelled.
  return candidates.filter((_, j) => (candidates.length - 1 - j) % every === 0);
}

/** The time axis's label of a bucket: "14:00", "Tue 1" (a week's days) or "1 Dec". */
function axisLabel(start, rangeId) {
  const d = new Date(start);
  if (rangeId === '24h') return clockFormat.format(d);
  if (rangeId === '7d') return weekdayFormat.format(d);
  return shortDayFormat.format(d);
}

const CHART_HEIGHT = 240;

/**
 * Draws buckets as stacked bars width pixels wide. Each bar is a group
 * (data-start: the bucket's start) whose title gives its numbers. To
 * assistive technology the whole is one image, labelled label (the
 * totals); the table beside it has each bucket's numbers.
 */
function chart(buckets, rangeId, width, label) {
  const granularity = RANGES[rangeId].granularity;
  const { top, ticks } = scale(Math.max(0, ...buckets.map(total)));
  const tickText = ticks.map(num);
  const m = { top: 28, right: 12, bottom: 44, left: 14 + 7.5 * Math.max(...tickText.map((t) => t.length)) };
  const plotW = width - m.left - m.right;
  const plotH = CHART_HEIGHT - m.top - m.bottom;
  const y = (v) => m.top + plotH - (v / top) * plotH;
  const band = plotW / buckets.length;
  const barW = Math.max(1, band * 0.78);
  const base = m.top + plotH;

  const grid = svg('g', { class: 'chart-grid' }, ...ticks.map((v, i) => svg('g', {},
    svg('line', { x1: m.left, x2: width - m.right, y1: y(v), y2: y(v) }),
    svg('text', { x: m.left - 6, y: y(v), 'text-anchor': 'end', 'dominant-baseline': 'middle' }, tickText[i]))));

  const bars = buckets.map((b, i) => {
    const x = m.left + i * band;
    const segments = stacked(b, plotH / top, (cls, at, height) => svg('rect', {
      class: cls, x: x + (band - barW) / 2, y: base - at - height, width: barW, height,
    }));
    return svg('g', { class: 'chart-bar', 'data-start': b.start },
      svg('title', {}, `${bucketTime(b.start, granularity)}: ${countsText(b)}`),
      svg('rect', { class: 'chart-bar-hit', x, y: m.top, width: band, height: plotH }),
      ...segments);
  });

  const xTicks = labelled(buckets, rangeId, plotW).map((i) => {
    // A week's labels mark where each day begins; the others, the bucket.
    const x = m.left + (rangeId === '7d' ? i : i + 0.5) * band;
    let anchor = 'middle';
    if (x - m.left < 24) anchor = 'start';
    else if (width - m.right - x < 24) anchor = 'end';
    return svg('g', {},
      svg('line', { x1: x, x2: x, y1: base, y2: base + 5 }),
      svg('text', { x, y: base + 18, 'text-anchor': anchor }, axisLabel(buckets[i].start, rangeId)));
  });

  return svg('svg', {
    class: 'chart', width, height: CHART_HEIGHT, viewBox: `0 0 ${width} ${CHART_HEIGHT}`, role: 'img', 'aria-label': label,
  },
  grid,
  svg('text', { class: 'chart-axis-title', x: 0, y: 12 }, 'Requests'),
  ...bars,
  svg('g', { class: 'chart-axis' },
    svg('line', { x1: m.left, x2: width - m.right, y1: base, y2: base }),
    ...xTicks),
  svg('text', { class: 'chart-axis-title', x: m.left + plotW / 2, y: CHART_HEIGHT - 4, 'text-anchor': 'middle' },
    granularity === 'day' ? 'Day (UTC)' : `Time (${zone})`));
}

/** The colour of each outcome, named. */
function legend() {
  return h('ul', { class: 'chart-legend', 'aria-label': 'Legend' }, ...OUTCOMES.map((o) => h('li', {},
    h('span', { class: `swatch outcome-${o.key}`, 'aria-hidden': 'true' }), o.label)));
}

/**
 * The numbers of the chart as a table, one row per bucket with requests:
 * shown on demand, to read the numbers or for a screen reader to read them
 * (the chart itself is one image to it, labelled with the totals).
 */
function table(buckets, rangeId) {
  const r = RANGES[rangeId];
  const unit = r.granularity === 'day' ? 'day' : 'hour';
  const rows = buckets.filter((b) => total(b) > 0);
  if (rows.length === 0) return h('p', { class: 'muted' }, `No requests ${r.text}.`);
  const credits = buckets.some((b) => b.credits_spent > 0);
  const cells = (b) => [...OUTCOMES.map((o) => b[o.key]), total(b), ...(credits ? [b.credits_spent] : [])];
  return h('table', { class: 'usage-table' },
    h('caption', {}, `Requests ${r.text} by ${unit} and outcome (${unit}s without requests left out)`),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, r.granularity === 'day' ? 'Day (UTC)' : `Hour (${zone})`),
      ...OUTCOMES.map((o) => h('th', { scope: 'col' }, o.label)),
      h('th', { scope: 'col' }, 'Total'),
      credits ? h('th', { scope: 'col' }, 'Credits spent') : null)),
    h('tbody', {}, ...rows.map((b) => h('tr', {},
      h('th', { scope: 'row' }, h('time', { datetime: b.start }, bucketTime(b.start, r.granularity))),
      ...cells(b).map((n) => h('td', {}, num(n)))))));
}

// ---------------------------------------------------------------------------
// A chart with its range buttons, summary, legend and table

let panels = 0;

/**
 * A usage panel in container: load(rangeId) fetches { buckets } (and
 * anything else onData wants) for a range; to says whose requests the
 * summary counts (" to your keys", or a function that says it when asked;
 * none: the key's).
 */
function usagePanel(container, { load, to = '', onData = () => {} }) {
  const id = `usage-panel-${++panels}`;
  let rangeId = DEFAULT_RANGE;
  let buckets = null;
  let seq = 0;
  let drawnWidth = 0;

  const buttons = Object.entries(RANGES).map(([rid, r]) => h('button', {
    type: 'button',
    class: 'button range-button',
    'data-range': rid,
    'aria-pressed': String(rid === rangeId),
    onclick: () => show(rid),
  }, r.button));
  const summary = h('p', { class: 'usage-summary', 'aria-live': 'polite' });
  const figure = h('div', { class: 'usage-chart' });
  const tableBox = h('div', { class: 'usage-table-box', id: `${id}-table`, hidden: true });
  const toggle = h('button', {
    type: 'button',
    class: 'button button-quiet usage-table-toggle',
    'aria-expanded': 'false',
    'aria-controls': tableBox.id,
    onclick: () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      toggle.textContent = open ? 'Hide the table' : 'Show as a table';
      tableBox.hidden = !open;
    },
  }, 'Show as a table');

  container.replaceChildren(
    h('div', { class: 'usage-head' },
      h('div', { class: 'range-group', role: 'group', 'aria-label': 'Range' }, ...buttons),
      summary),
    figure,
    h('div', { class: 'usage-foot' }, legend(), toggle),
    tableBox);

  function draw() {
    const width = Math.floor(figure.clientWidth);
    if (!buckets || width === 0) return;
    drawnWidth = width;
    figure.replaceChildren(chart(buckets, rangeId, width, `Bar chart of ${summary.textContent}`));
  }
  new ResizeObserver(() => {
    if (Math.floor(figure.clientWidth) !== drawnWidth) draw();
  }).observe(figure);

  function render(rid, data) {
    rangeId = rid;
    for (const b of buttons) b.setAttribute('aria-pressed', String(b.dataset.range === rid));
    buckets = data.buckets;
    const c = sum(buckets);
    const n = total(c);
    const whose = typeof to === 'function' ? to() : to;
    summary.textContent = n === 0
      ? `No requests${whose} ${RANGES[rid].text}.`
      : `${plural(n, 'request', 'requests')}${whose} ${RANGES[rid].text}: ${breakdown(c)}.`;
    tableBox.replaceChildren(table(buckets, rid));
    draw();
    onData(rid, data);
  }

  /** Shows the range rid: loads it, unless fetched (a promise of it) is given. */
  async function show(rid, fetched = null) {
    const mine = ++seq;
    for (const b of buttons) b.setAttribute('aria-pressed', String(b.dataset.range === rid));
    figure.setAttribute('aria-busy', 'true');
    try {
      const data = await (fetched || load(rid));
      if (mine === seq) render(rid, data);
    } catch (err) {
      if (mine !== seq) return;
      handle(err, (msg) => {
        buckets = null;
        figure.replaceChildren();
        tableBox.replaceChildren();
        summary.textContent = `Could not load the usage. ${msg}`;
      });
    } finally {
      if (mine === seq) figure.removeAttribute('aria-busy');
    }
  }

  return {
    show,
    get rangeId() { return rangeId; },
    /** Forgets what it shows, and anything on its way. */
    clear() {
      ++seq;
      buckets = null;
      rangeId = DEFAULT_RANGE;
      summary.textContent = '';
      figure.replaceChildren();
      tableBox.replaceChildren();
    },
  };
}

// ---------------------------------------------------------------------------
// The key list: each key's last 7 days, daily, at a glance

// The 7 daily buckets of each listed key, by id, as last loaded.
let weekly = new Map();
let loadSeq = 0;

/**
 * The rectangles of counts c stacked by outcome along length pixels per
 * unit of count: rect(outcome, offset, size) places each.
 */
function stacked(c, length, rect) {
  let at = 0;
  return OUTCOMES.filter((o) => c[o.key] > 0).map((o) => {
    // A refusal among many is at least a pixel, so that it shows.
    const size = Math.max(1, c[o.key] * length);
    const el = rect(`outcome-${o.key}`, at, size);
    at += size;
    return el;
  });
}

/** A sparkline of days: a bar per day, stacked by outcome. */
function sparkline(days) {
  const width = 7 * days.length;
  const height = 20;
  const top = Math.max(1, ...days.map(total));
  return svg('svg', { class: 'spark', width, height, viewBox: `0 0 ${width} ${height}`, 'aria-hidden': 'true', focusable: 'false' },
    ...days.flatMap((d, i) => (total(d) === 0
      ? [svg('rect', { class: 'spark-none', x: i * 7, y: height - 1, width: 5, height: 1 })]
      : stacked(d, height / top, (cls, at, size) => svg('rect', { class: cls, x: i * 7, y: height - at - size, width: 5, height: size })))));
}

/** Fills a key's usage button with its week, or says it is not known. */
function fillCell(button) {
  const days = weekly.get(button.dataset.usageKey);
  const who = button.dataset.label;
  if (!days) {
    button.setAttribute('aria-label', `Usage of ${who}`);
    button.replaceChildren(h('span', { class: 'muted' }, 'Usage'));
    return;
  }
  const c = sum(days);
  const n = total(c);
  const refused = n - c.valid;
  button.setAttribute('aria-label', `Usage of ${who}: ${plural(n, 'request', 'requests')} ${WEEK.text}`
    + (refused > 0 ? `, ${num(refused)} refused` : ''));
  button.replaceChildren(sparkline(days), h('span', { class: 'spark-total' }, num(n)));
}

/** The last-7-days cell of key k's row: a button that opens its chart. */
export function usageCell(k) {
  const button = h('button', {
    type: 'button',
    class: 'spark-button',
    'aria-haspopup': 'dialog',
    'data-usage-key': k.id,
    'data-label': labelOf(k),
    onclick: () => openKeyUsage(k),
  });
  fillCell(button);
  return button;
}

// ---------------------------------------------------------------------------
// The overview: all keys together, and the most used ones

const TOP_KEYS = 10;

// The panels, made on first use (not while the modules load).
let overviewPanel = null;
let keyPanel = null;

function overview() {
  overviewPanel ??= usagePanel(document.getElementById('usage-overview-chart'), {
    to: () => (orgInView() ? ' to the organisation’s keys' : ' to your keys'),
    load: async (rid) => (await keysQuery(USAGE_SUMMARY, ORG_USAGE_SUMMARY, rangeVars(rid))).usage,
    onData: (rid, data) => {
      document.getElementById('usage-overview').hidden = data.keys.length === 0;
      renderTopKeys(rid, data.keys);
    },
  });
  return overviewPanel;
}

function rangeVars(rid) {
  const r = RANGES[rid];
  return { granularity: r.granularity.toUpperCase(), ...span(r) };
}

/** The most used keys as a ranked list, each with a bar of its requests. */
function renderTopKeys(rid, keys) {
  const used = keys.filter((k) => total(k) > 0).slice(0, TOP_KEYS);
  const box = document.getElementById('top-keys');
  if (used.length === 0) {
    box.replaceChildren(h('p', { class: 'muted' }, `No key was used ${RANGES[rid].text}.`));
    return;
  }
  const most = total(used[0]);
  box.replaceChildren(h('ol', { class: 'top-keys', 'aria-labelledby': 'top-keys-title' }, ...used.map((k) => {
    const key = { id: k.keyId, name: k.name, keyPrefix: k.keyPrefix };
    const n = total(k);
    const refused = n - k.valid;
    const bar = svg('svg', { class: 'top-key-bar', viewBox: '0 0 400 8', preserveAspectRatio: 'none', 'aria-hidden': 'true' },
      ...stacked(k, 400 / most, (cls, at, size) => svg('rect', { class: cls, x: at, y: 0, width: size, height: 8 })));
    const credits = k.credits_spent > 0 ? `; ${plural(k.credits_spent, 'credit', 'credits')} spent` : '';
    return h('li', { 'data-key-id': k.keyId },
      h('span', { class: 'top-key-name' }, k.name || h('span', { class: 'muted' }, 'Unnamed key'), ' ',
        h('code', { class: 'prefix muted' }, `${k.keyPrefix}…`)),
      bar,
      h('span', { class: 'top-key-counts' },
        `${plural(n, 'request', 'requests')}${refused > 0 ? `, ${num(refused)} refused` : ''}${credits}`),
      h('button', {
        type: 'button',
        class: 'button button-quiet',
        'aria-haspopup': 'dialog',
        'aria-label': `Chart of ${labelOf(key)}`,
        onclick: () => openKeyUsage(key),
      }, 'Chart'));
  })));
}

/**
 * Loads every listed key's last 7 days and the overview (app.js calls it
 * whenever the list changes: a revoked key leaves the overview too).
 */
export async function loadUsage() {
  const seq = ++loadSeq;
  const rid = overview().rangeId;
  const week = span(WEEK);
  const request = keysQuery(LIST_USAGE, ORG_LIST_USAGE, { weekFrom: week.from, weekTo: week.to, ...rangeVars(rid) });
  overview().show(rid, request.then((data) => data.usage));
  try {
    const data = await request;
    if (seq !== loadSeq) return;
    weekly = new Map(data.apiKeys.map((k) => [k.id, k.usage]));
    for (const b of document.querySelectorAll('#keys-body [data-usage-key]')) fillCell(b);
  } catch (err) {
    // The overview says what went wrong; the list keeps its placeholders.
    if (seq === loadSeq) handle(err, () => { document.getElementById('usage-overview').hidden = false; });
  }
}

/** Forgets the usage shown, and any on its way (app.js calls it on sign-out). */
export function forgetUsage() {
  ++loadSeq;
  weekly = new Map();
  overviewPanel?.clear();
  keyPanel?.clear();
  document.getElementById('top-keys').replaceChildren();
  document.getElementById('usage-overview').hidden = true;
}

// ---------------------------------------------------------------------------
// One key's chart, in a dialog

let shownKey = null;

/**
 * Opens the chart of key k ({ id, name, keyPrefix }) on the default range.
 * One key's usage comes from REST: GraphQL reads usage only through the
 * list of all keys.
 */
function openKeyUsage(k) {
  shownKey = k;
  keyPanel ??= usagePanel(document.getElementById('usage-key-chart'), {
    load: (rid) => {
      const q = new URLSearchParams({ granularity: RANGES[rid].granularity, ...span(RANGES[rid]) });
      const org = orgInView();
      const keys = org ? `/auth/orgs/${encodeURIComponent(org)}/api-keys` : '/auth/api-keys';
      return restGet(`${keys}/${encodeURIComponent(shownKey.id)}/usage?${q}`);
    },
  });
  document.getElementById('usage-name').textContent = labelOf(k);
  keyPanel.clear();
  const dialog = document.getElementById('usage-dialog');
  dialog.showModal();
  dialog.querySelector(`[data-range="${DEFAULT_RANGE}"]`).focus();
  keyPanel.show(DEFAULT_RANGE);
}
