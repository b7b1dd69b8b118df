// Extracts the seed article's three Vue components, verbatim, into build/app/ next to our own
// index.html and main.js, and builds them with Vite into build/dist/. The build is skipped when
// its inputs (the extracted components, app/, vite.config.mjs, package-lock.json) are unchanged.
//
// The seed is found at $ROOMCAST_SEED, else at <repo root>/../shared/seed/000_e2ed3aeb104cac2f.txt.
// Each component is one fenced code block of the article, recognised by its first line; the
// block is written byte for byte, that first `// X.vue ...` comment line included: Vue's SFC
// parser ignores text outside the top-level blocks, so no line needs to be removed.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const SEED_NAME = '000_e2ed3aeb104cac2f.txt';
const seedPath = process.env.ROOMCAST_SEED
  ? path.resolve(process.env.ROOMCAST_SEED)
  : path.resolve(repoRoot, '..', 'shared', 'seed', SEED_NAME);

// file name -> first line of its code block in the article
const COMPONENTS = {
  'Chat.vue': '// Chat.vue 整组件',
  'ChatRoom.vue': '// ChatRoom.vue 房间组件',
  'CreateChat.vue': '// CreateChat.vue',
};

function die(message) {
  console.error(`extract.mjs: ${message}`);
  process.exit(3);
}

if (!existsSync(seedPath)) {
  die(
    `seed article not found at ${seedPath}\n` +
      `  set ROOMCAST_SEED to the path of ${SEED_NAME}, or put the shared/ folder beside the repository`,
  );
}

const article = (await readFile(seedPath, 'utf8')).replace(/\r\n/g, '\n');
const blocks = [];
for (const match of article.matchAll(/^```[^\n]*\n([\s\S]*?)^```[ \t]*$/gm)) blocks.push(match[1]);

const { parse } = await import('@vue/compiler-sfc');
const sources = {};
for (const [file, firstLine] of Object.entries(COMPONENTS)) {
  const found = blocks.filter((body) => body.split('\n', 1)[0].trim() === firstLine);
  if (found.length !== 1) die(`expected one code block starting with "${firstLine}" in ${seedPath}, found ${found.length}`);
  sources[file] = found[0];
  const { errors } = parse(found[0], { filename: file });
  if (errors.length) die(`${file} as extracted is not a valid SFC: ${errors.map(String).join('; ')}`);
}

const buildDir = path.join(here, 'build');
const appDir = path.join(buildDir, 'app');
const distDir = path.join(buildDir, 'dist');
const stampFile = path.join(buildDir, 'inputs.sha256');

const hash = createHash('sha256');
for (const file of Object.keys(COMPONENTS)) hash.update(`${file}\0${sources[file]}\0`);
for (const file of ['app/index.html', 'app/main.js', 'vite.config.mjs', 'package-lock.json']) {
  hash.update(`${file}\0`).update(await readFile(path.join(here, file))).update('\0');
}
const digest = hash.digest('hex');

if (
  existsSync(path.join(distDir, 'index.html')) &&
  existsSync(stampFile) &&
  (await readFile(stampFile, 'utf8')).trim() === digest
) {
  console.log('extract.mjs: seed client unchanged, build skipped');
  process.exit(0);
}

await mkdir(appDir, { recursive: true });
for (const [file, source] of Object.entries(sources)) await writeFile(path.join(appDir, file), source);
for (const file of ['index.html', 'main.js']) await copyFile(path.join(here, 'app', file), path.join(appDir, file));

const started = Date.now();
const { build } = await import('vite');
await build({ configFile: path.join(here, 'vite.config.mjs') });
await writeFile(stampFile, `${digest}\n`);
console.log(`extract.mjs: seed client extracted from ${seedPath} and built in ${Date.now() - started} ms`);
