import { DockerLikeLab } from './src/lab/dockerLike';
import { spawn } from 'child_process';
const argv = (process.env.TRY_ARGS ?? '').split(' ').filter(Boolean);
const mode = argv[0] ?? 'watch';
const extra = argv.slice(1);
const lab = new DockerLikeLab().create();
const [c1, c2] = lab.containers;
const child = spawn(process.execPath, ['/work/main/bin/bpftrace-net.js', mode, lab.bridge, '--netns', lab.host, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
let out = '', err = '';
child.stdout.on('data', (d) => (out += d));
child.stderr.on('data', (d) => (err += d));
(async () => {
  for (let i = 0; i < 200 && !err.includes('watching'); i++) { if (child.exitCode !== null) break; await new Promise((r) => setTimeout(r, 100)); }
  lab.ping(c1.netns, lab.wanIp, 3);
  lab.ping(c1.netns, c2.ip, 1);
  await new Promise((r) => setTimeout(r, 2500));
  child.kill('SIGINT');
  await new Promise((r) => child.on('exit', r));
  lab.destroy();
  console.log(out); console.log(err.slice(0, 4000));
})();
