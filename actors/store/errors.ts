// Errors the store raises that callers turn into answers (HTTP 404/409, an error reply).

export class NotFound extends Error {
  override readonly name = "NotFound";
}

export class Conflict extends Error {
  override readonly name = "Conflict";
}
