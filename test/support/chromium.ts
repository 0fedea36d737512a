/** A real headless Chromium (Debian's `chromium`), driven over the DevTools protocol on
 * the pipe it offers (--remote-debugging-pipe: fd 3 in, fd 4 out, NUL-separated JSON),
 * so no driver package is needed. Records every network request the page makes. */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Readable, Writable } from 'stream';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

export class Browser {
  private readonly child: ChildProcess;
  private readonly input: Writable;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners: ((method: string, params: Record<string, unknown>, session?: string) => void)[] = [];
  private buffer = '';
  private readonly profile: string;
  /** Every URL the page asked for (Network.requestWillBeSent). */
  readonly requests: string[] = [];
  private session = '';

  constructor() {
    if (!CHROMIUM) throw new Error('chromium is not installed (apt-get install chromium)');
    this.profile = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-chromium-'));
    this.child = spawn(CHROMIUM, [
      '--headless=new', '--remote-debugging-pipe', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-default-apps', '--disable-sync',
      `--user-data-dir=${this.profile}`, 'about:blank',
    ], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    this.input = this.child.stdio[3] as Writable;
    const output = this.child.stdio[4] as Readable;
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => {
      this.buffer += chunk;
      let end: number;
      while ((end = this.buffer.indexOf('\0')) >= 0) {
        const message = JSON.parse(this.buffer.slice(0, end)) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: Record<string, unknown>; sessionId?: string };
        this.buffer = this.buffer.slice(end + 1);
        if (message.id !== undefined) {
          const p = this.pending.get(message.id);
          this.pending.delete(message.id);
          if (message.error) p?.reject(new Error(message.error.message));
          else p?.resolve(message.result);
        } else if (message.method) {
          for (const l of this.listeners) l(message.method, message.params ?? {}, message.sessionId);
        }
      }
    });
    this.listeners.push((method, params) => {
      if (method === 'Network.requestWillBeSent') this.requests.push(String((params.request as { url: string }).url));
    });
  }

  private send<T>(method: string, params: Record<string, unknown> = {}, session = this.session): Promise<T> {
    const id = this.nextId++;
    this.input.write(`${JSON.stringify({ id, method, params, ...(session ? { sessionId: session } : {}) })}\0`);
    return new Promise((resolve, reject) => this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject }));
  }

  /** Opens a page, records its requests, waits for its load event. */
  async open(url: string): Promise<void> {
    const { targetId } = await this.send<{ targetId: string }>('Target.createTarget', { url: 'about:blank' }, '');
    const { sessionId } = await this.send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true }, '');
    this.session = sessionId;
    await this.send('Network.enable');
    await this.send('Page.enable');
    const loaded = new Promise<void>((resolve) => this.listeners.push((method, _p, s) => {
      if (method === 'Page.loadEventFired' && s === sessionId) resolve();
    }));
    await this.send('Page.navigate', { url });
    await loaded;
  }

  /** Runs an expression in the page and returns its value (JSON-able). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send<{ result: { value: T }; exceptionDetails?: { text: string; exception?: { description?: string } } }>(
      'Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  }

  async screenshot(file: string): Promise<void> {
    const { data } = await this.send<{ data: string }>('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true });
    fs.writeFileSync(file, Buffer.from(data, 'base64'));
  }

  async close(): Promise<void> {
    try {
      await Promise.race([this.send('Browser.close', {}, ''), new Promise((r) => setTimeout(r, 2000))]);
    } catch {
      // already gone
    }
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGKILL');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    }
    // Its helper processes may still be writing their last files into the profile as they go.
    fs.rmSync(this.profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
}
