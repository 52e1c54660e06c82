// Generates src/generated.ts (TypeScript types) from /schemas/*.avsc.
// `npm run generate -w @mailpools/schemas` writes it; a test fails when it is out of date.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RECORD_NAMES, readSchemaFile } from './catalog.ts';

interface Named {
  type: string;
  name: string;
  fields?: { name: string; type: unknown; doc?: string }[];
  symbols?: string[];
  doc?: string;
}

function render(declarations: Map<string, string>, type: unknown): string {
  if (typeof type === 'string') {
    switch (type) {
      case 'null':
        return 'null';
      case 'boolean':
        return 'boolean';
      case 'int':
      case 'long':
      case 'float':
      case 'double':
        return 'number';
      case 'bytes':
        return 'Buffer';
      case 'string':
        return 'string';
      default:
        return type.split('.').pop() as string; // a named type declared earlier
    }
  }
  if (Array.isArray(type)) return type.map((t) => render(declarations, t)).join(' | ');
  const t = type as Named & { items?: unknown; values?: unknown; logicalType?: string };
  if (t.type === 'array') return `${wrap(render(declarations, t.items))}[]`;
  if (t.type === 'map') return `Record<string, ${render(declarations, t.values)}>`;
  if (t.type === 'record') {
    const lines = (t.fields ?? []).map((f) => {
      const doc = f.doc ? `  /** ${f.doc} */\n` : '';
      return `${doc}  ${f.name}: ${render(declarations, f.type)};`;
    });
    const doc = t.doc ? `/** ${t.doc} */\n` : '';
    declarations.set(t.name, `${doc}export interface ${t.name} {\n${lines.join('\n')}\n}`);
    return t.name;
  }
  if (t.type === 'enum') {
    declarations.set(
      t.name,
      `export type ${t.name} = ${(t.symbols ?? []).map((s) => `'${s}'`).join(' | ')};`,
    );
    return t.name;
  }
  return render(declarations, t.type); // primitive with a logical type
}

function wrap(text: string): string {
  return text.includes('|') ? `(${text})` : text;
}

export function generateTypes(): string {
  const declarations = new Map<string, string>();
  for (const name of RECORD_NAMES) render(declarations, readSchemaFile(name));
  return `// Generated from /schemas/*.avsc by src/generate.ts. Do not edit.\n\n${[...declarations.values()].join('\n\n')}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(new URL('./generated.ts', import.meta.url), generateTypes());
  console.log('wrote libs/schemas/src/generated.ts');
}
