/** A Docker socket that misbehaves costs container names, never the capture: a
 * socket that trickles, an answer without end, an engine with 20k containers. */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import { dockerContainers } from '../../src/topology/dockerApi';
import { WatchProcess } from '../support/cli';

type Behaviour = (sock: net.Socket, request: string) => void;

/** A unix socket server that answers every request with `behaviour`. */
async function fakeEngine(file: string, behaviour: Behaviour): Promise<{ server: net.Server; open: () => number; peak: () => number; requests: () => number }> {
  let open = 0;
  let peak = 0;
  let requests = 0;
  const server = net.createServer((sock) => {
    open++;
    peak = Math.max(peak, open);
    sock.on('close', () => open--);
    sock.on('error', () => undefined);
    let buf = '';
    sock.on('data', (d) => {
      buf += d;
      if (!buf.includes('\r\n\r\n')) return;
      requests++;
      behaviour(sock, buf);
      buf = '';
    });
  });
  await new Promise<void>((r) => server.listen(file, r));
  return { server, open: () => open, peak: () => peak, requests: () => requests };
}

const json = (sock: net.Socket, body: unknown) => {
  const text = JSON.stringify(body);
  sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
};

describe('Docker API client bounds', () => {
  let dir: string;
  let lab: DockerLikeLab;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-docker-'));
    lab = new DockerLikeLab({ containers: 1 }).create();
  });
  afterAll(() => {
    lab?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a socket that trickles a byte a second: tracing starts within seconds, without names', async () => {
    const file = path.join(dir, 'trickle.sock');
    const timers: NodeJS.Timeout[] = [];
    const engine = await fakeEngine(file, (sock) => {
      const reply = 'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n[';
      let i = 0;
      timers.push(setInterval(() => (i < reply.length ? sock.write(reply[i++]) : sock.write(' ')), 1000));
    });
    try {
      const started = Date.now();
      const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--docker-host', file]);
      await w.ready(10_000);
      expect(Date.now() - started).toBeLessThan(8000);
      expect(await w.stop()).toBe(0);
    } finally {
      timers.forEach(clearInterval);
      engine.server.close();
    }
  }, 30_000);

  it('an answer without end is cut at its cap, and memory stays small', async () => {
    const file = path.join(dir, 'endless.sock');
    const engine = await fakeEngine(file, (sock) => {
      sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = Buffer.alloc(1 << 16, 0x20);
      const pump = () => {
        while (!sock.destroyed && sock.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`));
        if (!sock.destroyed) sock.once('drain', pump);
      };
      pump();
    });
    try {
      const before = process.memoryUsage().rss;
      expect(await dockerContainers(file)).toEqual([]);
      expect(process.memoryUsage().rss - before).toBeLessThan(200 << 20);
    } finally {
      engine.server.close();
    }
  }, 30_000);

  it('20,000 containers: a few requests at a time, and the deadline holds', async () => {
    const file = path.join(dir, 'many.sock');
    const ids = Array.from({ length: 20000 }, (_, i) => i.toString(16).padStart(64, '0'));
    const engine = await fakeEngine(file, (sock, request) => {
      if (request.startsWith('GET /containers/json')) return json(sock, ids.map((Id) => ({ Id })));
      const id = /\/containers\/([0-9a-f]+)\/json/.exec(request)?.[1] ?? '';
      setTimeout(() => json(sock, { Id: id, Name: `/c-${id.slice(-4)}`, Config: { Image: 'x' }, State: { Pid: 1 } }), 5);
    });
    try {
      const started = Date.now();
      const found = await dockerContainers(file);
      expect(Date.now() - started).toBeLessThan(4000);
      expect(engine.peak()).toBeLessThanOrEqual(5); // the listing's socket and four inspects
      expect(found.length).toBeGreaterThan(0);
      expect(found.length).toBeLessThan(ids.length); // the deadline cut the rest: names only are lost
      expect(found[0]).toMatchObject({ name: expect.stringMatching(/^c-/), pid: 1 });
    } finally {
      engine.server.close();
    }
  }, 30_000);
});
