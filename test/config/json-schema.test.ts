/** schema/estate.schema.json: committed, generated from the zod schema, and never stale. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderEstateJsonSchema, schemaPath } from '../../scripts/write-json-schema.ts';

const committed = readFileSync(schemaPath, 'utf8');

test('schema/estate.schema.json is what `npm run schema` generates now', () => {
  assert.equal(
    committed,
    renderEstateJsonSchema(),
    'the JSON Schema is stale: run npm run schema and commit it',
  );
});

test('the JSON Schema identifies itself and describes every top-level property', () => {
  const schema = JSON.parse(committed) as {
    $schema: string;
    $id: string;
    title: string;
    description: string;
    properties: Record<string, { description?: string }>;
  };
  assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.ok(schema.$id && schema.title && schema.description);
  for (const [key, property] of Object.entries(schema.properties)) {
    assert.ok(property.description, `top-level property ${key} has no description`);
  }
});

test('every pattern in the JSON Schema means what the loader accepts (JSON Schema patterns have no flags)', () => {
  const patterns: string[] = [];
  JSON.parse(committed, (key, value: unknown) => {
    if (key === 'pattern' && typeof value === 'string') patterns.push(value);
    return value;
  });
  assert.ok(patterns.length > 0);
  const host = patterns.find((p) => p.includes('253'));
  assert.ok(host, 'the host-name pattern is in the schema');
  assert.match('CAS2013-NY.Contoso.local', new RegExp(host));
  assert.doesNotMatch('https://mail.contoso.com', new RegExp(host));
});
