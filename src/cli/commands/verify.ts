import { resolve } from "node:path";
import type { Command } from "commander";
import { ModelStore } from "../../store/index.js";
import { LOCKFILE_NAME, readLockfile, verifyStore } from "../../supply/index.js";
import { commandConfig, print } from "../context.js";
import { HashDisplay } from "../hashProgress.js";
import { outputFormat, printJson, withFormat } from "../output.js";

export function registerVerify(program: Command): void {
  withFormat(
    program
      .command("verify")
      .description(
        `re-hash every model against its manifest and ./${LOCKFILE_NAME} (if there is one); exit 1 on any difference`,
      ),
  ).action(async (options: { format?: string; json?: boolean }, command: Command) => {
    const format = outputFormat(options);
    const store = new ModelStore({ home: commandConfig(command).home });
    const path = resolve(LOCKFILE_NAME);
    const lockfile = await readLockfile(path);
    const progress = new HashDisplay("verify");
    const report = await progress.track(verifyStore(store, lockfile, progress.onProgress));
    if (report.problems.length > 0) process.exitCode = 1;
    if (format === "json")
      return printJson({ ok: report.problems.length === 0, lockfile: lockfile ? path : null, ...report });
    for (const problem of report.problems) print(`FAIL ${problem.model}: ${problem.message}`);
    const against = lockfile ? ` and ${path}` : "";
    if (report.problems.length > 0) {
      print(
        `${report.problems.length} problem(s) in ${report.checked.length} model(s) checked against their manifests${against}`,
      );
      process.exitCode = 1;
      return;
    }
    print(`ok: ${report.checked.length} model(s) match their manifests${against}`);
  });
}
