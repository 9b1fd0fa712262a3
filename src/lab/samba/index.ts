/** A throwaway Samba AD domain controller holding an estate (docs/lab.md §5): its public surface. */
export type { SambaAd, SambaAdOptions, SambaTimings, SambaTls } from './samba.ts';
export { SambaNotInstalledError, sambaDirectorySettings, startSambaAd } from './samba.ts';
export type { AdDomain, AdEstate, AdEstateOptions } from './ad-estate.ts';
export {
  adDomainOf,
  adEstate,
  adminGroupName,
  msExchVersionOf,
  serialNumberOf,
  serverRolesOf,
  virtualDirectoryNames,
} from './ad-estate.ts';
export type { ExchangeAttribute, ExchangeClass, OidSource } from './exchange-schema.ts';
export { exchangeAttributes, exchangeClasses, virtualDirectoryClasses } from './exchange-schema.ts';
