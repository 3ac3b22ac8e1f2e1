/**
 * Build step: bundles the dashboard (web/: Preact, uPlot) with esbuild into dist/ui/ (index.html, app.js,
 * app.css), which every node serves at /ui. Run by `npm run build` after tsc; nothing is fetched at run time.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const out = path.join(root, 'dist', 'ui');

mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: path.join(root, 'web', 'main.tsx') },
  outdir: out,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'linked',
  logLevel: 'warning',
});
copyFileSync(path.join(root, 'web', 'index.html'), path.join(out, 'index.html'));
