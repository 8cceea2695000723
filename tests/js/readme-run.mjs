// Runs every GraphQL example of README.md, as written, against a live server loaded with
// `grantflow demo` (scripts/test starts one): each operation must answer without errors.
//
// The README's convention, in GraphQL comments above an operation (readers see them too):
//   # as city_gz                      who runs it, until the next `# as` (demo password);
//                                     without one, or after `# as anonymous`, the
//                                     operation runs unauthenticated
//   # $id = createInstance.id         a variable taken from an earlier answer: the path
//                                     starts with a top-level field of any earlier
//                                     operation (the latest answer wins); numbers index lists
//   # $v = 3   /   # $ids = ["…"]     a JSON literal
//   # $ids = [a.id, b.0.id]           a list of earlier answers
//   # $a = myReviews[state=assigned].id   the first list item whose field has that value
//   # $e = expertPool[user.username=expert5].userId
//   # $toml = file:workflows/calls/2022.toml     a file's text (from the repository root)
//   # $file = base64:crates/…/form.xlsx          a file, base64
// A subscription runs until its first event (instanceEvents sends the current state
// first); `myTasks` waits for a change, so it is only subscribed and then closed.
//
// GRANTFLOW_URL: the /graphql endpoint.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.env.GRANTFLOW_URL;
if (!url) throw new Error('set GRANTFLOW_URL to the /graphql endpoint of a demo server');
const PASSWORD = 'Grantflow-demo-2024';
const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]);

/** Operations with their directives, in README order. */
function operations(block) {
  const ops = [];
  let directives = [];
  let current = null;
  for (const line of block.split('\n')) {
    if (line.startsWith('#')) {
      if (current) ops.push(current);
      current = null;
      directives.push(line.slice(1).trim());
      continue;
    }
    if (/^(query|mutation|subscription|\{)/.test(line)) {
      if (current) ops.push(current);
      current = { directives, lines: [] };
      directives = [];
    }
    if (current && line.trim() !== '') current.lines.push(line);
  }
  if (current) ops.push(current);
  return ops.map((o) => ({ directives: o.directives, text: o.lines.join('\n') }));
}

async function post(query, variables, token) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const resp = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const text = await resp.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`HTTP ${resp.status}, not JSON: ${text.slice(0, 300)}`);
  }
}

const tokens = new Map();
async function tokenOf(user) {
  if (!tokens.has(user)) {
    const body = await post(
      'mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }',
      { u: user, p: PASSWORD },
    );
    if (body.errors) throw new Error(`login ${user}: ${JSON.stringify(body.errors)}`);
    tokens.set(user, body.data.login.token);
  }
  return tokens.get(user);
}

const answers = {};
function lookup(path) {
  let v = answers;
  // Split on dots outside brackets: `expertPool[user.username=expert5].userId`.
  for (const key of path.match(/(?:[^.[]+|\[[^\]]*\])+/g)) {
    if (v === undefined || v === null) break;
    const where = key.match(/^(\w+)\[([\w.]+)=([^\]]+)\]$/);
    if (where) {
      // `list[field=value]`: the first item of the list whose field (a path) has that value.
      const field = (item) => where[2].split('.').reduce((x, k) => x?.[k], item);
      v = (v[where[1]] ?? []).find((item) => String(field(item)) === where[3]);
    } else {
      v = v[/^\d+$/.test(key) ? Number(key) : key];
    }
  }
  if (v === undefined || v === null) throw new Error(`no earlier answer has ${path}`);
  return v;
}

function value(expr) {
  if (expr.startsWith('file:')) return readFileSync(join(root, expr.slice(5)), 'utf8');
  if (expr.startsWith('base64:')) return readFileSync(join(root, expr.slice(7))).toString('base64');
  if (/^\[[a-zA-Z]/.test(expr)) {
    // A list of paths: [a.b, c.d]
    return expr.slice(1, -1).split(',').map((p) => lookup(p.trim()));
  }
  if (/^["\[{\d-]|^(true|false|null)$/.test(expr)) return JSON.parse(expr);
  return lookup(expr);
}

function subscribeFirst(query, variables, token, waitForEvent) {
  const client = createClient({
    url: url.replace(/^http/, 'ws') + '/ws',
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    lazy: false,
  });
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (f) => {
      if (!settled) {
        settled = true;
        client.dispose();
        f();
      }
    };
    client.on('connected', () => {
      if (!waitForEvent) setTimeout(() => finish(() => resolve({ data: null })), 0);
    });
    client.subscribe(
      { query, variables },
      {
        next: (msg) => finish(() => resolve(msg)),
        error: (e) => finish(() => reject(new Error(JSON.stringify(e?.message ?? e)))),
        complete: () => finish(() => resolve({ data: null })),
      },
    );
  });
}

let user = null;
let count = 0;
for (const op of blocks.flatMap(operations)) {
  const variables = {};
  for (const d of op.directives) {
    const as = d.match(/^as (\S+)/);
    if (as) user = as[1] === 'anonymous' ? null : as[1];
    const v = d.match(/^\$(\w+) = (.+)$/);
    if (v) variables[v[1]] = value(v[2].trim());
  }
  const token = user ? await tokenOf(user) : null;
  const first = op.text.split('\n')[0].slice(0, 70);
  const body = op.text.startsWith('subscription')
    ? await subscribeFirst(op.text, variables, token, !op.text.includes('myTasks'))
    : await post(op.text, variables, token);
  if (body.errors) {
    console.error(`README example failed (as ${user ?? 'anonymous'}): ${first}`);
    console.error(JSON.stringify(body.errors, null, 2));
    process.exit(1);
  }
  Object.assign(answers, body.data ?? {});
  count += 1;
  console.log(`ok ${count} (as ${user ?? 'anonymous'}): ${first}`);
}
console.log(`${count} README examples ran against the demo server without errors`);
