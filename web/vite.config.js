// Vite builds the dashboard into web/dist, which the daemon serves at / (docs/dashboard.md).
// Hashed file names go under assets/ (served immutable); no inline scripts (the CSP forbids them).
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    target: 'es2022',
    chunkSizeWarningLimit: 400,
    rolldownOptions: { checks: { pluginTimings: false } },
  },
  server: {
    // `npm run dev` proxies the API to a running daemon (UMG_ADDR, default 127.0.0.1:8080).
    proxy: { '/v1': `http://${process.env.UMG_ADDR || '127.0.0.1:8080'}` },
  },
  test: {
    include: ['tests/unit/**/*.test.js'],
    environment: 'node',
  },
});
