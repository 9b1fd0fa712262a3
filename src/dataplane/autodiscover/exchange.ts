/**
 * What an answer says about Exchange itself: the build each version announces (POX ServerVersion, SOAP
 * CasVersion and ServerVersionInfo), the EWS schemas it understands, and the identifiers Exchange would
 * store but the estate does not (GUIDs and DNs, derived from names, never random).
 */
import { createHash } from 'node:crypto';
import type { AutodiscoverAnswer } from '../../core/autodiscover/answer.ts';
import type { ProductVersion } from '../../core/estate/estate.ts';

// ---- versions (docs/protocols.md §4.2 ServerVersion layout, §7; exchangelib version.py for the API names) ----

interface Build {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
  readonly revision: number;
  /** The EWS schema name of the build (`ServerVersionInfo/Version`; a real name, real-clients-and-ldap.md §2). */
  readonly api: string;
}

/** The build coexist announces per version: the service pack the lab models (2007 SP3, 2010 SP3, 2013 SP1, RTM after). */
export const builds: Readonly<Record<ProductVersion, Build>> = {
  2007: { major: 8, minor: 3, build: 83, revision: 6, api: 'Exchange2007_SP1' },
  2010: { major: 14, minor: 3, build: 123, revision: 4, api: 'Exchange2010_SP2' },
  2013: { major: 15, minor: 0, build: 847, revision: 32, api: 'Exchange2013_SP1' },
  2016: { major: 15, minor: 1, build: 225, revision: 42, api: 'Exchange2016' },
  2019: { major: 15, minor: 2, build: 221, revision: 12, api: 'Exchange2016' },
};

const schemaLadder = [
  'Exchange2007',
  'Exchange2007_SP1',
  'Exchange2010',
  'Exchange2010_SP1',
  'Exchange2010_SP2',
  'Exchange2013',
  'Exchange2013_SP1',
  'Exchange2016',
];

/** POX `ServerVersion`: `[4-bit 0x7][6-bit major][6-bit minor][1][15-bit build]` in 8 hex digits (§4.2; 2013 SP1 = 73C0834F). */
export function serverVersionHex(version: ProductVersion): string {
  const b = builds[version];
  const n = ((0x7 << 28) | (b.major << 22) | (b.minor << 16) | 0x8000 | b.build) >>> 0;
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/** SOAP `CasVersion` / `ExternalEwsVersion` of a version's build, e.g. `15.00.0847.032` (§4.3, §7). */
export function casVersion(version: ProductVersion): string {
  const b = builds[version];
  const pad = (n: number, w: number): string => String(n).padStart(w, '0');
  return `${pad(b.major, 2)}.${pad(b.minor, 2)}.${pad(b.build, 4)}.${pad(b.revision, 3)}`;
}

/** SOAP `EwsSupportedSchemas`: the EWS schema names a mailbox version understands, oldest first (§4.3 table). */
export function ewsSupportedSchemas(version: ProductVersion): string {
  return schemaLadder.slice(0, schemaLadder.indexOf(builds[version].api) + 1).join(', ');
}

// ---- identifiers derived, not stored (the estate has no GUIDs) ----

/** A name-based (version 5 layout, SHA-1) GUID: stable for the same input, never random. */
function nameGuid(name: string): string {
  const h = createHash('sha1').update(name).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** POX `DeploymentId` / SOAP `UserDeploymentId`: one GUID per organization, derived from its name. */
export function deploymentId(organization: string): string {
  return nameGuid(`coexist:deployment:${organization.toLowerCase()}`);
}

/** The mailbox GUID of a 2013+ mailbox (the `<guid>@<domain>` server name, MailboxId), derived from its address. */
export function mailboxGuid(address: string): string {
  return nameGuid(`coexist:mailbox:${address.toLowerCase()}`);
}

/** The domain of an address, lower-cased. */
export const domainOf = (address: string): string =>
  address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/** 2007/2010: the mailbox server's FQDN; 2013+: `<mailbox GUID>@<domain>` (§4.2 `Server` row). */
export function rpcServer(a: AutodiscoverAnswer): string {
  return a.mailboxVersion >= 2013 ? `${mailboxGuid(a.address)}@${domainOf(a.address)}` : a.mailboxServerFqdn;
}

/** The mailbox server's legacy DN (POX ServerDN, SOAP InternalMailboxServerDN). */
export function serverDn(a: AutodiscoverAnswer, organization: string): string {
  const cn = a.mailboxVersion >= 2013 ? rpcServer(a) : a.mailboxServer;
  return `/o=${organization}/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=${cn}`;
}

/** The mailbox database's DN (POX MdbDN, SOAP MailboxDN). */
export const mdbDn = (a: AutodiscoverAnswer, organization: string): string =>
  `${serverDn(a, organization)}/cn=Microsoft Private MDB`;
