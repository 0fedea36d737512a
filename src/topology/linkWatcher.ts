/** Ports that come and go while tracing (containers started or stopped):
 * netlink link notifications of the traced netns (read by the native side on a
 * thread inside it) trigger a fresh look at the bridge and its containers. */
import { native } from '../native';
import { attachContainers } from './containers';
import { BridgeView, describeBridge } from './links';

const SETTLE_MS = 150;

export class LinkWatcher {
  private monitor: { stop(): void } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private again = false;

  constructor(
    private view: BridgeView,
    private readonly uplinks: string[],
    /** null: -n, no container names. */
    private readonly dockerHost: string | undefined | null,
    private readonly onChange: (view: BridgeView) => void,
  ) {}

  start(): void {
    this.monitor = new (native().LinkMonitor)(this.view.netns.path ?? '', () => this.schedule());
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.monitor?.stop();
    this.monitor = undefined;
  }

  /** A burst of notifications (a container's veth pair, its master, its state) is one change. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), SETTLE_MS);
  }

  private async refresh(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      const view = describeBridge(this.view.netns, this.view.bridge.name, this.uplinks);
      if (this.dockerHost !== null) await attachContainers(view.netns, view.links.values(), this.dockerHost);
      this.view = view;
      if (this.monitor) this.onChange(view);
    } catch {
      // The bridge itself went away, or a device vanished mid-look: the next notification retries.
    } finally {
      this.busy = false;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    }
  }
}
