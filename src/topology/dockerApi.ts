/** The Docker Engine API over its unix socket: which containers run, their
 * names, images and init pids. Read-only, one list and one inspect per
 * container, with a short timeout; an absent engine is not an error. */
import * as fs from 'fs';
import * as http from 'http';
import { BnError } from '../errors';

export interface DockerContainerInfo {
  id: string;
  name: string;
  image: string;
  pid: number;
}

const TIMEOUT_MS = 2000;

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

function get<T>(socketPath: string, path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method: 'GET', timeout: TIMEOUT_MS, headers: { Host: 'docker' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`${path}: HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(body) as T);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Running containers with their init pids; [] when no engine answers. */
export async function dockerContainers(socketPath: string | undefined): Promise<DockerContainerInfo[]> {
  if (!socketPath) return [];
  try {
    const list = await get<{ Id: string }[]>(socketPath, '/containers/json');
    const inspected = await Promise.all(list.map((c) => get<{
      Id: string; Name: string; Config: { Image: string }; State: { Pid: number };
    }>(socketPath, `/containers/${c.Id}/json`).catch(() => undefined)));
    return inspected.filter((c): c is NonNullable<typeof c> => !!c && c.State.Pid > 0).map((c) => ({
      id: c.Id, name: c.Name.replace(/^\//, ''), image: c.Config.Image, pid: c.State.Pid,
    }));
  } catch {
    return [];
  }
}
