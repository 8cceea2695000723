// The graphql-transport-ws close codes, seen by a real client: the `graphql-ws` library
// for what a well-behaved client meets (a bad or missing token, a token revoked while a
// subscription listens) and raw `ws` sockets speaking the protocol for the misbehaviours
// (subscribe before the ack, malformed or unknown messages, a second connection_init, a
// duplicate id, no connection_init at all). Every close reason fits RFC 6455's 123 bytes.
// Needs a server with demo data (`grantflow demo`); its init timeout is the default 3 s.
// Usage: GRANTFLOW_URL=http://127.0.0.1:8080/graphql node ws-close-codes.mjs
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.env.GRANTFLOW_URL ?? 'http://127.0.0.1:8080/graphql';
const wsUrl = url.replace(/^http/, 'ws') + '/ws';
const password = process.env.GRANTFLOW_DEMO_PASSWORD ?? 'Grantflow-demo-2024';

let passed = 0;
let failed = 0;
const check = (ok, name, detail = '') => {
  if (ok) passed += 1; else failed += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ` — ${detail}`}`);
};
const expectClose = (name, got, code, reason) => {
  const bytes = Buffer.byteLength(got.reason ?? '');
  check(
    got.code === code && (reason === undefined || got.reason === reason) && bytes <= 123,
    `${name} → ${code}${reason ? ` "${reason}"` : ''}`,
    `got ${got.code} "${got.reason}" (${bytes} bytes)`,
  );
};

async function gql(token, query, variables = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}
const login = async (username) =>
  (await gql(null, 'mutation($u:String!,$p:String!){login(username:$u,password:$p){token}}', { u: username, p: password })).login.token;

/// A raw socket: send messages in order, collect what comes back until the close.
function raw(messages, { protocol = 'graphql-transport-ws' } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, protocol);
    const received = [];
    ws.on('open', () => { for (const m of messages) ws.send(typeof m === 'string' ? m : JSON.stringify(m)); });
    ws.on('message', (data) => received.push(JSON.parse(data.toString())));
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), received }));
    ws.on('error', reject);
  });
}

/// What a graphql-ws client's subscription ends with: the CloseEvent as the error.
function clientError(connectionParams, query = '{ viewer { username } }') {
  return new Promise((resolve) => {
    const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams, retryAttempts: 0, lazy: true });
    client.subscribe({ query }, {
      next: () => {},
      error: (e) => { client.dispose(); resolve({ code: e.code, reason: e.reason }); },
      complete: () => { client.dispose(); resolve({ code: 'completed', reason: '' }); },
    });
  });
}

const token = await login('manager');
const init = { type: 'connection_init', payload: { Authorization: `Bearer ${token}` } };
const tasks = 'subscription { myTasks { change } }';

expectClose('graphql-ws client without a token', await clientError({}), 4403, 'Forbidden');
expectClose('graphql-ws client with a made-up token', await clientError({ Authorization: 'Bearer gfs_made-up' }), 4403, 'Forbidden');
expectClose('subscribe before connection_ack', await raw([{ type: 'subscribe', id: '1', payload: { query: '{ __typename }' } }]), 4401, 'Unauthorized');
expectClose('a message that is not JSON', await raw(['not json']), 4400);
expectClose('a message of unknown type', await raw([{ type: 'bogus' }]), 4400);
expectClose('a message without a type', await raw([{ id: '1' }]), 4400);
expectClose('a second connection_init', await raw([init, init]), 4429, 'Too many initialisation requests');
const dup = await raw([init, { type: 'subscribe', id: 'same', payload: { query: tasks } }, { type: 'subscribe', id: 'same', payload: { query: tasks } }]);
expectClose('a duplicate subscription id', dup, 4409, 'Subscriber for same already exists');
const long = 'x'.repeat(64);
const dupLong = await raw([init, { type: 'subscribe', id: long, payload: { query: tasks } }, { type: 'subscribe', id: long, payload: { query: tasks } }]);
expectClose('a duplicate 64-byte id (the reason stays ≤ 123 bytes)', dupLong, 4409);
expectClose('no connection_init within the timeout', await raw([]), 4408, 'Connection initialisation timeout');

// A well-behaved client works: while a subscription listens, a query on the same socket
// answers; then logout over HTTP closes the socket with 4403 at once.
const own = await login('auditor');
const result = await new Promise((resolve, reject) => {
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { Authorization: `Bearer ${own}` }, retryAttempts: 0 });
  let data;
  client.subscribe({ query: tasks }, {
    next: () => {},
    error: (e) => resolve({ data, closed: { code: e.code, reason: e.reason } }),
    complete: () => resolve({ data, closed: { code: 'completed' } }),
  });
  // Sent after the subscription on the same socket: its answer proves the server has
  // registered the subscription.
  client.subscribe({ query: '{ viewer { username } }' }, {
    next: (m) => { data = m.data; },
    error: reject,
    complete: () => gql(own, 'mutation { logout }').catch(reject),
  });
});
check(result.data?.viewer?.username === 'auditor', 'a query over graphql-ws answers', JSON.stringify(result.data));
expectClose('a listening subscription after logout', result.closed, 4403, 'Forbidden');

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
