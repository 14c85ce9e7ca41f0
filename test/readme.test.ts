import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { promisify } from "node:util";
import { projectRoot, temporaryDirectory } from "./helpers/paths.js";
import { startServerProcess } from "./helpers/server.js";

// Issue 20 item 14: the README's code runs as written, so it stays true. The only edits: the package name resolves
// to this checkout's source, and the server address to the test server's.

const run = promisify(execFile);
const readme = readFileSync(join(projectRoot, "README.md"), "utf8");
const blocks = (language: string) =>
  [...readme.matchAll(new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``, "g"))].map((match) => match[1]!);
const directory = temporaryDirectory("freehold-readme-");
after(directory.dispose);
// The blocks import their dependencies (openai) by name, so they run from inside the project (scratch/ is ignored).
const scratch = join(projectRoot, "scratch", `readme-${process.pid}`);
mkdirSync(scratch, { recursive: true });
after(() => rmSync(scratch, { recursive: true, force: true }));

describe("README code blocks", () => {
  test("each TypeScript block runs; the library example tells a story on an empty home and logs nothing", async () => {
    const typescript = blocks("ts");
    assert.ok(typescript.length >= 2, "the README has its OpenAI client and library examples");
    const source = `file://${resolve(projectRoot, "src/index.ts")}`;
    for (const [i, block] of typescript.entries()) {
      const file = join(scratch, `block-${i}.ts`);
      writeFileSync(file, block.replaceAll('from "freehold"', `from ${JSON.stringify(source)}`));
      const home = join(directory.path, `home-${i}`);
      const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", file], {
        cwd: projectRoot,
        env: { ...process.env, FREEHOLD_HOME: home },
        timeout: 90_000,
      });
      if (block.includes("Freehold.open")) {
        // Exactly the story: no pino JSON lines, no notices on the host program's stdout.
        assert.equal(stdout, ", there was a little girl named Lily");
        assert.equal(stderr, "");
      }
    }
  });

  test("the curl example answers with a story from the demo model", async (t) => {
    const server = await startServerProcess();
    t.after(() => server.dispose());
    const curl = blocks("sh").find((block) => block.startsWith("curl "));
    assert.ok(curl, "the README has a curl example");
    const { stdout } = await run("bash", ["-c", curl.replaceAll("http://127.0.0.1:11435", server.url)], {
      timeout: 60_000,
    });
    const answer = JSON.parse(stdout) as { choices: { text: string }[] };
    assert.equal(answer.choices[0]!.text, ", there was a little girl named Lily");
  });
});

describe("README tables match the code", () => {
  test("every environment variable the config reads is in the table, and the table names no other", async () => {
    const { environmentKeys } = await import("../src/config/config.js");
    const start = readme.indexOf("| Variable");
    const table = readme.slice(start, readme.indexOf("\n\n", start));
    const documented = new Set([...table.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((match) => match[1]!));
    assert.deepEqual([...documented].sort(), Object.keys(environmentKeys).sort());
  });

  test("every command is named in the command-line section, and every command named there exists", async () => {
    const { buildProgram } = await import("../src/cli/main.js");
    const names = buildProgram()
      .commands.map((command) => command.name())
      .filter((name) => name !== "help");
    const start = readme.indexOf("## Command line");
    const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
    const missing = names.filter((name) => !new RegExp(`\`(freehold )?${name}\\b`).test(section));
    assert.deepEqual(missing, [], "commands the README does not mention");
    const named = [...section.matchAll(/`freehold ([a-z]+)/g)].map((match) => match[1]!);
    assert.deepEqual(
      named.filter((name) => !names.includes(name)),
      [],
    );
  });
});
