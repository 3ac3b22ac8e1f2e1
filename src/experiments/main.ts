/**
 * `npm run experiments [-- --quick] [-- --out <dir>]`: runs the four experiments on this machine and writes
 * the raw results, report.html and SUMMARY.md (default directory: results/). QKV_EXPERIMENTS=quick also
 * selects the tiny configuration.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FULL, QUICK } from './config.js';
import { renderExisting, runPipeline } from './pipeline.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      out: { type: 'string' },
      'render-only': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write('usage: npm run experiments [-- --quick] [-- --out <dir>] [-- --render-only]\n');
    return;
  }
  const quick = values.quick === true || process.env.QKV_EXPERIMENTS === 'quick';
  const out = path.resolve(values.out ?? 'results');
  if (values['render-only'] === true) {
    renderExisting(out);
    process.stdout.write(`re-rendered ${out}/report.html and SUMMARY.md from its JSON files\n`);
    return;
  }
  await runPipeline(quick ? QUICK : FULL, out, (l) => process.stdout.write(l + '\n'));
}

main().catch((e: unknown) => {
  process.stderr.write(`experiments: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
