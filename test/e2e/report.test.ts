/** `report`: a recorded trace drawn as the bridge/netfilter diagram, opened in a real
 * headless Chromium: the hooks the packets took, the bridge and its ports by name, the
 * drop with its chain and rule, paths and packets to click, and no network request. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import { Browser } from '../support/chromium';
import { runCli, traceWhile } from '../support/cli';

describe('report', () => {
  let lab: DockerLikeLab;
  let dir: string;
  let trace: string;
  let browser: Browser | undefined;
  beforeAll(async () => {
    lab = new DockerLikeLab().create();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-report-'));
    trace = path.join(dir, 'drop.bnt');
    const [c1, c2] = lab.containers;
    lab.exec(lab.host, 'iptables', ['-N', 'BN-USER']);
    lab.exec(lab.host, 'iptables', ['-I', 'FORWARD', '-j', 'BN-USER']);
    lab.exec(lab.host, 'iptables', ['-A', 'BN-USER', '-s', c1.ip, '-d', lab.wanIp, '-p', 'icmp', '-j', 'DROP']);
    await traceWhile([lab.bridge, '--netns', lab.host, '-w', trace, '--rules', 'icmp'], () => {
      lab.ping(c1.netns, lab.wanIp, 2);
      lab.ping(c1.netns, c2.ip, 2);
    }, { command: 'record' });
  });
  afterAll(async () => {
    await browser?.close();
    lab?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('draws the hooks taken, the ports, the drop with its chain and rule, and lets a path and a packet be chosen', async () => {
    const [c1, c2] = lab.containers;
    const html = path.join(dir, 'report.html');
    const r = runCli(['report', trace, '-o', html]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.statSync(html).mode & 0o777).toBe(0o600);

    browser = new Browser();
    const url = `file://${html}`;
    await browser.open(url);
    const dom = await browser.evaluate<{
      nodes: { id: string; touched: boolean; drops: number; text: string; title: string }[]; counts: number[]; svgText: string; header: string;
    }>(`(() => ({
      nodes: [...document.querySelectorAll('svg#diagram .node')].map((n) => ({ id: n.dataset.node, touched: n.classList.contains('touched'),
        drops: Number(n.dataset.drops), text: n.textContent, title: [...n.querySelectorAll('title')].map((t) => t.textContent).join('\\n') })),
      counts: [...document.querySelectorAll('svg#diagram .edge .count')].map((t) => Number(t.textContent)),
      svgText: document.querySelector('svg#diagram').textContent,
      header: document.querySelector('.facts').textContent,
    }))()`);
    const touched = dom.nodes.filter((n) => n.touched).map((n) => n.id);
    // The routed (dropped) ping and the bridged one: the hooks they took, the ports they came by.
    for (const id of [`port:${c1.hostVeth}`, `port:${c2.hostVeth}`, 'ipv4:PREROUTING', 'ipv4:FORWARD', 'decision:bridge']) expect(touched, id).toContain(id);
    expect(dom.svgText).toContain(lab.bridge);
    expect(dom.nodes.find((n) => n.id === 'ipv4:FORWARD')!.text).toContain('ip filter/FORWARD');
    const drop = dom.nodes.find((n) => n.drops > 0)!;
    expect(drop.id).toBe('ipv4:FORWARD');
    expect(drop.title).toMatch(/DROP at ip filter\/BN-USER, rule \d+: .*ip saddr 192\.168\.222\.2 ip daddr 10\.200\.0\.2 .*drop/);
    expect(dom.counts.length).toBeGreaterThan(0);
    expect(dom.counts.every((n) => n > 0)).toBe(true);
    expect(dom.header).toContain(lab.bridge);
    expect(dom.header).toMatch(/lost events0/);

    // A dropped path, then one of its packets: its hop lines, as replay prints them.
    const chosen = await browser.evaluate<{ highlighted: string[]; packets: string[] }>(`(() => {
      document.querySelector('tr.path.dropped').click();
      return { highlighted: [...document.querySelectorAll('svg#diagram .node.hl')].map((n) => n.dataset.node),
        packets: [...document.querySelectorAll('#packets li')].map((li) => li.dataset.packet) };
    })()`);
    expect(chosen.highlighted).toContain('ipv4:FORWARD');
    expect(chosen.highlighted).not.toContain(`port:${c2.hostVeth}`);
    expect(chosen.packets.length).toBeGreaterThan(0);
    const text = await browser.evaluate<string>(`(() => { document.querySelector('#packets li').click(); return document.querySelector('#packet').textContent; })()`);
    const replay = runCli(['replay', trace]).stdout;
    const block = replay.split(/\n(?=#\d+ )/).find((b) => b.startsWith(`#${chosen.packets[0]} `))!;
    expect(text.trimEnd()).toBe(block.trimEnd());
    expect(text).toMatch(/DROPPED .* by rule \d+ in filter BN-USER/);

    // Nothing but the file itself was loaded.
    expect(browser.requests).toEqual([url]);
  }, 60_000);

  it('watch --report draws what it showed when it stops', async () => {
    const html = path.join(dir, 'live.html');
    const w = await traceWhile([lab.bridge, '--netns', lab.host, '--report', html, 'icmp'], () => lab.ping(lab.containers[1].netns, lab.wanIp, 1));
    expect(w.traversals().length).toBeGreaterThan(0);
    const page = fs.readFileSync(html, 'utf8');
    expect(page).toContain('<svg id="diagram"');
    expect(page).toContain(`data-node="port:${lab.containers[1].hostVeth}"`);
    expect(page).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);
  });
});
