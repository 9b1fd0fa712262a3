/**
 * A synthetic but realistic estate file for the benchmarks, as YAML text in the format of
 * examples/o365info.yaml (schema: src/config/estate-schema.ts), so that the bench measures loading from text.
 *
 * Shape:
 * - site 0 is the internet-facing front-end site: a 2013 CAS behind the primary namespace `mail.<domain>` and
 *   `autodiscover.<domain>`, a 2013 mailbox server, a 2007 CAS bound to the legacy namespace
 *   `legacy.mail.<domain>` and a 2007 mailbox server (plus more mailbox servers when serversPerSite > 4);
 * - the other sites cycle through Exchange 2007, 2010 and 2013; each has at least one CAS and one mailbox
 *   server of its version, and mailbox servers mount 1 to 4 databases;
 * - about a third of the sites are internet-facing, with a regional namespace `<site>.mail.<domain>` bound
 *   to their first CAS, whose external URLs are on that host; the others have internal URLs only;
 * - users are spread over all mailbox databases (a few name their server instead), with two aliases,
 *   a down-level login and one shared, precomputed password hash.
 *
 * Every external URL host is a namespace resolving to the server that carries it; every internal URL host
 * is the server's FQDN. Deterministic for a given seed (a small seeded PRNG, no Math.random).
 */

export interface GenerateEstateOptions {
  readonly sites: number;
  /** Servers per site; the estate has sites * serversPerSite servers. At least 4 (the front-end site needs them). */
  readonly serversPerSite: number;
  readonly users: number;
  /** PRNG seed; default 1. */
  readonly seed?: number;
}

/** One precomputed hash (from examples/o365info.yaml, user alice) shared by every user: hashing is not what we measure. */
export const benchPasswordHash =
  '$scrypt$ln=15,r=8,p=1$FAOdFeTF6G0weTGCo03ScQ$PU95YrEt9hNRNKLnk74kG8t_B6OzHsUclUqcajDEpNc';

const domain = 'contoso.com';
const secondaryDomain = 'contoso.eu';
const localDomain = 'contoso.local';
const organization = 'Contoso';
const netbios = 'CONTOSO';

type Version = 2007 | 2010 | 2013;
type UrlProtocol = 'autodiscover' | 'activesync' | 'ews' | 'owa' | 'ecp' | 'rpc' | 'mapi' | 'oab';

/** Virtual directory paths as the example writes them. */
const vdir: Readonly<Record<UrlProtocol, string>> = {
  autodiscover: '/Autodiscover/Autodiscover.xml',
  activesync: '/Microsoft-Server-ActiveSync',
  ews: '/EWS/Exchange.asmx',
  owa: '/owa',
  ecp: '/ecp',
  rpc: '/rpc/rpcproxy.dll',
  mapi: '/mapi',
  oab: '/OAB',
};

/** Virtual directories a CAS of each version has (2007: no ECP; MAPI/HTTP from 2013). */
const vdirsOf: Readonly<Record<Version, readonly UrlProtocol[]>> = {
  2007: ['autodiscover', 'activesync', 'ews', 'owa', 'rpc', 'oab'],
  2010: ['autodiscover', 'activesync', 'ews', 'owa', 'ecp', 'rpc', 'oab'],
  2013: ['autodiscover', 'activesync', 'ews', 'owa', 'ecp', 'rpc', 'mapi', 'oab'],
};

/** Site names and short codes (server names); past the end of the list, names and codes get a number. */
const cities: readonly (readonly [string, string])[] = [
  ['New York', 'NY'],
  ['Los Angeles', 'LA'],
  ['Madrid', 'MAD'],
  ['London', 'LON'],
  ['Paris', 'PAR'],
  ['Berlin', 'BER'],
  ['Tokyo', 'TYO'],
  ['Sydney', 'SYD'],
  ['Toronto', 'TOR'],
  ['Chicago', 'CHI'],
  ['Dallas', 'DAL'],
  ['Seattle', 'SEA'],
  ['Boston', 'BOS'],
  ['Miami', 'MIA'],
  ['Denver', 'DEN'],
  ['Atlanta', 'ATL'],
  ['Houston', 'HOU'],
  ['Phoenix', 'PHX'],
  ['Montreal', 'MTL'],
  ['Mexico City', 'MEX'],
  ['Sao Paulo', 'SAO'],
  ['Buenos Aires', 'BUE'],
  ['Lisbon', 'LIS'],
  ['Dublin', 'DUB'],
  ['Amsterdam', 'AMS'],
  ['Brussels', 'BRU'],
  ['Zurich', 'ZRH'],
  ['Milan', 'MIL'],
  ['Rome', 'ROM'],
  ['Vienna', 'VIE'],
  ['Prague', 'PRG'],
  ['Warsaw', 'WAW'],
  ['Stockholm', 'STO'],
  ['Oslo', 'OSL'],
  ['Copenhagen', 'CPH'],
  ['Helsinki', 'HEL'],
  ['Athens', 'ATH'],
  ['Istanbul', 'IST'],
  ['Dubai', 'DXB'],
  ['Mumbai', 'BOM'],
  ['Bangalore', 'BLR'],
  ['Singapore', 'SIN'],
  ['Hong Kong', 'HKG'],
  ['Shanghai', 'SHA'],
  ['Seoul', 'SEL'],
  ['Osaka', 'OSA'],
  ['Melbourne', 'MEL'],
  ['Auckland', 'AKL'],
  ['Johannesburg', 'JNB'],
  ['Cairo', 'CAI'],
  ['Nairobi', 'NBO'],
  ['Lagos', 'LOS'],
  ['Frankfurt', 'FRA'],
  ['Munich', 'MUC'],
  ['Barcelona', 'BCN'],
  ['Lyon', 'LYS'],
  ['Manchester', 'MAN'],
  ['Edinburgh', 'EDI'],
  ['Vancouver', 'YVR'],
  ['San Francisco', 'SFO'],
];

// prettier-ignore
const firstNames = [
  'Alice', 'Bob', 'Carol', 'Diego', 'Emma', 'Farid', 'Grace', 'Hugo', 'Ines', 'Jonas',
  'Kenji', 'Laura', 'Mateo', 'Nina', 'Omar', 'Paula', 'Quentin', 'Rosa', 'Sven', 'Tara',
  'Umar', 'Vera', 'Wei', 'Xenia', 'Yusuf', 'Zoe', 'Anna', 'Ben', 'Chloe', 'David',
  'Elena', 'Felix', 'Greta', 'Hannah', 'Ivan', 'Julia', 'Karim', 'Lena', 'Marco', 'Noah',
];

// prettier-ignore
const lastNames = [
  'Smith', 'Jones', 'White', 'Garcia', 'Muller', 'Rossi', 'Dubois', 'Tanaka', 'Kim', 'Nguyen',
  'Silva', 'Novak', 'Larsen', 'Kowalski', 'Papadopoulos', 'Yilmaz', 'Haddad', 'Patel', 'Chen', 'Wang',
  'Brown', 'Taylor', 'Martin', 'Lopez', 'Schmidt', 'Fischer', 'Weber', 'Moreau', 'Ricci', 'Sato',
  'Suzuki', 'Park', 'Singh', 'Cohen', 'Olsen', 'Virtanen', 'Horvat', 'Popescu', 'Ivanova', 'Murphy',
];

/** mulberry32: a tiny, fast, seeded PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface GenServer {
  readonly name: string;
  readonly fqdn: string;
  readonly version: Version;
  readonly role: 'cas' | 'mailbox';
  /** For a CAS: the public host of its external URLs, if it is internet-facing. */
  readonly externalHost?: string;
  /** The front end also publishes Autodiscover on autodiscover.<domain>. */
  readonly autodiscoverHost?: string;
  readonly databases: readonly string[];
}

interface GenSite {
  readonly name: string;
  readonly internetFacing: boolean;
  readonly servers: readonly GenServer[];
}

interface GenNamespace {
  readonly host: string;
  readonly kind: 'primary' | 'autodiscover' | 'legacy' | 'regional';
  readonly server: string;
}

/** Generate the estate file (YAML text). */
export function generateEstateYaml(opts: GenerateEstateOptions): string {
  const { sites: siteCount, serversPerSite, users: userCount } = opts;
  if (!Number.isInteger(siteCount) || siteCount < 1) throw new RangeError('sites must be an integer >= 1');
  if (!Number.isInteger(serversPerSite) || serversPerSite < 4) {
    throw new RangeError('serversPerSite must be an integer >= 4 (the front-end site has 4 roles to fill)');
  }
  if (!Number.isInteger(userCount) || userCount < 0) throw new RangeError('users must be an integer >= 0');
  const random = seededRandom(opts.seed ?? 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;

  // Which non-front-end sites are internet-facing: ceil((sites - 1) / 3) of them, chosen by the seed.
  const others = Array.from({ length: siteCount - 1 }, (_, i) => i + 1);
  for (let i = others.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [others[i], others[j]] = [others[j] as number, others[i] as number];
  }
  const facing = new Set(others.slice(0, Math.ceil(others.length / 3)));

  const namespaces: GenNamespace[] = [];
  const sites: GenSite[] = [];
  const databases: string[] = [];
  const mailboxServerOf = new Map<string, string>();

  const mailboxServer = (name: string, version: Version, code: string): GenServer => {
    const count = 1 + Math.floor(random() * 4);
    const dbs: string[] = [];
    for (let d = 0; d < count; d++) {
      const db = `DB${version}-${code}-${String(databases.length + 1).padStart(4, '0')}`;
      dbs.push(db);
      databases.push(db);
      mailboxServerOf.set(db, name);
    }
    return { name, fqdn: fqdnOf(name), version, role: 'mailbox', databases: dbs };
  };
  const cas = (
    name: string,
    version: Version,
    externalHost?: string,
    autodiscoverHost?: string,
  ): GenServer => ({
    name,
    fqdn: fqdnOf(name),
    version,
    role: 'cas',
    ...(externalHost !== undefined && { externalHost }),
    ...(autodiscoverHost !== undefined && { autodiscoverHost }),
    databases: [],
  });

  for (let i = 0; i < siteCount; i++) {
    const [city, baseCode] = cities[i % cities.length] as readonly [string, string];
    const round = Math.floor(i / cities.length);
    const name = round === 0 ? city : `${city} ${round + 1}`;
    const code = round === 0 ? baseCode : `${baseCode}${round + 1}`;
    const servers: GenServer[] = [];
    if (i === 0) {
      const fe = `CAS2013-${code}-1`;
      const legacyCas = `CAS2007-${code}-1`;
      namespaces.push(
        { host: `mail.${domain}`, kind: 'primary', server: fe },
        { host: `autodiscover.${domain}`, kind: 'autodiscover', server: fe },
        { host: `legacy.mail.${domain}`, kind: 'legacy', server: legacyCas },
      );
      servers.push(
        cas(fe, 2013, `mail.${domain}`, `autodiscover.${domain}`),
        mailboxServer(`MBX2013-${code}-1`, 2013, code),
        cas(legacyCas, 2007, `legacy.mail.${domain}`),
        mailboxServer(`MBX2007-${code}-1`, 2007, code),
      );
      // More servers in the headquarters: internal-only 2013 CASes and mailbox servers of both versions.
      for (let k = 4, n = 2; k < serversPerSite; k++, n++) {
        if (k % 4 === 3) servers.push(cas(`CAS2013-${code}-${n}`, 2013));
        else if (k % 2 === 0) servers.push(mailboxServer(`MBX2013-${code}-${n}`, 2013, code));
        else servers.push(mailboxServer(`MBX2007-${code}-${n}`, 2007, code));
      }
      sites.push({ name, internetFacing: true, servers });
      continue;
    }
    const version = ([2007, 2010, 2013] as const)[(i - 1) % 3] as Version;
    const internetFacing = facing.has(i);
    const casCount = Math.max(1, Math.round(serversPerSite / 4));
    for (let c = 1; c <= casCount; c++) {
      const casName = `CAS${version}-${code}-${c}`;
      if (c === 1 && internetFacing) {
        const host = `${slug(name)}.mail.${domain}`;
        namespaces.push({ host, kind: 'regional', server: casName });
        servers.push(cas(casName, version, host));
      } else {
        servers.push(cas(casName, version));
      }
    }
    for (let m = 1; m <= serversPerSite - casCount; m++) {
      servers.push(mailboxServer(`MBX${version}-${code}-${m}`, version, code));
    }
    sites.push({ name, internetFacing, servers });
  }

  const out: string[] = [
    `# Generated by bench/generate-estate.ts (seed ${opts.seed ?? 1}): ${siteCount} sites, ` +
      `${siteCount * serversPerSite} servers, ${userCount} users. Regenerate rather than edit.`,
    `name: bench-${siteCount}x${serversPerSite}-${userCount}`,
    `organization: ${organization}`,
    `domains: [${domain}, ${secondaryDomain}]`,
    '',
    'policies:',
    '  activesyncCrossSite: proxy',
    '  owaRedirectStyle: http-302',
    '  autodiscoverLegacy: answer-at-front-end',
    '',
    'namespaces:',
  ];
  for (const ns of namespaces) out.push(`  - { host: ${ns.host}, kind: ${ns.kind}, server: ${ns.server} }`);
  out.push('', 'sites:');
  for (const site of sites) {
    out.push(`  - name: ${site.name}`, `    internetFacing: ${site.internetFacing}`, '    servers:');
    for (const s of site.servers) {
      out.push(
        `      - name: ${s.name}`,
        `        fqdn: ${s.fqdn}`,
        `        version: ${s.version}`,
        `        roles: [${s.role}]`,
      );
      if (s.role === 'cas') {
        out.push('        urls:');
        for (const p of vdirsOf[s.version]) out.push(`          ${p}: ${urlsOf(s, p)}`);
      } else {
        out.push(`        databases: [${s.databases.join(', ')}]`);
      }
    }
  }

  out.push('', 'users:');
  const taken = new Map<string, number>();
  const unique = (base: string): string => {
    const n = (taken.get(base) ?? 0) + 1;
    taken.set(base, n);
    return n === 1 ? base : `${base}${n}`;
  };
  for (let u = 0; u < userCount; u++) {
    const first = pick(firstNames);
    const last = pick(lastNames);
    const local = unique(`${first}.${last}`.toLowerCase());
    const sam = unique(`${first.charAt(0)}${last}`.toLowerCase());
    const db = pick(databases);
    // About one user in twenty names the server rather than the database, as the schema allows.
    const mailbox = random() < 0.05 ? `{ server: ${mailboxServerOf.get(db) ?? ''} }` : `{ database: ${db} }`;
    out.push(
      `  - address: ${local}@${domain}`,
      `    displayName: ${first} ${last}`,
      `    aliases: [${sam}@${domain}, ${local}@${secondaryDomain}]`,
      `    login: ${netbios}\\${sam}`,
      `    mailbox: ${mailbox}`,
      `    password: '${benchPasswordHash}'`,
    );
  }
  out.push('');
  return out.join('\n');
}

function fqdnOf(serverName: string): string {
  return `${serverName.toLowerCase()}.${localDomain}`;
}

function slug(siteName: string): string {
  return siteName.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

/** The `{ internal, external }` flow mapping of one virtual directory. */
function urlsOf(s: GenServer, p: UrlProtocol): string {
  const internal = `https://${s.fqdn}${vdir[p]}`;
  let externalHost: string | undefined;
  if (p === 'autodiscover') externalHost = s.autodiscoverHost;
  // Outlook Anywhere to legacy servers comes in through the front end (docs/protocols.md §2.1 rule 6).
  else if (p === 'rpc') externalHost = s.version === 2013 ? s.externalHost : undefined;
  else externalHost = s.externalHost;
  return externalHost === undefined
    ? `{ internal: ${internal} }`
    : `{ internal: ${internal}, external: https://${externalHost}${vdir[p]} }`;
}
