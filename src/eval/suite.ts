import { readFileSync } from "node:fs";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { compileJsonSchema } from "./jsonSchemaCheck.js";

/**
 * An evaluation suite: default model parameters, then cases (messages or a prompt, variables, assertions). Written
 * in YAML; every error names the file, the line, the case and the field, e.g.
 * `suite.yaml:14: cases[2] (json): assert[0].value: must be a JSON schema object`.
 */

const options = z.strictObject({
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  seed: z.number().int().optional(),
  max_tokens: z.number().int().min(0).max(100_000).optional(),
  stop: z.array(z.string().min(1)).max(8).optional(),
  /** Structured output: `json`, or a JSON schema the answer must follow (grammar-enforced on local models). */
  response_format: z
    .union([z.literal("json"), z.strictObject({ json_schema: z.record(z.string(), z.unknown()) })])
    .optional(),
});

const text = z.string();
const oneOrMany = z.union([text.min(1), z.array(text.min(1)).min(1)]);
const threshold = z.number().min(0).max(1);

const assertion = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("equals"), value: text }),
  z.strictObject({ type: z.literal("contains"), value: oneOrMany, match: z.enum(["any", "all"]).default("all") }),
  z.strictObject({ type: z.literal("icontains"), value: oneOrMany, match: z.enum(["any", "all"]).default("all") }),
  z.strictObject({ type: z.literal("starts-with"), value: text.min(1) }),
  z.strictObject({
    type: z.literal("regex"),
    value: text.min(1),
    flags: z
      .string()
      .regex(/^[imsu]*$/)
      .optional(),
  }),
  z.strictObject({ type: z.literal("is-json") }),
  z.strictObject({ type: z.literal("json-schema"), value: z.record(z.string(), z.unknown()) }),
  z.strictObject({ type: z.literal("max-tokens"), value: z.number().int().min(0) }),
  z.strictObject({ type: z.literal("latency-ms"), value: z.number().positive() }),
  z.strictObject({
    type: z.literal("similar"),
    value: text.min(1),
    threshold: threshold.default(0.8),
    /** Embedding model (default: the suite's embedding_model). */
    model: z.string().min(1).optional(),
  }),
  z.strictObject({
    type: z.literal("judge"),
    rubric: text.min(1),
    /** Judge model (default: the suite's judge). */
    model: z.string().min(1).optional(),
  }),
  z.strictObject({
    type: z.literal("agrees-with"),
    /** The reference model whose answer to the same case the candidate's is judged against (default: the suite's reference). */
    model: z.string().min(1).optional(),
    /** A fixed reference answer instead of a model (replayed traffic: what the route's target answered). */
    reference: text.optional(),
    /** Judge model (default: the suite's judge). */
    judge: z.string().min(1).optional(),
  }),
]);

const message = z.strictObject({ role: z.enum(["system", "user", "assistant"]), content: text });

const caseSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[\w.:-]{1,80}$/, "letters, digits, _ . : - (at most 80)")
      .optional(),
    description: z.string().optional(),
    messages: z.array(message).min(1).optional(),
    /** A raw completion of this text (models without a chat template), instead of messages. */
    prompt: text.min(1).optional(),
    vars: z.record(z.string().regex(/^\w+$/), z.union([z.string(), z.number(), z.boolean()])).default({}),
    options: options.default({}),
    assert: z.array(assertion).min(1, "needs at least one assertion"),
  })
  .refine((value) => (value.messages === undefined) !== (value.prompt === undefined), {
    message: "give either messages or prompt (exactly one)",
    path: ["messages"],
  });

export const suiteSchema = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  description: z.string().optional(),
  /** Pass rate (0–1) a model needs to be "good enough". */
  threshold: threshold.default(0.8),
  /** Runs per case per model, for sampling noise. */
  repeat: z.number().int().min(1).max(100).default(1),
  defaults: options.default({}),
  /** Judge model for `judge` and `agrees-with` assertions. */
  judge: z.string().min(1).optional(),
  /** Embedding model for `similar` assertions. */
  embedding_model: z.string().min(1).optional(),
  /** Reference model for `agrees-with` assertions. */
  reference: z.string().min(1).optional(),
  cases: z.array(caseSchema).min(1, "needs at least one case"),
});

export type SuiteFile = z.infer<typeof suiteSchema>;
export type Assertion = z.infer<typeof assertion>;
export type CaseOptions = z.infer<typeof options>;

export interface EvalCase {
  id: string;
  description?: string;
  messages?: { role: "system" | "user" | "assistant"; content: string }[];
  prompt?: string;
  /** Defaults merged with the case's own options. */
  options: CaseOptions;
  assert: Assertion[];
}

export interface Suite {
  name: string;
  threshold: number;
  repeat: number;
  judge?: string;
  embeddingModel?: string;
  reference?: string;
  cases: EvalCase[];
}

/** A suite problem: `file:line: cases[i] (id): field: what is wrong`. */
export class SuiteError extends Error {}

function fieldPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, i) => (typeof part === "number" ? `[${part}]` : `${i === 0 ? "" : "."}${String(part)}`))
    .join("");
}

/** Replaces {{name}} with the case's variable; an unknown name is an error naming it. */
function fill(template: string, vars: Record<string, string | number | boolean>, fail: (message: string) => never) {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) =>
    name in vars
      ? String(vars[name])
      : fail(`{{${name}}} is not among the case's vars (${Object.keys(vars).join(", ") || "none"})`),
  );
}

function fillAssertion(
  item: Assertion,
  vars: Record<string, string | number | boolean>,
  fail: (field: string, message: string) => never,
  index: number,
): Assertion {
  const at = (field: string) => (message: string) => fail(`assert[${index}].${field}`, message);
  switch (item.type) {
    case "equals":
    case "starts-with":
    case "regex":
    case "similar":
      return { ...item, value: fill(item.value, vars, at("value")) };
    case "contains":
    case "icontains":
      return {
        ...item,
        value: Array.isArray(item.value)
          ? item.value.map((value) => fill(value, vars, at("value")))
          : fill(item.value, vars, at("value")),
      };
    case "judge":
      return { ...item, rubric: fill(item.rubric, vars, at("rubric")) };
    default:
      return item;
  }
}

/** Validates suite text (YAML) and resolves variables, defaults and case ids. */
export function parseSuite(source: string, file: string): Suite {
  const counter = new LineCounter();
  const doc = parseDocument(source, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax)
    throw new SuiteError(
      `${file}:${syntax.linePos?.[0]?.line ?? counter.linePos(syntax.pos[0]).line}: ${syntax.message.split("\n")[0]}`,
    );
  const raw = doc.toJS() as Record<string, unknown> | null;
  const lineOf = (path: readonly PropertyKey[]): string => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = doc.getIn(path.slice(0, depth) as unknown[], true) as { range?: [number] } | undefined;
      if (node?.range) return `:${counter.linePos(node.range[0]).line}`;
    }
    return "";
  };
  const where = (path: readonly PropertyKey[]): string => {
    if (path[0] === "cases" && typeof path[1] === "number") {
      const id = (raw?.cases as { id?: unknown }[] | undefined)?.[path[1]]?.id;
      const rest = fieldPath(path.slice(2));
      return `cases[${path[1]}]${typeof id === "string" ? ` (${id})` : ""}${rest ? `: ${rest}` : ""}`;
    }
    return fieldPath(path) || "(top level)";
  };
  const fail = (path: readonly PropertyKey[], message: string): never => {
    throw new SuiteError(`${file}${lineOf(path)}: ${where(path)}: ${message}`);
  };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    fail([], "a suite is a mapping with `cases` (and optionally name, threshold, repeat, defaults, judge)");
  const parsed = suiteSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === "unrecognized_keys") fail([...issue.path, issue.keys[0]!], "unknown field (check the spelling)");
    if (issue.code === "invalid_union" && issue.path.at(-2) === "assert")
      fail(
        issue.path,
        "an assertion needs a known type (equals, contains, icontains, starts-with, regex, is-json, json-schema, max-tokens, latency-ms, similar, judge, agrees-with)",
      );
    fail(issue.path, issue.message);
  }
  const suite = parsed.data!;
  const seen = new Set<string>();
  const cases = suite.cases.map((item, index): EvalCase => {
    const id = item.id ?? `case-${index + 1}`;
    if (seen.has(id)) fail(["cases", index, "id"], `the id ${JSON.stringify(id)} is used by an earlier case`);
    seen.add(id);
    const failField = (field: string, message: string): never =>
      fail(
        [
          "cases",
          index,
          ...field
            .split(/[.[\]]+/)
            .filter(Boolean)
            .map((part) => (/^\d+$/.test(part) ? Number(part) : part)),
        ],
        message,
      );
    const vars = item.vars;
    const assertions = item.assert.map((entry, i) => fillAssertion(entry, vars, failField, i));
    assertions.forEach((entry, i) => {
      if (entry.type === "json-schema") {
        try {
          compileJsonSchema(entry.value);
        } catch (error) {
          failField(`assert[${i}].value`, (error as Error).message);
        }
      }
      if (entry.type === "regex") {
        try {
          new RegExp(entry.value, entry.flags);
        } catch (error) {
          failField(`assert[${i}].value`, `not a valid regular expression: ${(error as Error).message}`);
        }
      }
      if (entry.type === "judge" && !(entry.model ?? suite.judge))
        failField(
          `assert[${i}].model`,
          "a judge assertion needs a judge model: set `model` here or `judge` at the top",
        );
      if (entry.type === "similar" && !(entry.model ?? suite.embedding_model))
        failField(
          `assert[${i}].model`,
          "a similar assertion needs an embedding model: set `model` here or `embedding_model` at the top",
        );
      if (entry.type === "agrees-with") {
        if (!(entry.judge ?? suite.judge))
          failField(`assert[${i}].judge`, "agrees-with needs a judge model: set `judge` here or at the top");
        if (entry.reference === undefined && !(entry.model ?? suite.reference))
          failField(
            `assert[${i}].model`,
            "agrees-with needs a reference: `model`, `reference`, or `reference` at the top",
          );
      }
    });
    return {
      id,
      ...(item.description ? { description: item.description } : {}),
      ...(item.messages
        ? {
            messages: item.messages.map((entry, i) => ({
              role: entry.role,
              content: fill(entry.content, vars, (message) => failField(`messages[${i}].content`, message)),
            })),
          }
        : {}),
      ...(item.prompt !== undefined
        ? { prompt: fill(item.prompt, vars, (message) => failField("prompt", message)) }
        : {}),
      options: { ...suite.defaults, ...item.options },
      assert: assertions,
    };
  });
  return {
    name: suite.name ?? file.replace(/^.*\//, "").replace(/\.ya?ml$/, ""),
    threshold: suite.threshold,
    repeat: suite.repeat,
    ...(suite.judge ? { judge: suite.judge } : {}),
    ...(suite.embedding_model ? { embeddingModel: suite.embedding_model } : {}),
    ...(suite.reference ? { reference: suite.reference } : {}),
    cases,
  };
}

export function loadSuite(path: string): Suite {
  let source: string;
  try {
    source = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT" ? "the file does not exist" : code === "EISDIR" ? "it is a directory, not a suite file" : code;
    throw new SuiteError(`${path}: cannot read the suite (${reason ?? "error"})`);
  }
  return parseSuite(source, path);
}
