import { describe, expect, it } from 'vitest';
import { parseXml } from '../../src/storage/xml.js';

describe('parseXml', () => {
  it('reads elements in order, attributes, self-closing tags and entities', () => {
    const root = parseXml('<?xml version="1.0" encoding="UTF-8"?>\n<R xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\n  <A>x &amp; &lt;y&gt; &#x65e5;&#33;</A>\n  <B/><C><D>1</D></C>\n</R>\n');
    expect(root.name).toBe('R');
    expect(root.children.map((c) => c.name)).toEqual(['A', 'B', 'C']);
    expect(root.children[0]!.text).toBe('x & <y> 日!');
    expect(root.children[1]).toEqual({ name: 'B', children: [], text: '' });
    expect(root.children[2]!.children[0]).toEqual({ name: 'D', children: [], text: '1' });
    expect(root.text).toBe('');
  });

  it.each([
    ['mismatched tags', '<R><A>1</B></R>', /mismatched tags <A> and <\/B>/],
    ['an unclosed element', '<R><A>1</A>', /<R> is not closed/],
    ['a stray <', '<R><A>1<2</A></R>', /malformed tag/],
    ['a tag without its >', '<R><A>1</A', /a tag is not closed/],
    ['an unknown entity', '<R><A>a &ampx; b</A></R>', /unknown entity/],
    ['a bare &', '<R><A>a & b</A></R>', /unknown entity/],
    ['a character reference out of range', '<R><A>&#x110000;</A></R>', /out of range/],
    ['text outside the root', 'junk<R/>', /text outside the root/],
    ['a second root', '<R/><S/>', /content after the root/],
    ['nothing', '  ', /no root element/],
    ['an unclosed declaration', '<?xml version="1.0"', /declaration is not closed/],
  ])('refuses %s', (_what, xml, message) => {
    expect(() => parseXml(xml)).toThrow(message);
    expect(() => parseXml(xml)).toThrow(/^XML parse error/);
  });
});
