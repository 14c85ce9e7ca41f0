import assert from "node:assert/strict";
import { test } from "node:test";
import { classifyText, compileDetectors, countKinds } from "./classifier.js";
import { ibanValid, luhnValid } from "./detectors.js";
import { Redaction } from "./redactor.js";

const detectors = compileDetectors();
const kinds = (text: string) => classifyText(text, detectors).map((finding) => finding.kind);

test("each built-in detector finds its kind and turns look-alikes away", () => {
  assert.deepEqual(kinds("write to ana.lopez+tax@mail.example.co.uk"), ["email"]);
  assert.deepEqual(kinds("call +44 20 7946 0958 or (415) 555-0100"), ["phone", "phone"]);
  assert.deepEqual(kinds("card 4111 1111 1111 1111"), ["card"]);
  assert.deepEqual(kinds("card 4111 1111 1111 1112"), [], "fails Luhn");
  assert.deepEqual(kinds("IBAN DE89 3704 0044 0532 0130 00"), ["iban"]);
  assert.ok(!kinds("IBAN GB82 WEST 1234 5698 7654 33").includes("iban"), "fails mod-97");
  assert.deepEqual(kinds("SSN 123-45-6789"), ["ssn"]);
  assert.deepEqual(kinds("SSN 000-45-6789"), []);
  assert.deepEqual(kinds("host 192.168.1.20 and 2001:db8::8a2e:370:7334"), ["ip", "ip"]);
  assert.deepEqual(kinds("version 1.2.3.4000 and 999.1.1.1"), []);
  assert.deepEqual(kinds("key sk-proj-abcdefghijklmnopqrstuvwx and AKIAIOSFODNN7EXAMPLE"), ["secret", "secret"]);
  assert.deepEqual(kinds("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"), [
    "private-key",
  ]);
  assert.deepEqual(kinds("token Zx8kQ2vN7pL4mR9tW3yB6cF1hJ5sD0gA"), ["high-entropy"]);
  assert.deepEqual(kinds("The meeting is at 10:30 on 2024-05-01 in room 12; the answer is 42."), []);
  assert.ok(luhnValid("79927398713") && !luhnValid("79927398710"));
  assert.ok(ibanValid("GB82 WEST 1234 5698 7654 32") && !ibanValid("GB82 WEST 1234 5698 7654 33"));
});

test("owner patterns and keyword lists fire under their own names; built-ins can be switched off", () => {
  const owner = compileDetectors({
    patterns: { "employee-id": "EMP-\\d{6}" },
    keywords: { project: ["Project Falcon", "bluebird"] },
    disable: ["ipv4"],
  });
  const findings = classifyText("EMP-004211 works on project falcon (BlueBird) from 10.0.0.1", owner);
  assert.deepEqual(countKinds(findings), { "employee-id": 1, project: 2 });
});

test("redaction: same value same placeholder; originals restored even when a placeholder is split across deltas", async () => {
  const redaction = new Redaction(detectors);
  const redacted = redaction.redact("Mail bob@example.org, then bob@example.org again; card 4111-1111-1111-1111.");
  assert.equal(redacted, "Mail [EMAIL_1], then [EMAIL_1] again; card [CARD_1].");
  async function* deltas() {
    for (const text of ["Sure: [EM", "AIL_", "1] and [CA", "RD_1", "]. [not a placeholder] [", "x"])
      yield { type: "text-delta" as const, text };
    yield { type: "finish" as const, reason: "stop" as const };
  }
  let out = "";
  for await (const event of redaction.restoreEvents(deltas())) if (event.type === "text-delta") out += event.text;
  assert.equal(out, "Sure: bob@example.org and 4111-1111-1111-1111. [not a placeholder] [x");
});

test("the scanners find what the old patterns found, and the shapes they missed", () => {
  const values = (text: string, kind: string) =>
    classifyText(text, detectors)
      .filter((finding) => finding.kind === kind)
      .map((finding) => finding.value);
  assert.deepEqual(values("a@b.co, x.y+z@mail.example.org; @@ a@b a@.com", "email"), [
    "a@b.co",
    "x.y+z@mail.example.org",
  ]);
  assert.deepEqual(values("first@a.example@second.example.net", "email"), ["first@a.example@second.example.net"]);
  // A card inside a longer run of digit groups is still found (the old pattern missed it).
  assert.deepEqual(values("ref 12 4111 1111 1111 1111 99", "card"), ["4111 1111 1111 1111"]);
  assert.deepEqual(values("4111-1111-1111-1111", "card"), ["4111-1111-1111-1111"]);
  assert.deepEqual(values("41111111111111111111111", "card"), [], "one 23-digit number is not a card");
  const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
  assert.deepEqual(values(`token=${jwt}; next`, "secret"), [jwt]);
  const cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
  assert.deepEqual(values(`key: ${cut}`, "private-key"), [cut], "a key cut short is still a key");
});
