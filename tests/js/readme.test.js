// Every GraphQL example in the README is valid against the committed schema.graphql, so
// the documentation cannot drift from the API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchema, parse, validate } from 'graphql';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const schema = buildSchema(readFileSync(join(root, 'schema.graphql'), 'utf8'));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]);

// A block holds several operations, one or more lines each; split on lines that start a
// new operation. Comment lines (`# as city_gz`, `# $id = …`: who runs the operation and its
// variables, for readme-run.mjs) belong to the operation that follows them.
function operations(block) {
  const ops = [];
  let current = [];
  let comments = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('#')) {
      comments.push(line);
      continue;
    }
    if (/^(query|mutation|subscription|\{)/.test(line) && current.length > 0) {
      ops.push(current.join('\n'));
      current = [];
    }
    if (line.trim() !== '') {
      current.push(...comments, line);
      comments = [];
    }
  }
  if (current.length > 0) ops.push(current.join('\n'));
  return ops;
}

test('the README has GraphQL examples', () => {
  assert.ok(blocks.length >= 5, `found ${blocks.length} blocks`);
});

blocks.flatMap(operations).forEach((op, i) => {
  test(`README example ${i + 1} is valid: ${op.split('\n').find((l) => !l.startsWith('#')).slice(0, 60)}`, () => {
    const errors = validate(schema, parse(op));
    assert.deepEqual(errors.map((e) => e.message), []);
  });
});
