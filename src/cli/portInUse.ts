/**
 * `serve` on a port something else holds: name the port, who holds it when we can tell cheaply (a freehold server
 * answers `GET /` with "freehold is running", Ollama with "Ollama is running"), and how to pick another.
 */
export async function portInUseMessage(host: string, port: number): Promise<string> {
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  let holder = "another program";
  try {
    const response = await fetch(`http://${urlHost}:${port}/`, { signal: AbortSignal.timeout(1000) });
    const text = (await response.text()).slice(0, 200);
    if (/freehold is running/i.test(text)) holder = "another freehold server (see `freehold ps`)";
    else if (/ollama is running/i.test(text)) holder = "Ollama";
  } catch {
    // Not HTTP, or not answering: "another program" is all we can say without scanning every process.
  }
  return `port ${port} on ${host} is already in use by ${holder}. Stop it, or choose another port with --port N (or FREEHOLD_PORT, or FREEHOLD_HOST=${host}:N)`;
}
