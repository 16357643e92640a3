// Builds the browser client into web/dist, which the server serves at `/` (src/http/web.ts).
// The client library is imported from its source (../client/src), so there is one implementation.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here('.'),
  // Relative URLs: the page works under a path prefix too.
  base: './',
  resolve: { alias: { '@chat-server/client': here('../client/src/index.ts') } },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  logLevel: 'warn',
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    target: 'es2022',
    // Current browsers preload modules natively; the polyfill would be the only inline code.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
});
