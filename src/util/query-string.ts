/**
 * A URL's query as lakeguard's servers read it: `name=value` pairs split on '&', each
 * percent-decoded. A '+' stays a '+' (a space only in HTML form decoding; S3 clients send a
 * space as %20): a base64 token written into a URL keeps its '+'.
 */

/** The query's parameters in order, decoded (a malformed escape is kept as sent). */
export function splitQuery(rawQuery: string): [string, string][] {
  const decode = (s: string): string => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? [decode(p), ''] : [decode(p.slice(0, eq)), decode(p.slice(eq + 1))];
    });
}
