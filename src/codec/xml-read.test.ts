import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SaxesParser } from 'saxes';
import { readXml, xmlChild, xmlChildren, XmlError, xmlText } from './xml-read.ts';

const refused = (xml: string, reason: RegExp, options?: Parameters<typeof readXml>[1]): XmlError => {
  let caught: unknown;
  assert.throws(
    () => readXml(xml, options),
    (err: unknown) => {
      caught = err;
      return err instanceof XmlError && reason.test(err.reason);
    },
    xml.slice(0, 80),
  );
  return caught as XmlError;
};

describe('readXml: the tree', () => {
  test('namespaces are resolved, default and prefixed; no namespace is ""', () => {
    const root = readXml('<s:E xmlns:s="urn:s" xmlns="urn:d"><s:B><Op/></s:B><n:X xmlns:n="urn:n"/></s:E>');
    assert.deepEqual([root.ns, root.local], ['urn:s', 'E']);
    const body = xmlChild(root, 'B', 'urn:s');
    assert.deepEqual([xmlChild(body, 'Op')?.ns, xmlChild(root, 'X')?.ns], ['urn:d', 'urn:n']);
    assert.equal(xmlChild(root, 'B', 'urn:other'), undefined);
    assert.equal(readXml('<a><b/></a>').children[0]?.ns, '');
    assert.equal(readXml('<a xmlns="urn:a"><b xmlns=""/></a>').children[0]?.ns, '');
  });

  test('attributes: unprefixed by name, prefixed as {uri}local, namespace declarations left out', () => {
    const root = readXml('<a xmlns="urn:a" xmlns:p="urn:p" V="1 &amp; 2" p:V="x" xml:lang="en"/>');
    assert.deepEqual(
      [...root.attributes],
      [
        ['V', '1 & 2'],
        ['{urn:p}V', 'x'],
        ['{http://www.w3.org/XML/1998/namespace}lang', 'en'],
      ],
    );
  });

  test('text: entities and character references decoded, CDATA included, own text only', () => {
    const root = readXml('<a>Bob &amp; &#x41;&#108;ice <![CDATA[<x>&amp;]]><b>inner</b> end</a>');
    assert.equal(root.text, 'Bob & Alice <x>&amp; end');
    assert.deepEqual(root.content, ['Bob & Alice <x>&amp;', root.children[0], ' end']);
    assert.equal(xmlText(xmlChild(root, 'b')), 'inner');
    assert.deepEqual(readXml('<a><![CDATA[]]></a>').content, []);
  });

  test('declaration, comments, processing instructions and a byte order mark are skipped', () => {
    const root = readXml(
      '\ufeff<?xml version="1.0" encoding="utf-8"?><!-- c --><a><?pi x?>t<!-- d --></a>\n',
    );
    assert.deepEqual([root.local, root.text], ['a', 't']);
  });

  test('helpers: xmlChildren in order, xmlText trimmed, undefined tolerated', () => {
    const root = readXml('<a><s> 1 </s><t/><s>2</s></a>');
    assert.deepEqual(
      xmlChildren(root, 's').map((e) => e.text),
      [' 1 ', '2'],
    );
    assert.equal(xmlText(xmlChild(root, 's')), '1');
    assert.deepEqual(
      [xmlChildren(undefined, 's'), xmlText(undefined), xmlChild(undefined, 's')],
      [[], '', undefined],
    );
  });
});

describe('readXml: what is refused', () => {
  test('any DOCTYPE: billion laughs, external entities (XXE), a bare DOCTYPE', () => {
    refused(
      '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><a>&lol2;</a>',
      /^DTDs are prohibited/,
    );
    refused('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>', /^DTDs are prohibited/);
    refused('<!DOCTYPE a SYSTEM "http://example.invalid/a.dtd"><a/>', /^DTDs are prohibited/);
  });

  test('doctype external: allowed without an internal subset, refused with one', () => {
    const doctype =
      '<!DOCTYPE ActiveSync PUBLIC "-//MICROSOFT//DTD ActiveSync//EN" "http://www.microsoft.com/">';
    assert.equal(readXml(`${doctype}<Sync/>`, { doctype: 'external' }).local, 'Sync');
    assert.equal(readXml('<!DOCTYPE a SYSTEM "[x]"><a/>', { doctype: 'external' }).local, 'a');
    refused('<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', /internal subset/, { doctype: 'external' });
  });

  test('saxes itself never expands an entity declared in an internal subset', () => {
    const parser = new SaxesParser({ xmlns: true });
    assert.throws(
      () => parser.write('<!DOCTYPE a [<!ENTITY e "expanded">]><a>&e;</a>').close(),
      /undefined entity/,
    );
  });

  test('entities other than the five, stray &, malformed character references', () => {
    refused('<a>&ext;</a>', /undefined entity/);
    refused('<a>a & b</a>', /./);
    refused('<a>&#0;</a>', /malformed character entity/);
    refused('<a v="&nbsp;"/>', /undefined entity/);
  });

  test('not well-formed: mismatched, unclosed, two roots, text outside the root, no root, unbound prefix', () => {
    refused('<a><b></a></b>', /unexpected close tag/);
    refused('<a><b>', /unclosed tag/);
    refused('<a/><b/>', /only one root/);
    refused('<a/>text', /outside of root/);
    refused('text<a/>', /outside of root/);
    refused('', /root element/);
    refused('<p:a/>', /unbound namespace prefix/);
    refused('<a x="1" x="2"/>', /duplicate attribute/);
    refused('<a x="<"/>', /./);
  });

  test('errors carry a 1-based line and column', () => {
    const err = refused('<a>\n  <b>&ext;</b>\n</a>', /undefined entity/);
    assert.equal(err.line, 2);
    assert.ok(err.column >= 5 && err.column <= 11, `column ${err.column}`);
    assert.match(err.message, /^undefined entity \(line 2, column \d+\)$/);
    assert.equal(err.name, 'XmlError');
  });

  test('bounded: length, depth, element count', () => {
    refused('<a/>'.padEnd(2001, ' '), /longer than 2000 characters/, { maxLength: 2000 });
    assert.equal(readXml('<a/>'.padEnd(2000, ' '), { maxLength: 2000 }).local, 'a');
    const nested = (n: number): string => '<a>'.repeat(n) + '</a>'.repeat(n);
    assert.equal(readXml(nested(64)).local, 'a');
    refused(nested(65), /deeper than 64 levels/);
    refused(nested(5), /deeper than 4 levels/, { maxDepth: 4 });
    refused(`<a>${'<b/>'.repeat(10)}</a>`, /more than 10 elements/, { maxElements: 10 });
    refused('<a>'.repeat(1000), /deeper than 64 levels/);
  });
});
