import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AuthenticationError,
  type ErrorFields,
  errorFromEvent,
  eventFromError,
  FreeholdError,
  InvalidRequestError,
  ModelFileError,
  NotFoundError,
  OverloadedError,
  PermissionError,
  RateLimitError,
  ServerError,
  StoreError,
  UnavailableError,
} from "./errors.js";

/** One of every class this module defines, each with fields that differ from its defaults. */
const everyClass: FreeholdError[] = [
  new FreeholdError("a custom refusal", {
    code: "custom",
    status: 418,
    type: "permission_error",
    retryable: true,
    param: "messages[0]",
    retryAfterSeconds: 12,
  }),
  new InvalidRequestError("max_tokens must be at least 1", "max_tokens", "invalid_max_tokens"),
  new NotFoundError("The model 'x' does not exist", "model_not_found"),
  new ModelFileError("the file is truncated at byte 12"),
  new StoreError("the digest does not match", "digest_mismatch", 409),
  new StoreError("no such blob", "blob_missing", 404),
  new ServerError("the runner failed", "runner_error", false),
  new OverloadedError("the queue is full", "queue_full", 9),
  new UnavailableError("the database is unreachable", "control_plane_unavailable"),
  new AuthenticationError("the key is revoked", "key_revoked"),
  new PermissionError("the key may not use model x", "model_not_allowed"),
  new RateLimitError("over 10 requests a minute", "requests_per_minute", 42),
];

/** Every field a client or the router reads, as one comparable object. */
function fieldsOf(error: FreeholdError) {
  return {
    class: error.constructor,
    name: error.name,
    message: error.message,
    code: error.code,
    status: error.status,
    type: error.type,
    retryable: error.retryable,
    param: error.param,
    retryAfterSeconds: error.retryAfterSeconds,
  };
}

test("every error class survives error → event → error, through JSON as IPC sends it: same class, every field", () => {
  for (const error of everyClass) {
    const event = JSON.parse(JSON.stringify(eventFromError(error))) as ErrorFields;
    const back = errorFromEvent(event);
    assert.ok(back instanceof error.constructor, `${error.name} came back as ${back.name}`);
    assert.deepEqual(fieldsOf(back), fieldsOf(error));
  }
});

test("retryAfterSeconds is on the base class: the classes that say when to retry say it, the others do not", () => {
  assert.equal(new RateLimitError("x", "c", 42).retryAfterSeconds, 42);
  assert.equal(new OverloadedError("x").retryAfterSeconds, 1);
  assert.equal(new UnavailableError("x").retryAfterSeconds, 1);
  for (const error of [new InvalidRequestError("x"), new ServerError("x"), new NotFoundError("x")])
    assert.equal(error.retryAfterSeconds, undefined, error.name);
  assert.equal("retryAfterSeconds" in eventFromError(new ServerError("x")), false);
});

test("a class defined outside this module comes back as a FreeholdError with every field kept", () => {
  class ElsewhereError extends FreeholdError {
    constructor(message: string) {
      super(message, { code: "elsewhere", status: 502, type: "server_error", retryable: true, retryAfterSeconds: 3 });
    }
  }
  const back = errorFromEvent(eventFromError(new ElsewhereError("the hub is away")));
  assert.equal(back.constructor, FreeholdError);
  assert.deepEqual(
    { ...fieldsOf(back), class: undefined, name: undefined },
    { ...fieldsOf(new ElsewhereError("the hub is away")), class: undefined, name: undefined },
  );
});

test("`as` makes every event one class (the router: a target's stream error is that target's failure)", () => {
  class TargetError extends FreeholdError {
    constructor(message: string, fields: ErrorFields) {
      super(message, { ...fields, type: "server_error" });
    }
  }
  const back = errorFromEvent(eventFromError(new InvalidRequestError("too long", "messages")), TargetError);
  assert.ok(back instanceof TargetError);
  assert.deepEqual(
    [back.message, back.code, back.status, back.param],
    ["too long", "invalid_request", 400, "messages"],
  );
});

test("an event with only the four fields an upstream stream knows: the type follows the status", () => {
  const base = { message: "m", code: "upstream_error", retryable: true };
  assert.equal(errorFromEvent({ ...base, status: 502 }).type, "server_error");
  assert.equal(errorFromEvent({ ...base, status: 404 }).type, "not_found_error");
  assert.equal(errorFromEvent({ ...base, status: 400 }).type, "invalid_request_error");
  assert.equal(errorFromEvent({ ...base, status: 502 }).constructor, FreeholdError);
});

test("a name that is not one of our classes is not trusted to pick a constructor", () => {
  for (const name of ["constructor", "__proto__", "toString", "Error", "hasOwnProperty"]) {
    const back = errorFromEvent({ message: "m", code: "c", status: 500, retryable: false, name });
    assert.equal(back.constructor, FreeholdError, name);
    assert.equal(back.message, "m");
  }
});

test("anything else thrown: tagged fields are kept (the runner tags plain errors), the rest falls back", () => {
  const tagged = Object.assign(new Error("model is not loaded"), { code: "model_not_loaded", status: 503 });
  assert.deepEqual(eventFromError(tagged, "runner_error"), {
    message: "model is not loaded",
    code: "model_not_loaded",
    status: 503,
    retryable: false,
    param: null,
  });
  assert.deepEqual(eventFromError(new TypeError("x is undefined"), "runner_error"), {
    message: "x is undefined",
    code: "runner_error",
    status: 500,
    retryable: false,
    param: null,
  });
  for (const thrown of ["a string", 42, null, undefined, { status: "500", code: 7 }]) {
    const fields = eventFromError(thrown);
    assert.equal(fields.code, "internal_error");
    assert.equal(fields.status, 500);
    assert.equal(typeof fields.message, "string");
  }
});
