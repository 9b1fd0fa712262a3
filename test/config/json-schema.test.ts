/** schema/estate.schema.json: committed, generated from the zod schema, and never stale. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { caseInsensitive, renderEstateJsonSchema, schemaPath } from '../../scripts/write-json-schema.ts';

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

test('case-insensitive patterns are spelt out, since JSON Schema patterns have no flags', () => {
  assert.equal(caseInsensitive('^[a-z0-9]([a-z0-9-]*)\\.$'), '^[a-zA-Z0-9]([a-zA-Z0-9-]*)\\.$');
  assert.equal(caseInsensitive('[^\\s@]+'), '[^\\s@]+');
  assert.throws(() => caseInsensitive('^mail$'), /outside a character class/);
  const host = new RegExp(
    caseInsensitive(
      '^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$',
    ),
  );
  assert.match('CAS2013-NY.Contoso.local', host);
  assert.doesNotMatch('https://mail.contoso.com', host);
});
