import type { GenerateRequest } from "../core/chat.js";
import { applyProfile, type ProfileSource } from "../core/profile.js";
import type { Generation } from "./ports.js";

/** The request as the named model's profile makes it (its defaults, system prompt and examples), or as it came. */
export async function profiledRequest(profiles: ProfileSource, request: GenerateRequest): Promise<GenerateRequest> {
  return applyProfile(request, await profiles.profile(request.model));
}

/**
 * The pipeline's second stage: the profile of the name the client asked for is applied before anything measures or
 * classifies the request, so a key's reservation counts the profile's system prompt, examples and default
 * max_tokens, and the privacy policy classifies the body as it will leave (issue 19's ordering bug: the engine
 * applied it after metering).
 */
export function profiled<E>(profiles: ProfileSource, inner: Generation<E>): Generation<E> {
  return async function* profiledGeneration(request, context, signal) {
    yield* inner(await profiledRequest(profiles, request), context, signal);
  };
}
