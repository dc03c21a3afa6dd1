/**
 * What a new key's name says (docs/anomalies.md): named like a ransom note, or an extension
 * swap (a key deleted in the same run plus an extra extension, or a known ransomware extension).
 * Pure functions; the detector keeps the run's deleted keys.
 */
import { compileGlob } from '../policy/glob.js';
import { DATA_EXTENSIONS, extensionOf } from './anomaly-sniff.js';

/**
 * Base names of well-known ransom notes (case-insensitive globs). Each needs a word of
 * ransom (decrypt, ransom, recover/restore + files) or the typical `!!!` frame, so that
 * README.md, _SUCCESS, _delta_log, *.crc and data files never match.
 */
export const RANSOM_NOTE_PATTERNS: readonly string[] = [
  'how_to_decrypt*',
  'how-to-decrypt*',
  'how_to_restore*',
  'how_to_recover*',
  'how_to_back_files*',
  '*decrypt*files*',
  '*files*decrypt*',
  'readme*decrypt*',
  '*decrypt*instructions*',
  '*decrypt*readme*',
  'help_decrypt*',
  '#decrypt*',
  '*restore*files*',
  '*recover*files*',
  '*restore_my_files*',
  '_readme.txt',
  '!!!*!!!*',
  '*ransom*',
  '*your_files*encrypted*',
  '*files*encrypted*',
  '*readme*warning*',
];

/** Extensions ransomware families give the files they encrypt (lower case, without the dot). */
export const RANSOMWARE_EXTENSIONS: ReadonlySet<string> = new Set([
  'locked',
  'encrypted',
  'enc',
  'crypt',
  'crypted',
  'crypto',
  'ransom',
  'pay',
  'wncry',
  'wnry',
  'wcry',
  'locky',
  'cerber',
  'zepto',
  'odin',
  'cry',
  'crinf',
  'r5a',
  'xtbl',
  'vault',
]);

/**
 * Every built-in pattern contains one of these words literally (a unit test holds it to that):
 * a base name with none of them is matched against the policy's patterns only, so the common
 * case, a data file, costs one lower-casing and a few substring searches instead of 21 regexps.
 */
export const RANSOM_NOTE_WORDS: readonly string[] = ['decrypt', 'restore', 'recover', 'ransom', 'readme', '!!!', 'encrypted', 'how_to'];

function caseInsensitive(glob: string): RegExp {
  const re = compileGlob(glob);
  return new RegExp(re.source, `${re.flags}i`);
}

/** A case-insensitive matcher of ransom-note base names: the built-in patterns plus `extra`. */
export function ransomNoteMatcher(extra: readonly string[] = []): (key: string) => boolean {
  const builtIn = RANSOM_NOTE_PATTERNS.map(caseInsensitive);
  const added = extra.map(caseInsensitive);
  return (key) => {
    const base = key.slice(key.lastIndexOf('/') + 1);
    if (base === '') return false;
    if (added.some((re) => re.test(base))) return true;
    const lower = base.toLowerCase();
    return RANSOM_NOTE_WORDS.some((w) => lower.includes(w)) && builtIn.some((re) => re.test(base));
  };
}

/** Whether a key ends in an extension ransomware gives the files it encrypts. */
export function hasRansomwareExtension(key: string): boolean {
  return RANSOMWARE_EXTENSIONS.has(extensionOf(key));
}

/**
 * Whether `key` is a key deleted in the same run (`wasDeleted`) plus one or more extra
 * extensions (`a.parquet` → `a.parquet.x7k2`), other than a data format's (`a.csv` → `a.csv.gz`
 * is a conversion, not a swap).
 */
export function isExtensionSwap(key: string, wasDeleted: (key: string) => boolean): boolean {
  const baseStart = key.lastIndexOf('/') + 1;
  for (let dot = key.indexOf('.', baseStart + 1); dot !== -1; dot = key.indexOf('.', dot + 1)) {
    if (!wasDeleted(key.slice(0, dot))) continue;
    const added = key.slice(dot + 1).toLowerCase().split('.');
    if (!added.every((ext) => DATA_EXTENSIONS.has(ext))) return true;
  }
  return false;
}
