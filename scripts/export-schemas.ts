/**
 * Write the JSON Schema files generated from the TypeBox definitions in schemas/.
 *   npm run schemas            (re)write them
 *   npm run schemas -- --check exit 1 if a committed file is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCHEMA_FILES, schemaText } from '../schemas/json-schema.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
let stale = 0;
for (const [file, schema] of Object.entries(SCHEMA_FILES)) {
  const path = join(root, file);
  const text = schemaText(schema);
  if (check) {
    let current = '';
    try {
      current = readFileSync(path, 'utf8');
    } catch {}
    if (current !== text) {
      stale++;
      console.error(`${file} is out of date: run npm run schemas`);
    }
  } else {
    writeFileSync(path, text);
    console.log(`wrote ${file}`);
  }
}
process.exitCode = stale > 0 ? 1 : 0;
