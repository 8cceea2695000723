// Parses every committed Mermaid diagram of the workflows with Mermaid's own parser.
// Mermaid needs a DOM for its sanitiser even to parse; jsdom provides one, so no browser
// is involved. Run: cd tests/js && npm ci && npm test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');

const goldenDir = join(dirname(fileURLToPath(import.meta.url)), '../../crates/domain/tests/golden');
const diagrams = readdirSync(goldenDir).filter((f) => f.endsWith('.mmd')).sort();

test('there are diagrams to check', () => {
  assert.ok(diagrams.includes('funded-project.mmd'), `no goldens in ${goldenDir}`);
  assert.ok(diagrams.length >= 3);
});

for (const file of diagrams) {
  test(`${file} parses as a Mermaid flowchart`, async () => {
    const source = readFileSync(join(goldenDir, file), 'utf8');
    const result = await mermaid.parse(source);
    assert.equal(result.diagramType, 'flowchart-v2');
  });
}

test('a broken diagram is rejected (the check can fail)', async () => {
  await assert.rejects(mermaid.parse('flowchart TD\n  a -->|"x" | b{\n'));
});
