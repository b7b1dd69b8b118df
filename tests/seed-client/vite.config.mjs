// Builds build/app (our index.html + main.js and the three extracted seed components) into
// build/dist. Run by extract.mjs; nothing else needs this file.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

const here = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: path.join(here, 'build', 'app'),
  base: './',
  logLevel: 'warn',
  plugins: [vue()],
  build: {
    outDir: path.join(here, 'build', 'dist'),
    emptyOutDir: true,
    minify: false,
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 10_000,
  },
});
