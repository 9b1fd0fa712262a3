/**
 * The command documents: each builder's WBXML decodes (with the project's codec) to the tree MS-ASCMD /
 * MS-ASPROV give, and each parser reads canned answers built with encodeWbxml, in the shapes the lab's
 * simulator and a real server (SOGo, docs/lab.md §3.3) send.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WbxmlElement, WbxmlNode } from '../../codec/wbxml.ts';
import { decodeWbxml, encodeWbxml, wbxmlElement as el, wbxmlToXml } from '../../codec/wbxml.ts';
import {
  CommandParseError,
  folderClass,
  folderSyncRequest,
  parseFolderSync,
  parsePing,
  parseProvision,
  parseSettings,
  parseSync,
  pingRequest,
  provisionRequest,
  settingsRequest,
  statusMeaning,
  syncRequest,
} from './commands.ts';

/** Through the wire and back, as the XML notation of wbxml2xml. */
const onTheWire = (doc: WbxmlElement): string => wbxmlToXml(decodeWbxml(encodeWbxml(doc)));
/** An answer as the server would send it, decoded as the client decodes it. */
const answer = (doc: WbxmlElement): WbxmlElement => decodeWbxml(encodeWbxml(doc));
const a = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('AirSync', tag, ...c);
const f = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('FolderHierarchy', tag, ...c);
const p = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('Provision', tag, ...c);
const e = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('Email', tag, ...c);
const b = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('AirSyncBase', tag, ...c);
const s = (tag: string, ...c: (WbxmlNode | number)[]): WbxmlElement => el('Settings', tag, ...c);

describe('request builders', () => {
  test('FolderSync 0 is the 13 bytes every new device sends (MS-ASWBXML code page 7)', () => {
    assert.deepEqual(
      [...encodeWbxml(folderSyncRequest())],
      [0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01],
    );
    assert.equal(
      onTheWire(folderSyncRequest('vm_72c2_30baccf3_0')),
      '<FolderSync xmlns="FolderHierarchy:"><SyncKey>vm_72c2_30baccf3_0</SyncKey></FolderSync>',
    );
  });

  test('Sync with key 0 asks only for a key; later keys ask for changes with window, filter and body preference', () => {
    assert.equal(
      onTheWire(syncRequest({ collectionId: '1', syncKey: '0' })),
      '<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>0</SyncKey><CollectionId>1</CollectionId></Collection></Collections></Sync>',
    );
    assert.equal(
      onTheWire(
        syncRequest({ collectionId: 'mail%2Finbox', syncKey: '1-2', windowSize: 50, truncationSize: 200 }),
      ),
      '<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>1-2</SyncKey><CollectionId>mail%2Finbox</CollectionId>' +
        '<DeletesAsMoves/><GetChanges/><WindowSize>50</WindowSize>' +
        '<Options><FilterType>0</FilterType><BodyPreference xmlns="AirSyncBase:"><Type>1</Type><TruncationSize>200</TruncationSize></BodyPreference></Options>' +
        '</Collection></Collections></Sync>',
    );
  });

  test('Ping: heartbeat and the folders with their class', () => {
    assert.equal(
      onTheWire(
        pingRequest(480, [
          { id: '1', class: 'Email' },
          { id: '6', class: 'Calendar' },
        ]),
      ),
      '<Ping xmlns="Ping:"><HeartbeatInterval>480</HeartbeatInterval><Folders>' +
        '<Folder><Id>1</Id><Class>Email</Class></Folder><Folder><Id>6</Id><Class>Calendar</Class></Folder>' +
        '</Folders></Ping>',
    );
  });

  test('Provision phase 1 (with 14.1 DeviceInformation) and phase 2 (acknowledge the temporary key)', () => {
    assert.equal(
      onTheWire(provisionRequest()),
      '<Provision xmlns="Provision:"><Policies><Policy><PolicyType>MS-EAS-Provisioning-WBXML</PolicyType></Policy></Policies></Provision>',
    );
    assert.equal(
      onTheWire(
        provisionRequest({
          deviceInformation: { model: 'coexist', os: 'Node.js', userAgent: 'coexist-eas/0.1.0' },
        }),
      ),
      '<Provision xmlns="Provision:"><DeviceInformation xmlns="Settings:"><Set><Model>coexist</Model><OS>Node.js</OS>' +
        '<UserAgent>coexist-eas/0.1.0</UserAgent></Set></DeviceInformation>' +
        '<Policies><Policy><PolicyType>MS-EAS-Provisioning-WBXML</PolicyType></Policy></Policies></Provision>',
    );
    assert.equal(
      onTheWire(provisionRequest({ ack: { policyKey: '1307199584' } })),
      '<Provision xmlns="Provision:"><Policies><Policy><PolicyType>MS-EAS-Provisioning-WBXML</PolicyType>' +
        '<PolicyKey>1307199584</PolicyKey><Status>1</Status></Policy></Policies></Provision>',
    );
  });

  test('Settings: UserInformation Get, DeviceInformation first when given', () => {
    assert.equal(
      onTheWire(settingsRequest()),
      '<Settings xmlns="Settings:"><UserInformation><Get/></UserInformation></Settings>',
    );
    assert.equal(
      onTheWire(settingsRequest({ deviceInformation: { friendlyName: 'lab phone' } })),
      '<Settings xmlns="Settings:"><DeviceInformation><Set><FriendlyName>lab phone</FriendlyName></Set></DeviceInformation>' +
        '<UserInformation><Get/></UserInformation></Settings>',
    );
  });
});

describe('answer parsers', () => {
  test('FolderSync: status, opaque key, the folders with their kind', () => {
    const r = parseFolderSync(
      answer(
        f(
          'FolderSync',
          f('Status', 1),
          f('SyncKey', 'vm_72c2_30baccf3_0'),
          f(
            'Changes',
            f('Count', 3),
            f('Add', f('ServerId', 'mail%2Fd845'), f('ParentId', 0), f('DisplayName', 'INBOX'), f('Type', 2)),
            f(
              'Add',
              f('ServerId', 'vevent%2Fpersonal'),
              f('ParentId', 0),
              f('DisplayName', 'Personal Calendar'),
              f('Type', 8),
            ),
            f('Update', f('ServerId', '7'), f('ParentId', 0), f('DisplayName', 'Renamed'), f('Type', 12)),
            f('Delete', f('ServerId', '9')),
          ),
        ),
      ),
    );
    assert.equal(r.status, 1);
    assert.equal(r.syncKey, 'vm_72c2_30baccf3_0');
    assert.deepEqual(r.added, [
      { serverId: 'mail%2Fd845', parentId: '0', displayName: 'INBOX', type: 2, kind: 'inbox' },
      {
        serverId: 'vevent%2Fpersonal',
        parentId: '0',
        displayName: 'Personal Calendar',
        type: 8,
        kind: 'calendar',
      },
    ]);
    assert.deepEqual(
      r.updated.map((x) => x.kind),
      ['mail'],
    );
    assert.deepEqual(r.deleted, ['9']);
    assert.equal(parseFolderSync(answer(f('FolderSync', f('Status', 9)))).status, 9);
    assert.equal(folderClass(2), 'Email');
    assert.equal(folderClass(13), 'Calendar');
    assert.equal(folderClass(19), undefined);
  });

  test('Sync: Add, Change, Delete and SoftDelete with email fields, body and MoreAvailable', () => {
    const doc = answer(
      a(
        'Sync',
        a(
          'Collections',
          a(
            'Collection',
            a('SyncKey', '3-3'),
            a('CollectionId', '1'),
            a('Status', 1),
            a('MoreAvailable'),
            a(
              'Commands',
              a(
                'Add',
                a('ServerId', '1:1'),
                a(
                  'ApplicationData',
                  e('To', '"Bob" <bob@o365info.com>'),
                  e('From', '"coexist lab" <postmaster@o365info.com>'),
                  e('Subject', 'Welcome to MBX2007-NY, Bob'),
                  e('DateReceived', '2026-01-05T09:00:00.000Z'),
                  e('Read', 0),
                  b(
                    'Body',
                    b('Type', 1),
                    b('EstimatedDataSize', 40),
                    b('Truncated', 1),
                    b('Data', 'Hello Bob'),
                  ),
                  e('MessageClass', 'IPM.Note'),
                ),
              ),
              a('Change', a('ServerId', '1:2'), a('ApplicationData', e('Read', 1))),
              a('Delete', a('ServerId', '1:3')),
              a('SoftDelete', a('ServerId', '1:4')),
            ),
          ),
        ),
      ),
    );
    const r = parseSync(doc, '1', '1');
    assert.equal(r.syncKey, '3-3');
    assert.equal(r.status, 1);
    assert.equal(r.moreAvailable, true);
    assert.equal(r.empty, false);
    assert.deepEqual(r.items, [
      {
        change: 'add',
        serverId: '1:1',
        subject: 'Welcome to MBX2007-NY, Bob',
        from: '"coexist lab" <postmaster@o365info.com>',
        to: '"Bob" <bob@o365info.com>',
        dateReceived: '2026-01-05T09:00:00.000Z',
        read: false,
        messageClass: 'IPM.Note',
        body: 'Hello Bob',
        bodyTruncated: true,
      },
      { change: 'change', serverId: '1:2', read: true },
      { change: 'delete', serverId: '1:3' },
      { change: 'soft-delete', serverId: '1:4' },
    ]);
  });

  test('Sync: an empty 200 is "no changes" and keeps the key (SOGo); a 12.1 answer with Class; a top-level Status', () => {
    assert.deepEqual(parseSync(undefined, '1', '1-2'), {
      collectionId: '1',
      syncKey: '1-2',
      status: 1,
      items: [],
      moreAvailable: false,
      empty: true,
    });
    const initial = parseSync(
      answer(
        a(
          'Sync',
          a(
            'Collections',
            a('Collection', a('Class', 'Email'), a('SyncKey', '-1'), a('CollectionId', '1'), a('Status', 1)),
          ),
        ),
      ),
      '1',
      '0',
    );
    assert.equal(initial.syncKey, '-1', 'opaque keys, even "-1"');
    assert.deepEqual(initial.items, []);
    const whole = parseSync(answer(a('Sync', a('Status', 13))), '1', '0');
    assert.equal(whole.status, 13);
    assert.match(statusMeaning('Sync', 13), /incomplete/);
    const badKey = parseSync(
      answer(
        a('Sync', a('Collections', a('Collection', a('SyncKey', 0), a('CollectionId', '1'), a('Status', 3)))),
      ),
      '1',
      '7',
    );
    assert.equal(badKey.status, 3);
  });

  test('Ping: 1 no changes, 2 the changed folders, 5 the server limit, 6 the folder limit', () => {
    const ping = (...c: WbxmlElement[]): WbxmlElement => answer(el('Ping', 'Ping', ...c));
    assert.deepEqual(parsePing(ping(el('Ping', 'Status', 1))), {
      status: 1,
      outcome: 'no-changes',
      changedFolders: [],
    });
    assert.deepEqual(
      parsePing(
        ping(
          el('Ping', 'Status', 2),
          el('Ping', 'Folders', el('Ping', 'Folder', '1'), el('Ping', 'Folder', '6')),
        ),
      ),
      { status: 2, outcome: 'changes', changedFolders: ['1', '6'] },
    );
    assert.deepEqual(parsePing(ping(el('Ping', 'Status', 5), el('Ping', 'HeartbeatInterval', 20))), {
      status: 5,
      outcome: 'heartbeat-out-of-range',
      changedFolders: [],
      heartbeatInterval: 20,
    });
    assert.equal(parsePing(ping(el('Ping', 'Status', 6), el('Ping', 'MaxFolders', 100))).maxFolders, 100);
    assert.equal(parsePing(ping(el('Ping', 'Status', 8))).outcome, 'error');
  });

  test('Provision: temporary key and policy document; final key; SOGo\'s "no policy" without a key', () => {
    const first = parseProvision(
      answer(
        p(
          'Provision',
          el('Settings', 'DeviceInformation', el('Settings', 'Status', 1)),
          p('Status', 1),
          p(
            'Policies',
            p(
              'Policy',
              p('PolicyType', 'MS-EAS-Provisioning-WBXML'),
              p('Status', 1),
              p('PolicyKey', '1307199584'),
              p(
                'Data',
                p(
                  'EASProvisionDoc',
                  p('DevicePasswordEnabled', 0),
                  p('MinDevicePasswordLength'),
                  p('AllowCamera', 1),
                ),
              ),
            ),
          ),
        ),
      ),
    );
    assert.deepEqual(first, {
      status: 1,
      policyType: 'MS-EAS-Provisioning-WBXML',
      policyStatus: 1,
      policyKey: '1307199584',
      policy: { DevicePasswordEnabled: '0', MinDevicePasswordLength: '', AllowCamera: '1' },
      remoteWipe: false,
      deviceInformationStatus: 1,
    });
    const sogo = parseProvision(
      answer(
        p(
          'Provision',
          p('Status', 1),
          p('Policies', p('Policy', p('PolicyType', 'MS-EAS-Provisioning-WBXML'), p('Status', 2))),
        ),
      ),
    );
    assert.deepEqual(sogo, {
      status: 1,
      policyType: 'MS-EAS-Provisioning-WBXML',
      policyStatus: 2,
      remoteWipe: false,
    });
    assert.equal(parseProvision(answer(p('Provision', p('Status', 1), p('RemoteWipe')))).remoteWipe, true);
  });

  test('Settings: 14.1 accounts with the display name, 12.1 addresses only', () => {
    const v141 = parseSettings(
      answer(
        s(
          'Settings',
          s('Status', 1),
          s(
            'UserInformation',
            s('Status', 1),
            s(
              'Get',
              s(
                'Accounts',
                s(
                  'Account',
                  s('UserDisplayName', 'Alice Example'),
                  s(
                    'EmailAddresses',
                    s('SMTPAddress', 'alice@lab.test'),
                    s('PrimarySmtpAddress', 'alice@lab.test'),
                  ),
                ),
              ),
            ),
          ),
        ),
      ),
    );
    assert.deepEqual(v141, {
      status: 1,
      userInformationStatus: 1,
      displayName: 'Alice Example',
      primarySmtpAddress: 'alice@lab.test',
      smtpAddresses: ['alice@lab.test'],
    });
    const v121 = parseSettings(
      answer(
        s(
          'Settings',
          s('Status', 1),
          s(
            'UserInformation',
            s('Status', 1),
            s('Get', s('EmailAddresses', s('SMTPAddress', 'bob@o365info.com'))),
          ),
        ),
      ),
    );
    assert.deepEqual(v121.smtpAddresses, ['bob@o365info.com']);
  });

  test('the wrong document, or none, is a parse error', () => {
    assert.throws(() => parseFolderSync(answer(a('Sync', a('Status', 1)))), CommandParseError);
    assert.throws(() => parseFolderSync(undefined), /empty/);
    assert.throws(
      () => parsePing(answer(f('FolderSync', f('Status', 1)))),
      /FolderHierarchy:FolderSync, not Ping:Ping/,
    );
    assert.throws(() => parseProvision(undefined), CommandParseError);
  });
});
