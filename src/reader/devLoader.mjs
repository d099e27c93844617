// Development loader: lets `node --experimental-transform-types --import ./src/reader/devLoader.mjs
// src/reader/main.ts` run the TypeScript sources directly (they import siblings as `./x.js`, NodeNext
// style, so map those back to the `.ts` files when the `.js` does not exist).
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
export async function resolve(specifier, context, next) {
  if ((specifier.startsWith('./') || specifier.startsWith('../')) && specifier.endsWith('.js') && context.parentURL?.startsWith('file:')) {
    const ts = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);
    if (existsSync(fileURLToPath(ts))) return next(ts.href, context);
  }
  return next(specifier, context);
}`),
);
