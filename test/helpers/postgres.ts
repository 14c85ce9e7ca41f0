import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A throwaway PostgreSQL server for tests: initdb into a temporary folder, a random loopback port, its Unix socket in
 * that folder, stopped and deleted by `stop`. Run as the unprivileged `postgres` user when the tests run as root
 * (PostgreSQL refuses root). Debian's `postgresql` package provides the binaries (.ci/run installs it).
 */
export interface TestPostgres {
  /** postgres://… of a fresh database (each call makes another, so tests do not share state). */
  database(name: string): string;
  stop(): void;
}

function binDirectory(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((entry) => existsSync(join(root, entry, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], "bin") : undefined;
}

const bin = binDirectory();

/** Why PostgreSQL tests cannot run here, or false when they can. */
export const postgresMissing: string | false = bin
  ? false
  : "PostgreSQL's binaries are absent (/usr/lib/postgresql/*/bin/initdb); install Debian's postgresql package (.ci/run does)";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** `fsync`, `synchronousCommit`: PostgreSQL's durability settings (benchmarks); tests turn fsync off for speed. */
export async function startPostgres(
  options: { fsync?: boolean; synchronousCommit?: boolean } = {},
): Promise<TestPostgres> {
  if (!bin) throw new Error(String(postgresMissing));
  const folder = mkdtempSync(join(tmpdir(), "freehold-pg-"));
  const data = join(folder, "data");
  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? "postgres" : undefined;
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(folder, uid, gid);
    chmodSync(folder, 0o700);
  }
  const run = (command: string, args: string[]) => {
    const [file, argv] = user
      ? ["runuser", ["-u", user, "--", join(bin, command), ...args]]
      : [join(bin, command), args];
    const result = spawnSync(file, argv, { encoding: "utf8", timeout: 60_000 });
    if (result.status !== 0)
      throw new Error(`${command} failed (${result.status}): ${result.stderr || result.stdout || result.error}`);
    return result.stdout;
  };
  run("initdb", ["-D", data, "-A", "trust", "-U", "freehold", "--no-sync", "-E", "UTF8"]);
  const port = await freePort();
  run("pg_ctl", [
    "-D",
    data,
    "-l",
    join(folder, "log"),
    "-w",
    "-t",
    "60",
    "-o",
    `-p ${port} -k ${folder} -c listen_addresses=127.0.0.1 -c fsync=${options.fsync ? "on" : "off"} -c synchronous_commit=${options.synchronousCommit === false ? "off" : "on"} -c max_connections=200`,
    "start",
  ]);
  const created = new Set<string>();
  let stopped = false;
  return {
    database(name: string): string {
      if (!/^[a-z][a-z0-9_]{0,40}$/.test(name)) throw new Error(`bad test database name ${name}`);
      if (!created.has(name)) {
        run("createdb", ["-h", folder, "-p", String(port), "-U", "freehold", name]);
        created.add(name);
      }
      return `postgres://freehold@127.0.0.1:${port}/${name}`;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
    },
  };
}
