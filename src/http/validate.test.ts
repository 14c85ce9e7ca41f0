import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import { InvalidRequestError } from "../core/errors.js";
import { parseBody } from "./validate.js";

const schema = z.object({
  model: z.string(),
  temperature: z.number().min(0).max(2).optional(),
  messages: z.array(z.object({ role: z.enum(["user", "assistant"]) })),
});

function messageFor(body: unknown): string {
  try {
    parseBody(schema, body);
  } catch (error) {
    assert.ok(error instanceof InvalidRequestError);
    return `${error.param}: ${error.message}`;
  }
  throw new Error("expected a 400");
}

test("a missing field is required; a wrong type says the type; ranges and enums say what is allowed", () => {
  assert.equal(messageFor({ messages: [] }), "model: Invalid value for model: is required");
  assert.equal(
    messageFor({ model: "m", temperature: "hot", messages: [] }),
    "temperature: Invalid value for temperature: must be a number",
  );
  assert.equal(
    messageFor({ model: "m", temperature: 3, messages: [] }),
    "temperature: Invalid value for temperature: must be at most 2",
  );
  assert.equal(
    messageFor({ model: "m", messages: [{ role: "wizard" }] }),
    'messages[0].role: Invalid value for messages[0].role: must be one of "user", "assistant"',
  );
});
