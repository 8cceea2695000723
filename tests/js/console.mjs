// The web console in a real browser (Debian's Chromium, driven by playwright-core), against
// the live demo server, with every request outside 127.0.0.1 blocked:
// - a unit logs in, sees what waits on it, opens an application, submits it with a bad
//   amount (the error shows next to the field), then with good values (the state moves on,
//   the history shows it);
// - the city bureau sees it waiting and recommends it with an opinion;
// - a unit of another city gets the 404 page on the same URL;
// - a form post without the CSRF token is refused; the language switches to English;
// - logging out ends the session (the old cookie no longer opens a page).
// Screenshots of the main pages go to docs/screenshots/.
// Usage: GRANTFLOW_URL=http://127.0.0.1:8080/graphql node console.mjs
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const api = process.env.GRANTFLOW_URL ?? 'http://127.0.0.1:8080/graphql';
const base = api.replace(/\/graphql$/, '');
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const password = 'Grantflow-demo-2024';
const shots = new URL('../../docs/screenshots/', import.meta.url).pathname;
mkdirSync(shots, { recursive: true });

let passed = 0;
let failed = 0;
const check = (ok, name, detail = '') => {
  if (ok) passed += 1; else failed += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ` — ${detail}`}`);
};

// The application the test carries: a fresh one of unit_gz, created over GraphQL.
const gql = async (query, variables, token) => {
  const r = await fetch(api, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return r.json();
};
const login = async (username) =>
  (await gql('mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }', { u: username, p: password })).data.login.token;
const unitToken = await login('unit_gz');
const callId = (await gql('{ instances(first: 1, filter: { workflowId: "funded-project" }) { edges { node { data } } } }', {}, unitToken))
  .data.instances.edges[0].node.data.call_id;
// The call sets the deadline; the application names an item a unit in a city may apply for.
const created = await gql(
  'mutation($c: ID) { createInstance(input: { workflowId: "funded-project", title: "浏览器测试：专利导航服务能力提升", callId: $c, catalogueItem: "2022-2-1-5" }) { id } }',
  { c: callId },
  unitToken,
);
const id = created.data?.createInstance?.id;
check(Boolean(id), 'an application to carry exists', JSON.stringify(created));

const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
const blocked = [];
const newPage = async (viewport = { width: 1280, height: 800 }) => {
  const context = await browser.newContext({ viewport });
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
const submitWith = async (page, button) => {
  await Promise.all([page.waitForNavigation(), button.click()]);
};
const signIn = async (page, username) => {
  await page.goto(`${base}/login`);
  await page.getByLabel('用户名').fill(username);
  await page.getByLabel('密码').fill(password);
  await page.getByRole('button', { name: '登录' }).click();
  await page.waitForURL(`${base}/`);
};

try {
  // --- the unit
  const unit = await newPage();
  const loginResp = await unit.goto(`${base}/login`);
  const csp = loginResp.headers()['content-security-policy'] ?? '';
  check(csp.includes("default-src 'none'") && csp.includes("script-src 'self';") && !csp.includes('unsafe-'), 'pages carry a strict CSP: scripts from this site only, nothing inline', csp);
  await unit.screenshot({ path: `${shots}login.png` });
  await signIn(unit, 'unit_gz');
  check(await unit.getByRole('heading', { name: '我的待办' }).isVisible(), 'the home page shows what waits on the unit');
  check(await unit.getByRole('link', { name: '浏览器测试：专利导航服务能力提升' }).isVisible(), 'the new application waits on the unit');
  check(await unit.locator('script:not([src])').count() === 0, 'no inline script on the page');
  await unit.screenshot({ path: `${shots}home.png`, fullPage: true });

  await unit.getByRole('link', { name: '浏览器测试：专利导航服务能力提升' }).click();
  await unit.waitForURL(`${base}/instances/${id}`);
  check((await unit.textContent('#state')).includes('填写申报书'), 'the instance page shows its state');
  const submit = unit.locator('form.action', { has: unit.getByRole('heading', { name: '提交申报' }) });
  await submit.getByLabel('项目名称').fill('专利导航服务能力提升');
  await submit.getByLabel('申请经费（元）').fill('三十万');
  await submit.getByLabel('绩效目标: 类别 1').selectOption('output_quantity');
  await submit.getByLabel('绩效目标: 指标名称 1').fill('专利导航报告');
  await submit.getByLabel('绩效目标: 计量单位 1').fill('份');
  await submit.getByLabel('绩效目标: 目标值 1').fill('5');
  await submit.getByLabel('绩效目标: 权重 1').fill('1');
  await submit.getByLabel('绩效目标: 类别 2').selectOption('effect_social');
  await submit.getByLabel('绩效目标: 指标名称 2').fill('服务企业');
  await submit.getByLabel('绩效目标: 计量单位 2').fill('家');
  await submit.getByLabel('绩效目标: 目标值 2').fill('20');
  await submit.getByLabel('申报材料: 文件名 1').fill('申报书.pdf');
  await submit.getByLabel('申报材料: SHA-256 1').fill('a'.repeat(64));
  await submit.getByLabel('申报材料: 大小（字节） 1').fill('2048');
  await submitWith(unit, submit.getByRole('button', { name: '提交申报' }));
  const fieldError = await unit.locator('#submit-budget-err').textContent().catch(() => null);
  check(Boolean(fieldError), 'a bad amount is shown next to its field', await unit.locator('main').innerText());
  check(await unit.locator('#submit-budget').getAttribute('aria-invalid') === 'true', 'the bad field is marked invalid for assistive technology');
  await unit.screenshot({ path: `${shots}instance-error.png`, fullPage: true });
  const again = unit.locator('form.action', { has: unit.getByRole('heading', { name: '提交申报' }) });
  check(await again.getByLabel('项目名称').inputValue() === '专利导航服务能力提升', 'what was typed is kept after an error');
  await again.getByLabel('申请经费（元）').fill('300000');
  await submitWith(unit, again.getByRole('button', { name: '提交申报' }));
  check((await unit.textContent('#state')).includes('地市'), 'submitted: the application waits on the city bureau', await unit.textContent('#state'));
  check((await unit.locator('#history-h + table').innerText()).includes('submit'), 'the history shows the submission');

  // --- the city bureau
  const city = await newPage();
  await signIn(city, 'city_gz');
  check(await city.getByRole('link', { name: '浏览器测试：专利导航服务能力提升' }).isVisible(), 'the application waits on the city bureau');
  await city.goto(`${base}/instances/${id}`);
  const recommend = city.locator('form.action', { has: city.getByRole('heading', { name: '推荐' }) }).first();
  const opinion = recommend.locator('textarea, input[type=text]').first();
  await opinion.fill('同意推荐');
  await submitWith(city, recommend.getByRole('button'));
  check(!(await city.textContent('#state')).includes('地市'), 'recommended: the application left the city stage', await city.textContent('#state'));
  await city.screenshot({ path: `${shots}instance.png`, fullPage: true });

  // --- a unit of another city: the same URL is a 404 page
  const other = await newPage({ width: 390, height: 844 });
  await signIn(other, 'unit_sz');
  const hidden = await other.goto(`${base}/instances/${id}`);
  check(hidden.status() === 404, 'a unit of another city gets 404 on the instance URL', String(hidden.status()));
  check(!(await other.content()).includes('浏览器测试'), 'and sees nothing of it');
  await other.screenshot({ path: `${shots}not-found-phone.png` });

  // --- CSRF: a post without the token is refused, with the session cookie
  const cookies = await unit.context().cookies();
  const session = cookies.find((c) => c.name === 'gf_session').value;
  const forged = await fetch(`${base}/instances/${id}/fire`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `gf_session=${session}` },
    body: 'event=withdraw&version=2',
    redirect: 'manual',
  });
  check(forged.status === 403, 'a form post without the CSRF token is refused', String(forged.status));

  // --- English
  await submitWith(unit, unit.getByRole('button', { name: 'English' }));
  check(await unit.getByRole('heading', { name: 'History' }).isVisible(), 'the language switches to English');
  await unit.screenshot({ path: `${shots}instance-en.png`, fullPage: true });

  // --- logout ends the session for good
  await unit.getByRole('button', { name: 'Log out' }).click();
  await unit.waitForURL(`${base}/login`);
  const replay = await fetch(`${base}/`, { headers: { cookie: `gf_session=${session}` }, redirect: 'manual' });
  check(replay.status === 303 && replay.headers.get('location') === '/login', 'the old session cookie opens nothing after logout', String(replay.status));

  // --- an expert of the demo panel: declare no conflict, read the (blind) application,
  // score against the rubric, see the sealed scores
  let expertName = null;
  let assignment = null;
  for (const name of ['expert1', 'expert2', 'expert3', 'expert4', 'expert5']) {
    const token = await login(name);
    const mine = (await gql('{ myReviews { id state roundOpen blind instanceId } }', {}, token)).data.myReviews;
    const open = mine.find((r) => r.state === 'assigned' && r.roundOpen);
    if (open) { expertName = name; assignment = open; break; }
  }
  check(Boolean(assignment), 'the demo leaves an expert with an assignment to accept');
  const expert = await newPage();
  await signIn(expert, expertName);
  await expert.getByRole('link', { name: '我的评审' }).click();
  await expert.waitForURL(`${base}/reviews`);
  await expert.locator(`a[href="/reviews/${assignment.id}"]`).click();
  await expert.waitForURL(`${base}/reviews/${assignment.id}`);
  check((await expert.locator('main').innerText()).includes('声明无利益冲突后方可查看申报材料'), 'the application stays hidden before declaring no conflict');
  await submitWith(expert, expert.getByRole('button', { name: '声明无利益冲突', exact: true }));
  const application = await expert.locator('#application').innerText();
  check(application.length > 0, 'after declaring, the application shows');
  const managerToken = await login('manager');
  const truth = (await gql('query($id: ID!) { instance(id: $id) { organisation { name } } }', { id: assignment.instanceId }, managerToken)).data.instance;
  if (assignment.blind) {
    check(!application.includes(truth.organisation.name) && !(await expert.content()).includes(truth.organisation.name), 'a blind reviewer never sees the applicant', truth.organisation.name);
  }
  const scores = expert.locator('input[type=number]');
  const n = await scores.count();
  for (let i = 0; i < n; i += 1) await scores.nth(i).fill('85');
  await submitWith(expert, expert.getByRole('button', { name: '提交评分（提交后封存）' }));
  await expert.screenshot({ path: `${shots}review-sealed.png`, fullPage: true });
  check(await expert.getByRole('heading', { name: '已提交的评分（已封存）' }).isVisible(), 'the submitted scores are sealed and shown', await expert.locator('main').innerText());
  check(await expert.locator('input[type=number]').count() === 0, 'no score form after submission');

  for (const page of [unit, city, other, expert]) {
    check(page.problems.length === 0, 'no errors in the page', page.problems.join('; '));
  }
  check(blocked.length === 0, 'nothing was requested outside 127.0.0.1', blocked.join(', '));
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
