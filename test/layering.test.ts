/**
 * The layers hold: every .ts file's imports (static `import ... from`, `export ... from`,
 * `import x = require()`, dynamic `import()`, `require()`) and its use of Node globals, against
 * the rules in formats/README.md and src/README.md:
 *
 * - formats/ imports only formats/ and the pure, browser-safe packages in FORMATS_PACKAGES: no
 *   `node:` module or bare Node builtin, no other package, no
 *   `Buffer`, `process` or `NodeJS` (everything there runs in a browser);
 * - src/ outside src/cli/ imports no `commander` and writes nothing to stdout/stderr
 *   (`process.stdout`, `process.stderr`, `console.*`, `writeSync(1|2, ...)`) nor exits
 *   (`process.exit`, `process.exitCode`), and nothing
 *   outside src/cli/ imports src/cli/;
 * - each src/ folder imports only the folders its row of src/README.md's table lists (the table
 *   is read from the README, so the two cannot drift apart), formats/ and itself; io/ reaches
 *   containers/ through containers/registry.ts and containers/types.ts only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(new URL('..', import.meta.url).pathname);

/**
 * Violations on today's tree that their owners are fixing. Empty since issue 16 was done, and to
 * stay so: the list is exact, so a violation that no longer exists fails the test until it is
 * removed here, and a new one fails until it is fixed (not added here).
 */
const KNOWN_VIOLATIONS: readonly string[] = [];

/** Packages formats/ may import: pure JavaScript that runs in a browser (SHA-256 for ZFS labels). */
const FORMATS_PACKAGES = ['@noble/hashes'];

const NODE_GLOBALS = new Set(['Buffer', 'process', 'NodeJS', 'global', '__dirname', '__filename', 'setImmediate', 'clearImmediate']);

/** Every .ts file under `dir` (repo-relative, `/`-separated). */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = posix.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(path));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(path);
  }
  return out.sort();
}

interface FileFacts {
  /** Module specifiers, as written. */
  imports: string[];
  /** Those only imported as types (`import type`, `export type`, `import('x').T`). */
  typeOnly: Set<string>;
  /** Node globals referred to (formats/ rule). */
  globals: Set<string>;
  /** Prints or exits: `process.stdout`, `process.stderr`, `process.exit(Code)`, `console.log`, `writeSync(1, ...)`. */
  output: Set<string>;
}

/** What a file imports and uses, from its syntax tree (comments and strings do not count). */
function factsOf(file: string): FileFacts {
  return factsOfText(readFileSync(join(ROOT, file), 'utf8'), file);
}

function factsOfText(text: string, file = 'made-up.ts'): FileFacts {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const facts: FileFacts = { imports: [], typeOnly: new Set(), globals: new Set(), output: new Set() };
  const values = new Set<string>();
  const specifier = (node: ts.Node | undefined, typeOnly = false) => {
    if (!node || !ts.isStringLiteralLike(node)) return;
    facts.imports.push(node.text);
    if (!typeOnly) values.add(node.text);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) specifier(node.moduleSpecifier, node.importClause?.isTypeOnly);
    else if (ts.isExportDeclaration(node)) specifier(node.moduleSpecifier, node.isTypeOnly);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) specifier(node.moduleReference.expression);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) specifier(node.argument.literal, true);
    else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) specifier(node.arguments[0]);
      const name = ts.isIdentifier(callee) ? callee.text : ts.isPropertyAccessExpression(callee) ? callee.name.text : '';
      const fd = node.arguments[0];
      if (name === 'writeSync' && fd && ts.isNumericLiteral(fd) && (fd.text === '1' || fd.text === '2')) facts.output.add(`writeSync(${fd.text}, ...)`);
    } else if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression)) {
      const [object, property] = [node.expression.text, node.name.text];
      if (object === 'console') facts.output.add(`console.${property}`);
      if (object === 'process' && ['stdout', 'stderr', 'exit', 'exitCode'].includes(property)) facts.output.add(`process.${property}`);
    }
    if (ts.isIdentifier(node) && NODE_GLOBALS.has(node.text) && isReference(node)) facts.globals.add(node.text);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  for (const spec of facts.imports) if (!values.has(spec)) facts.typeOnly.add(spec);
  return facts;
}

/** An identifier that names a variable or namespace (not a property, key or declaration of its own). */
function isReference(id: ts.Identifier): boolean {
  const p = id.parent;
  if ((ts.isPropertyAccessExpression(p) || ts.isQualifiedName(p)) && (ts.isPropertyAccessExpression(p) ? p.name : p.right) === id) return false;
  if (
    (ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p) || ts.isPropertySignature(p) || ts.isMethodDeclaration(p) || ts.isMethodSignature(p)) &&
    p.name === id
  )
    return false;
  if ((ts.isVariableDeclaration(p) || ts.isParameter(p) || ts.isFunctionDeclaration(p) || ts.isBindingElement(p)) && p.name === id) return false;
  if (ts.isImportSpecifier(p) || ts.isExportSpecifier(p)) return false;
  return true;
}

/** `src/<folder>/...` -> `<folder>`; `src/index.ts` -> `index`; formats/... -> `formats`. */
function layerOf(file: string): string {
  const parts = file.split('/');
  if (parts[0] === 'formats') return 'formats';
  if (parts[0] === 'src') return parts.length > 2 ? parts[1] : parts[1].replace(/\.ts$/, '');
  return parts[0];
}

/** src/README.md's table: folder -> the folders it may import. */
function allowedImports(): Map<string, Set<string>> {
  const readme = readFileSync(join(ROOT, 'src/README.md'), 'utf8');
  const rows = readme.split('\n').filter((l) => /^\|\s*`[a-z]+\/`\s*\|/.test(l));
  const allowed = new Map<string, Set<string>>();
  const seen: string[] = [];
  for (const row of rows) {
    const cells = row.split('|').map((c) => c.trim());
    const folder = cells[1].replace(/[`/]/g, '');
    const may = cells[3];
    const set = new Set(['formats', folder]);
    if (/all of the above|everything/.test(may)) for (const f of seen) set.add(f);
    for (const m of may.matchAll(/([a-z]+)\//g)) set.add(m[1]);
    allowed.set(folder, set);
    seen.push(folder);
  }
  return allowed;
}

/** Where a relative specifier points, repo-relative, with `.js` read as the `.ts` beside it. */
function target(file: string, spec: string): string {
  const path = posix.normalize(posix.join(posix.dirname(file), spec));
  return path.replace(/\.js$/, '.ts');
}

function violationsOf(file: string, allowed: Map<string, Set<string>>): string[] {
  const out = new Set<string>();
  const facts = factsOf(file);
  const layer = layerOf(file);
  const inFormats = layer === 'formats';
  const inCli = file.startsWith('src/cli/');
  for (const spec of new Set(facts.imports)) {
    const relativeSpec = spec.startsWith('.');
    const to = (relativeSpec ? target(file, spec) : spec) + (facts.typeOnly.has(spec) ? ' (types)' : '');
    if (inFormats) {
      const pure = !relativeSpec && FORMATS_PACKAGES.some((p) => spec === p || spec.startsWith(`${p}/`));
      if (!pure && (!relativeSpec || !to.startsWith('formats/'))) out.add(`${file} imports ${to} (formats/ imports only formats/)`);
      continue;
    }
    if (!file.startsWith('src/')) continue;
    if (!inCli && (spec === 'commander' || spec.startsWith('commander/'))) out.add(`${file} imports commander (only src/cli/ does)`);
    if (!relativeSpec) continue;
    if (!inCli && to.startsWith('src/cli/')) {
      out.add(`${file} imports ${to} (nothing outside src/cli/ imports it)`);
      continue;
    }
    const toLayer = layerOf(target(file, spec));
    const may = allowed.get(layer);
    if (layer === 'index' || !may) continue;
    if (!may.has(toLayer))
      out.add(
        `${file} imports ${to} (${layer}/ may import ${[...may]
          .filter((f) => f !== layer)
          .map((f) => `${f}/`)
          .join(', ')})`,
      );
    else if (layer === 'io' && toLayer === 'containers' && !/^src\/containers\/(registry|types)\.ts\b/.test(to)) {
      out.add(`${file} imports ${to} (io/ reaches containers/ through registry.ts and types.ts only)`);
    }
  }
  if (inFormats) for (const g of facts.globals) out.add(`${file} uses ${g} (formats/ uses no Node globals)`);
  if (file.startsWith('src/') && !inCli) for (const o of facts.output) out.add(`${file} prints or exits with ${o} (only src/cli/ does)`);
  return [...out];
}

const FILES = [...tsFiles('formats'), ...tsFiles('src')];
const ALLOWED = allowedImports();

describe('layering (formats/README.md, src/README.md)', () => {
  it("reads src/README.md's table of layers", () => {
    expect([...ALLOWED.keys()]).toEqual(['model', 'io', 'containers', 'schemes', 'fs', 'layout', 'ops', 'cli']);
    expect([...ALLOWED.get('io')!].sort()).toEqual(['containers', 'formats', 'io', 'model']);
    expect(ALLOWED.get('cli')!.size).toBe(9); // everything
    // Every src/ folder has a row (a new folder needs its rules written down first).
    for (const file of FILES.filter((f) => f.startsWith('src/'))) {
      const layer = layerOf(file);
      if (layer !== 'index') expect(ALLOWED.has(layer), `${file}: src/${layer}/ has no row in src/README.md`).toBe(true);
    }
  });

  it('no file breaks a rule (KNOWN_VIOLATIONS, empty now, would list any being fixed)', () => {
    const found = FILES.flatMap((f) => violationsOf(f, ALLOWED)).sort();
    const fixed = KNOWN_VIOLATIONS.filter((v) => !found.includes(v));
    const added = found.filter((v) => !KNOWN_VIOLATIONS.includes(v));
    expect({ new: added, 'fixed (remove from KNOWN_VIOLATIONS)': fixed }).toEqual({ new: [], 'fixed (remove from KNOWN_VIOLATIONS)': [] });
  });

  it('finds each kind of import and use (the checker on made-up files)', () => {
    const facts = factsOfText(`
      import a from './a.js';
      import type { B } from '../b.js';
      export { c } from './c.js';
      export * from './d.js';
      import e = require('./e.js');
      const f = await import('./f.js');
      const g = require('node:fs');
      type H = import('./h.js').H;
      // import x from './not-this.js'; and "require('nor-this')"
      const buf = Buffer.from('x'); const obj = { Buffer: 1, process: 2 }; obj.process;
      console.error(process.stderr.isTTY); fs.writeSync(2, 'x'); writeSync(fd, 'y'); process.exitCode = 1;
    `);
    expect(facts.imports).toEqual(['./a.js', '../b.js', './c.js', './d.js', './e.js', './f.js', 'node:fs', './h.js']);
    expect([...facts.typeOnly].sort()).toEqual(['../b.js', './h.js']);
    expect([...facts.globals].sort()).toEqual(['Buffer', 'process']);
    expect([...facts.output].sort()).toEqual(['console.error', 'process.exitCode', 'process.stderr', 'writeSync(2, ...)']);
  });
});
