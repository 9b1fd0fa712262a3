import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeXml } from './xml-escape.ts';
import { readXml } from './xml-read.ts';

test('the five XML-special characters become references', () => {
  assert.equal(escapeXml(`a & b < c > d " e ' f`), 'a &amp; b &lt; c &gt; d &#34; e &#39; f');
});

test('an existing reference is escaped again (text is text, not markup)', () => {
  assert.equal(escapeXml('&amp; &#233;'), '&amp;amp; &amp;#233;');
});

test('everything else is left as it was: non-ASCII, whitespace, line breaks', () => {
  const text = 'Grüße, 日本語, 😀\r\n\ttabbed  ';
  assert.equal(escapeXml(text), text);
  assert.equal(escapeXml(''), '');
});

test('escaped text reads back as it was, in element content and in attributes of either quote', () => {
  const hostile = `</a><x y="1">&amp;"'`;
  const doc = `<a d="${escapeXml(hostile)}" s='${escapeXml(hostile)}'>${escapeXml(hostile)}</a>`;
  const root = readXml(doc);
  assert.equal(root.text, hostile);
  assert.equal(root.attributes.get('d'), hostile);
  assert.equal(root.attributes.get('s'), hostile);
});
