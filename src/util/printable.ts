/**
 * Text that is safe to print on a terminal. Object keys come from whoever writes to the data
 * lake: a key with ESC can recolour, hide or rewrite what an operator reads (`\x1b[2K`), one
 * with a newline or CR can forge a line of output, one with a bidi override reorders it. Every
 * text renderer that prints keys (tables, summaries, failures, errors) goes through here; --json
 * and CSV keep the raw bytes.
 *
 * The printed form (documented in docs/output.md):
 *   \t \n \r               tab, newline, carriage return
 *   \xHH                   other C0 controls, DEL, C1 controls (U+0080-U+009F)
 *   \uHHHH                 line/paragraph separators and bidi controls (U+2028-2029,
 *                          U+202A-202E, U+2066-2069)
 *   \x20                   a space that ends the value (a table would trim it)
 *   \\                     a backslash that would otherwise read as the start of one of these
 * Any other backslash is printed as it is, so `logs\2026\a.csv` stays pasteable; the form is
 * unambiguous: read left to right, `\\` is one backslash and the sequences above are escapes.
 */

const UNSAFE = '\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069';
/**
 * An unsafe character, a space that ends the value (tables trim trailing blanks: `trail ` would
 * read as `trail`), or a backslash that an escape-like sequence (or an escape) follows.
 */
const ESCAPE = new RegExp(`[${UNSAFE}]| $|\\\\(?=[\\\\xutnr${UNSAFE}]| $)`, 'g');
/** Only what can drive a terminal (not backslashes), so that text already printable() passes unchanged. */
const ESCAPE_KEEP_NEWLINES = new RegExp(`(?!\\n)[${UNSAFE}]`, 'g');

const NAMED: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r', '\\': '\\\\' };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One value (a key, a name, a message) as a single printable line. */
export function printable(text: string): string {
  return text.replace(ESCAPE, escapeChar);
}

/**
 * Human text of several lines: the line breaks the program put there stay, every other control
 * character is escaped. Backslashes are left alone, so values already printable() inside pass
 * unchanged: keys should be printable() where they are put into the text (a newline in a key
 * is only escaped there); this is the net under it that keeps escapes off the terminal.
 */
export function printableLines(text: string): string {
  return text.replace(ESCAPE_KEEP_NEWLINES, escapeChar);
}
