// Runs the GraphQL over HTTP conformance audit of graphql-http
// (serverAudits) against a running apikeyd and prints one line per audit.
//
//   node graphql-http-audit.mjs URL [HEADER: VALUE]...
//
// URL is the GraphQL endpoint (http://127.0.0.1:8080/graphql); each further
// argument is a header sent with every request of the audit, such as
// "Authorization: Bearer <login token>" (its value is never printed).
//
// Exit status: 0 when every audit is ok; 1 when any is not, whatever its
// level: a failed MUST ("error"), SHOULD ("warn") or MAY ("notice") all
// count; 2 on a usage error or when the audit itself could not run.
import { serverAudits } from 'graphql-http';

const [url, ...headerArgs] = process.argv.slice(2);
if (!url || url.startsWith('-')) {
  console.error('usage: node graphql-http-audit.mjs URL [HEADER: VALUE]...');
  process.exit(2);
}
const extra = new Headers();
for (const arg of headerArgs) {
  const colon = arg.indexOf(':');
  if (colon <= 0) {
    console.error(`not a header: ${arg.slice(0, 40)}… (want "Name: value")`);
    process.exit(2);
  }
  extra.set(arg.slice(0, colon).trim(), arg.slice(colon + 1).trim());
}

// fetchFn adds the extra headers to each request the audit makes, keeping
// the audit's own (Content-Type, Accept) as they are.
async function fetchFn(input, init = {}) {
  const headers = new Headers(init.headers);
  for (const [name, value] of extra) headers.set(name, value);
  return fetch(input, { ...init, headers });
}

let failed = 0;
try {
  const results = await Promise.all(serverAudits({ url, fetchFn }).map((a) => a.fn()));
  for (const r of results) {
    let line = `${r.status.toUpperCase().padEnd(6)} ${r.id} ${r.name}`;
    if (r.status !== 'ok') {
      failed++;
      let body = '';
      try {
        body = (await r.response.text()).slice(0, 300);
      } catch {
        // the audit already read it
      }
      line += `\n       ${r.reason}; got ${r.response.status} ${r.response.headers.get('content-type')} ${body}`;
    }
    console.log(line);
  }
  console.log(`\n${results.length} audits: ${results.length - failed} ok, ${failed} not ok`);
} catch (err) {
  console.error('the audit could not run:', err);
  process.exit(2);
}
process.exit(failed > 0 ? 1 : 0);
