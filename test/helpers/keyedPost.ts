import type { InProcessApp } from "./inProcessApp.js";

/**
 * POSTs JSON to an in-process app with one of the test's named keys (default "owner"). `app` is read at call time,
 * since tests make it in `before`.
 */
export function keyedPost(app: () => InProcessApp, secrets: Record<string, string>) {
  return async (path: string, body: unknown, key = "owner"): Promise<Response> =>
    app().request(`http://localhost${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${secrets[key]}` },
      body: JSON.stringify(body),
    });
}
