/** An error the runner sends back as a client's 4xx/5xx (main.ts turns it into an ErrorPayload). */
export function requestError(message: string, code: string, status: number, param: string | null = null): Error {
  return Object.assign(new Error(message), { code, status, param, retryable: false });
}
