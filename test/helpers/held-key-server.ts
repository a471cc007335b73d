// An HKP key server that knows no key and holds every lookup until the test lets it answer: a lookup
// that is still running, to see what else happens meanwhile. Real HTTP on a free loopback port.
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface HeldKeyServer {
  url: string;
  /** Lookups received so far (answered or held). */
  readonly received: number;
  /** Holds the lookups to come (the server starts holding). */
  hold(): void;
  /** Answers every held lookup, and those to come until the next `hold`, with HKP's "no keys" (404). */
  release(): void;
  stop(): Promise<void>;
}

export async function startHeldKeyServer(): Promise<HeldKeyServer> {
  let received = 0;
  let released = false;
  const held: ServerResponse[] = [];
  const answer = (response: ServerResponse) => response.writeHead(404, { "content-type": "text/plain" }).end("No keys found");
  const server = createServer((request, response) => {
    received += 1;
    request.resume();
    if (released) answer(response);
    else held.push(response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get received() {
      return received;
    },
    hold() {
      released = false;
    },
    release() {
      released = true;
      for (const response of held.splice(0)) answer(response);
    },
    async stop() {
      released = true;
      for (const response of held.splice(0)) answer(response);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
