/**
 * Writes schema/estate.schema.json from the zod schema of the estate file (`npm run schema`), for editors:
 * VS Code's YAML extension reads it through the `# yaml-language-server: $schema=...` line of an estate
 * file. Draft-07, the draft every YAML language server handles. test/config/json-schema.test.ts fails
 * when the committed file differs from what this script makes, so it never goes stale.
 *
 * The JSON Schema is a guide for editors, not the validator: the loader also checks URLs, cross-references
 * and duplicates (docs/config.md), which JSON Schema cannot express.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { estateFileSchema } from '../src/config/estate-schema.ts';

export const schemaPath = fileURLToPath(new URL('../schema/estate.schema.json', import.meta.url));

/** Identifies the schema; a URN because the project publishes no web site. */
export const schemaId = 'urn:coexist:estate-file:1';

/** The JSON Schema as text, exactly as committed. */
export function renderEstateJsonSchema(): string {
  const generated = z.toJSONSchema(estateFileSchema, { target: 'draft-07' }) as Record<string, unknown>;
  const { $schema, description, ...rest } = generated;
  const document = { $schema, $id: schemaId, title: 'coexist estate file', description, ...rest };
  return JSON.stringify(document, null, 2) + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(schemaPath, renderEstateJsonSchema());
  console.log(`wrote ${schemaPath}`);
}
