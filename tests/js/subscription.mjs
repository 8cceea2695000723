// A graphql-ws (graphql-transport-ws) client subscribes to instanceEvents as the
// manager; the applicant creates and submits a project over HTTP; the subscriber must
// see that transition. Needs a server with demo data (`grantflow demo`).
// Usage: GRANTFLOW_URL=http://127.0.0.1:8080/graphql node subscription.mjs
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.env.GRANTFLOW_URL ?? 'http://127.0.0.1:8080/graphql';
const password = process.env.GRANTFLOW_DEMO_PASSWORD ?? 'Grantflow-demo-2024';

async function gql(token, query, variables = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
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

const fail = (message) => {
  console.error(`FAIL ${message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
};
const timer = setTimeout(() => fail('no event within 20 s'), 20000);

const manager = await login('manager');
const applicant = await login('unit_gz');
// Applications belong to a stored call (the demo's open call) and one of its items.
const calls = await gql(applicant, '{ calls { id status } }', {});
const call = calls.calls.find((c) => c.status === 'OPEN').id;
const created = await gql(applicant, `mutation($input: CreateInstanceInput!){ createInstance(input:$input){ id version } }`, {
  input: { workflowId: 'funded-project', title: '订阅测试项目', callId: call, catalogueItem: '2022-2-1-5' },
});
const id = created.createInstance.id;

const client = createClient({ url: url.replace(/^http/, 'ws') + '/ws', webSocketImpl: WebSocket, connectionParams: { Authorization: `Bearer ${manager}` } });
// The first message is the instance's current state: once it arrives the subscription is
// live and the transition below cannot be missed.
const messages = [];
let wake = null;
client.subscribe(
  { query: 'subscription($id: ID!){ instanceEvents(instanceId: $id){ kind instanceId event fromState toState version actorId } }', variables: { id } },
  {
    next: (msg) => { messages.push(msg); if (wake) wake(); },
    error: (e) => fail(`subscription error ${JSON.stringify(e)}`),
    complete: () => {},
  },
);
const nextMessage = async () => {
  while (messages.length === 0) await new Promise((resolve) => { wake = resolve; });
  return messages.shift();
};
const first = await nextMessage();
if (first.data?.instanceEvents?.kind !== 'CURRENT' || first.data.instanceEvents.toState !== 'drafting') {
  fail(`expected the current state first, got ${JSON.stringify(first)}`);
}
await gql(applicant, `mutation($id: ID!){ transition(instanceId:$id, event:"submit", expectedVersion:0, input:{
  project_name:"订阅测试", budget:"100000",
  indicators:[{category:"output_quantity", name:"培训场次", unit:"场", target:5, direction:"higher_is_better", weight:1}, {category:"effect_social", name:"受益企业", unit:"家", target:20}],
  application_files:[{name:"a.pdf", sha256:"${'b'.repeat(64)}", size:10}]
}){ instance { state { id } } } }`, { id });

const msg = await nextMessage();
clearTimeout(timer);
const ev = msg.data?.instanceEvents;
if (!ev || ev.kind !== 'TRANSITION' || ev.instanceId !== id || ev.event !== 'submit' || ev.toState !== 'city_review' || ev.version !== 1) {
  fail(`unexpected event ${JSON.stringify(msg)}`);
}
console.log(`ok   the manager's subscription saw ${ev.event}: ${ev.fromState} → ${ev.toState}`);
console.log('1 passed, 0 failed');
await client.dispose();
process.exit(0);
