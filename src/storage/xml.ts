import { S3MalformedResponseError } from './s3-transport.js';

/** One element of a parsed document: its name, its child elements in order, and its text. */
export interface XmlElement {
  name: string;
  children: XmlElement[];
  /** The element's own text with entities decoded ('' for an element with children). */
  text: string;
}

const TAG = /^(\/?)([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*"[^"<]*")*)\s*(\/?)$/;
const ENTITY = /&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g;
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * A strict parser for the small XML documents S3 answers with. A lenient one (a regex per
 * element) reads a body with one damaged byte as a shorter, valid-looking answer — a listing
 * that silently lacks an object. This one refuses what damage produces instead: mismatched or
 * unclosed tags, a stray '<', an unknown entity, anything outside the root element. Errors say
 * "XML parse error" and are S3MalformedResponseErrors: a damaged answer, worth another request.
 */
export function parseXml(xml: string): XmlElement {
  let i = xml.startsWith('<?xml') ? xml.indexOf('?>') + 2 : 0;
  if (i === 1) fail('the XML declaration is not closed');
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  for (;;) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt === -1 ? xml.length : lt);
    const parent = stack[stack.length - 1];
    if (parent === undefined) {
      if (text.trim() !== '') fail('text outside the root element');
    } else if (text !== '') {
      parent.text += decodeEntities(text);
    }
    if (lt === -1) break;
    if (root !== undefined) fail('content after the root element');
    const gt = xml.indexOf('>', lt);
    if (gt === -1) fail('a tag is not closed');
    let closing = '';
    let name: string | undefined;
    let selfClosing = '';
    // Fast path for the common <Name> and </Name>; attributes and the rest go through TAG.
    const from = xml.charCodeAt(lt + 1) === 0x2f ? lt + 2 : lt + 1;
    let end = from;
    while (end < gt && isNameChar(xml.charCodeAt(end))) end++;
    if (end === gt && end > from && isNameStart(xml.charCodeAt(from))) {
      closing = from === lt + 2 ? '/' : '';
      name = xml.slice(from, end);
    } else {
      const m = TAG.exec(xml.slice(lt + 1, gt));
      if (m === null) fail(`malformed tag ${JSON.stringify(xml.slice(lt, Math.min(gt + 1, lt + 40)))}`);
      [, closing = '', name, , selfClosing = ''] = m;
    }
    if (closing === '/') {
      const open = stack.pop();
      if (open === undefined || open.name !== name || selfClosing === '/') fail(`mismatched tags <${open?.name ?? ''}> and </${name}>`);
      if (open.children.length > 0) open.text = '';
      if (stack.length === 0) root = open;
    } else {
      const el: XmlElement = { name: name!, children: [], text: '' };
      if (parent !== undefined) parent.children.push(el);
      else if (root === undefined && selfClosing === '/') root = el;
      if (selfClosing !== '/') stack.push(el);
    }
    i = gt + 1;
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1]!.name}> is not closed`);
  if (root === undefined) fail('no root element');
  return root;
}

/** [A-Za-z0-9_.:-] */
function isNameChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x3a) || c === 0x5f || c === 0x2e || c === 0x2d;
}

/** [A-Za-z_] */
function isNameStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}

function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  const decoded = text.replace(ENTITY, (_, e: string) => {
    if (!e.startsWith('#')) return ENTITIES[e]!;
    const cp = e.startsWith('#x') ? parseInt(e.slice(2), 16) : Number(e.slice(1));
    if (cp > 0x10ffff) fail(`a character reference out of range (&${e};)`);
    return String.fromCodePoint(cp);
  });
  // Every '&' must have started a known entity.
  if (text.replace(ENTITY, '').includes('&')) fail('an unknown entity');
  return decoded;
}

function fail(what: string): never {
  throw new S3MalformedResponseError(`XML parse error: ${what}`);
}
