/** One answered HTTP request, as the request log and the control plane's recent-requests view keep it. */
export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  durationMs: number;
  requestId: string;
  api: string;
  key: string | null;
}
