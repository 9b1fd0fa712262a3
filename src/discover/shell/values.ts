/**
 * The value formats Exchange cmdlets give, in both exports (docs/discover.md "What is read"):
 * - `Export-Csv` writes every value as its text (`ToString()`): `Version 15.0 (Build 1497.2)`,
 *   `Mailbox, ClientAccess`, `o365info.local/Configuration/Sites/New York`, an empty field for `$null`, and,
 *   for a multi-valued property, only its type name (`System.Collections.ArrayList`,
 *   `Microsoft.Exchange.Data.MultiValuedProperty`1[...]`): the values themselves are lost.
 * - `ConvertTo-Json` nests objects: a URL is a System.Uri object (`AbsoluteUri`, `OriginalString`, `Host`), a
 *   version an object (`Major`, `Minor`, `Build`, `Revision`) or, deserialized from a remote session, the
 *   same text as in CSV; an AD object id an object (`Name`, `DistinguishedName`) or its text; an enum its
 *   number (Windows PowerShell) or name; a multi-valued property an array; `$null` is `null`. Objects
 *   deeper than `-Depth` (2 by default) are written as their text.
 * Every reader here accepts all of these and returns `undefined` for "empty".
 */
import type { AcceptedDomainType, ExchangeBuild, ExchangeRole } from '../organisation.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A property of a record, looked up case-insensitively (PowerShell names are case-insensitive). */
export function prop(values: Readonly<Record<string, unknown>>, name: string): unknown {
  if (name in values) return values[name];
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(values)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

/** Text, or undefined when empty / `$null`. Objects give their most telling text property. */
export function text(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return v.trim() === '' ? undefined : v.trim();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (isObj(v)) {
    for (const key of [
      'AbsoluteUri',
      'OriginalString',
      'HostnameString',
      'Domain',
      'Name',
      'DisplayString',
      'value',
      'Value',
    ]) {
      const t = text(v[key]);
      if (t !== undefined) return t;
    }
  }
  return undefined;
}

/** The type name Export-Csv writes in place of a multi-valued property's values. */
export const isLostCollection = (v: unknown): boolean =>
  typeof v === 'string' &&
  /^(Deserialized\.)?(System\.Collections\.|System\.Object\[\]|Microsoft\.Exchange\.Data\.(MultiValuedProperty|ProxyAddressCollection)|System\.String\[\])/.test(
    v.trim(),
  );

/** A multi-valued property: a JSON array, or CSV text joined by `,` `;` or spaces (as a Select-Object -join wrote it); undefined when the export lost it. */
export function list(v: unknown, separators = /[;,]\s*|\s+/): string[] | undefined {
  if (v === null || v === undefined) return [];
  if (Array.isArray(v)) return v.flatMap((x) => text(x) ?? []);
  if (isLostCollection(v)) return undefined;
  if (isObj(v)) {
    const t = text(v);
    return t === undefined ? [] : [t];
  }
  const t = text(v);
  return t === undefined ? [] : t.split(separators).filter((s) => s !== '');
}

/** An absolute http(s) URL, or undefined when empty. Throws on anything else, with the text seen. */
export function url(v: unknown): string | undefined {
  const t = text(v);
  if (t === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(t);
  } catch {
    throw new Error(`"${t}" is not a URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    throw new Error(`"${t}" is not an http(s) URL`);
  return t;
}

export function bool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  const t = text(v)?.toLowerCase();
  return t === 'true' ? true : t === 'false' ? false : undefined;
}

/**
 * AdminDisplayVersion: `Version 15.0 (Build 1497.2)` (Exchange 2007 writes `Version 8.3 (Build 83.6)`),
 * or `{ Major, Minor, Build, Revision }`.
 */
export function build(v: unknown): ExchangeBuild | undefined {
  if (isObj(v) && typeof v.Major === 'number' && typeof v.Minor === 'number') {
    return {
      major: v.Major,
      minor: v.Minor,
      ...(typeof v.Build === 'number' && v.Build >= 0 && { build: v.Build }),
      ...(typeof v.Revision === 'number' && v.Revision >= 0 && { revision: v.Revision }),
    };
  }
  const t = text(v);
  if (t === undefined) return undefined;
  const m = /^(?:Version\s+)?(\d+)\.(\d+)(?:\s*\(Build\s+(\d+)(?:\.(\d+))?\)|\.(\d+)(?:\.(\d+))?)?$/i.exec(t);
  if (!m) return undefined;
  const b = m[3] ?? m[5];
  const r = m[4] ?? m[6];
  return {
    major: Number(m[1]),
    minor: Number(m[2]),
    ...(b !== undefined && { build: Number(b) }),
    ...(r !== undefined && { revision: Number(r) }),
  };
}

/**
 * ServerRole's flag values, as Windows PowerShell's ConvertTo-Json writes the enum (the same bits as AD's
 * msExchCurrentServerRoles): Cafe 1 (the 2013 Client Access front end), Mailbox 2, ClientAccess 4,
 * UnifiedMessaging 16, HubTransport 32, Edge 64; other bits are roles coexist does not route through.
 */
const roleBits: readonly [number, ExchangeRole][] = [
  [1, 'ClientAccess'],
  [2, 'Mailbox'],
  [4, 'ClientAccess'],
  [16, 'UnifiedMessaging'],
  [32, 'HubTransport'],
  [64, 'Edge'],
];

const roleNames: Record<string, ExchangeRole> = {
  clientaccess: 'ClientAccess',
  cafe: 'ClientAccess',
  mailbox: 'Mailbox',
  hubtransport: 'HubTransport',
  unifiedmessaging: 'UnifiedMessaging',
  edge: 'Edge',
};

/** ServerRole: `Mailbox, ClientAccess`, an array of names, or the flags number. Unknown names are left out. */
export function roles(v: unknown): ExchangeRole[] | undefined {
  const out = new Set<ExchangeRole>();
  if (typeof v === 'number') {
    for (const [bit, role] of roleBits) if ((v & bit) !== 0) out.add(role);
    return [...out];
  }
  const names = list(v);
  if (names === undefined) return undefined;
  if (names.length === 1 && /^\d+$/.test(names[0] ?? '')) return roles(Number(names[0]));
  for (const n of names) {
    const role = roleNames[n.toLowerCase()];
    if (role) out.add(role);
  }
  return names.length === 0 ? undefined : [...out];
}

/**
 * An AD site: `o365info.local/Configuration/Sites/New York` (a canonical name), `CN=New York,CN=Sites,...`
 * (a distinguished name), `New York`, or an ADObjectId object.
 */
export function siteName(v: unknown): string | undefined {
  if (isObj(v)) {
    const name = text(v.Name);
    if (name !== undefined) return name;
    return siteName(v.DistinguishedName) ?? siteName(text(v));
  }
  const t = text(v);
  if (t === undefined) return undefined;
  const dn = /^CN=((?:[^,\\]|\\.)+),CN=Sites,/i.exec(t);
  if (dn?.[1]) return dn[1].replace(/\\(.)/g, '$1');
  const slash = t.lastIndexOf('/');
  return slash >= 0 ? t.slice(slash + 1) : t;
}

/** The AD domain of a canonical name (`o365info.local/Configuration/Sites/New York` -> `o365info.local`). */
export function canonicalDomain(v: unknown): string | undefined {
  if (isObj(v)) return canonicalDomain(v.DistinguishedName) ?? canonicalDomain(text(v));
  const t = text(v);
  if (t === undefined) return undefined;
  if (/^CN=/i.test(t)) {
    const dcs = [...t.matchAll(/DC=([^,]+)/gi)].map((m) => m[1]);
    return dcs.length > 0 ? dcs.join('.') : undefined;
  }
  const slash = t.indexOf('/');
  return slash > 0 ? t.slice(0, slash) : undefined;
}

/** The name of an AD object id: a server (`CAS2013-NY`), a database (`DB2013-NY`), from its text or object. */
export function objectName(v: unknown): string | undefined {
  if (isObj(v)) return text(v.Name) ?? objectName(text(v));
  const t = text(v);
  if (t === undefined) return undefined;
  const cn = /^CN=((?:[^,\\]|\\.)+),/i.exec(t);
  if (cn?.[1]) return cn[1].replace(/\\(.)/g, '$1');
  const slash = t.lastIndexOf('/');
  return slash >= 0 ? t.slice(slash + 1) : t;
}

/** AcceptedDomainType: a name, or the enum's number (Authoritative 0, ExternalRelay 1, InternalRelay 2). */
export function acceptedDomainType(v: unknown): AcceptedDomainType | undefined {
  if (typeof v === 'number') return (['Authoritative', 'ExternalRelay', 'InternalRelay'] as const)[v];
  const t = text(v)?.toLowerCase();
  if (t === 'authoritative') return 'Authoritative';
  if (t === 'internalrelay') return 'InternalRelay';
  if (t === 'externalrelay') return 'ExternalRelay';
  if (t !== undefined && /^\d$/.test(t)) return acceptedDomainType(Number(t));
  return undefined;
}

/** The `/o=` of an ExchangeLegacyDN: the organisation's name. */
export function organisationOf(legacyDn: unknown): string | undefined {
  const t = text(legacyDn);
  const m = t === undefined ? null : /^\/o=([^/]+)/i.exec(t);
  return m?.[1];
}

/** `SERVER\owa (Default Web Site)` -> `SERVER` and `owa`. */
export function parseVdirIdentity(v: unknown): { server?: string; vdir?: string } {
  const t = text(v);
  if (t === undefined) return {};
  const m = /^([^\\]+)\\([^(]+?)\s*(?:\(.*\))?$/.exec(t);
  if (!m) return {};
  return { ...(m[1] && { server: m[1] }), ...(m[2] && { vdir: m[2] }) };
}
