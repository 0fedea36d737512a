/** The Docker Engine API over its unix socket: which containers run, their
 * names, images and init pids. Read-only, one list and one inspect per
 * container, all within one deadline, a few at a time, each answer bounded;
 * an absent or misbehaving engine is not an error: it costs names only. */
import * as fs from 'fs';
import * as http from 'http';
import { BnError } from '../errors';

export interface DockerContainerInfo {
  id: string;
  name: string;
  image: string;
  pid: number;
}

/** The whole listing, every request included: a socket that trickles a byte a second
 * costs names, never the capture. */
const DEADLINE_MS = 2000;
/** A listing or an inspect larger than this is not an engine's answer. */
const MAX_BODY_BYTES = 8 << 20;
/** Inspects in flight at once (20k containers must not open 20k sockets). */
const IN_FLIGHT = 4;

/** --docker-host, then DOCKER_HOST, then the default socket; unix sockets only. */
export function dockerSocket(explicit?: string): string | undefined {
  const value = explicit ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  const unix = value.startsWith('unix://') || value.startsWith('/');
  const socket = value.replace(/^unix:\/\//, '');
  // Asked for by name: say what is wrong with it. Found by default: optional.
  if (explicit !== undefined && !unix) throw new BnError('DOCKER_HOST', `--docker-host ${explicit}: only unix sockets are supported`);
  if (explicit !== undefined && !fs.existsSync(socket)) throw new BnError('DOCKER_HOST', `--docker-host ${explicit}: no such socket`);
  return unix && fs.existsSync(socket) ? socket : undefined;
}

function get<T>(socketPath: string, path: string, deadline: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    if (deadline.aborted) return reject(new Error(`${path}: past the deadline`));
    const req = http.request({ socketPath, path, method: 'GET', headers: { Host: 'docker' }, signal: deadline }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_BODY_BYTES) req.destroy(new Error(`${path}: an answer over ${MAX_BODY_BYTES} bytes`));
        else chunks.push(d);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`${path}: HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Running containers with their init pids; [] when no engine answers. */
export async function dockerContainers(socketPath: string | undefined): Promise<DockerContainerInfo[]> {
  if (!socketPath) return [];
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), DEADLINE_MS);
  const found: DockerContainerInfo[] = [];
  try {
    const list = await get<{ Id: string }[]>(socketPath, '/containers/json', deadline.signal);
    if (!Array.isArray(list)) return [];
    let next = 0;
    // A few workers over the list; what the deadline cuts off stays unnamed.
    const worker = async () => {
      while (next < list.length && !deadline.signal.aborted) {
        const id = String(list[next++]?.Id ?? '');
        if (!/^[0-9a-f]{12,64}$/.test(id)) continue;
        const c = await get<{ Id: string; Name: string; Config: { Image: string }; State: { Pid: number } }>(
          socketPath, `/containers/${id}/json`, deadline.signal).catch(() => undefined);
        if (c?.State?.Pid && c.State.Pid > 0) found.push({ id: c.Id, name: String(c.Name ?? '').replace(/^\//, ''), image: String(c.Config?.Image ?? ''), pid: c.State.Pid });
      }
    };
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, list.length) }, worker));
    return found;
  } catch {
    return found;
  } finally {
    clearTimeout(timer);
  }
}
