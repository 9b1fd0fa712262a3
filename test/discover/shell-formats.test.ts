/**
 * The formats of Exchange Management Shell exports, piece by piece (docs/discover.md "What is read"): the
 * value shapes of Export-Csv and ConvertTo-Json, the encodings Windows PowerShell writes, which cmdlet a
 * file came from by its columns alone, and values that would break the YAML written from them.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { describe, it } from 'node:test';
import { parseEstate } from '../../src/config/index.ts';
import { parseShellExport, readShellExport } from '../../src/discover/shell/read-export.ts';
import { recogniseColumns, vdirProtocol } from '../../src/discover/shell/recognise.ts';
import { organisationFromShellExports } from '../../src/discover/shell/from-shell.ts';
import { build, list, roles, siteName, url } from '../../src/discover/shell/values.ts';
import { writeEstate } from '../../src/discover/write-estate.ts';
import { exportsOf } from './support.ts';

describe('shell export values', () => {
  it('AdminDisplayVersion as text (CSV, a remote session) and as an object (JSON)', () => {
    assert.deepEqual(build('Version 8.3 (Build 83.6)'), { major: 8, minor: 3, build: 83, revision: 6 });
    assert.deepEqual(build('Version 15.2 (Build 1544.4)'), { major: 15, minor: 2, build: 1544, revision: 4 });
    assert.deepEqual(build({ Major: 14, Minor: 3, Build: 123, Revision: 4, FilePatchLevelDescription: '' }), {
      major: 14,
      minor: 3,
      build: 123,
      revision: 4,
    });
    assert.equal(build('Exchange 2013'), undefined);
    assert.equal(build(''), undefined);
  });

  it('ServerRole as text, flags and a list; a multi-valued column Export-Csv emptied', () => {
    assert.deepEqual(roles('Mailbox, ClientAccess'), ['Mailbox', 'ClientAccess']);
    assert.deepEqual(roles(54), ['Mailbox', 'ClientAccess', 'UnifiedMessaging', 'HubTransport']);
    assert.deepEqual(roles(['ClientAccess']), ['ClientAccess']);
    assert.deepEqual(roles('64'), ['Edge']);
    assert.equal(list('System.Collections.ArrayList'), undefined);
    assert.equal(
      list(
        'Deserialized.Microsoft.Exchange.Data.MultiValuedProperty`1[[Microsoft.Exchange.Data.Directory.AuthenticationMethod]]',
      ),
      undefined,
    );
    assert.deepEqual(list(['Basic', 'Ntlm']), ['Basic', 'Ntlm']);
    assert.deepEqual(list(null), []);
  });

  it('sites by canonical name, distinguished name and ADObjectId; URLs as text, System.Uri, empty and $null', () => {
    assert.equal(siteName('o365info.local/Configuration/Sites/New York'), 'New York');
    assert.equal(siteName('CN=Los Angeles,CN=Sites,CN=Configuration,DC=o365info,DC=local'), 'Los Angeles');
    assert.equal(
      siteName({ Name: 'Madrid', DistinguishedName: 'CN=Madrid,CN=Sites,CN=Configuration,DC=x' }),
      'Madrid',
    );
    assert.equal(
      url({ AbsoluteUri: 'https://mail.o365info.com/owa', Host: 'mail.o365info.com' }),
      'https://mail.o365info.com/owa',
    );
    assert.equal(url(''), undefined);
    assert.equal(url(null), undefined);
    assert.throws(() => url('mail.o365info.com/owa'), /"mail\.o365info\.com\/owa" is not a URL/);
    assert.throws(() => url('ftp://mail.o365info.com/'), /not an http\(s\) URL/);
  });
});

describe('shell export files', () => {
  it('ConvertTo-Json > file in Windows PowerShell 5.1 is UTF-16 LE; Export-Csv -Encoding UTF8 has a byte-order mark', async () => {
    const json = exportsOf('o365info', 'json').find((f) => f.endsWith('ExchangeServer.json')) ?? '';
    const bytes = await readFile(json);
    assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xfe]);
    const ex = await readShellExport(json);
    assert.equal(ex.format, 'json');
    assert.equal(ex.records.length, 8);
    const csv = await readShellExport(
      exportsOf('o365info', 'csv').find((f) => f.endsWith('ExchangeServer.csv')) ?? '',
    );
    assert.equal(csv.columns[0], 'Name');
    assert.equal(csv.records[0]?.values.Name, 'CAS2007-LA');
  });

  it('Export-Csv without -NoTypeInformation: the #TYPE line, and line numbers that count it', async () => {
    const file = exportsOf('fabrikam', 'csv').find((f) => f.endsWith('MailboxDatabase.csv')) ?? '';
    const ex = await readShellExport(file);
    assert.equal(
      ex.typeName,
      'Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.MailboxDatabase',
    );
    assert.equal(ex.records[0]?.source, `${file}:3`);
  });

  it('a quoted line break inside a field keeps the next records at their real lines', () => {
    const ex = parseShellExport('"Name","Notes"\r\n"a","one\r\ntwo"\r\n"b",""\r\n', 'x.csv');
    assert.deepEqual(
      ex.records.map((r) => [r.values.Name, r.source]),
      [
        ['a', 'x.csv:2'],
        ['b', 'x.csv:4'],
      ],
    );
  });

  it('one object from ConvertTo-Json has no brackets', () => {
    const ex = parseShellExport(
      '{\r\n    "DomainName":  "o365info.com",\r\n    "DomainType":  0,\r\n    "Default":  true\r\n}',
      'd.json',
    );
    assert.equal(ex.records.length, 1);
    assert.equal(recogniseColumns(ex.columns), 'Get-AcceptedDomain');
  });

  it('every fixture is recognised by its columns alone, the virtual directories by their names', async () => {
    const expected: Record<string, string> = {
      AcceptedDomain: 'Get-AcceptedDomain',
      ActiveSyncVirtualDirectory: 'virtual-directory',
      AutodiscoverVirtualDirectory: 'virtual-directory',
      ClientAccessServer: 'Get-ClientAccessServer',
      EcpVirtualDirectory: 'virtual-directory',
      ExchangeCertificate: 'Get-ExchangeCertificate',
      ExchangeServer: 'Get-ExchangeServer',
      Mailbox: 'Get-Mailbox',
      MailboxDatabase: 'Get-MailboxDatabase',
      MapiVirtualDirectory: 'virtual-directory',
      OabVirtualDirectory: 'virtual-directory',
      OutlookAnywhere: 'Get-OutlookAnywhere',
      OwaVirtualDirectory: 'virtual-directory',
      WebServicesVirtualDirectory: 'virtual-directory',
    };
    const protocols: Record<string, string> = {
      ActiveSyncVirtualDirectory: 'activesync',
      AutodiscoverVirtualDirectory: 'autodiscover',
      EcpVirtualDirectory: 'ecp',
      MapiVirtualDirectory: 'mapi',
      OabVirtualDirectory: 'oab',
      OwaVirtualDirectory: 'owa',
      WebServicesVirtualDirectory: 'ews',
    };
    for (const file of [...exportsOf('fabrikam', 'csv'), ...exportsOf('fabrikam', 'json')]) {
      const name = basename(file).replace(/\.(csv|json)$/, '');
      const ex = await readShellExport(file);
      assert.equal(recogniseColumns(ex.columns), expected[name], file);
      const protocol = protocols[name];
      if (protocol) assert.equal(vdirProtocol(ex.records[0]?.values ?? {}), protocol, file);
    }
    // A virtual directory with neither a name nor an Identity: its columns say which.
    assert.equal(vdirProtocol({ InternalUrl: '', ExternalUrl: '', InternalNLBBypassUrl: '' }), 'ews');
  });
});

describe('what the exports must hold', () => {
  it('an empty export (a cmdlet that found nothing) is noted; without Get-ExchangeServer nothing is discovered', async () => {
    const files = await Promise.all(exportsOf('o365info', 'csv').map((f) => readShellExport(f)));
    const empty = parseShellExport('\uFEFF\r\n', 'MapiVirtualDirectory.csv');
    const org = organisationFromShellExports([...files, empty]);
    assert.deepEqual(
      org.notes.filter((n) => n.source === 'MapiVirtualDirectory.csv'),
      [{ source: 'MapiVirtualDirectory.csv', message: 'empty: the cmdlet found nothing' }],
    );
    assert.throws(
      () => organisationFromShellExports(files.filter((f) => !f.file.endsWith('ExchangeServer.csv'))),
      {
        code: 'CX_DISCOVER_INPUT',
        message: /no Get-ExchangeServer export among .*: discovery starts from the servers/,
      },
    );
  });

  it('a URL that is not one is named with its file, line and column name', () => {
    const servers = parseShellExport(
      '"Name","Fqdn","AdminDisplayVersion","ServerRole","Site"\r\n"FE1","fe1.x.local","Version 15.1 (Build 2507.6)","ClientAccess","x.local/Configuration/Sites/HQ"\r\n',
      'servers.csv',
    );
    const owa = parseShellExport(
      '"Identity","Server","InternalUrl","ExternalUrl"\r\n"FE1\\owa (Default Web Site)","FE1","https://fe1.x.local/owa","mail.x.com/owa"\r\n',
      'owa.csv',
    );
    assert.throws(
      () => organisationFromShellExports([servers, owa]),
      /^CoexistError: owa\.csv:2: ExternalUrl: "mail\.x\.com\/owa" is not a URL$/,
    );
  });
});

describe('values that would break the written YAML', () => {
  it('names, display names and sites with YAML syntax and line breaks are written as data', () => {
    const hostile = 'x\nusers:\n  - address: evil@o365info.com\n    mailbox: { database: DB1 }\n#';
    const servers = parseShellExport(
      [
        '"Name","Fqdn","AdminDisplayVersion","ServerRole","Site","ExchangeLegacyDN"',
        '"FE1","fe1.o365info.local","Version 15.1 (Build 2507.6)","Mailbox, ClientAccess","o365info.local/Configuration/Sites/HQ: #1 ""main""","/o=Org: {x}/ou=y"',
      ].join('\r\n'),
      'servers.csv',
    );
    const vdirs = parseShellExport(
      [
        '"Identity","Server","InternalUrl","ExternalUrl"',
        '"FE1\\owa (Default Web Site)","FE1","https://fe1.o365info.local/owa","https://mail.o365info.com/owa"',
      ].join('\r\n'),
      'owa.csv',
    );
    const dbs = parseShellExport('"Name","Server","EdbFilePath"\r\n"DB1","FE1","D:\\DB1.edb"\r\n', 'db.csv');
    const domains = parseShellExport(
      '"DomainName","DomainType","Default"\r\n"o365info.com","Authoritative","True"\r\n',
      'ad.csv',
    );
    const mailboxes = parseShellExport(
      `"PrimarySmtpAddress","DisplayName","Database","EmailAddresses"\r\n"ann@o365info.com","${hostile.replace(/"/g, '""')}","DB1","SMTP:ann@o365info.com"\r\n`,
      'mbx.csv',
    );
    const org = organisationFromShellExports([servers, vdirs, dbs, domains, mailboxes]);
    const { yaml } = writeEstate(org, ['servers.csv']);
    const { estate } = parseEstate(yaml, 'hostile.yaml');
    assert.deepEqual(
      estate.users.map((u) => [u.address, u.displayName]),
      [['ann@o365info.com', hostile]],
    );
    assert.equal(estate.sites[0]?.name, 'HQ: #1 "main"');
    assert.equal(estate.organization, 'Org: {x}');
  });
});
