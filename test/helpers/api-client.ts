// An HTTP client for the API in tests: JSON in, status and parsed JSON out.

export interface HttpResult {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: parsed JSON of any shape; each test asserts the fields it expects
  body: any;
  headers: Headers;
}

/** `body` is sent as JSON (a string is sent as it is, to test malformed JSON). */
export async function callApi(baseUrl: string, token: string | null, method: string, path: string, body?: unknown): Promise<HttpResult> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let payload: string | undefined;
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(`${baseUrl}${path}`, { method, headers, ...(payload !== undefined && { body: payload }) });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : (JSON.parse(text) as unknown), headers: response.headers };
}
