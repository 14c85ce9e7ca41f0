import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { probeToolFormat } from "./toolFormatProbe.js";

const templates = join(import.meta.dirname, "..", "..", "test", "fixtures", "templates");
const read = (file: string) => readFileSync(join(templates, file), "utf8");

test("the tool format of a template, as the runner would choose it: native formats, and json without one", async () => {
  const [llama, qwen, hermes, chatml, none] = await Promise.all([
    probeToolFormat(read("meta-llama-Llama-3.1-8B-Instruct.jinja")),
    probeToolFormat(read("Qwen-Qwen2.5-7B-Instruct.jinja")),
    probeToolFormat(read("NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja")),
    probeToolFormat(
      "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}",
    ),
    probeToolFormat(null),
  ]);
  assert.match(llama, /^template: \{"name": …, "parameters": \{…\}\}, or <\|python_tag\|>NAME\.call/);
  assert.match(qwen, /^template: <tool_call>/);
  // node-llama-cpp's Jinja cannot run Hermes' template: the family's wrapper, as in the runner.
  assert.match(hermes, /^node-llama-cpp hermes: <tool_call>/);
  assert.equal(chatml, "json");
  assert.equal(none, "json");
});

test("a template that never finishes or grows without bound is stopped: 'unknown', and the server goes on", async () => {
  const started = performance.now();
  // It mentions tools, so it is read (a template that never does needs no reader: "json" at once).
  const format = await probeToolFormat("{% for i in range(1000000000) %}{{ i }}{% endfor %}{{ tools }}");
  assert.match(format, /^unknown \(/);
  // Bounded by the reader's memory limit or its timeout (30 s), never by the template.
  assert.ok(performance.now() - started < 35_000);
});
