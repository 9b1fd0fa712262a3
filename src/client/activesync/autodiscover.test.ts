/**
 * Mobile Autodiscover (docs/protocols.md §4.1): the request schema and body, and every answer shape the front
 * end renders (src/dataplane/autodiscover/pox.ts) or the spec describes: settings, redirects, errors.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAutodiscoverBody } from '../../core/protocols/autodiscover.ts';
import { isInvalid } from '../../core/protocols/request-head.ts';
import {
  autodiscoverRequest,
  autodiscoverUrl,
  isAutodiscoverUrl,
  mobileSyncRequestSchema,
  mobileSyncResponseSchema,
  parseAutodiscoverAnswer,
} from './autodiscover.ts';
import { XmlError as XmlReadError } from '../../codec/xml-read.ts';

const response = 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006';
const wrap = (inner: string, ns = mobileSyncResponseSchema): string =>
  `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="${response}"><Response xmlns="${ns}">${inner}</Response></Autodiscover>`;

describe('the request', () => {
  test('the mobilesync request schema with the acceptable response schema; the server side reads it', () => {
    const body = autodiscoverRequest('diego@o365info.com');
    assert.ok(body.includes(`<Autodiscover xmlns="${mobileSyncRequestSchema}">`));
    assert.ok(
      body.includes(`<AcceptableResponseSchema>${mobileSyncResponseSchema}</AcceptableResponseSchema>`),
    );
    const parsed = parseAutodiscoverBody(new TextEncoder().encode(body));
    assert.ok(!isInvalid(parsed));
    assert.equal(parsed.schema, 'mobilesync');
    assert.ok('address' in parsed && parsed.address === 'diego@o365info.com');
  });

  test('an address with XML characters is escaped', () => {
    assert.ok(autodiscoverRequest('o<b>@x.com').includes('<EMailAddress>o&lt;b&gt;@x.com</EMailAddress>'));
  });

  test('where to POST: autodiscover.<domain>, from a domain or an address; a URL as given', () => {
    const expected = 'https://autodiscover.o365info.com/Autodiscover/Autodiscover.xml';
    assert.equal(autodiscoverUrl('o365info.com'), expected);
    assert.equal(autodiscoverUrl('Bob@O365info.com'), expected);
    assert.equal(
      autodiscoverUrl('https://ad.example.org/autodiscover/autodiscover.xml'),
      'https://ad.example.org/autodiscover/autodiscover.xml',
    );
    assert.throws(() => autodiscoverUrl('not a domain'), TypeError);
    assert.ok(isAutodiscoverUrl('https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml'));
    assert.ok(
      !isAutodiscoverUrl('http://autodiscover.o365info.com/Autodiscover/Autodiscover.xml'),
      'https only',
    );
    assert.ok(!isAutodiscoverUrl('https://evil.example/steal'), 'an Autodiscover path only');
  });
});

describe('the answer', () => {
  test("the front end's answer for diego: the regional namespace (EAS-3B)", () => {
    const url = 'https://europe.mail.o365info.com/Microsoft-Server-ActiveSync';
    const r = parseAutodiscoverAnswer(
      wrap(
        `<Culture>en:us</Culture><User><DisplayName>Diego</DisplayName><EMailAddress>diego@o365info.com</EMailAddress></User>` +
          `<Action><Settings><Server><Type>MobileSync</Type><Url>${url}</Url><Name>${url}</Name></Server></Settings></Action>`,
      ),
    );
    assert.deepEqual(r, {
      kind: 'settings',
      displayName: 'Diego',
      email: 'diego@o365info.com',
      culture: 'en:us',
      servers: [{ type: 'MobileSync', url, name: url }],
      mobileSyncUrl: url,
    });
  });

  test('a CertEnroll server beside MobileSync; the https:// namespace spelling; prefixes', () => {
    const r = parseAutodiscoverAnswer(
      `<a:Autodiscover xmlns:a="${response}"><m:Response xmlns:m="${mobileSyncResponseSchema.replace('http:', 'https:')}">` +
        '<m:Action><m:Settings><m:Server><m:Type>CertEnroll</m:Type><m:Url>https://ca.example/</m:Url><m:Name/><m:ServerData>x</m:ServerData></m:Server>' +
        '<m:Server><m:Type>MobileSync</m:Type><m:Url>https://mail.example/Microsoft-Server-ActiveSync</m:Url></m:Server></m:Settings></m:Action>' +
        '</m:Response></a:Autodiscover>',
    );
    assert.equal(r.kind, 'settings');
    assert.ok(
      r.kind === 'settings' && r.mobileSyncUrl === 'https://mail.example/Microsoft-Server-ActiveSync',
    );
    assert.ok(r.kind === 'settings' && r.servers.length === 2);
  });

  test("Action/Redirect: another address; the outlook schema's redirectUrl and redirectAddr", () => {
    assert.deepEqual(
      parseAutodiscoverAnswer(
        wrap('<Culture>en:us</Culture><Action><Redirect>zoe@contoso.com</Redirect></Action>'),
      ),
      {
        kind: 'redirect-address',
        address: 'zoe@contoso.com',
      },
    );
    const outlook = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';
    assert.deepEqual(
      parseAutodiscoverAnswer(
        wrap(
          '<Account><AccountType>email</AccountType><Action>redirectUrl</Action><RedirectUrl>https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml</RedirectUrl></Account>',
          outlook,
        ),
      ),
      { kind: 'redirect-url', url: 'https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml' },
    );
    assert.deepEqual(
      parseAutodiscoverAnswer(
        wrap(
          '<Account><Action>redirectAddr</Action><RedirectAddr>zoe@o365info.mail.onmicrosoft.com</RedirectAddr></Account>',
          outlook,
        ),
      ),
      { kind: 'redirect-address', address: 'zoe@o365info.mail.onmicrosoft.com' },
    );
  });

  test('errors: Response/Error 600/601 and Action/Error Status 2', () => {
    assert.deepEqual(
      parseAutodiscoverAnswer(
        wrap(
          '<Error Time="10:00:00" Id="1"><ErrorCode>601</ErrorCode><Message>Provider not available</Message><DebugData /></Error>',
        ),
      ),
      { kind: 'error', code: '601', message: 'Provider not available' },
    );
    assert.deepEqual(
      parseAutodiscoverAnswer(
        wrap(
          '<Culture>en:us</Culture><User><EMailAddress>x@o365info.com</EMailAddress></User><Action><Error><Status>2</Status><Message>The e-mail address cannot be found.</Message><DebugData /></Error></Action>',
        ),
      ),
      { kind: 'error', code: '2', message: 'The e-mail address cannot be found.' },
    );
  });

  test('entities and character references are read; DTDs and broken XML are refused', () => {
    const r = parseAutodiscoverAnswer(
      wrap(
        '<User><DisplayName>Bob &amp; &#x41;lice</DisplayName></User><Action><Settings></Settings></Action>',
      ),
    );
    assert.ok(r.kind === 'settings' && r.displayName === 'Bob & Alice' && r.mobileSyncUrl === undefined);
    assert.throws(() => parseAutodiscoverAnswer('<!DOCTYPE a [<!ENTITY x "y">]>' + wrap('')), XmlReadError);
    assert.throws(() => parseAutodiscoverAnswer('<Autodiscover><Response>'), XmlReadError);
    assert.throws(() => parseAutodiscoverAnswer('<html><body>login</body></html>'), /not <Autodiscover>/);
  });
});
