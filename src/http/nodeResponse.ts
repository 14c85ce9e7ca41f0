/**
 * What the HTTP layer uses of @hono/node-server's `c.env.outgoing` (Node's ServerResponse), described by shape so
 * this layer needs no Node networking import: whether the answer finished, its Content-Length, and its end events.
 */
export interface NodeResponse {
  readonly writableFinished: boolean;
  getHeader(name: string): number | string | string[] | undefined;
  once(event: "finish" | "close", listener: () => void): unknown;
}
