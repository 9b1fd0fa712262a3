/** The client protocols the front door routes. */
export const protocols = ['autodiscover', 'activesync', 'ews', 'owa', 'ecp', 'rpc', 'mapi', 'oab'] as const;
export type Protocol = (typeof protocols)[number];

/** What each protocol is called in flows and logs. */
export const protocolTitle: Readonly<Record<Protocol, string>> = {
  autodiscover: 'Autodiscover',
  activesync: 'ActiveSync',
  ews: 'EWS',
  owa: 'OWA',
  ecp: 'ECP',
  rpc: 'Outlook Anywhere',
  mapi: 'MAPI/HTTP',
  oab: 'OAB',
};

/** The virtual directory path of each protocol on an Exchange server (docs/protocols.md §2.2, §4). */
export const protocolPath: Readonly<Record<Protocol, string>> = {
  autodiscover: '/Autodiscover/Autodiscover.xml',
  activesync: '/Microsoft-Server-ActiveSync',
  ews: '/EWS/Exchange.asmx',
  owa: '/owa',
  ecp: '/ecp',
  rpc: '/rpc/rpcproxy.dll',
  mapi: '/mapi/emsmdb',
  oab: '/OAB',
};

/** Names accepted on the command line and in files, mapped to protocols. */
const aliases: Readonly<Record<string, Protocol>> = {
  eas: 'activesync',
  'outlook-anywhere': 'rpc',
  'rpc-http': 'rpc',
  'mapi-http': 'mapi',
};

export function parseProtocol(name: string): Protocol | undefined {
  const n = name.toLowerCase();
  return (protocols as readonly string[]).includes(n) ? (n as Protocol) : aliases[n];
}

/** ActiveSync devices live on carrier networks: always external (docs/flows.md). */
export const alwaysExternal = (p: Protocol): boolean => p === 'activesync';
