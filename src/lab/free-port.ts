/** Free loopback ports for the lab's throwaway daemons (slapd, the SOGo stacks). */
import { createServer } from 'node:net';

/**
 * A port nobody listens on now on `host` (the OS picks it). A daemon may still lose it to someone else
 * before it binds, so the callers retry their start.
 */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
