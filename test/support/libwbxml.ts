/**
 * Drive Debian's libwbxml2-utils (`xml2wbxml`, `wbxml2xml`; libwbxml 0.11.8) from tests, the way
 * docs/lab.md §3.3 does by hand: the ActiveSync DOCTYPE, one namespace per element
 * (`xmlns="AirSync:"`), `xml2wbxml -a -n -v 1.3` for the canonical `03 01 6A 00` header and
 * `wbxml2xml -l ACTIVESYNC` to decode. Both keep whitespace (`-k`) so that text survives exactly.
 *
 * Also here: our tree as the XML libwbxml reads (with libwbxml's own tag names where they differ from
 * MS-ASWBXML, see `libwbxmlNames`), and the XML `wbxml2xml` writes read back into that shape.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { WbxmlElement, WbxmlNamespace } from '../../src/codec/wbxml.ts';
import { escapeXml } from '../../src/codec/xml-escape.ts';
import type { XmlElement as SharedXmlElement } from '../../src/codec/xml-read.ts';
import { readXml } from '../../src/codec/xml-read.ts';

const run = promisify(execFile);

export const activeSyncDoctype =
  '<!DOCTYPE ActiveSync PUBLIC "-//MICROSOFT//DTD ActiveSync//EN" "http://www.microsoft.com/">';

const install =
  'install Debian package libwbxml2-utils: DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libwbxml2-utils';

let checked: Promise<void> | undefined;

/** Resolve when both tools run; reject with what to install when they do not. */
export function requireLibwbxml(): Promise<void> {
  checked ??= (async () => {
    for (const tool of ['xml2wbxml', 'wbxml2xml']) {
      try {
        // Both print their usage and exit non-zero without arguments; what matters is that they start.
        await run(tool, [], { timeout: 10_000 });
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
        if (e.code === 'ENOENT')
          throw new Error(`libwbxml tool ${tool} is not on PATH; ${install}`, { cause: err });
        if (!/libwbxml/.test(`${e.stdout ?? ''}${e.stderr ?? ''}`))
          throw new Error(`${tool} did not start as libwbxml's: ${String(err)}; ${install}`, { cause: err });
      }
    }
  })();
  return checked;
}

async function inTempDir<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'coexist-libwbxml-'));
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface Xml2WbxmlOptions {
  /** `-a`: public id 1 ("unknown") in the header; without it libwbxml writes the DTD into the string table. */
  readonly anonymous?: boolean;
  /** Without `-n`, libwbxml moves repeated strings into the string table and writes STR_T references. */
  readonly stringTable?: boolean;
}

/** `xml2wbxml [-a] [-n] -k -v 1.3`; rejects with the tool's message when it fails. */
export async function xml2wbxml(xml: string, options: Xml2WbxmlOptions = {}): Promise<Uint8Array> {
  await requireLibwbxml();
  const { anonymous = true, stringTable = false } = options;
  return inTempDir(async (dir) => {
    const input = join(dir, 'in.xml');
    const output = join(dir, 'out.wbxml');
    await writeFile(input, xml);
    const args = [...(anonymous ? ['-a'] : []), ...(stringTable ? [] : ['-n']), '-k', '-v', '1.3'];
    try {
      await run('xml2wbxml', [...args, '-o', output, input], { timeout: 20_000 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      throw new Error(`xml2wbxml ${args.join(' ')} failed: ${e.stdout ?? ''}${e.stderr ?? ''}\n${xml}`, {
        cause: err,
      });
    }
    return new Uint8Array(await readFile(output));
  });
}

/** `wbxml2xml -l ACTIVESYNC -m 0 -k`: compact XML, whitespace kept; rejects when libwbxml cannot parse. */
export async function wbxml2xml(wbxml: Uint8Array): Promise<string> {
  await requireLibwbxml();
  return inTempDir(async (dir) => {
    const input = join(dir, 'in.wbxml');
    const output = join(dir, 'out.xml');
    await writeFile(input, wbxml);
    try {
      await run('wbxml2xml', ['-l', 'ACTIVESYNC', '-m', '0', '-k', '-o', output, input], { timeout: 20_000 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      throw new Error(
        `wbxml2xml failed: ${e.stdout ?? ''}${e.stderr ?? ''} on ${Buffer.from(wbxml).toString('hex')}`,
        { cause: err },
      );
    }
    return readFile(output, 'utf8');
  });
}

/**
 * Where libwbxml 0.11.8's ActiveSync tables name a tag differently from MS-ASWBXML (same page, same
 * token), as found by dumping its tables (wbxml-libwbxml.test.ts checks that this list is exact). Mostly
 * ActiveSync 2.5-era names (Recurrence_Type, BusinessCity), plus two typos of its own.
 */
export const libwbxmlNames: Readonly<Partial<Record<WbxmlNamespace, Readonly<Record<string, string>>>>> = {
  Contacts: {
    AssistantPhoneNumber: 'AssistantTelephoneNumber',
    BusinessAddressCity: 'BusinessCity',
    BusinessAddressCountry: 'BusinessCountry',
    BusinessAddressPostalCode: 'BusinessPostalCode',
    BusinessAddressState: 'BusinessState',
    BusinessAddressStreet: 'BusinessStreet',
    HomeAddressCity: 'HomeCity',
    HomeAddressCountry: 'HomeCountry',
    HomeAddressPostalCode: 'HomePostalCode',
    HomeAddressState: 'HomeState',
    HomeAddressStreet: 'HomeStreet',
    OtherAddressCity: 'OtherCity',
    OtherAddressCountry: 'OtherCountry',
    OtherAddressPostalCode: 'OtherPostalCode',
    OtherAddressState: 'OtherState',
    OtherAddressStreet: 'OtherStreet',
  },
  Email: {
    Att0Id: 'AttOId',
    ReplyTo: 'Reply-To',
    DtStamp: 'DTStamp',
    Type: 'Recurrence_Type',
    Until: 'Recurrence_Until',
    Occurrences: 'Recurrence_Occurrences',
    Interval: 'Recurrence_Interval',
    DayOfWeek: 'Recurrence_DayOfWeek',
    DayOfMonth: 'Recurrence_DayOfMonth',
    WeekOfMonth: 'Recurrence_WeekOfMonth',
    MonthOfYear: 'Recurrence_MonthOfYear',
    Status: 'FlagStatus',
  },
  Calendar: {
    Timezone: 'TimeZone',
    Email: 'Attendee_Email',
    Name: 'Attendee_Name',
    CompressedRTF: 'Compressed_RTF',
    DtStamp: 'DTStamp',
    Deleted: 'Exception_Deleted',
    ExceptionStartTime: 'Exception_StartTime',
    OrganizerEmail: 'Organizer_Email',
    OrganizerName: 'Organizer_Name',
    Type: 'Recurrence_Type',
    Until: 'Recurrence_Until',
    Occurrences: 'Recurrence_Occurrences',
    Interval: 'Recurrence_Interval',
    DayOfWeek: 'Recurrence_DayOfWeek',
    DayOfMonth: 'Recurrence_DayOfMonth',
    WeekOfMonth: 'Recurrence_WeekOfMonth',
    MonthOfYear: 'Recurrence_MonthOfYear',
    AttendeeStatus: 'Attendee_Status',
    AttendeeType: 'Attendee_Type',
  },
  Tasks: {
    UtcDueDate: 'UTCDueDate',
    Type: 'Recurrence_Type',
    Start: 'Recurrence_Start',
    Until: 'Recurrence_Until',
    Occurrences: 'Recurrence_Occurrences',
    Interval: 'Recurrence_Interval',
    DayOfMonth: 'Recurrence_DayOfMonth',
    DayOfWeek: 'Recurrence_DayOfWeek',
    WeekOfMonth: 'Recurrence_WeekOfMonth',
    MonthOfYear: 'Recurrence_MonthOfYear',
    Regenerate: 'Recurrence_Regenerate',
    DeadOccur: 'Recurrence_DeadOccur',
    UtcStartDate: 'UTCStartDate',
  },
  ValidateCert: { CheckCrl: 'CheckCRL' },
  Provision: { RequireStorageCardEncryption: 'DeviceEncryptionEnabled' },
  Settings: { SMTPAddress: 'SmtpAddress', RightsManagementInformation: 'ihsManagementInformation' },
  ComposeMail: { Mime: 'MIME' },
  RightsManagement: {
    Owner: 'RMOwner',
    RemoveRightsManagementProtection: 'RemoveRightsManagementDistribution',
  },
};

/** libwbxml's namespace names; only GAL differs ("Gal"). */
export const libwbxmlNamespace = (ns: WbxmlNamespace): string => (ns === 'GAL' ? 'Gal' : ns);
const ourNamespace = (ns: string): string => (ns === 'Gal' ? 'GAL' : ns);

const libwbxmlTag = (ns: WbxmlNamespace, tag: string): string => libwbxmlNames[ns]?.[tag] ?? tag;
const ourTag = (ns: string, tag: string): string => {
  const names = libwbxmlNames[ns as WbxmlNamespace] ?? {};
  return Object.keys(names).find((k) => names[k] === tag) ?? tag;
};

/**
 * The elements whose text libwbxml treats as base64 of OPAQUE data, both ways (xml2wbxml decodes the
 * base64 into OPAQUE, wbxml2xml writes OPAQUE as base64); found by encoding `<X>QUJD</X>` for every tag.
 * Everywhere else xml2wbxml writes text as STR_I, CDATA sections as OPAQUE, and wbxml2xml writes OPAQUE
 * as raw text.
 */
export const libwbxmlBase64: ReadonlySet<string> = new Set([
  'AirSyncBase:Content',
  'ComposeMail:Mime',
  'Email2:ConversationId',
  'Email2:ConversationIndex',
  'GAL:Data',
  'ItemOperations:ConversationId',
  'ResolveRecipients:Data',
  'Search:ConversationId',
]);

// CR as a character reference too: XML turns a literal CR LF into LF before libwbxml sees the text.
const escapeText = (s: string): string => escapeXml(s).replaceAll('\r', '&#13;');

/**
 * Our tree as an XML document for `xml2wbxml`: the DOCTYPE, `xmlns` where the namespace changes,
 * libwbxml's tag names, text escaped; opaque bytes as base64 where libwbxml expects it, else as a CDATA
 * section (which it encodes as OPAQUE; only for bytes that are UTF-8 without `]]>`).
 */
export function toLibwbxmlXml(root: WbxmlElement): string {
  const render = (el: WbxmlElement, parentNs: WbxmlNamespace | undefined): string => {
    const tag = libwbxmlTag(el.ns, el.tag);
    const ns = el.ns === parentNs ? '' : ` xmlns="${libwbxmlNamespace(el.ns)}:"`;
    if (el.children.length === 0) return `<${tag}${ns}/>`;
    const inner = el.children
      .map((c) => {
        if (typeof c === 'string') return escapeText(c);
        if (!(c instanceof Uint8Array)) return render(c, el.ns);
        if (libwbxmlBase64.has(`${el.ns}:${el.tag}`)) return Buffer.from(c).toString('base64');
        const text = new TextDecoder('utf-8', { fatal: true }).decode(c);
        if (text.includes(']]>')) throw new Error('opaque data with ]]> cannot be a CDATA section');
        return `<![CDATA[${text}]]>`;
      })
      .join('');
    return `<${tag}${ns}>${inner}</${tag}>`;
  };
  return `<?xml version="1.0" encoding="utf-8"?>\n${activeSyncDoctype}\n${render(root, undefined)}`;
}

/** An element as XML sees it: namespace, name, and content with adjacent text merged, empty text gone. */
export interface XmlElement {
  readonly ns: string;
  readonly tag: string;
  readonly children: readonly (XmlElement | string)[];
}

function merged(children: readonly (XmlElement | string)[]): (XmlElement | string)[] {
  const out: (XmlElement | string)[] = [];
  for (const c of children) {
    const last = out.at(-1);
    if (typeof c === 'string') {
      if (c === '') continue;
      if (typeof last === 'string') out[out.length - 1] = last + c;
      else out.push(c);
    } else out.push(c);
  }
  return out;
}

/**
 * Our tree as `wbxml2xml` shows it: text merged, empty strings gone (XML cannot tell `<a></a>` from
 * `<a/>`), opaque data as base64 where libwbxml writes base64, else as its UTF-8 text.
 */
export function xmlView(el: WbxmlElement): XmlElement {
  return {
    ns: el.ns,
    tag: el.tag,
    children: merged(
      el.children.map((c) =>
        typeof c === 'string'
          ? c
          : c instanceof Uint8Array
            ? libwbxmlBase64.has(`${el.ns}:${el.tag}`)
              ? Buffer.from(c).toString('base64')
              : new TextDecoder('utf-8', { fatal: true }).decode(c)
            : xmlView(c),
      ),
    ),
  };
}

/**
 * Read the XML `wbxml2xml` writes with the shared strict reader (src/codec/xml-read.ts), the ActiveSync DOCTYPE
 * allowed (no internal subset); every element in a namespace `Name:`, no attributes. Anything else throws.
 * Namespaces and tag names come back in our spelling (`GAL`, `BusinessAddressCity`, …).
 */
export function parseLibwbxmlXml(xml: string): XmlElement {
  // wbxml2xml writes a CR in text as is, and XML reads a CR LF as LF; `-m 0` puts no line break in markup.
  const root = readXml(xml.replaceAll('\r', '&#13;'), { doctype: 'external' });
  const view = (el: SharedXmlElement): XmlElement => {
    const where = `wbxml2xml output: <${el.local}>`;
    if (!/^[^:]+:$/.test(el.ns))
      throw new Error(`${where} has namespace ${JSON.stringify(el.ns)}, not "Name:"`);
    if (el.attributes.size > 0) throw new Error(`${where} has attributes`);
    const ns = ourNamespace(el.ns.slice(0, -1));
    return {
      ns,
      tag: ourTag(ns, el.local),
      children: el.content.map((c) => (typeof c === 'string' ? c : view(c))),
    };
  };
  return view(root);
}
