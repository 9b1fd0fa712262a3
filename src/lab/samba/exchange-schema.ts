/**
 * The subset of Exchange's Active Directory schema extension that coexist reads, with Exchange's own
 * names, as the lab's Samba AD domain controller gets it (docs/lab.md §5.3): the user attributes of a
 * mailbox, and the classes of the configuration partition that hold the organization's servers, databases
 * and virtual directories. Each definition says where its OID comes from: a public Microsoft reference
 * (by title), or `placeholder`, an OID under the documentation arc 1.3.6.1.4.1.32473 (RFC 5612's example
 * enterprise number) because no public source for the real one was found. LDAP clients ask for attributes
 * and classes by name, so a placeholder OID changes nothing that coexist or an admin's tool reads.
 *
 * Simplifications, also in docs/lab.md §5.3: the attributes are allowed directly on the classes that
 * carry them (real Exchange adds most through auxiliary classes), `CN=Protocols` and `CN=HTTP` under a
 * server are plain containers, and every class gets a defaultSecurityDescriptor that lets authenticated
 * users read (without one, objects of a new class are invisible to everyone but administrators).
 */

/** Where an OID comes from: the title of the public reference that gives it, or a placeholder. */
export type OidSource = { readonly reference: string } | 'placeholder';

/** The LDAP syntaxes used here (AD's attributeSyntax and oMSyntax pairs). */
export type AttributeSyntax = 'string' | 'teletex' | 'integer' | 'large-integer' | 'dn' | 'octets';

export interface ExchangeAttribute {
  /** lDAPDisplayName. */
  readonly name: string;
  /** The schema object's common name (CN=<cn>,CN=Schema,...). */
  readonly cn: string;
  readonly oid: string;
  readonly source: OidSource;
  readonly syntax: AttributeSyntax;
  readonly singleValued: boolean;
  /** A forward link's link ID (AD keeps linked DN attributes in step when their target moves). */
  readonly linkId?: number;
  /** Indexed for equality searches (searchFlags 1). */
  readonly indexed?: boolean;
}

export interface ExchangeClass {
  readonly name: string;
  readonly cn: string;
  readonly oid: string;
  readonly source: OidSource;
  readonly subClassOf: string;
  /** The classes an object of this class may be created under. */
  readonly possSuperiors: readonly string[];
  readonly mayContain: readonly string[];
}

/** Attributes added to classes the base schema already has. */
export interface ClassExtension {
  readonly cn: string;
  readonly mayContain: readonly string[];
}

const sdk2003 = { reference: 'Microsoft Exchange Server 2003 SDK, Active Directory schema reference' };
const openchange = {
  reference: "OpenChange's copy of the Exchange schema LDIF files (setup/AD/oc_provision_schema*.ldif)",
};

/** An attribute OID in the placeholder arc (RFC 5612's documentation enterprise number). */
const placeholderAttribute = (n: number): string => `1.3.6.1.4.1.32473.1.1.${n}`;
/** A class OID in the placeholder arc. */
const placeholderClass = (n: number): string => `1.3.6.1.4.1.32473.1.2.${n}`;

export const exchangeAttributes: readonly ExchangeAttribute[] = [
  // On users.
  {
    name: 'homeMDB',
    cn: 'ms-Exch-Home-MDB',
    oid: '1.2.840.113556.1.2.244',
    source: openchange,
    syntax: 'dn',
    singleValued: true,
    indexed: true,
  },
  {
    name: 'msExchHomeServerName',
    cn: 'ms-Exch-Home-Server-Name',
    oid: '1.2.840.113556.1.4.7000.102.47',
    source: openchange,
    syntax: 'string',
    singleValued: true,
    indexed: true,
  },
  {
    name: 'mailNickname',
    cn: 'ms-Exch-Mail-Nickname',
    oid: '1.2.840.113556.1.2.447',
    source: openchange,
    syntax: 'string',
    singleValued: true,
    indexed: true,
  },
  {
    name: 'msExchMailboxGuid',
    cn: 'ms-Exch-Mailbox-Guid',
    oid: '1.2.840.113556.1.4.7000.102.11058',
    source: openchange,
    syntax: 'octets',
    singleValued: true,
    indexed: true,
  },
  {
    name: 'publicDelegates',
    cn: 'ms-Exch-Public-Delegates',
    oid: '1.2.840.113556.1.2.238',
    source: sdk2003,
    syntax: 'dn',
    singleValued: false,
    linkId: 14,
  },
  {
    name: 'msExchDelegateListLink',
    cn: 'ms-Exch-Delegate-List-Link',
    oid: placeholderAttribute(1),
    source: 'placeholder',
    syntax: 'dn',
    singleValued: false,
  },
  {
    name: 'msExchVersion',
    cn: 'ms-Exch-Version',
    oid: placeholderAttribute(2),
    source: 'placeholder',
    syntax: 'large-integer',
    singleValued: true,
  },
  {
    name: 'msExchRecipientTypeDetails',
    cn: 'ms-Exch-Recipient-Type-Details',
    oid: placeholderAttribute(3),
    source: 'placeholder',
    syntax: 'large-integer',
    singleValued: true,
    indexed: true,
  },
  // On servers.
  {
    name: 'msExchCurrentServerRoles',
    cn: 'ms-Exch-Current-Server-Roles',
    oid: placeholderAttribute(4),
    source: 'placeholder',
    syntax: 'integer',
    singleValued: true,
  },
  {
    name: 'msExchServerSite',
    cn: 'ms-Exch-Server-Site',
    oid: placeholderAttribute(5),
    source: 'placeholder',
    syntax: 'dn',
    singleValued: true,
    indexed: true,
  },
  {
    name: 'msExchServerRole',
    cn: 'ms-Exch-Server-Role',
    oid: '1.2.840.113556.1.4.7000.102.15006',
    source: sdk2003,
    syntax: 'integer',
    singleValued: true,
  },
  // On databases.
  {
    name: 'msExchOwningServer',
    cn: 'ms-Exch-Owning-Server',
    oid: placeholderAttribute(6),
    source: 'placeholder',
    syntax: 'dn',
    singleValued: true,
    indexed: true,
  },
  // On virtual directories.
  {
    name: 'msExchInternalHostName',
    cn: 'ms-Exch-Internal-Host-Name',
    oid: placeholderAttribute(7),
    source: 'placeholder',
    syntax: 'string',
    singleValued: true,
  },
  {
    name: 'msExchExternalHostName',
    cn: 'ms-Exch-External-Host-Name',
    oid: placeholderAttribute(8),
    source: 'placeholder',
    syntax: 'string',
    singleValued: true,
  },
  // On accepted domains.
  {
    name: 'msExchAcceptedDomainName',
    cn: 'ms-Exch-Accepted-Domain-Name',
    oid: placeholderAttribute(9),
    source: 'placeholder',
    syntax: 'string',
    singleValued: true,
    indexed: true,
  },
  {
    name: 'msExchAcceptedDomainFlags',
    cn: 'ms-Exch-Accepted-Domain-Flags',
    oid: placeholderAttribute(10),
    source: 'placeholder',
    syntax: 'integer',
    singleValued: true,
  },
];

/** The virtual directory classes, each with the protocol of the estate it stands for. */
export const virtualDirectoryClasses = {
  activesync: 'msExchMobileVirtualDirectory',
  ews: 'msExchWebServicesVirtualDirectory',
  owa: 'msExchOWAVirtualDirectory',
  ecp: 'msExchECPVirtualDirectory',
  oab: 'msExchOABVirtualDirectory',
  autodiscover: 'msExchAutoDiscoverVirtualDirectory',
  rpc: 'msExchRpcHttpVirtualDirectory',
  mapi: 'msExchMapiVirtualDirectory',
} as const;

const vdirClass = (name: string, cn: string, n: number): ExchangeClass => ({
  name,
  cn,
  oid: placeholderClass(n),
  source: 'placeholder',
  subClassOf: 'top',
  possSuperiors: ['container'],
  mayContain: ['msExchInternalHostName', 'msExchExternalHostName', 'msExchVersion'],
});

/** New classes, in an order where each one's superiors and superclass come first. */
export const exchangeClasses: readonly ExchangeClass[] = [
  {
    name: 'msExchOrganizationContainer',
    cn: 'ms-Exch-Organization-Container',
    oid: '1.2.840.113556.1.5.7000.62.50020',
    source: openchange,
    subClassOf: 'container',
    possSuperiors: ['msExchConfigurationContainer'],
    mayContain: ['msExchVersion', 'legacyExchangeDN'],
  },
  {
    name: 'msExchAdminGroupContainer',
    cn: 'ms-Exch-Admin-Group-Container',
    oid: '1.2.840.113556.1.5.7000.62.50019',
    source: openchange,
    subClassOf: 'container',
    possSuperiors: ['msExchOrganizationContainer'],
    mayContain: [],
  },
  {
    name: 'msExchAdminGroup',
    cn: 'ms-Exch-Admin-Group',
    oid: '1.2.840.113556.1.5.7000.62.50011',
    source: openchange,
    subClassOf: 'top',
    possSuperiors: ['msExchAdminGroupContainer'],
    mayContain: ['legacyExchangeDN', 'msExchVersion'],
  },
  {
    name: 'msExchServersContainer',
    cn: 'ms-Exch-Servers-Container',
    oid: placeholderClass(1),
    source: 'placeholder',
    subClassOf: 'container',
    possSuperiors: ['msExchAdminGroup'],
    mayContain: [],
  },
  {
    name: 'msExchMDBContainer',
    cn: 'ms-Exch-MDB-Container',
    oid: placeholderClass(2),
    source: 'placeholder',
    subClassOf: 'container',
    possSuperiors: ['msExchAdminGroup'],
    mayContain: [],
  },
  {
    name: 'msExchExchangeServer',
    cn: 'ms-Exch-Exchange-Server',
    oid: '1.2.840.113556.1.5.7000.62.50009',
    source: openchange,
    subClassOf: 'server',
    possSuperiors: ['msExchServersContainer', 'container'],
    mayContain: [
      'msExchCurrentServerRoles',
      'msExchServerSite',
      'msExchServerRole',
      'msExchVersion',
      'networkAddress',
      'legacyExchangeDN',
      'versionNumber',
    ],
  },
  {
    name: 'msExchInformationStore',
    cn: 'ms-Exch-Information-Store',
    oid: placeholderClass(3),
    source: 'placeholder',
    subClassOf: 'top',
    possSuperiors: ['msExchExchangeServer'],
    mayContain: ['legacyExchangeDN'],
  },
  {
    name: 'msExchStorageGroup',
    cn: 'ms-Exch-Storage-Group',
    oid: placeholderClass(4),
    source: 'placeholder',
    subClassOf: 'container',
    possSuperiors: ['msExchInformationStore'],
    mayContain: ['legacyExchangeDN'],
  },
  {
    name: 'msExchPrivateMDB',
    cn: 'ms-Exch-Private-MDB',
    oid: placeholderClass(5),
    source: 'placeholder',
    subClassOf: 'top',
    possSuperiors: ['msExchStorageGroup', 'msExchMDBContainer'],
    mayContain: ['msExchOwningServer', 'legacyExchangeDN', 'msExchVersion'],
  },
  {
    name: 'msExchAcceptedDomain',
    cn: 'ms-Exch-Accepted-Domain',
    oid: placeholderClass(6),
    source: 'placeholder',
    subClassOf: 'top',
    possSuperiors: ['container'],
    mayContain: ['msExchAcceptedDomainName', 'msExchAcceptedDomainFlags', 'msExchVersion'],
  },
  vdirClass('msExchMobileVirtualDirectory', 'ms-Exch-Mobile-Virtual-Directory', 11),
  vdirClass('msExchWebServicesVirtualDirectory', 'ms-Exch-Web-Services-Virtual-Directory', 12),
  vdirClass('msExchOWAVirtualDirectory', 'ms-Exch-OWA-Virtual-Directory', 13),
  vdirClass('msExchECPVirtualDirectory', 'ms-Exch-ECP-Virtual-Directory', 14),
  vdirClass('msExchOABVirtualDirectory', 'ms-Exch-OAB-Virtual-Directory', 15),
  vdirClass('msExchAutoDiscoverVirtualDirectory', 'ms-Exch-AutoDiscover-Virtual-Directory', 16),
  vdirClass('msExchRpcHttpVirtualDirectory', 'ms-Exch-Rpc-Http-Virtual-Directory', 17),
  vdirClass('msExchMapiVirtualDirectory', 'ms-Exch-Mapi-Virtual-Directory', 18),
];

/** What the base classes gain: a mailbox user's Exchange attributes. */
export const classExtensions: readonly ClassExtension[] = [
  {
    cn: 'User',
    mayContain: [
      'homeMDB',
      'msExchHomeServerName',
      'mailNickname',
      'msExchMailboxGuid',
      'msExchVersion',
      'msExchRecipientTypeDetails',
      'msExchDelegateListLink',
      'publicDelegates',
    ],
  },
];

/** Every class may be read by authenticated users; administrators and the system do everything. */
export const defaultSecurityDescriptor =
  'D:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;EA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPLCLORC;;;AU)';

const syntaxes: Readonly<Record<AttributeSyntax, { attributeSyntax: string; oMSyntax: string }>> = {
  string: { attributeSyntax: '2.5.5.12', oMSyntax: '64' },
  teletex: { attributeSyntax: '2.5.5.4', oMSyntax: '20' },
  integer: { attributeSyntax: '2.5.5.9', oMSyntax: '2' },
  'large-integer': { attributeSyntax: '2.5.5.16', oMSyntax: '65' },
  dn: { attributeSyntax: '2.5.5.1', oMSyntax: '127' },
  octets: { attributeSyntax: '2.5.5.10', oMSyntax: '4' },
};

/** The oMObjectClass of DN-syntax attributes (1.3.12.2.1011.28.0.714, DS-DN), BER-encoded. */
const dnObjectClass = Buffer.from('KwwCh3McAIVK', 'base64');

/** An LDAP entry to add: attribute values as strings, or bytes for binary ones. */
export interface LdapAddition {
  readonly dn: string;
  readonly attributes: Readonly<Record<string, string | Buffer | readonly (string | Buffer)[]>>;
}

/** The attributeSchema entry of an attribute, under `schemaDn`. */
export function attributeEntry(a: ExchangeAttribute, schemaDn: string): LdapAddition {
  const { attributeSyntax, oMSyntax } = syntaxes[a.syntax];
  return {
    dn: `CN=${a.cn},${schemaDn}`,
    attributes: {
      objectClass: ['top', 'attributeSchema'],
      cn: a.cn,
      lDAPDisplayName: a.name,
      attributeID: a.oid,
      attributeSyntax,
      oMSyntax,
      isSingleValued: a.singleValued ? 'TRUE' : 'FALSE',
      searchFlags: a.indexed ? '1' : '0',
      ...(a.syntax === 'dn' ? { oMObjectClass: dnObjectClass } : {}),
      ...(a.linkId === undefined ? {} : { linkID: String(a.linkId) }),
    },
  };
}

/** The classSchema entry of a class, under `schemaDn`. */
export function classEntry(c: ExchangeClass, schemaDn: string): LdapAddition {
  return {
    dn: `CN=${c.cn},${schemaDn}`,
    attributes: {
      objectClass: ['top', 'classSchema'],
      cn: c.cn,
      lDAPDisplayName: c.name,
      governsID: c.oid,
      subClassOf: c.subClassOf,
      objectClassCategory: '1',
      rDNAttID: 'cn',
      possSuperiors: [...c.possSuperiors],
      ...(c.mayContain.length > 0 ? { mayContain: [...c.mayContain] } : {}),
      defaultSecurityDescriptor,
      defaultHidingValue: 'TRUE',
    },
  };
}

/**
 * The classes in groups that can be added together: each group's superiors and superclasses are in the
 * base schema or an earlier group (the schema is reloaded between groups, docs/lab.md §5.3).
 */
export function classGroups(classes: readonly ExchangeClass[] = exchangeClasses): ExchangeClass[][] {
  const ours = new Set(classes.map((c) => c.name));
  const done = new Set<string>();
  const groups: ExchangeClass[][] = [];
  let left = [...classes];
  while (left.length > 0) {
    const ready = left.filter((c) =>
      [c.subClassOf, ...c.possSuperiors].every((s) => !ours.has(s) || done.has(s)),
    );
    if (ready.length === 0) throw new Error('exchange-schema: the classes depend on each other in a cycle');
    for (const c of ready) done.add(c.name);
    groups.push(ready);
    left = left.filter((c) => !ready.includes(c));
  }
  return groups;
}
