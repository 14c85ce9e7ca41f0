import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { promisify } from "node:util";
import type { Command } from "commander";
import { runCli } from "./helpers/cli.js";
import { projectRoot, temporaryDirectory } from "./helpers/paths.js";

// Issue 20 items 12 and 15: shell completion, the licence, dependencies and engines, and the packaged demo model.

const run = promisify(execFile);
const directory = temporaryDirectory("freehold-cli-package-");
after(directory.dispose);
const pkg = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as {
  license: string;
  engines: { node: string };
  dependencies: Record<string, string>;
  files: string[];
};

describe("shell completion (item 12)", () => {
  test("bash completes commands, aliases, subcommands and each command's own flags, from the program as built", async () => {
    const script = await runCli(["completion", "bash"]);
    assert.equal(script.code, 0, script.stderr);
    const file = join(directory.path, "freehold.bash");
    writeFileSync(file, script.stdout);
    const complete = async (...words: string[]) => {
      const { stdout } = await run("bash", [
        "-c",
        `source ${JSON.stringify(file)}; COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(" ")}); COMP_CWORD=${words.length - 1}; _freehold; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ]);
      return stdout.trim().split("\n").filter(Boolean);
    };
    assert.deepEqual(await complete("freehold", "li"), ["list"]);
    assert.ok((await complete("freehold", "")).includes("completion"));
    assert.deepEqual(await complete("freehold", "ls", "--js"), ["--json"]);
    assert.deepEqual(await complete("freehold", "keys", "cr"), ["create"]);
    assert.deepEqual(await complete("freehold", "--home", "/x", "keys", "create", "--ad"), ["--admin"]);
    assert.deepEqual(await complete("freehold", "ps", "--api"), ["--api-key"]);
    // A hidden flag (explain's old --url) is not offered.
    assert.deepEqual(await complete("freehold", "explain", "--u"), []);
  });

  test("zsh and fish scripts name every command; an unknown shell is a usage error", async () => {
    const zsh = await runCli(["completion", "zsh"]);
    assert.match(zsh.stdout, /bashcompinit/);
    assert.match(zsh.stdout, /complete -o default -F _freehold freehold/);
    const fish = await runCli(["completion", "fish"]);
    assert.match(fish.stdout, /^complete -c freehold -n '__fish_use_subcommand' -a list$/m);
    assert.match(fish.stdout, /-n '__fish_seen_subcommand_from create; and __fish_seen_subcommand_from keys' -l admin/);
    const bad = await runCli(["completion", "powershell"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bash, zsh or fish/);
  });
});

describe("the package (items 12 and 15)", () => {
  test("LICENSE matches package.json; the unused typings are gone; engines is what the runtime dependencies allow", () => {
    assert.equal(pkg.license, "MIT");
    assert.match(readFileSync(join(projectRoot, "LICENSE"), "utf8"), /^MIT License\n/);
    assert.equal(pkg.dependencies["@commander-js/extra-typings"], undefined);
    // better-sqlite3 builds for 20.x and 22.x+ (not 21), node-llama-cpp and commander need >= 20.
    assert.equal(pkg.engines.node, "^20.10 || >=22");
    for (const name of Object.keys(pkg.dependencies)) {
      const dependency = JSON.parse(readFileSync(join(projectRoot, "node_modules", name, "package.json"), "utf8")) as {
        engines?: { node?: string };
      };
      const wants = dependency.engines?.node ?? "";
      assert.doesNotMatch(wants, />=\s*2[2-9]|^\^?2[2-9]/, `${name} needs ${wants}, more than engines says`);
    }
  });

  test("the packed tarball carries the demo model, its licence notice and LICENSE", async () => {
    const { stdout } = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: projectRoot });
    const files = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    for (const path of ["LICENSE", "assets/demo/stories260K.gguf", "assets/demo/LICENSE-stories260K.txt"])
      assert.ok(files.includes(path), `${path} is packed`);
    const model = readFileSync(join(projectRoot, "assets/demo/stories260K.gguf"));
    assert.equal(
      createHash("sha256").update(model).digest("hex"),
      "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d",
      "the packaged demo is the published stories260K",
    );
    assert.match(readFileSync(join(projectRoot, "assets/demo/LICENSE-stories260K.txt"), "utf8"), /Andrej Karpathy/);
  });
});

describe("help (item 11)", () => {
  test("every command's help has examples and unquoted defaults; serve --help lists every environment variable", async () => {
    const { buildProgram } = await import("../src/cli/main.js");
    const { environmentKeys } = await import("../src/config/config.js");
    const program = buildProgram();
    const missing: string[] = [];
    const visit = (command: Command, path: string[]) => {
      let text = "";
      command.configureOutput({ writeOut: (chunk) => (text += chunk) });
      command.outputHelp();
      const name = path.join(" ") || "freehold";
      if (path.length > 0 && command.commands.length === 0 && !/\nExamples:\n {2}\S/.test(text)) missing.push(name);
      assert.doesNotMatch(text, /default: "/, `${name} quotes a default`);
      for (const sub of command.commands) if (sub.name() !== "help") visit(sub, [...path, sub.name()]);
    };
    visit(program, []);
    assert.deepEqual(missing, [], "commands without examples");

    const serve = await runCli(["serve", "--help"]);
    assert.equal(serve.code, 0);
    for (const variable of Object.keys(environmentKeys))
      assert.match(serve.stdout, new RegExp(`^ {2}${variable}$`, "m"));
    const audit = await runCli(["audit", "list", "--help"]);
    assert.match(audit.stdout, /--limit <n> +how many \(default: 50\)/);
  });
});
