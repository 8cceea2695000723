// Shared by the console's browser tests: Chromium with every request outside 127.0.0.1
// blocked, signing in through the login page, a GraphQL client for looking things up,
// and a tally of checks.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

export const api = process.env.GRANTFLOW_URL ?? 'http://127.0.0.1:8080/graphql';
export const base = api.replace(/\/graphql$/, '');
export const password = 'Grantflow-demo-2024';
export const shots = new URL('../../docs/screenshots/', import.meta.url).pathname;
mkdirSync(shots, { recursive: true });

let passed = 0;
let failed = 0;
export const check = (ok, name, detail = '') => {
  if (ok) passed += 1; else failed += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ` — ${detail}`}`);
};
export const finish = () => {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
};

export const gql = async (query, variables, token) => {
  const r = await fetch(api, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return r.json();
};
export const login = async (username) =>
  (await gql('mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }', { u: username, p: password })).data.login.token;

export const launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox'],
});

export const blocked = [];
// A page in a fresh context (its own cookies). `bypassCSP` only for injecting axe-core.
export const newPage = async (browser, { viewport = { width: 1280, height: 800 }, bypassCSP = false } = {}) => {
  const context = await browser.newContext({ viewport, bypassCSP });
  await context.route('**/*', (route) => {
    const target = new URL(route.request().url());
    if (target.hostname === '127.0.0.1') return route.continue();
    blocked.push(target.href);
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(e.message));
  // A 404 or 422 page is the answer itself, not a broken resource.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (404|422)/.test(m.text())) page.problems.push(m.text());
  });
  return page;
};

// Clicks a form's button and waits for the page the post leads to (the URL may not change).
export const submitWith = async (page, button) => {
  await Promise.all([page.waitForNavigation(), button.click()]);
};

export const signIn = async (page, username) => {
  await page.goto(`${base}/login`);
  await page.getByLabel('用户名').fill(username);
  await page.getByLabel('密码').fill(password);
  await page.getByRole('button', { name: '登录' }).click();
  await page.waitForURL(`${base}/`);
};

// The form of one action on an instance page, found by its heading.
export const actionForm = (page, title) =>
  page.locator('form.action', { has: page.getByRole('heading', { name: title, exact: true }) }).first();
