/**
 * What each Exchange version looks like to the mailbox store simulator: product name, build, the
 * ActiveSync and EWS versions it speaks, its OWA/ECP titles and whether it has MAPI/HTTP.
 */
import type { ProductVersion } from '../../../core/estate/estate.ts';

/** One version's face in every protocol. */
export interface VersionProfile {
  /** Product name as admins know it. */
  readonly product: string;
  /** Major, minor, build, revision of a late update of that version. */
  readonly build: readonly [number, number, number, number];
  /** `MS-Server-ActiveSync` (informational, §4.1). */
  readonly easServer: string;
  /** `MS-ASProtocolVersions`. */
  readonly easVersions: readonly string[];
  /**
   * `ServerVersionInfo/@Version`: the newest schema the server speaks. The Exchange 2007 SP1 reference
   * documents the attribute; 2007 SP1-SP3 speak `Exchange2007_SP1`, and clients read it (exchangelib
   * takes the schema from it, docs/lab.md §2.1).
   */
  readonly ewsSchema: string;
  /** The `RequestServerVersion` values it serves; any other is ErrorInvalidServerVersion. */
  readonly ewsRequestVersions: readonly string[];
  readonly owaTitle: string;
  /** Absent for 2007, which has no ECP (docs/protocols.md §2.2 ECP row). */
  readonly ecpTitle?: string;
  /** MAPI/HTTP exists only on 2013 SP1+ (§2.1 rule 7). */
  readonly mapiHttp: boolean;
}

const eas12 = ['2.0', '2.1', '2.5', '12.0', '12.1'];
const eas14 = [...eas12, '14.0', '14.1'];
const ews2007 = ['Exchange2007', 'Exchange2007_SP1'];
const ews2010 = [...ews2007, 'Exchange2010', 'Exchange2010_SP1', 'Exchange2010_SP2'];
const ews2013 = [...ews2010, 'Exchange2013', 'Exchange2013_SP1'];
// Later schemas are named by date; this list is from memory of the 2016/2019 Types.xsd, not re-verified
// (no o365info server runs 2016 or 2019).
const ews2016 = [
  ...ews2013,
  'Exchange2015',
  'Exchange2016',
  'V2015_10_05',
  'V2016_01_06',
  'V2016_04_13',
  'V2016_07_13',
  'V2016_10_10',
  'V2017_01_07',
  'V2017_04_14',
  'V2017_07_11',
];

// 2016 and 2019 speak the same protocols; only the product, its build and MS-Server-ActiveSync differ.
const since2016: Omit<VersionProfile, 'product' | 'build' | 'easServer'> = {
  easVersions: eas14,
  ewsSchema: 'V2017_07_11',
  ewsRequestVersions: ews2016,
  owaTitle: 'Outlook on the web',
  ecpTitle: 'Exchange admin center',
  mapiHttp: true,
};

/** The profile of each version the lab runs. */
export const profiles: Readonly<Record<ProductVersion, VersionProfile>> = {
  // 2007 SP3 is the minimum for coexistence with 2013 (docs/protocols.md §6); its EAS tops out at 12.1.
  2007: {
    product: 'Exchange Server 2007 SP3',
    build: [8, 3, 83, 6],
    easServer: '8.3',
    easVersions: eas12,
    ewsSchema: 'Exchange2007_SP1',
    ewsRequestVersions: ews2007,
    owaTitle: 'Microsoft Exchange - Outlook Web Access',
    mapiHttp: false,
  },
  // 2010 SP3 advertises 14.1 with MS-Server-ActiveSync 14.3 (the capture of docs/protocols.md §4.1 [32]).
  2010: {
    product: 'Exchange Server 2010 SP3',
    build: [14, 3, 123, 4],
    easServer: '14.3',
    easVersions: eas14,
    ewsSchema: 'Exchange2010_SP2',
    ewsRequestVersions: ews2010,
    owaTitle: 'Outlook Web App',
    ecpTitle: 'Exchange Control Panel',
    mapiHttp: false,
  },
  2013: {
    product: 'Exchange Server 2013 CU23',
    build: [15, 0, 1497, 2],
    easServer: '15.0',
    easVersions: eas14,
    ewsSchema: 'Exchange2013_SP1',
    ewsRequestVersions: ews2013,
    owaTitle: 'Outlook Web App',
    ecpTitle: 'Exchange admin center',
    mapiHttp: true,
  },
  2016: { product: 'Exchange Server 2016 CU23', build: [15, 1, 2507, 6], easServer: '15.1', ...since2016 },
  2019: { product: 'Exchange Server 2019 CU12', build: [15, 2, 1118, 7], easServer: '15.2', ...since2016 },
};

/** The build as text, e.g. `15.0.1497.2`. */
export const buildText = (p: VersionProfile): string => p.build.join('.');
