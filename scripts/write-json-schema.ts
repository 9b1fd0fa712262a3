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

/** Descriptions for properties whose zod schema has none (the JSON Schema must describe every top-level key). */
const fallbackDescriptions: Readonly<Record<string, string>> = {
  policies:
    'Routing policies where Exchange versions behave differently; each has a default, so the section is optional.',
};

/** The JSON Schema as text, exactly as committed. */
export function renderEstateJsonSchema(): string {
  const generated = z.toJSONSchema(estateFileSchema, {
    target: 'draft-07',
    override: (ctx) => {
      const schema = ctx.jsonSchema;
      // JSON Schema patterns have no flags: spell out case-insensitive regexes (host names) for editors.
      const def = ctx.zodSchema._zod.def as {
        checks?: { _zod: { def: { format?: string; pattern?: RegExp } } }[];
      };
      const regex = def.checks?.map((c) => c._zod.def.pattern).find((p) => p instanceof RegExp);
      if (regex?.flags.includes('i') && typeof schema.pattern === 'string')
        schema.pattern = caseInsensitive(regex.source);
    },
  }) as Record<string, unknown>;
  const { $schema, description, ...rest } = generated;
  const properties = rest.properties as Record<string, Record<string, unknown>>;
  for (const [key, description] of Object.entries(fallbackDescriptions)) {
    const property = properties[key];
    if (property && property.description === undefined) property.description = description;
  }
  const document = { $schema, $id: schemaId, title: 'coexist estate file', description, ...rest };
  return JSON.stringify(document, null, 2) + '\n';
}

/**
 * Make a regex source match regardless of case without the `i` flag: letters in character classes get
 * their upper case (`a-z` -> `a-zA-Z`). Letters outside classes are not expected; refuse rather than
 * produce a pattern that silently disagrees with the loader.
 */
export function caseInsensitive(source: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i] as string;
    if (c === '\\') {
      out += c + (source[i + 1] ?? '');
      i++;
      continue;
    }
    if (inClass && c === ']') inClass = false;
    else if (!inClass && c === '[') inClass = true;
    else if (inClass && /[a-z]/.test(c)) {
      if (source[i + 1] === '-' && /[a-z]/.test(source[i + 2] ?? '')) {
        const end = source[i + 2] as string;
        out += `${c}-${end}${c.toUpperCase()}-${end.toUpperCase()}`;
        i += 2;
        continue;
      }
      out += c + c.toUpperCase();
      continue;
    } else if (!inClass && /[a-zA-Z]/.test(c)) {
      throw new Error(`caseInsensitive: letter "${c}" outside a character class in /${source}/`);
    }
    out += c;
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(schemaPath, renderEstateJsonSchema());
  console.log(`wrote ${schemaPath}`);
}
