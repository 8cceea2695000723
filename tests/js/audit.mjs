// The graphql-http audit suite (GraphQL over HTTP spec) against a running server:
// every MUST and SHOULD audit must pass. Usage: GRANTFLOW_URL=http://127.0.0.1:8080/graphql node audit.mjs
import { auditServer } from 'graphql-http';

const url = process.env.GRANTFLOW_URL ?? 'http://127.0.0.1:8080/graphql';
const results = await auditServer({ url });
let failures = 0;
for (const r of results) {
  const level = r.name.split(' ')[0];
  const required = level === 'MUST' || level === 'SHOULD';
  const ok = r.status === 'ok';
  if (required && !ok) failures += 1;
  const mark = ok ? 'ok  ' : required ? 'FAIL' : 'note';
  console.log(`${mark} ${r.name}${ok ? '' : ` — ${r.reason ?? ''}`}`);
}
const required = results.filter((r) => /^(MUST|SHOULD) /.test(r.name)).length;
console.log(`${required - failures} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
