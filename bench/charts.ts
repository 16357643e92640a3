// `npm run bench:charts -- [--latest] bench/results/<file>.json ...`: renders the charts of
// results files again (bench/lib/charts.ts), beside each file as `<file>-<chart>.svg`; with
// --latest also as bench/results/latest-<chart>.svg (what the READMEs show).
import fs from 'node:fs';
import path from 'node:path';
import { writeCharts } from './lib/charts.js';
import type { RunReport } from './lib/report.js';
import type { SoakReport } from './lib/soak-report.js';

const args = process.argv.slice(2);
const latest = args.includes('--latest');
const files = args.filter((a) => a !== '--latest');
if (files.length === 0 || args.includes('--help')) {
  console.log('usage: npm run bench:charts -- [--latest] bench/results/<file>.json ...');
  process.exit(files.length === 0 && !args.includes('--help') ? 2 : 0);
}
let failed = 0;
for (const file of files) {
  try {
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as RunReport | SoakReport;
    const written = writeCharts(json, file.replace(/\.json$/, ''), { latest });
    if (written.length === 0)
      console.log(`${file}: no chart (no open-loop, closed-loop or soak figures)`);
    for (const w of written) console.log(`written: ${path.relative(process.cwd(), w)}`);
  } catch (error) {
    failed += 1;
    console.error(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
