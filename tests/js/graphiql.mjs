// GraphiQL's page with the network cut off: headless Chromium (Debian's, driven by
// playwright-core) may reach nothing but the server on 127.0.0.1; every other request is
// aborted and counted. The page must render GraphiQL from the assets the binary serves
// and run a query. Usage: GRANTFLOW_URL=http://127.0.0.1:8080/graphql node graphiql.mjs
import { chromium } from 'playwright-core';

const url = process.env.GRANTFLOW_URL ?? 'http://127.0.0.1:8080/graphql';
const page_url = url.replace(/\/graphql$/, '/graphiql');
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

let passed = 0;
let failed = 0;
const check = (ok, name, detail = '') => {
  if (ok) passed += 1; else failed += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ` — ${detail}`}`);
};

const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
try {
  const context = await browser.newContext();
  const blocked = [];
  await context.route('**/*', (route) => {
    const target = new URL(route.request().url());
    if (target.hostname === '127.0.0.1') return route.continue();
    blocked.push(target.href);
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });

  const resp = await page.goto(page_url, { waitUntil: 'load' });
  check(resp?.status() === 200, 'the page answers 200', String(resp?.status()));
  const headers = resp?.headers() ?? {};
  check(/script-src 'self'/.test(headers['content-security-policy'] ?? ''), 'the page has a Content-Security-Policy', headers['content-security-policy']);

  // GraphiQL rendered: its editor and its run button.
  await page.waitForSelector('.graphiql-container .graphiql-query-editor', { timeout: 20000 });
  check(true, 'GraphiQL renders from the served assets');

  // Run a query: replace the editor's text, press the run button, read the result pane.
  await page.click('.graphiql-query-editor .CodeMirror');
  await page.evaluate(() => {
    const cm = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;
    cm.setValue('{ __typename }');
  });
  await page.click('.graphiql-execute-button');
  await page.waitForFunction(
    () => document.querySelector('.graphiql-response')?.textContent?.includes('"Query"'),
    null,
    { timeout: 20000 },
  );
  const result = await page.textContent('.graphiql-response');
  check(result.includes('"__typename"') && result.includes('"Query"'), 'a query runs and its result shows', result);

  // A subscription over graphql-transport-ws from the page (allowed by connect-src 'self'),
  // authenticated by the headers editor: the first event is the instance's current state.
  const post = async (body, token) => (await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  })).json();
  const password = process.env.GRANTFLOW_DEMO_PASSWORD ?? 'Grantflow-demo-2024';
  const token = (await post({ query: 'mutation($p: String!) { login(username: "manager", password: $p) { token } }', variables: { p: password } })).data.login.token;
  const instance = (await post({ query: '{ instances(first: 1) { edges { node { id } } } }' }, token)).data.instances.edges[0].node.id;
  await page.getByRole('button', { name: 'Headers' }).click();
  const setEditor = (selector, value) => page.evaluate(([sel, v]) => {
    document.querySelector(sel).CodeMirror.setValue(v);
  }, [selector, value]);
  await setEditor('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror', JSON.stringify({ Authorization: `Bearer ${token}` }));
  await setEditor('.graphiql-query-editor .CodeMirror', `subscription Watch { instanceEvents(instanceId: "${instance}") { kind toState } }`);
  await page.click('.graphiql-execute-button');
  await page.waitForFunction(
    () => document.querySelector('.graphiql-response')?.textContent?.includes('CURRENT'),
    null,
    { timeout: 20000 },
  ).catch(async (e) => {
    console.log(`the response pane: ${await page.textContent('.graphiql-response')}`);
    throw e;
  });
  check(true, 'a subscription runs over the WebSocket and shows its first event');

  check(blocked.length === 0, 'nothing was requested outside 127.0.0.1', blocked.join(', '));
  check(problems.length === 0, 'no errors in the page', problems.join(' | '));
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
