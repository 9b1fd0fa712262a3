import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cookieHeader,
  getFolderRequest,
  getUserSettingsRequest,
  logonBody,
  outlookRequest,
  pageTitle,
  parseGetFolder,
  parseLogonForm,
  parseOutlookAnswer,
  parseUserSettings,
} from './answers.ts';

const outlookNs = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';
const responseNs = 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006';

test('the requests name the user, escaped, and the schemas they want', () => {
  assert.match(outlookRequest('a&b@o365info.com'), /<EMailAddress>a&amp;b@o365info\.com<\/EMailAddress>/);
  assert.match(outlookRequest('bob@o365info.com'), /responseschema\/2006a<\/AcceptableResponseSchema>/);
  assert.match(getFolderRequest(), /<t:RequestServerVersion Version="Exchange2007_SP1"\/>/);
  assert.match(getFolderRequest(), /<t:DistinguishedFolderId Id="inbox"\/>/);
  assert.match(getUserSettingsRequest('bob@o365info.com'), /<a:Mailbox>bob@o365info\.com<\/a:Mailbox>/);
  assert.match(getUserSettingsRequest('bob@o365info.com'), /<a:Setting>ExternalEwsUrl<\/a:Setting>/);
});

test('Outlook Autodiscover: the EWS URLs inside (EXCH) and outside (EXPR), and OWA', () => {
  const a = parseOutlookAnswer(
    `<?xml version="1.0"?><Autodiscover xmlns="${responseNs}"><Response xmlns="${outlookNs}">` +
      '<User><DisplayName>Bob</DisplayName></User><Account><AccountType>email</AccountType><Action>settings</Action>' +
      '<Protocol><Type>EXCH</Type><EwsUrl>https://legacy.mail.o365info.com/EWS/Exchange.asmx</EwsUrl></Protocol>' +
      '<Protocol><Type>EXPR</Type><Server>mail.o365info.com</Server><EwsUrl>https://mail.o365info.com/EWS/Exchange.asmx</EwsUrl></Protocol>' +
      '<Protocol><Type>WEB</Type><External><OWAUrl AuthenticationMethod="Fba">https://legacy.mail.o365info.com/owa</OWAUrl></External>' +
      '<Internal><OWAUrl AuthenticationMethod="Fba">https://cas2007-ny.o365info.local/owa</OWAUrl></Internal></Protocol>' +
      '</Account></Response></Autodiscover>',
  );
  assert.deepEqual(a, {
    kind: 'settings',
    displayName: 'Bob',
    ewsInternal: 'https://legacy.mail.o365info.com/EWS/Exchange.asmx',
    ewsExternal: 'https://mail.o365info.com/EWS/Exchange.asmx',
    owaInternal: 'https://cas2007-ny.o365info.local/owa',
    owaExternal: 'https://legacy.mail.o365info.com/owa',
    outlookAnywhere: 'mail.o365info.com',
  });
});

test('Outlook Autodiscover: errors and redirects', () => {
  assert.deepEqual(
    parseOutlookAnswer(
      `<Autodiscover xmlns="${responseNs}"><Response><Error Time="1" Id="2"><ErrorCode>500</ErrorCode><Message>The email address can't be found.</Message></Error></Response></Autodiscover>`,
    ),
    { kind: 'error', code: '500', message: "The email address can't be found." },
  );
  assert.deepEqual(
    parseOutlookAnswer(
      `<Autodiscover xmlns="${responseNs}"><Response xmlns="${outlookNs}"><Account><Action>redirectUrl</Action><RedirectUrl>https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml</RedirectUrl></Account></Response></Autodiscover>`,
    ),
    { kind: 'redirect-url', url: 'https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml' },
  );
  assert.deepEqual(
    parseOutlookAnswer(
      `<Autodiscover xmlns="${responseNs}"><Response xmlns="${outlookNs}"><Account><Action>redirectAddr</Action><RedirectAddr>bob@o365info.mail.onmicrosoft.com</RedirectAddr></Account></Response></Autodiscover>`,
    ),
    { kind: 'redirect-address', address: 'bob@o365info.mail.onmicrosoft.com' },
  );
  assert.throws(() => parseOutlookAnswer('<html/>'), /not <Autodiscover>/);
});

test('SOAP GetUserSettings: the settings, or the error code', () => {
  const ok = parseUserSettings(
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"><Response>' +
      '<ErrorCode>NoError</ErrorCode><ErrorMessage /><UserResponses><UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage>' +
      '<UserSettings><UserSetting><Name>ExternalEwsUrl</Name><Value>https://legacy.mail.o365info.com/EWS/Exchange.asmx</Value></UserSetting>' +
      '<UserSetting><Name>ExternalWebClientUrls</Name><WebClientUrls><WebClientUrl><Url>https://legacy.mail.o365info.com/owa</Url></WebClientUrl></WebClientUrls></UserSetting>' +
      '</UserSettings></UserResponse></UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>',
  );
  assert.equal(ok.errorCode, 'NoError');
  assert.equal(ok.settings.get('ExternalEwsUrl'), 'https://legacy.mail.o365info.com/EWS/Exchange.asmx');
  assert.equal(ok.settings.get('ExternalWebClientUrls'), 'https://legacy.mail.o365info.com/owa');
  const bad = parseUserSettings(
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"><Response>' +
      '<ErrorCode>NoError</ErrorCode><UserResponses><UserResponse><ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user.</ErrorMessage><UserSettings /></UserResponse></UserResponses>' +
      '</Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>',
  );
  assert.equal(bad.errorCode, 'InvalidUser');
  assert.equal(bad.errorMessage, 'Invalid user.');
});

test('EWS GetFolder: the folder, its count and the server schema; a fault; a per-item error', () => {
  const ok = parseGetFolder(
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:ServerVersionInfo MajorVersion="8" Version="Exchange2007_SP1" xmlns:h="t"/></s:Header>' +
      '<s:Body xmlns:m="m" xmlns:t="t"><m:GetFolderResponse><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>' +
      '<m:Folders><t:Folder><t:FolderId Id="x"/><t:DisplayName>Inbox</t:DisplayName><t:TotalCount>2</t:TotalCount></t:Folder></m:Folders>' +
      '</m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>',
  );
  assert.deepEqual(ok, {
    kind: 'folder',
    displayName: 'Inbox',
    totalCount: 2,
    serverVersion: 'Exchange2007_SP1',
  });
  const fault = parseGetFolder(
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>a:ErrorInvalidServerVersion</faultcode>' +
      '<faultstring>The specified server version is invalid.</faultstring><detail><e:ResponseCode xmlns:e="e">ErrorInvalidServerVersion</e:ResponseCode></detail></s:Fault></s:Body></s:Envelope>',
  );
  assert.deepEqual(fault, {
    kind: 'error',
    code: 'ErrorInvalidServerVersion',
    message: 'The specified server version is invalid.',
  });
  const item = parseGetFolder(
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetFolderResponse xmlns:m="m"><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Error">' +
      '<m:MessageText>No mailbox.</m:MessageText><m:ResponseCode>ErrorNonExistentMailbox</m:ResponseCode></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>',
  );
  assert.deepEqual(item, { kind: 'error', code: 'ErrorNonExistentMailbox', message: 'No mailbox.' });
});

test('OWA: the logon form, its hidden fields and the body posted; the page title', () => {
  const html =
    '<html><head><title>Outlook Web App</title></head><body><form method="post" action="/owa/auth.owa">' +
    '<input type="hidden" name="destination" value="https://mail.o365info.com/owa/?a=1&amp;b=2">' +
    '<input type="hidden" name="flags" value="4"><input id="username" name="username">' +
    '<input id="password" name="password" type="password"></form></body></html>';
  const form = parseLogonForm(html);
  assert.ok(form);
  assert.equal(form.action, '/owa/auth.owa');
  assert.deepEqual(
    [...form.hidden],
    [
      ['destination', 'https://mail.o365info.com/owa/?a=1&b=2'],
      ['flags', '4'],
    ],
  );
  const body = new URLSearchParams(logonBody(form, 'bob@o365info.com', 'p&ss word'));
  assert.equal(body.get('username'), 'bob@o365info.com');
  assert.equal(body.get('password'), 'p&ss word');
  assert.equal(body.get('flags'), '4');
  assert.equal(parseLogonForm('<form action="/x"><input name="q"></form>'), undefined, 'no password field');
  assert.equal(pageTitle(html), 'Outlook Web App');
  assert.equal(pageTitle('<p>no title</p>'), undefined);
});

test('cookies: the Set-Cookie lines as one Cookie header; a deletion removes one', () => {
  assert.equal(
    cookieHeader(['cadata=abc; Path=/; Secure; HttpOnly', 'other=1; Path=/']),
    'cadata=abc; other=1',
  );
  assert.equal(cookieHeader(['other=; Max-Age=0'], 'cadata=abc; other=1'), 'cadata=abc');
  assert.equal(cookieHeader([]), undefined);
});
