import path from 'node:path';

/** Whether path `child` is `parent` or lies below it (lexically: resolve links first where they matter). */
export function isWithin(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
