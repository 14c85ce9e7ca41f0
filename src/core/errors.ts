import { homedir, tmpdir } from "node:os";

/**
 * Typed errors. Each carries a stable `code`, the HTTP status it maps to, and whether retrying can help.
 * The HTTP edge maps them to each API's error shape in one place per API; nothing else formats errors.
 */
export type ErrorType =
  | "invalid_request_error"
  | "not_found_error"
  | "authentication_error"
  | "permission_error"
  | "rate_limit_error"
  | "server_error"
  | "overloaded_error";

export interface FreeholdErrorOptions {
  code: string;
  status: number;
  type: ErrorType;
  retryable?: boolean;
  /** The request field that was wrong, when there is one (OpenAI's `param`). */
  param?: string | null;
  /** Seconds after which a retry may succeed; the HTTP edge sends it as the Retry-After header. */
  retryAfterSeconds?: number;
  cause?: unknown;
}

export class FreeholdError extends Error {
  readonly code: string;
  readonly status: number;
  readonly type: ErrorType;
  readonly retryable: boolean;
  readonly param: string | null;
  readonly retryAfterSeconds: number | undefined;

  constructor(message: string, options: FreeholdErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.status = options.status;
    this.type = options.type;
    this.retryable = options.retryable ?? false;
    this.param = options.param ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** The caller sent something we cannot accept; the message says which field and why. */
export class InvalidRequestError extends FreeholdError {
  constructor(message: string, param: string | null = null, code = "invalid_request") {
    super(message, { code, status: 400, type: "invalid_request_error", param });
  }
}

export class NotFoundError extends FreeholdError {
  constructor(message: string, code = "not_found") {
    super(message, { code, status: 404, type: "not_found_error" });
  }
}

/** A model file (GGUF) is malformed, truncated or hostile. Always a one-line message that names what is wrong. */
export class ModelFileError extends FreeholdError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: "invalid_model_file", status: 422, type: "invalid_request_error", cause });
  }
}

/** The model store refused an operation (bad name, bad digest, conflict, corrupt state). */
export class StoreError extends FreeholdError {
  constructor(message: string, code = "store_error", status = 400) {
    super(message, { code, status, type: status === 404 ? "not_found_error" : "invalid_request_error" });
  }
}

export class ServerError extends FreeholdError {
  constructor(message: string, code = "server_error", retryable = true, cause?: unknown) {
    super(message, { code, status: 500, type: "server_error", retryable, cause });
  }
}

/** Too busy now; `retryAfterSeconds` becomes the Retry-After header. */
export class OverloadedError extends FreeholdError {
  declare readonly retryAfterSeconds: number;
  constructor(message: string, code = "overloaded", retryAfterSeconds = 1) {
    super(message, { code, status: 503, type: "overloaded_error", retryable: true, retryAfterSeconds });
  }
}

/**
 * A dependency every answer needs is unreachable (the control plane's database): the request is refused rather than
 * served unmetered.
 */
export class UnavailableError extends FreeholdError {
  declare readonly retryAfterSeconds: number;
  constructor(message: string, code = "control_plane_unavailable", cause?: unknown) {
    super(message, { code, status: 503, type: "server_error", retryable: true, retryAfterSeconds: 1, cause });
  }
}

/** No key, or a key that is unknown, revoked or expired. */
export class AuthenticationError extends FreeholdError {
  constructor(message: string, code = "invalid_api_key") {
    super(message, { code, status: 401, type: "authentication_error" });
  }
}

/** A valid key that may not do this (an admin route, a model outside its scope). */
export class PermissionError extends FreeholdError {
  constructor(message: string, code = "permission_denied") {
    super(message, { code, status: 403, type: "permission_error" });
  }
}

/** A key is over one of its limits; `retryAfterSeconds` becomes the Retry-After header. */
export class RateLimitError extends FreeholdError {
  declare readonly retryAfterSeconds: number;
  constructor(message: string, code = "rate_limit_exceeded", retryAfterSeconds = 1) {
    super(message, { code, status: 429, type: "rate_limit_error", retryable: true, retryAfterSeconds });
  }
}

export function isFreeholdError(error: unknown): error is FreeholdError {
  return error instanceof FreeholdError;
}

/**
 * A typed error as plain data: the `error` of a stream's error event and of the runner's IPC messages. `name` is the
 * class, so `errorFromEvent` rebuilds the same class on the other side; the optional fields are absent where the
 * producer (an upstream provider's stream) knows only the first four.
 */
export interface ErrorFields {
  message: string;
  code: string;
  status: number;
  retryable: boolean;
  name?: string;
  type?: ErrorType;
  param?: string | null;
  retryAfterSeconds?: number;
}

/** The kind an HTTP status says an error is, where the producer did not say. */
function typeForStatus(status: number): ErrorType {
  if (status === 404) return "not_found_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

/** How each class of this module is rebuilt from its fields (classes elsewhere come back as FreeholdError). */
const rebuild = {
  InvalidRequestError: (f) => new InvalidRequestError(f.message, f.param ?? null, f.code),
  NotFoundError: (f) => new NotFoundError(f.message, f.code),
  ModelFileError: (f) => new ModelFileError(f.message),
  StoreError: (f) => new StoreError(f.message, f.code, f.status),
  ServerError: (f) => new ServerError(f.message, f.code, f.retryable),
  OverloadedError: (f) => new OverloadedError(f.message, f.code, f.retryAfterSeconds ?? 1),
  UnavailableError: (f) => new UnavailableError(f.message, f.code),
  AuthenticationError: (f) => new AuthenticationError(f.message, f.code),
  PermissionError: (f) => new PermissionError(f.message, f.code),
  RateLimitError: (f) => new RateLimitError(f.message, f.code, f.retryAfterSeconds ?? 1),
} satisfies Record<string, (fields: ErrorFields) => FreeholdError>;

type ErrorConstructor = new (message: string, fields: ErrorFields) => FreeholdError;

/**
 * The typed error an error event (or IPC message) describes: the same class when it is one of this module's, else a
 * FreeholdError with every field kept. `as` makes every event one class (the router: whatever a target's stream
 * reported is that target's failure).
 */
export function errorFromEvent(fields: ErrorFields, as?: ErrorConstructor): FreeholdError {
  if (as) return new as(fields.message, fields);
  const named = fields.name !== undefined && Object.hasOwn(rebuild, fields.name);
  if (named) return rebuild[fields.name as keyof typeof rebuild](fields);
  return new FreeholdError(fields.message, {
    code: fields.code,
    status: fields.status,
    type: fields.type ?? typeForStatus(fields.status),
    retryable: fields.retryable,
    param: fields.param ?? null,
    ...(fields.retryAfterSeconds !== undefined ? { retryAfterSeconds: fields.retryAfterSeconds } : {}),
  });
}

/**
 * Any thrown value as error fields. A FreeholdError keeps all of its own; another error keeps a string `code`, a
 * numeric `status`, `retryable` and `param` where it carries them (the runner tags plain errors so), else `unknownCode`
 * and 500.
 */
export function eventFromError(error: unknown, unknownCode = "internal_error"): ErrorFields {
  if (isFreeholdError(error)) {
    return {
      message: error.message,
      code: error.code,
      status: error.status,
      retryable: error.retryable,
      name: error.name,
      type: error.type,
      param: error.param,
      ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
    };
  }
  const e = error as { message?: unknown; code?: unknown; status?: unknown; retryable?: unknown; param?: unknown };
  return {
    message: typeof e?.message === "string" ? e.message : String(error),
    code: typeof e?.code === "string" ? e.code : unknownCode,
    status: typeof e?.status === "number" ? e.status : 500,
    retryable: e?.retryable === true,
    param: typeof e?.param === "string" ? e.param : null,
  };
}

/** A message for any thrown value, for places that must show something to a person. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The first segments of freehold's own HTTP routes: a path starting with one is an API path, not a file. */
const routeRoots = new Set(["v1", "api", "admin", "freehold", "metrics", "health"]);
/** An absolute POSIX path, a home-relative one, or a Windows drive or UNC path, up to whitespace or a quote. */
const absolutePath = /(^|[\s'"`(=:,[])((?:~|[A-Za-z]:)?[/\\]{1,2}[^\s'"`()<>,;:[\]]*)/g;
/** Client error messages are short; a longer one (echoing a huge input) is cut before it is scanned. */
const longestMessage = 4096;
const pathCharacters = "[^\\s'\"`()<>,;:[\\]]*";

/** Directories of this server whose names never reach a client: the user's home, temp, cwd, FREEHOLD_HOME. */
const privateDirectories = new Map<string, RegExp>();
export function treatAsPrivateDirectory(directory: string): void {
  if (directory.length <= 1 || privateDirectories.has(directory)) return;
  privateDirectories.set(
    directory,
    new RegExp(`${directory.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}${pathCharacters}`, "g"),
  );
}
for (const directory of [homedir(), tmpdir(), process.cwd()]) treatAsPrivateDirectory(directory);

/**
 * A message fit for a client: file system paths become `<path>`, so an error from the store, a runner or llama.cpp
 * tells a key holder what went wrong without mapping the server's disk (the full message goes to the server's log).
 * Paths under the server's own directories go from every message; with `anyAbsolute` (server errors, 5xx, where
 * nothing the client sent is quoted) every absolute path does. A client error (4xx) keeps other slashes: they are
 * the client's own JSON pointers ("/properties/name/pattern") or routes. Linear, on at most 4 KiB.
 */
export function withoutPaths(message: string, anyAbsolute = true): string {
  let text = message.length > longestMessage ? `${message.slice(0, longestMessage)}…` : message;
  for (const pattern of privateDirectories.values()) text = text.replace(pattern, "<path>");
  if (!anyAbsolute) return text;
  return text.replace(absolutePath, (whole, before: string, path: string) => {
    const first = path.replace(/^[/\\]+/, "").split(/[/\\?#]/, 1)[0] ?? "";
    // "/" alone (a ratio like 1/2 never gets here: it needs a space or quote before the slash) and API routes stay.
    if (path.length <= 1 || (path.startsWith("/") && !path.startsWith("//") && routeRoots.has(first))) return whole;
    return `${before}<path>`;
  });
}
