// Dependencies point one way: libs/ import only libs/; a service's production code imports libs
// only (never another service, the CLI or the tooling); tooling (tools/: the local stack, the test
// kit) is never imported by production code; the CLI sits on top. Every @mailpools import is also
// declared in the importing package's package.json. Read from the files themselves, so an arrow
// that points the wrong way fails here before it settles in.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { filesUnder } from '@mailpools/testkit';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
type Layer = 'lib' | 'service' | 'tool' | 'app';

interface Workspace {
  name: string;
  dir: string;
  layer: Layer;
  dependencies: Set<string>;
  devDependencies: Set<string>;
}

function workspaces(): Workspace[] {
  const found: Workspace[] = [];
  const add = (dir: string, layer: Layer) => {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
    };
    found.push({
      name: manifest.name,
      dir,
      layer,
      dependencies: new Set(Object.keys(manifest.dependencies ?? {})),
      devDependencies: new Set(Object.keys(manifest.devDependencies ?? {})),
    });
  };
  for (const [folder, layer] of [
    ['libs', 'lib'],
    ['services', 'service'],
    ['tools', 'tool'],
  ] as const)
    for (const name of readdirSync(join(ROOT, folder)))
      if (existsSync(join(ROOT, folder, name, 'package.json'))) add(join(ROOT, folder, name), layer);
  add(join(ROOT, 'cli'), 'app');
  // The MTA integrations sit on top, as the CLI does.
  for (const name of readdirSync(join(ROOT, 'mta')))
    if (existsSync(join(ROOT, 'mta', name, 'package.json'))) add(join(ROOT, 'mta', name), 'app');
  return found;
}

const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((m) => (m[1] ?? m[2]) as string);
}

/** Production code: what a running service or library executes (not its tests, scripts or evaluations). */
function isProduction(workspace: Workspace, file: string): boolean {
  const inside = relative(workspace.dir, file);
  return inside.startsWith('src/') && !inside.endsWith('.test.ts');
}

const ALLOWED: Record<Layer, { production: readonly Layer[]; other: readonly Layer[] }> = {
  lib: { production: ['lib'], other: ['lib', 'tool'] },
  service: { production: ['lib'], other: ['lib', 'tool'] },
  tool: { production: ['lib', 'tool'], other: ['lib', 'tool'] },
  app: { production: ['lib', 'service', 'tool'], other: ['lib', 'service', 'tool'] },
};

test('every @mailpools import points the way the layers allow, and is declared', () => {
  const all = workspaces();
  const byName = new Map(all.map((w) => [w.name, w]));
  assert.ok(all.length >= 14, `the workspaces were found (${all.length})`);
  const wrong: string[] = [];
  for (const workspace of all) {
    for (const file of filesUnder(workspace.dir, '.ts')) {
      const production = isProduction(workspace, file);
      for (const specifier of importsOf(file)) {
        const where = `${relative(ROOT, file)} imports ${specifier}`;
        if (
          specifier.startsWith('.') &&
          !specifier.startsWith('./') &&
          relative(workspace.dir, join(file, '..', specifier)).startsWith('..')
        )
          wrong.push(`${where}: reaches into another package by path; import it by name`);
        const name = /^@mailpools\/[^/]+/.exec(specifier)?.[0];
        if (!name || name === workspace.name) continue;
        const target = byName.get(name);
        if (!target) {
          wrong.push(`${where}: no such workspace`);
          continue;
        }
        const allowed = ALLOWED[workspace.layer][production ? 'production' : 'other'];
        if (!allowed.includes(target.layer))
          wrong.push(
            `${where}: a ${workspace.layer}'s ${production ? 'production code' : 'tests and scripts'} may not import a ${target.layer}`,
          );
        const declared = production
          ? workspace.dependencies
          : new Set([...workspace.dependencies, ...workspace.devDependencies]);
        if (!declared.has(name))
          wrong.push(`${where}: not declared in ${relative(ROOT, workspace.dir)}/package.json`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

test('importing a service package starts nothing: its "." export is the stage factory', () => {
  for (const workspace of workspaces().filter((w) => w.layer === 'service')) {
    const manifest = JSON.parse(readFileSync(join(workspace.dir, 'package.json'), 'utf8')) as {
      exports: Record<string, string>;
    };
    assert.equal(manifest.exports['.'], './src/stage.ts', `${workspace.name} exports its stage factory`);
    const main = readFileSync(join(workspace.dir, 'src', 'main.ts'), 'utf8');
    const code = main.split('\n').filter((line) => line.trim() !== '' && !line.trim().startsWith('//'));
    assert.ok(code.length <= 4, `${workspace.name}'s main.ts is a few lines (${code.length})`);
    assert.match(main, /await runService\(SERVICE, create\w+Stage\);/);
  }
});
