// Ports for a lakeguard server a test starts as a child process with a fixed --listen (or a
// policy's events address), and a connection made once it listens.
import { connect, createServer, type Socket } from 'node:net';

/** A port nothing listens on now (the system's pick, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** A connection to 127.0.0.1:`port`, tried again (every 100 ms) while nothing listens there yet. */
export async function connectWhenListening(port: number): Promise<Socket> {
  for (;;) {
    const socket = await new Promise<Socket | null>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', () => resolve(null));
    });
    if (socket !== null) return socket;
    await new Promise((r) => setTimeout(r, 100));
  }
}
