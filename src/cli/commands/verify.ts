import { resolve } from "node:path";
import type { Command } from "commander";
import { ModelStore } from "../../store/index.js";
import { LOCKFILE_NAME, readLockfile, verifyStore } from "../../supply/index.js";
import { commandConfig, print } from "../context.js";

export function registerVerify(program: Command): void {
  program
    .command("verify")
    .description(
      `re-hash every model against its manifest and ./${LOCKFILE_NAME} (if there is one); exit 1 on any difference`,
    )
    .action(async (_options: unknown, command: Command) => {
      const store = new ModelStore({ home: commandConfig(command).home });
      const path = resolve(LOCKFILE_NAME);
      const lockfile = await readLockfile(path);
      const report = await verifyStore(store, lockfile);
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
