// A project carried from application to its review result by clicking through the
// console only (GraphQL is used just to find out which experts the draw chose):
// - the unit opens the call, creates an application, submits it through the generated
//   form (the indicators and files tables; a bad amount shown next to its field first);
// - its city bureau recommends it with an opinion;
// - the manager passes the formal check and draws the panel with a seed;
// - the first expert drawn declares a conflict and is replaced; three experts declare
//   no conflict and score; none of their pages ever shows the applicant (blind round);
// - the manager sees the panel (the conflict with its reason), the spread of the totals,
//   and concludes the review: the project moves to the funding decision;
// - the unit uploads a 需求征集表 with errors: every row and column is listed and
//   nothing is stored; the city downloads its 汇总表; the auditor sees the history's
//   hashes verified.
// Usage: GRANTFLOW_URL=http://127.0.0.1:8080/graphql node console-flow.mjs
import { readFileSync } from 'node:fs';
import {
  base, shots, check, finish, gql, login, launch, newPage, submitWith, signIn, actionForm, blocked,
} from './console-lib.mjs';

const title = `浏览器全流程：知识产权运营服务 ${Date.now() % 100000}`;
const browser = await launch();
const pages = [];
const open = async (username, options) => {
  const page = await newPage(browser, options);
  pages.push(page);
  await signIn(page, username);
  return page;
};
const state = async (page) => (await page.textContent('#state')).trim();

try {
  // --- the unit: from the call to a submitted application
  const unit = await open('unit_gz');
  await unit.getByRole('link', { name: '项目通知' }).click();
  await unit.waitForURL(`${base}/calls`);
  await unit.locator('main table a').first().click();
  await unit.waitForURL(/\/calls\/[^/]+$/);
  const callUrl = unit.url();
  await unit.locator('#application-title').fill(title);
  // An application names the catalogue item it is for (one a unit in a city may apply for).
  await unit.selectOption('#application-item', '2022-2-1-5');
  await submitWith(unit, unit.locator('form', { has: unit.locator('#application-title') }).getByRole('button', { name: '创建' }));
  check(/\/instances\/[^/]+$/.test(unit.url()), 'the unit created an application from the call', unit.url());
  const id = unit.url().split('/').pop();
  check((await state(unit)).includes('填写申报书'), 'the new application is being drafted', await state(unit));

  let submit = actionForm(unit, '提交申报（经地市局推荐）');
  await submit.getByLabel('项目名称').fill('知识产权运营服务体系建设');
  await submit.getByLabel('申请经费（元）').fill('三十万');
  await submit.getByLabel('绩效目标: 类别 1').selectOption('output_quantity');
  await submit.getByLabel('绩效目标: 指标名称 1').fill('服务企业数量');
  await submit.getByLabel('绩效目标: 计量单位 1').fill('家');
  await submit.getByLabel('绩效目标: 目标值 1').fill('120');
  await submit.getByLabel('绩效目标: 方向 1').selectOption('higher_is_better');
  await submit.getByLabel('绩效目标: 权重 1').fill('1');
  await submit.getByLabel('绩效目标: 类别 2').selectOption('effect_social');
  await submit.getByLabel('绩效目标: 指标名称 2').fill('带动就业');
  await submit.getByLabel('绩效目标: 计量单位 2').fill('人');
  await submit.getByLabel('绩效目标: 目标值 2').fill('30');
  await submit.getByLabel('申报材料: 文件名 1').fill('申报书.pdf');
  await submit.getByLabel('申报材料: SHA-256 1').fill('b'.repeat(64));
  await submit.getByLabel('申报材料: 大小（字节） 1').fill('4096');
  await submitWith(unit, submit.getByRole('button', { name: '提交申报' }));
  check(await unit.locator('#submit-budget-err').isVisible(), 'the bad amount is refused next to its field', await unit.locator('main').innerText());
  submit = actionForm(unit, '提交申报（经地市局推荐）');
  check(await submit.getByLabel('绩效目标: 指标名称 1').inputValue() === '服务企业数量', 'the indicators table keeps what was typed');
  await submit.getByLabel('申请经费（元）').fill('300000');
  await submitWith(unit, submit.getByRole('button', { name: '提交申报' }));
  check((await state(unit)).includes('地市'), 'submitted: the application waits on the city bureau', await state(unit));
  check((await unit.locator('.diagram .state.current').getAttribute('data-state')) === 'city_review', 'the diagram highlights the current state');

  // --- the city bureau recommends it
  const city = await open('city_gz');
  await city.getByRole('link', { name: title }).click();
  const recommend = actionForm(city, '推荐报送省局');
  await recommend.locator('textarea, input[type=text]').first().fill('同意推荐，材料齐全');
  await submitWith(city, recommend.getByRole('button'));
  check((await state(city)).includes('形式审查'), 'recommended: the application is at the formal check', await state(city));

  // --- the manager: formal check, then the panel draw
  const manager = await open('manager');
  await manager.getByRole('link', { name: title }).click();
  await submitWith(manager, actionForm(manager, '形式审查通过').getByRole('button'));
  check((await state(manager)).includes('专家评审'), 'the formal check passed: expert review', await state(manager));
  await manager.getByRole('link', { name: '评审轮次与专家组' }).click();
  await manager.waitForURL(`${base}/rounds/${id}`);
  await manager.getByLabel('随机种子').fill('20240628');
  await submitWith(manager, manager.getByRole('button', { name: '抽取专家' }));
  check((await manager.locator('#draw-notice').innerText()).includes('20240628'), 'the draw is seeded and says so', await manager.locator('main').innerText());
  const drawn = await manager.locator('#panel tbody tr').count();
  check(drawn === 3, 'three experts are drawn', String(drawn));

  // --- the experts (who was drawn: looked up over GraphQL)
  const truth = (await gql('query($id: ID!) { instance(id: $id) { organisation { name } } }', { id }, await login('manager'))).data.instance;
  const applicant = truth.organisation.name;
  const experts = ['expert1', 'expert2', 'expert3', 'expert4', 'expert5'];
  const assigned = async () => {
    const out = [];
    for (const name of experts) {
      const mine = (await gql('{ myReviews { id state instanceId } }', {}, await login(name))).data.myReviews;
      const a = mine.find((r) => r.instanceId === id && r.state === 'assigned');
      if (a) out.push({ name, id: a.id });
    }
    return out;
  };
  let first = await assigned();
  check(first.length === 3, 'three experts have the assignment', JSON.stringify(first));

  // The first declares a conflict of interest and is replaced.
  const conflicted = await open(first[0].name);
  await conflicted.goto(`${base}/reviews/${first[0].id}`);
  check(!(await conflicted.content()).includes(applicant), 'a blind reviewer does not see the applicant before declaring');
  await conflicted.locator('#conflict-reason').fill('本人近三年与该单位有合作项目');
  await submitWith(conflicted, conflicted.getByRole('button', { name: '声明存在利益冲突（回避）' }));
  const after = await assigned();
  const replacement = after.find((a) => !first.some((f) => f.name === a.name));
  check(Boolean(replacement), 'the expert with a conflict is replaced by another', JSON.stringify(after));

  // Three experts declare no conflict and score.
  const scores = { 0: '82', 1: '78', 2: '88' };
  for (const [i, a] of after.entries()) {
    const expert = await open(a.name);
    await expert.getByRole('link', { name: '我的评审' }).click();
    await expert.locator(`a[href="/reviews/${a.id}"]`).click();
    await expert.waitForURL(`${base}/reviews/${a.id}`);
    await submitWith(expert, expert.getByRole('button', { name: '声明无利益冲突', exact: true }));
    const shown = await expert.content();
    check(!shown.includes(applicant), `${a.name}: the blind review never shows the applicant`, applicant);
    const boxes = expert.locator('input[type=number]');
    for (let k = 0; k < await boxes.count(); k += 1) await boxes.nth(k).fill(scores[i] ?? '80');
    await submitWith(expert, expert.getByRole('button', { name: '提交评分（提交后封存）' }));
    check(await expert.getByRole('heading', { name: '已提交的评分（已封存）' }).isVisible(), `${a.name}: the scores are sealed`);
    check(!(await expert.content()).includes(applicant), `${a.name}: the sealed view does not show the applicant either`);
    // The instance page of a blind reviewer shows no applicant and no history.
    const inst = await expert.goto(`${base}/instances/${id}`);
    if (inst.status() === 200) {
      check(!(await expert.content()).includes(applicant), `${a.name}: the instance page hides the applicant`);
    }
  }

  // --- the manager: the panel with the conflict, the spread, and the conclusion
  await manager.goto(`${base}/rounds/${id}`);
  const panel = await manager.locator('#panel').innerText();
  check(panel.includes('本人近三年与该单位有合作项目'), 'the panel shows the declared conflict and its reason', panel);
  check(await manager.locator('#spread svg circle').count() === 3, 'the spread chart shows the three totals');
  await manager.screenshot({ path: `${shots}round.png`, fullPage: true });
  await manager.goto(`${base}/instances/${id}`);
  await submitWith(manager, actionForm(manager, '评审通过，进入立项决定').getByRole('button'));
  check((await state(manager)).includes('立项决定'), 'the review concluded: the project awaits the funding decision', await state(manager));
  // A deadline extended with its reason shows in the history.
  if (await manager.locator('#extend-date').count() > 0) {
    await manager.locator('#extend-date').fill('2030-12-31');
    await manager.locator('#extend-reason').fill('专家组建议补充材料，延期');
    await submitWith(manager, manager.getByRole('button', { name: '延长期限' }));
    check((await manager.locator('#history-h ~ table').innerText()).includes('专家组建议补充材料，延期'), 'the extended deadline is in the history with its reason');
  }
  await manager.screenshot({ path: `${shots}instance-manager.png`, fullPage: true });

  // --- the call: funnel and ranking (manager)
  await manager.goto(callUrl);
  check(await manager.locator('#funnel svg rect').count() > 0, 'the call shows its funnel by stage');
  await manager.screenshot({ path: `${shots}call.png`, fullPage: true });
  await manager.goto(`${callUrl}/ranking`);
  check((await manager.locator('#ranking').innerText()).includes(title), 'the ranking lists the project');

  // --- the unit uploads a 需求征集表 with errors: every row and column, nothing stored
  await unit.goto(callUrl);
  await unit.locator('#sheet').setInputFiles({
    name: '需求征集表.xlsx',
    mimeType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    buffer: readFileSync(new URL('./fixtures/demand_form_errors.xlsx', import.meta.url)),
  });
  await submitWith(unit, unit.getByRole('button', { name: '上传' }));
  const errors = await unit.locator('#import-errors tbody tr').allInnerTexts();
  check(errors.length === 2, 'each bad row is listed', JSON.stringify(errors));
  check(errors.some((e) => /^7\s+F/.test(e) && e.includes('五十万')) && errors.some((e) => /^11\s+F/.test(e) && e.includes('很多')),
    'with its row, column and value', JSON.stringify(errors));
  await unit.screenshot({ path: `${shots}import-errors.png`, fullPage: true });

  // --- the city downloads its 汇总表
  await city.goto(callUrl);
  const [download] = await Promise.all([city.waitForEvent('download'), city.getByRole('link', { name: '导出汇总表（XLSX）' }).click()]);
  check(/\.xlsx$/.test(download.suggestedFilename()), 'the city bureau downloads its 汇总表', download.suggestedFilename());

  // --- the auditor: the history with its hashes, verified
  const auditor = await open('auditor');
  await auditor.goto(`${base}/instances/${id}`);
  check((await auditor.locator('#verification').innerText()).includes('哈希链校验通过'), 'the auditor sees the hash chain verified');
  check(await auditor.locator('td.hash code').count() >= 8, 'with every record\'s hash and the one before');
  await auditor.screenshot({ path: `${shots}instance-auditor.png`, fullPage: true });

  // --- an evaluated demo project: the recorded score by part
  const evaluated = (await gql('{ instances(first: 50, filter: { workflowId: "funded-project", includeFinal: true }) { edges { node { id state { id } } } } }', {}, await login('manager')))
    .data.instances.edges.map((e) => e.node).find((n) => ['graded', 'archived'].includes(n.state.id));
  if (evaluated) {
    await manager.goto(`${base}/instances/${evaluated.id}/evaluation`);
    check(/[优良中差]/.test(await manager.locator('#evaluation-total').innerText()), 'an evaluated project shows its score and grade');
  }

  for (const page of pages) check(page.problems.length === 0, 'no errors in the page', page.problems.join('; '));
  check(blocked.length === 0, 'nothing was requested outside 127.0.0.1', blocked.join(', '));
} finally {
  await browser.close();
}
finish();
