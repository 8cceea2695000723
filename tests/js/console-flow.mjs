// A project carried from application to its grade by clicking through the
// console only (GraphQL is used just to find out which experts the draw chose):
// - the unit opens the call, creates an application, submits it through the generated
//   form (the indicators and files tables; a bad amount shown next to its field first);
// - its city bureau recommends it with an opinion;
// - the manager passes the formal check and draws the panel with a seed;
// - the first expert drawn declares a conflict and is replaced; three experts declare
//   no conflict and score; none of their pages ever shows the applicant (blind round);
// - the manager sees the panel (the conflict with its reason), the spread of the totals,
//   and concludes the review: the project moves to the funding decision;
// - the manager adds a budget line, approves, ends the public notice by hand; the unit
//   submits its task book with its task rows and report schedule (arriving live on
//   another manager window's waiting list, over the subscription), the manager signs it
//   (the project shows its task book); the unit reports progress per task; the manager
//   disburses a first batch; the unit files a change request, the manager approves it;
//   the unit records spending (the execution rates follow) and submits the
//   acceptance materials with the actuals table (started from the approved targets); the
//   manager accepts, the unit evaluates itself, the manager records the evaluation: graded;
// - the unit uploads a 需求征集表 with errors: every row and column is listed and
//   nothing is stored; the city downloads its 汇总表; the auditor sees the history's
//   hashes verified.
// Usage: GRANTFLOW_URL=http://127.0.0.1:8080/graphql node console-flow.mjs
import { readFileSync } from 'node:fs';
import {
  base, shots, check, finish, gql, login, launch, newPage, submitWith, signIn, actionForm, blocked,
} from './console-lib.mjs';

// Dates relative to today in China Standard Time (the server runs on the real clock).
const day = (offset = 0) => new Date(Date.now() + offset * 864e5 + 8 * 3600e3).toISOString().slice(0, 10);
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

  // --- approval: a budget line first (the approval's guard), then the funding decision;
  // the public notice is ended by the manager's action (no waiting on time).
  await manager.getByRole('link', { name: '项目预算' }).click();
  await manager.waitForURL(`${base}/instances/${id}/budget`);
  await manager.locator('#line-year').fill(day().slice(0, 4));
  await manager.locator('#line-subject').fill('知识产权运营服务');
  await manager.locator('#line-amount').fill('300000');
  await submitWith(manager, manager.getByRole('button', { name: '新增预算科目' }));
  check((await manager.locator('#lines').innerText()).includes('知识产权运营服务'), 'the manager adds a budget line');
  await manager.goto(`${base}/instances/${id}`);
  const approve = actionForm(manager, '批准立项（进入公示）');
  await approve.getByLabel('立项资助金额（元）').fill('300000');
  await approve.getByLabel('绩效目标已审定').selectOption('true');
  await submitWith(manager, approve.getByRole('button'));
  check((await state(manager)).includes('立项公示'), 'approved: the project is in its public notice', await state(manager));
  await submitWith(manager, actionForm(manager, '公示期满无异议').getByRole('button'));
  check((await state(manager)).includes('签订任务书'), 'the notice ended: the unit signs the task book', await state(manager));
  check((await manager.locator('#table-approved_indicators').innerText()).includes('服务企业数量'), 'the approved targets are shown as a table');

  // A second manager window on the home page: what the unit does next arrives there over
  // the subscription, without a reload.
  const watcher = await open('manager');
  const waitingList = watcher.locator('#waiting');
  await watcher.locator('#waiting[data-live-mode="socket"]').waitFor();
  check(!(await waitingList.innerText()).includes(title), 'the task book does not wait on the manager yet');
  await watcher.evaluate(() => { window.notReloaded = true; });

  // --- the unit: the task book
  await unit.goto(`${base}/instances/${id}`);
  const taskBook = actionForm(unit, '提交任务书');
  await taskBook.getByLabel('项目任务书: 文件名 1').fill('任务书.pdf');
  await taskBook.getByLabel('项目任务书: SHA-256 1').fill('c'.repeat(64));
  await taskBook.getByLabel('项目任务书: 大小（字节） 1').fill('8192');
  await taskBook.getByLabel('进度安排与里程碑').fill('2024年12月中期检查，2025年6月验收');
  await taskBook.getByLabel('执行期截止日').fill(day(365));
  // The task table (one row per task, linked to approved targets by name) and the schedule.
  const tasks = [
    ['平台建设', '建设知识产权运营服务平台', '平台上线运行', '运营部', day(200), '服务企业数量'],
    ['人才培训', '举办知识产权培训', '培训总结报告', '培训部', day(300), '服务企业数量、带动就业'],
  ];
  for (const [r, row] of tasks.entries()) {
    for (const [c, column] of ['工作重点', '具体任务', '成果形式', '责任部门', '时限', '关联绩效指标'].entries()) {
      await taskBook.getByLabel(`任务书任务表: ${column} ${r + 1}`, { exact: true }).fill(row[c]);
    }
  }
  check(await taskBook.getByLabel('任务书任务表: 工作重点 3', { exact: true }).count() === 1, 'the task table has an empty row to add a task');
  await taskBook.locator('select[name="input.report_schedule"]').selectOption('quarterly');
  await submitWith(unit, taskBook.getByRole('button', { name: '提交任务书' }));
  check((await state(unit)).includes('任务书审核'), 'the task book waits on the manager', await state(unit));
  await waitingList.getByRole('link', { name: title }).waitFor();
  check(await watcher.evaluate(() => window.notReloaded === true), 'the manager\'s waiting list shows it live, without a reload');
  await watcher.screenshot({ path: `${shots}home-live.png`, fullPage: true });

  // --- the manager signs it: execution
  await manager.goto(`${base}/instances/${id}`);
  await submitWith(manager, actionForm(manager, '审核通过任务书').getByRole('button'));
  check((await state(manager)).includes('项目执行'), 'the task book signed: the project is in execution', await state(manager));
  const book = await manager.locator('#task-book').innerText();
  check(book.includes('建设知识产权运营服务平台') && book.includes('培训部'), 'the instance page shows the task book\'s rows', book);
  check((await manager.locator('#task-book-facts').innerText()).includes('按季度'), 'and its report schedule', await manager.locator('#task-book-facts').innerText());
  check(/\d{4}-\d{2}-\d{2}/.test(await manager.locator('#next-report-due').innerText()), 'and when the next progress report is due', await manager.locator('#next-report-due').innerText());

  // --- the unit reports progress per task (rows start from the task book's tasks)
  await unit.goto(`${base}/instances/${id}`);
  const progress = actionForm(unit, '提交进展报告');
  check(await progress.getByLabel('各项任务进展: 任务序号 2', { exact: true }).inputValue() === '2', 'the progress table starts with one row per task');
  await progress.getByLabel('各项任务进展: 进展状态 1', { exact: true }).selectOption('completed');
  await progress.getByLabel('各项任务进展: 完成百分比 1', { exact: true }).fill('100');
  await progress.getByLabel('各项任务进展: 进展状态 2', { exact: true }).selectOption('in_progress');
  await progress.getByLabel('各项任务进展: 完成百分比 2', { exact: true }).fill('40');
  await submitWith(unit, progress.getByRole('button', { name: '提交进展报告' }));
  check((await unit.locator('#task-book').innerText()).includes('进行中 40%'), 'the task book shows the latest progress per task', await unit.locator('main').innerText());

  // --- the manager disburses the first batch (spending needs what was disbursed)
  await manager.goto(`${base}/instances/${id}/budget`);
  await manager.locator('#disburse-batch').fill('第一批');
  await manager.locator('#disburse-on').fill(day());
  await manager.locator('#disburse-amount').fill('300000');
  await manager.locator('#disburse-voucher').fill('粤财拨〔2024〕18号');
  await submitWith(manager, manager.getByRole('button', { name: '登记拨付' }));
  check((await manager.locator('#disbursements').innerText()).includes('粤财拨〔2024〕18号'), 'the manager records a disbursement', await manager.locator('main').innerText());
  check((await manager.locator('#disbursed').innerText()).includes('300000'), 'the budget shows what was disbursed', await manager.locator('#disbursed').innerText());

  // --- a change request: the unit files it from the project, the manager approves it
  await unit.goto(`${base}/instances/${id}`);
  await unit.locator('#change-title').fill('延长执行期');
  await submitWith(unit, unit.getByRole('button', { name: '申请项目变更' }));
  check((await state(unit)).includes('填写变更申请'), 'the unit starts a change request of the project', await state(unit));
  check((await unit.locator('#parent').innerText()) === title, 'the change request names its project');
  const change = actionForm(unit, '提交变更申请');
  await change.getByLabel('变更类型').selectOption('schedule');
  await change.getByLabel('变更内容及理由').fill('受场地影响，执行期延长两个月');
  await change.getByLabel('变更后执行期截止日').fill(day(425));
  await submitWith(unit, change.getByRole('button', { name: '提交变更申请' }));
  check((await state(unit)).includes('省局审核'), 'the change request waits on the manager', await state(unit));
  await manager.goto(`${base}/instances/${id}`);
  await manager.locator('#change-requests').getByRole('link', { name: '延长执行期' }).click();
  await manager.waitForURL(/\/instances\/[^/]+$/);
  await submitWith(manager, actionForm(manager, '批准变更').getByRole('button'));
  check((await state(manager)).includes('已批准'), 'the manager approves the change request', await state(manager));
  await manager.goto(`${base}/instances/${id}`);
  check((await manager.locator('#change-requests').innerText()).includes('已批准'), 'the project lists its approved change request');

  // --- the unit: spending, then the acceptance materials with the actuals table
  await unit.goto(`${base}/instances/${id}/budget`);
  await unit.locator('#spend-amount').fill('270000');
  await unit.locator('#spend-on').fill(day());
  await unit.locator('#spend-description').fill('运营服务平台建设');
  await submitWith(unit, unit.getByRole('button', { name: '登记支出' }));
  check((await unit.locator('#spending').innerText()).includes('运营服务平台建设'), 'the unit records its spending');
  check((await unit.locator('#rate-of-disbursed').innerText()) === '90.0%', 'the execution rate of the disbursed funds', await unit.locator('#rate-of-disbursed').innerText());
  check((await unit.locator('#rate-of-approved').innerText()) === '90.0%', 'and of the approved funding', await unit.locator('#rate-of-approved').innerText());
  await unit.goto(`${base}/instances/${id}`);
  const final = actionForm(unit, '提交验收材料');
  for (const [label, name] of [['验收总结报告', '验收报告.pdf'], ['财务决算表', '财务决算表.xlsx']]) {
    await final.getByLabel(`${label}: 文件名 1`).fill(name);
    await final.getByLabel(`${label}: SHA-256 1`).fill('d'.repeat(64));
    await final.getByLabel(`${label}: 大小（字节） 1`).fill('4096');
  }
  check(await final.getByLabel('绩效指标完成情况: 指标名称 1').inputValue() === '服务企业数量', 'the actuals table starts from the approved targets');
  await final.getByLabel('绩效指标完成情况: 实际完成值 1').fill('125');
  await final.getByLabel('绩效指标完成情况: 实际完成值 2').fill('32');
  await submitWith(unit, final.getByRole('button', { name: '提交验收材料' }));
  check((await state(unit)).includes('验收评审'), 'the acceptance materials are with the manager', await state(unit));
  check((await unit.locator('#table-indicator_actuals').innerText()).includes('125'), 'the actuals are shown in the indicator table');
  await unit.screenshot({ path: `${shots}instance-actuals.png`, fullPage: true });

  // --- the acceptance panel: the manager records a collaboration in the expert pool
  // (an exclusion), assigns one expert by hand (the one with the conflict is refused with
  // its reason), draws the rest; the draw lists whom it excluded and why.
  const [partner, manual] = after.map((a) => a.name);
  await manager.goto(`${base}/experts`);
  check(await manager.locator('#pool tbody tr').count() >= 5, 'the manager sees the expert pool');
  const partnerId = await manager.locator(`#collab-expert option[data-username="${partner}"]`).getAttribute('value');
  await manager.locator('#collab-expert').selectOption(partnerId);
  await manager.locator('#collab-org').selectOption({ label: applicant });
  await manager.locator('#collab-until').fill(day());
  await manager.locator('#collab-note').fill('联合课题（浏览器测试）');
  await submitWith(manager, manager.getByRole('button', { name: '登记合作关系（回避）' }));
  check((await manager.locator(`#pool tr[data-expert="${partner}"]`).innerText()).includes(applicant), 'the collaboration is listed as an exclusion in the pool', await manager.locator('#pool').innerText());
  await manager.locator('#profile-user').selectOption(await manager.locator(`#profile-user option[data-username="${manual}"]`).getAttribute('value'));
  for (const c of ['2', '3']) await manager.locator(`#category-${c}`).check();
  await manager.locator('#profile-keywords').fill('知识产权运营、验收评审');
  await manager.locator('#profile-cap').fill('9');
  await submitWith(manager, manager.getByRole('button', { name: '保存专家信息' }));
  check((await manager.locator(`#pool tr[data-expert="${manual}"]`).innerText()).includes('验收评审'), 'the manager edits an expert\'s expertise', await manager.locator('#pool').innerText());
  await manager.screenshot({ path: `${shots}experts.png`, fullPage: true });

  await manager.goto(`${base}/rounds/${id}`);
  await manager.locator(`#assign-form input[data-username="${partner}"]`).check();
  await submitWith(manager, manager.locator('#assign-form').getByRole('button'));
  check((await manager.locator('#round-error').innerText()).includes('利益冲突'), 'assigning the excluded expert by hand is refused with the conflict', await manager.locator('main').innerText());
  await manager.locator(`#assign-form input[data-username="${manual}"]`).check();
  await submitWith(manager, manager.locator('#assign-form').getByRole('button'));
  check(await manager.locator('#panel tbody tr').count() === 1, 'one expert is assigned by hand', await manager.locator('main').innerText());
  await manager.getByLabel('随机种子').fill('7');
  await submitWith(manager, manager.getByRole('button', { name: '抽取专家' }));
  check(await manager.locator('#panel tbody tr').count() === 3, 'the draw fills the acceptance panel', await manager.locator('#panel').innerText());
  const partnerRow = manager.locator(`#excluded tr[data-expert="${partner}"] li[data-code="EXPERT_CONFLICT"]`);
  check((await partnerRow.getAttribute('data-conflicts') ?? '').includes('CONFLICT_RECENT_COLLABORATION'), 'the draw lists the expert excluded by the collaboration, with the conflict', await manager.locator('#excluded').innerText());
  check(await manager.locator(`#excluded tr[data-expert="${manual}"] li[data-code="EXPERT_ALREADY_ON_PANEL"]`).count() === 1, 'and the expert already on the panel');
  await manager.screenshot({ path: `${shots}round-exclusions.png`, fullPage: true });

  // --- acceptance passed; the unit's self-evaluation; the manager's evaluation grades it
  await manager.goto(`${base}/instances/${id}`);
  const accept = actionForm(manager, '验收通过');
  await accept.getByLabel('验收结论').selectOption('pass');
  await submitWith(manager, accept.getByRole('button'));
  check((await state(manager)).includes('绩效自评'), 'accepted: the unit evaluates itself', await state(manager));
  await unit.goto(`${base}/instances/${id}`);
  const self = actionForm(unit, '提交绩效自评');
  await self.getByLabel('绩效自评报告: 文件名 1').fill('自评报告.pdf');
  await self.getByLabel('绩效自评报告: SHA-256 1').fill('e'.repeat(64));
  await self.getByLabel('绩效自评报告: 大小（字节） 1').fill('2048');
  await self.getByLabel('自评得分').fill('92');
  await submitWith(unit, self.getByRole('button', { name: '提交绩效自评' }));
  check((await state(unit)).includes('绩效评价'), 'the self-evaluation is submitted', await state(unit));
  await manager.goto(`${base}/instances/${id}`);
  await manager.getByRole('link', { name: '绩效评价', exact: true }).click();
  await manager.waitForURL(`${base}/instances/${id}/evaluation`);
  await submitWith(manager, manager.getByRole('button', { name: '记录评价结果' }));
  check(/[优良中差]/.test(await manager.locator('#evaluation-total').innerText()), 'the evaluation is recorded with its grade', await manager.locator('main').innerText());
  await manager.goto(`${base}/instances/${id}`);
  check((await state(manager)).includes('评价定级'), 'the project is graded', await state(manager));

  // --- the call: funnel and ranking (manager)
  await manager.goto(callUrl);
  check(await manager.locator('#funnel svg rect').count() > 0, 'the call shows its funnel by stage');
  check(await manager.locator('#chart-grades-city svg rect.grade').count() > 0, 'the call charts grades by city');
  check((await manager.locator('#chart-grades-city svg').innerHTML()).includes('广州市市场监督管理局'), 'the graded project counts for its city', await manager.locator('#chart-grades-city').innerHTML());
  check(await manager.locator('#chart-grades-category svg rect.grade').count() > 0, 'and by category');
  check(/\d+\.\d%/.test(await manager.locator('#chart-execution-city svg').textContent()), 'budget execution by city is charted with its rate');
  check(await manager.locator('#chart-execution-category svg rect.execution').count() > 0, 'and by category');
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
