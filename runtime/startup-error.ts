/** A failure the operator can fix, reported as one clear line instead of a stack trace. */
export class StartupError extends Error {
  override readonly name = "StartupError";
}
