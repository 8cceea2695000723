// Accessibility of every page type of the console: axe-core (WCAG 2 A/AA rules) run in
// Chromium on each, at 1280×800 and at phone width (390×844); fails on any serious or
// critical violation. axe is injected into the page, which needs `bypassCSP` on this
// test's browser contexts only (the console's CSP allows scripts from its own origin
// alone). Also: every page is keyboard-reachable (a skip link first, every form control
// has a name), and nothing scrolls sideways at phone width except wide tables/charts in
// their own scroll boxes.
// Usage: GRANTFLOW_URL=http://127.0.0.1:8080/graphql node console-a11y.mjs
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { base, check, finish, gql, login, launch, newPage, signIn, blocked } from './console-lib.mjs';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const managerToken = await login('manager');
const first = async (query, token = managerToken) => (await gql(query, {}, token)).data;
const callId = (await first('{ calls { id } }')).calls[0].id;
const project = (await first('{ instances(first: 1, filter: { workflowId: "funded-project", stage: "execution" }) { edges { node { id } } } }'))
  .instances.edges[0]?.node.id
  ?? (await first('{ instances(first: 1, filter: { workflowId: "funded-project" }) { edges { node { id } } } }')).instances.edges[0].node.id;
const reviewed = (await first('{ instances(first: 20, filter: { workflowId: "funded-project", includeFinal: true }) { edges { node { id review } } } }'))
  .instances.edges.map((e) => e.node).find((n) => n.review && n.review.count >= 1)?.id ?? project;
const evaluated = (await first('{ instances(first: 50, filter: { workflowId: "funded-project", includeFinal: true }) { edges { node { id stage { id } } } } }'))
  .instances.edges.map((e) => e.node).find((n) => n.stage.id === 'closed' || n.stage.id === 'evaluation')?.id ?? project;
const inReview = (await first('{ instances(first: 1, filter: { workflowId: "funded-project", states: ["expert_review"] }) { edges { node { id } } } }'))
  .instances.edges[0]?.node.id ?? reviewed;
// The unit's own projects with the task book's forms: the task table and schedule (任务书)
// and the progress table (进展报告), with the task book shown read-only.
// (the demo's 越秀区 project of unit_gz2 waits on its task book.)
const inState = async (who, state) => (await first(`{ instances(first: 1, filter: { workflowId: "funded-project", states: ["${state}"] }) { edges { node { id } } } }`, await login(who)))
  .instances.edges[0]?.node.id;
const taskBookDue = await inState('unit_gz2', 'task_book');
const reporting = await inState('unit_gz', 'execution');
const changeRequest = (await first('{ instances(first: 1, filter: { workflowId: "change-request", includeFinal: true }) { edges { node { id } } } }'))
  .instances.edges[0]?.node.id;
let expertName = 'expert1';
let assignment = null;
for (const name of ['expert1', 'expert2', 'expert3', 'expert4', 'expert5']) {
  const mine = (await gql('{ myReviews(includeClosed: true) { id } }', {}, await login(name))).data.myReviews;
  if (mine.length > 0) { expertName = name; assignment = mine[0].id; break; }
}

// 公示异议 and 第三方绩效评价: the demo's objected project and its assigned evaluation.
const objected = (await first('{ publicObjections(openOnly: true) { instanceId } }')).publicObjections[0]?.instanceId ?? project;
const thirdParty = (await first('{ instances(first: 10, filter: { workflowId: "funded-project" }) { edges { node { id } } } }', await login('tp_eval')))
  .instances.edges[0]?.node.id ?? evaluated;

// (who, path, page type)
const visits = [
  [null, '/login', 'login'],
  [null, '/forgot', 'forgotten password'],
  [null, '/reset-password', 'password reset'],
  ['unit_gz', '/', 'what waits on me'],
  ['unit_gz', '/instances', 'instance list'],
  ['unit_gz', `/instances/${project}`, 'instance (unit, with forms)'],
  ['unit_gz', `/instances/${project}/budget`, 'budget'],
  ['unit_gz', `/calls/${callId}`, 'call (unit: create, import)'],
  ['unit_gz', '/account', 'account'],
  ['city_gz', `/calls/${callId}/demands`, 'demands and duplicates (city)'],
  ['manager', '/calls', 'calls'],
  ['manager', `/calls/${callId}`, 'call (manager: funnel, close)'],
  ['manager', `/calls/${callId}/demands`, 'duplicates and merge'],
  ['manager', `/calls/${callId}/ranking`, 'ranking'],
  ['manager', `/rounds/${reviewed}`, 'review round'],
  ['manager', '/outbox', 'dead letters'],
  ['manager', '/experts', 'expert pool'],
  // A draw on a full panel changes nothing and shows whom it excluded, and why.
  ['manager', `/rounds/${inReview}`, 'review round after a draw (exclusions, manual assignment)', async (page) => {
    const draw = page.getByRole('button', { name: '抽取专家' });
    if (await draw.count() > 0) await Promise.all([page.waitForNavigation(), draw.click()]);
  }],
  ['manager', `/instances/${evaluated}`, 'instance (indicator tables, actuals)'],
  ...(changeRequest ? [['unit_gz', `/instances/${changeRequest}`, 'change request'], ['manager', `/instances/${changeRequest}`, 'change request (manager)']] : []),
  ['manager', `/instances/${evaluated}/evaluation`, 'evaluation'],
  ['manager', `/instances/${project}`, 'instance (manager)'],
  ['manager', `/instances/${project}/budget`, 'budget (manager: disbursement, execution rates)'],
  ...(taskBookDue ? [['unit_gz2', `/instances/${taskBookDue}`, 'instance (unit: task table and report schedule)']] : []),
  ...(reporting ? [['unit_gz', `/instances/${reporting}`, 'instance (unit: task book, progress table)']] : []),
  ['auditor', `/instances/${project}`, 'instance (auditor: hashes)'],
  [expertName, '/reviews', 'my reviews'],
  [expertName, `/reviews/${assignment}`, 'review form'],
  ['manager', '/objections', 'public objections (manager: resolve forms)'],
  ['manager', `/instances/${objected}`, 'instance (manager: open objections)'],
  ['auditor', `/objections?instance=${objected}`, 'public objections of a project (auditor)'],
  ['manager', `/instances/${thirdParty}/third-party`, 'third-party evaluation (manager: assign, report)'],
  ['tp_eval', '/third-party', 'projects assigned to a third-party institution'],
  ['tp_eval', `/instances/${thirdParty}/third-party`, 'third-party evaluation (evaluator: record, report)'],
  ['unit_sz', `/instances/${project}`, 'not found'],
  ['manager', '/reports', 'year report (breakdown tables, charts)'],
  ['manager', `/reports?call=${callId}`, 'call report'],
  ['auditor', '/reports', 'year report (auditor)'],
  ['manager', `/calls/${callId}/funding`, 'funding plan (manager: edit form, history)'],
  ['manager', '/experts?q=expert', 'expert pool with the picker\'s results'],
];

const browser = await launch();
try {
  for (const viewport of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    const sessions = new Map();
    for (const [who, path, kind, act] of visits) {
      const key = who ?? '-';
      if (!sessions.has(key)) {
        const page = await newPage(browser, { viewport, bypassCSP: true });
        if (who) await signIn(page, who);
        sessions.set(key, page);
      }
      const page = sessions.get(key);
      await page.goto(`${base}${path}`);
      if (act) await act(page);
      await page.addScriptTag({ content: axeSource });
      const result = await page.evaluate(async () => window.axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      }));
      const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      const where = `${kind} at ${viewport.width}px`;
      check(bad.length === 0, `axe: no serious or critical violation on ${where}`,
        bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`).join('; '));
      // The first Tab reaches the skip link; every control has an accessible name.
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => document.activeElement?.className ?? '');
      check(focused.includes('skip'), `keyboard: the skip link comes first on ${where}`, focused);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      check(overflow <= 1, `no sideways scrolling of the page on ${where}`, String(overflow));
    }
    for (const page of sessions.values()) await page.context().close();
  }
  check(blocked.length === 0, 'nothing was requested outside 127.0.0.1', blocked.join(', '));
} finally {
  await browser.close();
}
finish();
