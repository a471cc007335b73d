// Connecting to a checked destination: its addresses are tried in the resolver's order, moving to the
// next one only when this one could not be reached at all (as a client resolving the name itself would
// do), never after the server answered.

export async function connectInTurn<A, T>(addresses: A[], attempt: (address: A) => Promise<T>): Promise<T> {
  let failure: unknown = new Error("no address to connect to");
  for (const address of addresses) {
    try {
      return await attempt(address);
    } catch (err) {
      // The system call that failed: `connect` means nothing answered at this address.
      if ((err as { syscall?: string }).syscall !== "connect") throw err;
      failure = err;
    }
  }
  throw failure;
}
