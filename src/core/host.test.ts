import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hostOfHeader, hostOfUrl } from './host.ts';

describe('hostOfUrl: the host of an absolute URL, in the form that compares', () => {
  test('lower-cased, without port, path or query', () => {
    assert.equal(hostOfUrl('https://Mail.O365info.com:8443/owa?x=1'), 'mail.o365info.com');
    assert.equal(hostOfUrl('https://legacy.mail.o365info.com/EWS/Exchange.asmx'), 'legacy.mail.o365info.com');
    assert.equal(hostOfUrl('https://mail.o365info.com?Cmd=Sync'), 'mail.o365info.com');
  });
  test('an IPv6 literal without its brackets', () => {
    assert.equal(hostOfUrl('https://[::1]:443/owa'), '::1');
    assert.equal(hostOfUrl('ldaps://[2001:DB8::5]/'), '2001:db8::5');
  });
  test('URLs of any scheme: LDAP names keep no case either', () => {
    assert.equal(hostOfUrl('ldap://DC1.Example.com:389'), 'dc1.example.com');
    assert.equal(hostOfUrl('ldap://127.0.0.1'), '127.0.0.1');
  });
  test('credentials are not part of the host', () => {
    assert.equal(hostOfUrl('https://user:pw@cas.example.com/'), 'cas.example.com');
  });
  test('not a URL, or no host: empty', () => {
    assert.equal(hostOfUrl('not a url'), '');
    assert.equal(hostOfUrl('/owa/auth/logon.aspx'), '');
    assert.equal(hostOfUrl(''), '');
    assert.equal(hostOfUrl('mailto:bob@o365info.com'), '');
  });
});

describe('hostOfHeader: the host of a Host header, without the port', () => {
  test('name with and without a port, lower-cased', () => {
    assert.equal(hostOfHeader('Mail.o365info.com:8443'), 'mail.o365info.com');
    assert.equal(hostOfHeader('mail.o365info.com'), 'mail.o365info.com');
    assert.equal(hostOfHeader('127.0.0.2:443'), '127.0.0.2');
  });
  test('a bracketed IPv6 literal, with and without a port', () => {
    assert.equal(hostOfHeader('[::1]:443'), '::1');
    assert.equal(hostOfHeader('[2001:DB8::5]'), '2001:db8::5');
  });
  test('a bare IPv6 literal (an engine input) is kept whole', () => {
    assert.equal(hostOfHeader('::1'), '::1');
    assert.equal(hostOfHeader('2001:db8::5'), '2001:db8::5');
  });
  test('empty stays empty', () => {
    assert.equal(hostOfHeader(''), '');
  });
  test('the same host from a URL and from a header compares equal', () => {
    assert.equal(hostOfUrl('https://[::1]:8443/owa'), hostOfHeader('[::1]:8443'));
    assert.equal(
      hostOfUrl('https://Legacy.Mail.o365info.com/owa'),
      hostOfHeader('legacy.mail.o365info.com:443'),
    );
  });
});
