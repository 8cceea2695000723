// The programme's later steps, by clicking through the console (GraphQL only to find
// which demo project is where):
// - 公示异议: someone without an account objects to a project under public notice; the
//   manager finds it on the objections page and on the project's page, where ending the
//   notice is refused while it is open; the manager resolves every open objection
//   (a blank opinion is refused next to its field first) and the notice then ends;
// - 第三方绩效评价: the manager assigns a graded project's evaluation to the third-party
//   institution; its evaluator sees it among the projects assigned to it, records the
//   evaluation and sees it beside the unit's self-evaluation with the differences; a
//   project not assigned to it is a 404 page;
// - 验收评审: the manager draws the acceptance panel; an expert scores (a low score
//   without a comment is refused next to its criterion first) and the scores are sealed.
// Usage: GRANTFLOW_URL=http://127.0.0.1:8080/graphql node console-programme.mjs
import {
  base, shots, check, finish, gql, login, launch, newPage, submitWith, signIn, blocked,
} from './console-lib.mjs';

const managerToken = await login('manager');
const ask = async (query, variables = {}, token = managerToken) => {
  const r = await gql(query, variables, token);
  if (r.errors) throw new Error(`${query}: ${JSON.stringify(r.errors)}`);
  return r.data;
};
const inStates = async (states) => (await ask(
  'query($s: [String!]) { instances(first: 50, filter: { workflowId: "funded-project", states: $s }) { edges { node { id title } } } }',
  { s: states },
)).instances.edges.map((e) => e.node);

const browser = await launch();
const state = async (page) => (await page.textContent('#state')).trim();
const open = async (username, options) => {
  const page = await newPage(browser, options);
  if (username) await signIn(page, username);
  return page;
};

try {
  // --- 公示异议: an objection of the public, resolved by the manager
  const objected = (await ask('{ publicObjections(openOnly: true) { instanceId } }')).publicObjections[0]?.instanceId
    ?? (await inStates(['publicity']))[0]?.id;
  check(Boolean(objected), 'the demo has a project under public notice', '');
  const reason = `浏览器测试：该项目与已资助项目重复 ${Date.now() % 100000}`;
  const anonymous = await open(null);
  await anonymous.goto(`${base}/public/publicity`);
  await anonymous.locator(`a[href="/public/objection/${objected}"]`).first().click();
  await anonymous.waitForURL(`${base}/public/objection/${objected}`);
  await anonymous.locator('#name').fill('浏览器测试人');
  await anonymous.locator('#contact').fill('tester@example.com');
  await anonymous.locator('#reason').fill(reason);
  await submitWith(anonymous, anonymous.getByRole('button', { name: '提交异议' }));
  check(await anonymous.locator('#objection-done').isVisible(), 'the public objection was received without logging in', await anonymous.locator('main').innerText());

  const manager = await open('manager');
  await manager.getByRole('link', { name: '公示异议' }).first().click();
  await manager.waitForURL(`${base}/objections`);
  check((await manager.locator('main').innerText()).includes(reason), "the objection and its reason are on the manager's page");
  await manager.goto(`${base}/instances/${objected}`);
  const blocking = manager.locator('#open-objections');
  check(await blocking.isVisible() && (await blocking.innerText()).includes(reason), "the project's page lists its open objections", await manager.locator('main').innerText());
  check(await manager.locator('#objections-blocking').isVisible(), "the project's page says why approval waits");
  const endNotice = manager.locator('form.action', { has: manager.getByRole('heading', { name: /^公示期满/ }) }).first();
  const stateBefore = await state(manager);
  await submitWith(manager, endNotice.getByRole('button'));
  check(await state(manager) === stateBefore && (await manager.locator('main').innerText()).includes('公示异议尚未处理完毕'),
    'ending the notice is refused while an objection is open', await state(manager));

  await manager.getByRole('link', { name: '处理这些异议' }).click();
  await manager.waitForURL(`${base}/objections?instance=${objected}`);
  // A blank opinion is refused, and said so next to the field.
  let form = manager.locator('form.resolve').first();
  await form.getByLabel('异议不成立').check();
  await form.getByLabel(/处理意见/).fill('   ');
  await submitWith(manager, form.getByRole('button', { name: '提交处理结果' }));
  check(await manager.locator('form.resolve .error[id^="opinion-"]').first().isVisible(), 'a blank opinion is refused next to its field', await manager.locator('main').innerText());
  for (let n = 0; n < 10 && await manager.locator('form.resolve').count() > 0; n += 1) {
    form = manager.locator('form.resolve').first();
    await form.getByLabel('异议不成立').check();
    await form.getByLabel(/处理意见/).fill('经核查，项目内容与已资助项目不重复，异议不成立。');
    await submitWith(manager, form.getByRole('button', { name: '提交处理结果' }));
  }
  check(await manager.locator('form.resolve').count() === 0, 'every objection on the project is resolved');
  check((await manager.locator('main').innerText()).includes('经核查，项目内容与已资助项目不重复'), 'the opinion is shown with the objection');
  await manager.screenshot({ path: `${shots}objections.png`, fullPage: true });
  await manager.goto(`${base}/instances/${objected}`);
  check(await manager.locator('#open-objections').count() === 0, 'no open objection is left on the project');
  await submitWith(manager, manager.locator('form.action', { has: manager.getByRole('heading', { name: /^公示期满/ }) }).first().getByRole('button'));
  check(!(await state(manager)).includes('公示'), 'approval continues: the notice has ended', await state(manager));

  // --- 第三方绩效评价
  const graded = await inStates(['graded']);
  let target = null;
  for (const p of graded) {
    const a = (await ask('query($id: ID!) { evaluationAssignments(instanceId: $id) { organisationId } }', { id: p.id })).evaluationAssignments;
    if (a.length === 0) { target = p; break; }
  }
  check(Boolean(target), 'the demo has a graded project not yet assigned', '');
  await manager.goto(`${base}/instances/${target.id}`);
  await manager.getByRole('link', { name: '第三方绩效评价' }).click();
  await manager.waitForURL(`${base}/instances/${target.id}/third-party`);
  await manager.getByLabel(/第三方机构/).selectOption({ label: '广东省知识产权研究会（第三方评价机构）' });
  await submitWith(manager, manager.getByRole('button', { name: '委托', exact: true }));
  check((await manager.locator('#assigned-institution').innerText()).includes('研究会'), 'the evaluation is assigned to the institution', await manager.locator('#assigned-institution').innerText());

  const evaluator = await open('tp_eval');
  await evaluator.getByRole('link', { name: '第三方评价任务' }).click();
  await evaluator.waitForURL(`${base}/third-party`);
  const listed = await evaluator.locator('#assigned-projects').innerText();
  check(listed.includes(target.title), 'the evaluator sees the project assigned to the institution', listed);
  const visible = (await ask('{ instances(first: 100, filter: { workflowId: "funded-project", includeFinal: true }) { edges { node { id } } } }', {}, await login('tp_eval')))
    .instances.edges.length;
  check(await evaluator.locator('#assigned-projects tbody tr').count() === visible, 'the list holds exactly what the API lets the evaluator see');
  await evaluator.locator(`a[href="/instances/${target.id}/third-party"]`).click();
  await submitWith(evaluator, evaluator.getByRole('button', { name: '记录评价结果' }));
  const report = await evaluator.locator('#comparison').innerText();
  check(!(await evaluator.locator('#third-party-result').innerText()).includes('尚未评价'), 'the third-party evaluation is recorded', await evaluator.locator('main').innerText());
  // Whatever project the earlier runs left graded: the page shows the self-evaluation the API has.
  const self = (await ask('query($id: ID!) { evaluationComparison(instanceId: $id) { selfEvaluation } }', { id: target.id }))
    .evaluationComparison.selfEvaluation;
  check(self !== null && report.split('\n').some((row) => row.startsWith('总分') && row.includes(self.toFixed(1))),
    "the report shows the unit's self-evaluation beside it", `${self}\n${report}`);
  check(await evaluator.locator('#differences').isVisible(), 'the differences are listed');
  await evaluator.screenshot({ path: `${shots}third-party.png`, fullPage: true });
  const foreign = graded.find((p) => p.id !== target.id && !listed.includes(p.title));
  if (foreign) {
    const r1 = await evaluator.goto(`${base}/instances/${foreign.id}/third-party`);
    check(r1.status() === 404, 'a project not assigned to the institution is a 404 (evaluation page)', String(r1.status()));
    const r2 = await evaluator.goto(`${base}/instances/${foreign.id}`);
    check(r2.status() === 404, 'a project not assigned to the institution is a 404 (project page)', String(r2.status()));
  } else {
    check(false, 'the demo has a graded project not assigned to the institution');
  }

  // --- 验收评审: the panel scores in the console
  const accepting = (await inStates(['acceptance_review']))[0];
  check(Boolean(accepting), 'the demo has a project in its acceptance review', '');
  await manager.goto(`${base}/rounds/${accepting.id}`);
  await manager.getByLabel('随机种子').fill('20241206');
  await submitWith(manager, manager.getByRole('button', { name: '抽取专家' }));
  let scorer = null;
  for (const name of ['expert1', 'expert2', 'expert3', 'expert4', 'expert5', 'expert6', 'expert7', 'expert8']) {
    const r = await gql('{ myReviews { id state instanceId } }', {}, await login(name));
    const a = r.data?.myReviews.find((x) => x.instanceId === accepting.id && x.state === 'assigned');
    if (a) { scorer = { name, id: a.id }; break; }
  }
  check(Boolean(scorer), 'the acceptance panel is drawn', '');
  const expert = await open(scorer.name, { viewport: { width: 390, height: 844 } });
  await expert.goto(`${base}/reviews/${scorer.id}`);
  await submitWith(expert, expert.getByRole('button', { name: '声明无利益冲突', exact: true }));
  // 任务完成情况 2 (below 3) needs a comment: refused next to that criterion.
  await expert.locator('#score-completion').fill('2');
  await expert.locator('#score-indicators').fill('4');
  await expert.locator('#score-finance').fill('4.5');
  await submitWith(expert, expert.getByRole('button', { name: '提交评分（提交后封存）' }));
  check(await expert.locator('#score-completion-err').isVisible(), 'a low score without a comment is refused next to its criterion', await expert.locator('main').innerText());
  check(await expert.locator('#score-completion').inputValue() === '2', 'the typed scores are kept');
  await expert.locator('#comment-completion').fill('部分任务延期完成，已说明原因');
  await submitWith(expert, expert.getByRole('button', { name: '提交评分（提交后封存）' }));
  check(await expert.getByRole('heading', { name: '已提交的评分（已封存）' }).isVisible(), 'the acceptance scores are sealed', await expert.locator('main').innerText());
  const overflow = await expert.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 1, 'the scoring form fits a phone-width screen', String(overflow));
  await manager.goto(`${base}/rounds/${accepting.id}`);
  const panel = await manager.locator('#panel').innerText();
  check(panel.includes('已提交'), "the manager's round page shows the submitted acceptance scores", panel);
} catch (e) {
  check(false, 'the programme flow ran to the end', e.stack ?? String(e));
} finally {
  await browser.close();
}
check(blocked.length === 0, 'nothing was requested outside 127.0.0.1', blocked.join(', '));
finish();
