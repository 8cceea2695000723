// The programme manager's reports, funding plan and expert picker, clicked through in
// Chromium against the demo server:
// - the year's report (from the nav) and the call's report (chosen in the form): in every
//   breakdown (by city, category and part) each row's figures on the page equal the
//   GraphQL API's (`yearReport`, `callSummary { report }`), counts by stage included; the
//   indicator totals too; the grade and execution charts are drawn; the XLSX arrives;
// - the manager edits a city's allocation in the call's funding plan, the pools equal
//   `fundingPlan` and the history shows the change with its reason;
// - an expert user the admin just created is found by name in the expert pool's picker,
//   chosen from the list (no id typed) and saved to the pool;
// - the report page does not scroll sideways at phone width.
// Usage: GRANTFLOW_URL=http://127.0.0.1:8080/graphql node console-reports.mjs
import {
  base, shots, check, finish, gql, login, launch, newPage, submitWith, signIn, blocked,
} from './console-lib.mjs';

const F = `fragment F on ReportFigures {
  projects approved approvedAmount budgeted disbursed spent evaluated
  disbursementRate spentOfDisbursed spentOfApproved averageScore
  grades { excellent good fair poor } stages { id count }
}
fragment R on ProgrammeReport {
  totals { ...F }
  byCity { key figures { ...F } } byCategory { key figures { ...F } } byPart { key figures { ...F } }
  indicators { name unit projects reported target actual completion }
}`;
const percent = (r) => (r === null || r === undefined ? '—' : `${(r * 100).toFixed(1)}%`);
const shownFigures = (f) => ({
  projects: String(f.projects), approved: String(f.approved), approvedAmount: f.approvedAmount,
  budgeted: f.budgeted, disbursed: f.disbursed, spent: f.spent, evaluated: String(f.evaluated),
  disbursementRate: percent(f.disbursementRate), spentOfDisbursed: percent(f.spentOfDisbursed),
  spentOfApproved: percent(f.spentOfApproved),
  excellent: String(f.grades.excellent), good: String(f.grades.good), fair: String(f.grades.fair), poor: String(f.grades.poor),
  averageScore: f.averageScore === null ? '—' : f.averageScore.toFixed(1),
});

// The page rounds to one decimal as Rust does (a tie like 80.25 may go either way), so
// rounded figures are equal within one unit of the last place; the rest exactly.
const same = (page, api) => {
  if (page === api) return true;
  const rounded = /^-?\d+\.\d%?$/;
  if (!rounded.test(page ?? '') || !rounded.test(api)) return false;
  return Math.abs(parseFloat(page) - parseFloat(api)) <= 0.1 + 1e-9;
};

// Every row of every breakdown on the page against the API's report.
const compareReport = async (page, report, what) => {
  for (const [id, field] of [['city', 'byCity'], ['category', 'byCategory'], ['part', 'byPart']]) {
    const rows = report[field];
    check(rows.length > 0 && rows.some((r) => r.figures.projects > 0), `${what}: the breakdown ${field} has numbers`, JSON.stringify(rows));
    const mismatches = [];
    for (const row of rows) {
      const tr = page.locator(`#table-${id} tr[data-key="${row.key}"]`);
      const cells = await tr.locator('td[data-figure]').evaluateAll((tds) => Object.fromEntries(tds.map((td) => [td.dataset.figure, td.textContent.trim()])));
      for (const [k, v] of Object.entries(shownFigures(row.figures))) {
        if (!same(cells[k], v)) mismatches.push(`${row.key}.${k}: page ${cells[k]} ≠ API ${v}`);
      }
      const stages = await page.locator(`#stages-${id} tr[data-key="${row.key}"] td[data-stage]`)
        .evaluateAll((tds) => Object.fromEntries(tds.map((td) => [td.dataset.stage, td.textContent.trim()])));
      for (const s of row.figures.stages) {
        if (stages[s.id] !== String(s.count)) mismatches.push(`${row.key} stage ${s.id}: page ${stages[s.id]} ≠ API ${s.count}`);
      }
    }
    check(mismatches.length === 0, `${what}: every figure by ${id} equals the API's (${rows.length} rows)`, mismatches.slice(0, 5).join('; '));
    check(await page.locator(`#chart-grades-${id} svg rect.grade`).count() + await page.locator(`#chart-execution-${id} svg rect.execution`).count() > 0,
      `${what}: the grade and execution charts by ${id} are drawn`);
  }
  const totals = await page.locator('#totals dd[data-figure]').evaluateAll((dds) => Object.fromEntries(dds.map((d) => [d.dataset.figure, d.textContent.trim()])));
  const want = shownFigures(report.totals);
  check(['projects', 'approved', 'approvedAmount', 'disbursed', 'spent', 'spentOfDisbursed', 'spentOfApproved'].every((k) => totals[k] === want[k]),
    `${what}: the totals equal the API's`, JSON.stringify({ totals, want }));
  const indicators = await page.locator('#table-indicators tbody tr[data-key]').evaluateAll((trs) => trs.map((tr) => [
    tr.dataset.key, tr.querySelector('[data-figure="target"]').textContent.trim(), tr.querySelector('[data-figure="actual"]').textContent.trim(),
  ]));
  const byKey = new Map(indicators.map(([k, t, a]) => [k, [t, a]]));
  const bad = report.indicators.filter((i) => {
    const got = byKey.get(`${i.name}|${i.unit}`);
    return !got || Number(got[0]) !== i.target || Number(got[1]) !== i.actual;
  });
  check(report.indicators.length > 0 && bad.length === 0, `${what}: the indicator totals by name and unit equal the API's (${report.indicators.length})`,
    JSON.stringify(bad.slice(0, 3)));
};

const browser = await launch();
try {
  const managerToken = await login('manager');
  const { calls } = (await gql('{ calls { id year title } }', {}, managerToken)).data;
  const call = calls[0];
  const manager = await newPage(browser);
  await signIn(manager, 'manager');

  // --- the year's report, from the nav
  await submitWith(manager, manager.getByRole('navigation').getByRole('link', { name: '统计报表' }));
  const year = Number(await manager.locator('#report-year').inputValue());
  const yearReport = (await gql(`query($y: Int!) { yearReport(year: $y) { ...R } } ${F}`, { y: year }, managerToken)).data.yearReport;
  await compareReport(manager, yearReport, `the ${year} report`);
  await manager.screenshot({ path: `${shots}reports.png`, fullPage: true });

  // --- the call's report, chosen in the form
  await manager.locator('#report-call').selectOption(call.id);
  await submitWith(manager, manager.locator('#report-call-form').getByRole('button'));
  check((await manager.locator('#report-scope').innerText()).includes(call.title), 'the call\'s report is shown', await manager.locator('h1').innerText());
  const callReport = (await gql(`query($c: ID!) { callSummary(callId: $c) { report { ...R } } } ${F}`, { c: call.id }, managerToken)).data.callSummary.report;
  await compareReport(manager, callReport, 'the call\'s report');
  const [download] = await Promise.all([manager.waitForEvent('download'), manager.locator('#export-report').click()]);
  check(/\.xlsx$/.test(download.suggestedFilename()), 'the report downloads as XLSX', download.suggestedFilename());
  check(await manager.locator('#table-units tbody tr[data-key]').count() > 0, 'the grades per unit are listed');

  // --- the funding plan: a city's allocation lowered by 1000 yuan, with a reason
  await manager.goto(`${base}/calls/${call.id}`);
  await submitWith(manager, manager.locator('#funding-link'));
  const amount = manager.locator('#funding-form input[data-kind="city"][data-key="广州市"]');
  const before = Number(await amount.inputValue());
  const after = (before - 1000).toFixed(2);
  const reason = `浏览器测试：调整广州市分配 ${Date.now() % 100000}`;
  await amount.fill(after);
  await manager.getByLabel('修改原因').fill(reason);
  await submitWith(manager, manager.getByRole('button', { name: '保存经费计划' }));
  const plan = (await gql('query($c: ID!) { fundingPlan(callId: $c) { total pools { kind key allocated committed remaining } } }', { c: call.id }, managerToken)).data.fundingPlan;
  const gz = plan.pools.find((p) => p.kind === 'city' && p.key === '广州市');
  check(gz.allocated === after, 'the plan holds the new allocation', JSON.stringify(gz));
  const poolRows = await manager.locator('#pools tbody tr').evaluateAll((trs) => trs.map((tr) => [
    tr.dataset.kind, tr.dataset.key, ...['allocated', 'committed', 'remaining'].map((f) => tr.querySelector(`[data-figure="${f}"]`).textContent.trim()),
  ].join('|')));
  const apiRows = plan.pools.filter((p) => p.kind !== 'total').map((p) => [p.kind, p.key, p.allocated, p.committed, p.remaining].join('|'));
  check(JSON.stringify(poolRows) === JSON.stringify(apiRows), 'every pool on the page equals the API\'s (allocated, committed, remaining)',
    JSON.stringify({ poolRows, apiRows }));
  const latest = manager.locator('#funding-history tbody tr').first();
  check((await latest.locator('.reason').innerText()) === reason, 'the history shows the change with its reason', await latest.innerText());
  check((await latest.locator('li[data-kind="city"][data-key="广州市"]').innerText()).includes(`→ ${after}`), 'and what changed', await latest.innerText());
  await manager.screenshot({ path: `${shots}funding-plan.png`, fullPage: true });

  // --- the expert picker: a new expert user found by name and chosen from the list
  const stamp = Date.now() % 100000;
  const username = `expert_pick_${stamp}`;
  const displayName = `浏览器专家${stamp}`;
  const created = await gql('mutation($i: CreateUserInput!) { createUser(input: $i) { id } }', {
    i: { username, displayName, email: `${username}@example.edu.cn`, password: 'Grantflow-demo-2024', roles: ['EXPERT'] },
  }, await login('admin'));
  const expertId = created.data?.createUser.id;
  check(Boolean(expertId), 'the admin created an expert user', JSON.stringify(created.errors));
  await submitWith(manager, manager.getByRole('navigation').getByRole('link', { name: '专家库' }));
  await manager.getByLabel('姓名或用户名').fill(displayName);
  await submitWith(manager, manager.locator('#picker').getByRole('button', { name: '搜索' }));
  check(await manager.locator(`#candidates tr[data-username="${username}"]`).count() === 1, 'the search lists the new expert', await manager.locator('#candidates').innerText());
  await submitWith(manager, manager.getByRole('link', { name: `选择 ${displayName}` }));
  check(await manager.locator('#profile-user').inputValue() === expertId, 'choosing puts the expert in the profile form', await manager.locator('#profile-user').inputValue());
  await manager.locator('#category-4').check();
  await manager.locator('#profile-keywords').fill('商标、地理标志');
  await submitWith(manager, manager.getByRole('button', { name: '保存专家信息' }));
  check((await manager.locator(`#pool tr[data-expert="${username}"]`).innerText()).includes('地理标志'), 'the chosen expert is in the pool', await manager.locator('#pool').innerText());
  await manager.screenshot({ path: `${shots}expert-picker.png`, fullPage: true });

  // --- phone width: the report page is read by scrolling down, its tables in their boxes
  const phone = await newPage(browser, { viewport: { width: 390, height: 844 } });
  await signIn(phone, 'manager');
  await phone.goto(`${base}/reports?call=${call.id}`);
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 1, 'the report page does not scroll sideways at phone width', String(overflow));
  for (const page of [manager, phone]) check(page.problems.length === 0, 'no errors in the page', page.problems.join('; '));
  check(blocked.length === 0, 'nothing was requested outside 127.0.0.1', blocked.join(', '));
} finally {
  await browser.close();
}
finish();
