// Errors with an HTTP status. Every error body is `{ error, message }`, plus `field` for a bad request.

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export const badRequest = (field: string, message: string) => new HttpError(400, message, field);
export const notFound = (what: string) => new HttpError(404, `${what} not found`);

export interface ErrorBody {
  error: string;
  message: string;
  field?: string;
}

const NAMES: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  408: "request_timeout",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "unprocessable",
  429: "too_many_requests",
  431: "headers_too_large",
  500: "internal",
  503: "unavailable",
  504: "timeout",
};

export function errorBody(status: number, message: string, field?: string): ErrorBody {
  return { error: NAMES[status] ?? `http_${status}`, message, ...(field !== undefined && { field }) };
}
