/** One working directory for every CLI run of the suite (nothing a test writes lands in the
 * checkout), made before the workers start and removed when the run ends: a worker's own
 * exit handlers do not run when the pool stops it. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export default function setup(): () => void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-cli-cwd-'));
  process.env.BN_CLI_CWD = dir;
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
