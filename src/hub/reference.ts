import { InvalidRequestError } from "../core/errors.js";

/**
 * A parsed Hugging Face reference: `hf.co/OWNER/REPO[:QUANT][@REVISION]` or `hf.co/OWNER/REPO/PATH/FILE.gguf[@REVISION]`.
 * `huggingface.co/` is accepted for `hf.co/`.
 */
export interface HubReference {
  /** `OWNER/REPO`. */
  repo: string;
  /** The quantization asked for (as written), or null to choose one. */
  quantization: string | null;
  /** A file inside the repository, or null to choose by quantization. */
  file: string | null;
  /** Branch, tag or commit; `main` when not given. */
  revision: string;
  /** True when the reference named the revision (so a name pinned to it is meant). */
  revisionGiven: boolean;
}

const hostPattern = /^(?:https?:\/\/)?(?:hf\.co|huggingface\.co)\//i;
const repoPartPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const quantizationPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const revisionPattern = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;

const form = "hf.co/OWNER/REPO, hf.co/OWNER/REPO:QUANT or hf.co/OWNER/REPO/FILE.gguf, each with an optional @REVISION";

/** True when the text is meant for the hub (starts with hf.co/ or huggingface.co/). */
export function isHubReference(text: string): boolean {
  return hostPattern.test(text);
}

function invalid(text: string, reason: string): InvalidRequestError {
  const shown = JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text);
  return new InvalidRequestError(`invalid hub reference ${shown}: ${reason}; references look like ${form}`, "model");
}

/** A path inside a repository that is safe to ask for and to show: relative, no "..", no odd characters. */
export function isSafeRepoPath(path: string): boolean {
  if (path.length === 0 || path.length > 500 || path.startsWith("/") || path.includes("\\")) return false;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(path)) return false;
  return path.split("/").every((segment) => segment !== "" && segment !== "." && segment !== "..");
}

/**
 * Parses a hub reference; throws InvalidRequestError naming what is wrong.
 * @example
 * parseHubReference("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:q4_k_m");
 * // { repo: "bartowski/Llama-3.2-1B-Instruct-GGUF", quantization: "q4_k_m", file: null, revision: "main", … }
 */
export function parseHubReference(text: string): HubReference {
  if (!isHubReference(text)) throw invalid(text, "it does not start with hf.co/");
  let rest = text.replace(hostPattern, "");
  let revision = "main";
  let revisionGiven = false;
  let quantization: string | null = null;
  const at = rest.indexOf("@");
  if (at !== -1) {
    let after = rest.slice(at + 1);
    rest = rest.slice(0, at);
    // hf.co/o/r@rev:Q4_K_M is read like hf.co/o/r:Q4_K_M@rev.
    const colon = after.lastIndexOf(":");
    if (colon !== -1) {
      quantization = after.slice(colon + 1);
      after = after.slice(0, colon);
    }
    if (!revisionPattern.test(after) || after.split("/").includes("..")) {
      throw invalid(text, `the revision ${JSON.stringify(after)} is not a branch, tag or commit name`);
    }
    revision = after;
    revisionGiven = true;
  }
  const colon = rest.indexOf(":");
  if (colon !== -1) {
    if (quantization !== null) throw invalid(text, "it names the quantization twice");
    quantization = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split("/");
  if (parts.length < 2) throw invalid(text, "it names no repository");
  const [owner, name, ...fileParts] = parts as [string, string, ...string[]];
  for (const part of [owner, name]) {
    if (!repoPartPattern.test(part) || part.includes("..")) {
      throw invalid(text, `${JSON.stringify(part)} is not a valid owner or repository name`);
    }
  }
  let file: string | null = null;
  if (fileParts.length > 0) {
    file = fileParts.join("/");
    if (!isSafeRepoPath(file)) throw invalid(text, `the file ${JSON.stringify(file)} is not a safe relative path`);
    if (!file.toLowerCase().endsWith(".gguf"))
      throw invalid(text, `the file ${JSON.stringify(file)} is not a .gguf file`);
    if (quantization !== null) throw invalid(text, "it names both a file and a quantization");
  }
  if (quantization !== null && !quantizationPattern.test(quantization)) {
    throw invalid(text, `the quantization ${JSON.stringify(quantization)} is not valid`);
  }
  return { repo: `${owner}/${name}`, quantization, file, revision, revisionGiven };
}
