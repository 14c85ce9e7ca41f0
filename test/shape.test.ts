// Issue 19's measures of the codebase's shape, kept true by the suite: no import cycles among src's modules (type-only
// imports and re-exports included: they couple files just the same), and no source file over 400 lines.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import ts from "typescript";
import { projectRoot } from "./helpers/paths.js";

const src = join(projectRoot, "src");
const MAX_LINES = 400;

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

const all = tsFiles(src);
const modules = all.filter((path) => !path.endsWith(".test.ts"));

/** The src modules a file imports or re-exports from, static and dynamic, type-only included. */
function importsOf(path: string): string[] {
  const info = ts.preProcessFile(readFileSync(path, "utf8"), true, true);
  return info.importedFiles
    .map((ref) => ref.fileName)
    .filter((name) => name.startsWith("."))
    .map((name) => resolve(dirname(path), name.replace(/\.js$/, ".ts")))
    .filter((target) => target.endsWith(".ts"));
}

/** Strongly connected components of more than one module, or a module importing itself (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next++);
    stack.push(node);
    onStack.add(node);
    for (const target of graph.get(node) ?? []) {
      if (!graph.has(target)) continue;
      if (!index.has(target)) {
        visit(target);
        low.set(node, Math.min(low.get(node)!, low.get(target)!));
      } else if (onStack.has(target)) low.set(node, Math.min(low.get(node)!, index.get(target)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    for (;;) {
      const member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
      if (member === node) break;
    }
    if (component.length > 1 || graph.get(node)?.includes(node)) found.push(component);
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

test("no import cycles in src, type-only imports included", () => {
  const graph = new Map(modules.map((path) => [path, importsOf(path)]));
  const found = cycles(graph).map((component) =>
    component
      .map((path) => relative(src, path))
      .sort()
      .join(" ↔ "),
  );
  assert.deepEqual(found, [], "break each cycle (move the shared type or function to a module both can import)");
});

test("the cycle finder finds a cycle (so the test above can fail)", () => {
  const graph = new Map([
    ["a", ["b"]],
    ["b", ["c"]],
    ["c", ["a"]],
    ["d", ["a"]],
  ]);
  assert.deepEqual(
    cycles(graph).map((c) => c.sort()),
    [["a", "b", "c"]],
  );
  assert.deepEqual(cycles(new Map([["x", ["x"]]])), [["x"]]);
});

test(`no file in src over ${MAX_LINES} lines`, () => {
  const long = all
    .map((path) => ({ file: relative(src, path), lines: readFileSync(path, "utf8").split("\n").length - 1 }))
    .filter(({ lines }) => lines > MAX_LINES)
    .map(({ file, lines }) => `${file}: ${lines}`);
  assert.deepEqual(long, [], `split these by responsibility (issue 19): at most ${MAX_LINES} lines a file`);
});
