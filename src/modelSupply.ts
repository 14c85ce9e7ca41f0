/**
 * Wiring for the model supply chain (pull, create, lockfile) between the store, the hub client and the API surfaces.
 * Part of the composition root: main.ts uses it to give the HTTP layer its ModelSupply port and the engine its
 * `serve --locked` check.
 */
import type { Config } from "./config/config.js";
import type { ModelDescription, ModelSupply, ProfileInput } from "./core/catalog.js";
import { FreeholdError } from "./core/errors.js";
import { HubClient } from "./hub/index.js";
import type { Manifest, ModelStore } from "./store/index.js";
import { sameModelName } from "./store/index.js";
import {
  checkProfileMcp,
  formatProfile,
  ModelPuller,
  parseModelfile,
  parseYamlProfile,
  profileParameters,
  readLockfile,
} from "./supply/index.js";

/** The hub client the config describes (HF_ENDPOINT, HF_TOKEN, offline). */
export function hubClientFor(config: Config, offline = config.offline): HubClient {
  return new HubClient({ endpoint: config.hfEndpoint, token: config.hfToken, offline });
}

/**
 * Pull and create for the API surfaces. `mcpServers` gives the MCP servers freehold.yaml configures now: a profile's
 * `mcp:` must name only those.
 */
export function storeSupply(
  store: ModelStore,
  puller: ModelPuller,
  mcpServers: () => readonly string[] = () => [],
): ModelSupply {
  return {
    async pull(reference, onProgress, signal) {
      await puller.pull(reference, { onProgress, ...(signal ? { signal } : {}) });
    },
    async create(name, input: ProfileInput, onProgress) {
      // Parsed before the first progress line, so a bad profile is a plain 400 rather than an error mid-stream.
      const definition =
        "modelfile" in input
          ? parseModelfile(input.modelfile)
          : parseYamlProfile(
              Object.fromEntries(Object.entries(input.fields).filter(([, value]) => value !== undefined)),
            );
      checkProfileMcp(definition.profile, mcpServers());
      const base = await store.show(definition.from).catch(() => {
        throw new FreeholdError(`the base model "${definition.from}" is not in the store; pull or import it first`, {
          code: "model_not_found",
          status: 404,
          type: "not_found_error",
          param: "from",
        });
      });
      onProgress({ status: "reading model metadata" });
      for (const file of base.manifest.files) onProgress({ status: `using existing layer ${file.digest}` });
      onProgress({ status: "writing manifest" });
      await store.create(name, base.name, definition.profile);
      onProgress({ status: "success" });
    },
  };
}

/**
 * Profiles in the store whose `mcp:` names a server this configuration does not have, one line each (`freehold
 * serve` refuses such a configuration at start and on SIGHUP, as it refuses a route that names an unknown server).
 */
export async function profileMcpProblems(store: ModelStore, mcpServers: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const entry of await store.list()) {
    const details = await store.show(entry.name).catch(() => undefined);
    const profile = details?.manifest.profile;
    if (!profile?.mcp?.length) continue;
    try {
      checkProfileMcp(profile, mcpServers, `profile ${details!.name} (in the model store)`);
    } catch (error) {
      problems.push(
        `${(error as Error).message.replace(/, or leave it out of the profile$/, "")}, or create the profile again without it (freehold create ${details!.name} -f FILE)`,
      );
    }
  }
  return problems;
}

/** What a profile adds to a model's description (for `show` and /api/show). */
export function profileDescription(manifest: Manifest): Partial<ModelDescription> {
  if (!manifest.profile) return {};
  const base = manifest.source.kind === "profile" ? manifest.source.base : manifest.name;
  const lines: string[] = [];
  for (const [key, value] of Object.entries(profileParameters(manifest.profile))) {
    if (Array.isArray(value)) for (const stop of value) lines.push(`${key} ${JSON.stringify(stop)}`);
    else lines.push(`${key} ${value}`);
  }
  const parameters = lines.join("\n");
  return {
    profile: manifest.profile,
    base,
    modelfile: formatProfile(base, manifest.profile),
    profileParameters: parameters,
  };
}

/**
 * `serve --locked`: a check the resolver runs on every model it resolves, refusing names the lockfile does not list
 * and models whose files are not the ones it pins.
 */
export async function lockedModelsCheck(path: string): Promise<(manifest: Manifest) => void> {
  const lockfile = await readLockfile(path);
  if (!lockfile) {
    throw new FreeholdError(`--locked: there is no ${path}; write one with \`freehold lock\``, {
      code: "lockfile_missing",
      status: 400,
      type: "invalid_request_error",
    });
  }
  return (manifest) => {
    const entry = lockfile.models.find((model) => sameModelName(model.name, manifest.name));
    const refuse = (reason: string) => {
      throw new FreeholdError(
        `The model '${manifest.name}' ${reason}; this server serves only locked models (serve --locked).`,
        {
          code: "model_not_locked",
          status: 403,
          type: "permission_error",
        },
      );
    };
    if (!entry) refuse(`is not in ${path}`);
    const installed = manifest.files.map((file) => file.digest).join();
    if (installed !== entry!.files.map((file) => file.digest).join()) refuse(`is not the version ${path} pins`);
  };
}

export { ModelPuller };
