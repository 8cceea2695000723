// graphql-js as a client: the standard introspection query (every option on, the
// deepest form) succeeds against the running server in development mode, and
// buildClientSchema turns the answer into a schema with the types we serve.
// Usage: GRANTFLOW_URL=http://127.0.0.1:8080/graphql node introspection.mjs
import { buildClientSchema, getIntrospectionQuery, printSchema } from 'graphql';

const url = process.env.GRANTFLOW_URL ?? 'http://127.0.0.1:8080/graphql';
let passed = 0;
let failed = 0;
const check = (ok, name, detail = '') => {
  if (ok) passed += 1; else failed += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ` — ${detail}`}`);
};

const variants = {
  'getIntrospectionQuery()': getIntrospectionQuery(),
  'getIntrospectionQuery({ descriptions, specifiedByUrl, directiveIsRepeatable, schemaDescription, inputValueDeprecation, oneOf })':
    getIntrospectionQuery({
      descriptions: true,
      specifiedByUrl: true,
      directiveIsRepeatable: true,
      schemaDescription: true,
      inputValueDeprecation: true,
      oneOf: true,
    }),
};
for (const [name, query] of Object.entries(variants)) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query }),
  });
  const body = await res.json();
  if (res.status !== 200 || body.errors) {
    check(false, name, `${res.status} ${JSON.stringify(body.errors)}`);
    continue;
  }
  try {
    const schema = buildClientSchema(body.data);
    const ok = schema.getQueryType()?.name === 'Query' && schema.getMutationType()?.getFields().login
      && schema.getSubscriptionType()?.getFields().instanceEvents;
    check(ok, `${name} + buildClientSchema`, 'missing root fields');
    if (ok && name === 'getIntrospectionQuery()') {
      console.log(`     ${printSchema(schema).split('\n').length} lines of SDL, ${Object.keys(schema.getTypeMap()).length} types`);
    }
  } catch (e) {
    check(false, `${name} + buildClientSchema`, e.message);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
