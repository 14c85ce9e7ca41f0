import { createHmac, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * Where the audit chain's secret comes from (src/config resolves it): the secret itself (FREEHOLD_AUDIT_KEY) or a file
 * (FREEHOLD_AUDIT_KEY_FILE, default $FREEHOLD_HOME/audit.key, created 0600 on first use). The witness of the trail's
 * end is kept beside the file, never in the database.
 */
export interface AuditKeySource {
  secret?: string;
  file: string;
}

/** The default key file of a home, when the configuration names none. */
export function defaultAuditKeyFile(home: string): string {
  return join(home, "audit.key");
}

/** Shortest secret accepted: 32 characters (the generated one is 64 hex digits, 256 bits). */
const minimumSecretLength = 32;

/** The chain's secret. Never logged or written anywhere but its own file; `id` names it without revealing it. */
export class AuditKey {
  readonly id: string;

  constructor(private readonly secret: Buffer) {
    this.id = this.mac("freehold-audit-key-id").slice(0, 16);
  }

  mac(text: string): string {
    return createHmac("sha256", this.secret).update(text).digest("hex");
  }
}

export class AuditKeyError extends Error {}

function checkSecret(secret: string, where: string): Buffer {
  const trimmed = secret.trim();
  if (trimmed.length < minimumSecretLength)
    throw new AuditKeyError(
      `the audit key from ${where} is ${trimmed.length} characters; it must be at least ${minimumSecretLength} (use e.g. \`openssl rand -hex 32\`)`,
    );
  return Buffer.from(trimmed, "utf8");
}

function readKeyFile(file: string): Buffer {
  // Like ssh with a private key: a secret others can read protects nothing, so refuse it rather than trust it.
  const mode = statSync(file).mode & 0o777;
  if (process.platform !== "win32" && (mode & 0o077) !== 0)
    throw new AuditKeyError(
      `the audit key file ${file} can be read by other users (mode ${mode.toString(8)}); run \`chmod 600 ${file}\``,
    );
  return checkSecret(readFileSync(file, "utf8"), file);
}

/** The key if one exists already (the environment's, or the file), without creating anything. */
export function existingAuditKey(source: AuditKeySource): AuditKey | undefined {
  if (source.secret !== undefined) return new AuditKey(checkSecret(source.secret, "FREEHOLD_AUDIT_KEY"));
  return existsSync(source.file) ? new AuditKey(readKeyFile(source.file)) : undefined;
}

/** The key, creating the file (0600, exclusively: two processes starting at once agree on one secret) if needed. */
export function auditKey(source: AuditKeySource): AuditKey {
  const existing = existingAuditKey(source);
  if (existing) return existing;
  try {
    mkdirSync(dirname(source.file), { recursive: true, mode: 0o700 });
    const fd = openSync(source.file, "wx", 0o600);
    try {
      writeSync(fd, `${randomBytes(32).toString("hex")}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  return new AuditKey(readKeyFile(source.file));
}

/** Where the witness of the trail's end lives: beside the key file (the environment's key: beside the default one). */
export function witnessPath(source: AuditKeySource): string {
  return join(dirname(source.file), `${basename(source.file)}.head`);
}

/** A keyed statement of the trail's newest entry, kept outside the database (the witness file, or the owner's copy). */
export interface AuditHead {
  seq: number;
  hash: string;
  time: string;
  keyId: string;
  mac: string;
}

export function headMac(key: AuditKey, head: Pick<AuditHead, "seq" | "hash" | "time">): string {
  return key.mac(`freehold-audit-head\n${head.seq}\n${head.hash}\n${head.time}`);
}

export function makeHead(key: AuditKey, head: Pick<AuditHead, "seq" | "hash" | "time">): AuditHead {
  return { ...head, keyId: key.id, mac: headMac(key, head) };
}

const linePattern =
  /^freehold-audit-head v1 seq=(\d{1,15}) time=(\S{1,40}) hash=([0-9a-f]{64}) key=([0-9a-f]{16}) mac=([0-9a-f]{64})$/;

/** The one line `freehold audit head` prints, for the owner to keep somewhere the database's writers cannot reach. */
export function headLine(head: AuditHead): string {
  return `freehold-audit-head v1 seq=${head.seq} time=${head.time} hash=${head.hash} key=${head.keyId} mac=${head.mac}`;
}

export function parseHeadLine(line: string): AuditHead {
  const match = linePattern.exec(line.trim());
  if (!match)
    throw new AuditKeyError(
      "--head must be the whole line `freehold audit head` printed: freehold-audit-head v1 seq=… time=… hash=… key=… mac=…",
    );
  return { seq: Number(match[1]), time: match[2]!, hash: match[3]!, keyId: match[4]!, mac: match[5]! };
}

/** The witness file's head, undefined when there is none; a file that is not a head is an error that says so. */
export function readWitness(path: string): AuditHead | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    return parseHeadLine(text);
  } catch {
    throw new AuditKeyError(`the audit witness ${path} is not a head line (it was overwritten or damaged)`);
  }
}

let temporaryCounter = 0;
function temporaryFor(path: string): string {
  return `${path}.${process.pid}.${++temporaryCounter}.tmp`;
}

/**
 * Replaces the witness atomically (a temporary file renamed over it: a crash leaves the old or the new one, never a
 * torn one), after the entries it vouches for were committed, so a crashed process leaves it behind the database, which
 * only leaves the newest entries unvouched for. Not fsynced (one per batch would cost ~1.5 ms): after a power loss or
 * an OS crash, the database (synchronous=NORMAL) may have lost commits the witness names, and verify then reports the
 * trail cut, which is what happened to it (docs/control.md).
 */
export function writeWitness(path: string, head: AuditHead): void {
  const temporary = temporaryFor(path);
  const fd = openSync(temporary, "w", 0o600);
  try {
    writeSync(fd, `${headLine(head)}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

/**
 * Keeps the witness up to date without blocking the event loop: a rename can wait milliseconds on a busy file
 * system's journal (measured 0.1-7 ms), too much for every batch of per-request entries. Writes run on libuv's
 * threads, one at a time, newest head wins; administrative entries write synchronously (`now`), and an older write
 * still in flight is followed by the newest, so the file converges on the newest head. Until then it lags, which only
 * leaves the newest entries unvouched for.
 */
export class WitnessWriter {
  private latest: AuditHead | undefined;
  /** The head the file holds as far as we know: the last write to complete (a late, older one lowers it). */
  private fileSeq = 0;
  private writing = false;
  /** The write off the event loop in progress, if any (close waits for it: nothing may touch the home afterwards). */
  private draining: Promise<void> | undefined;

  constructor(private readonly path: string) {}

  /** Whether a head of ours is still on its way to the file (the file may be older, or not there yet). */
  get pending(): boolean {
    return this.latest !== undefined && this.latest.seq !== this.fileSeq;
  }

  /** Whether this process has written (or is writing) a witness: if the file is gone and none is pending, it was deleted. */
  get wrote(): boolean {
    return this.latest !== undefined;
  }

  /** Writes the head now (administrative entries: on disk before the command returns). */
  now(head: AuditHead): void {
    this.remember(head);
    writeWitness(this.path, this.latest!);
    this.fileSeq = this.latest!.seq;
  }

  /** Writes the head soon, off the event loop. */
  soon(head: AuditHead): void {
    this.remember(head);
    if (!this.writing) this.draining = this.drain();
  }

  /** Waits for the write off the event loop, if one is in progress (it may loop to reach the newest head). */
  async idle(): Promise<void> {
    while (this.draining) {
      const draining = this.draining;
      await draining;
      if (this.draining === draining) this.draining = undefined;
    }
  }

  /** Writes whatever is still pending, synchronously (close). */
  settle(): void {
    if (this.latest && (this.latest.seq !== this.fileSeq || this.writing)) this.now(this.latest);
  }

  private remember(head: AuditHead): void {
    if (!this.latest || head.seq >= this.latest.seq) this.latest = head;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.latest && this.latest.seq !== this.fileSeq) {
        const head = this.latest;
        const temporary = temporaryFor(this.path);
        try {
          await writeFile(temporary, `${headLine(head)}\n`, { mode: 0o600 });
          await rename(temporary, this.path);
        } catch {
          // The home went away or is not writable: the next administrative entry writes synchronously and fails
          // loudly there; a per-request batch must not fail a request for it (the witness then only lags).
          return;
        }
        // If a synchronous write of a newer head landed first, this older one replaced it: the loop writes it again.
        this.fileSeq = head.seq;
      }
    } finally {
      this.writing = false;
    }
  }
}
