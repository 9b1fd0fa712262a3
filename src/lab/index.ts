/** The lab's public surface: the whole estate on loopback, its CA and its hop records. */
export type { Lab, LabOptions } from './lab.ts';
export {
  demoPassword,
  hostsByServer,
  labAddresses,
  labImplementation,
  labPortCount,
  LabPortInUseError,
  portInUse,
  startLab,
} from './lab.ts';
export type { Slapd } from './slapd.ts';
export type { SogoMessage, SogoStack, SogoUser } from './sogo/index.ts';
export { sogoAvailable, startSogoStack } from './sogo/index.ts';
export { HopRecorder } from './hop-recorder.ts';
export type { LabBannerOptions } from './banner.ts';
export { labBanner } from './banner.ts';
export type { LabCa } from './lab-ca.ts';
export { createLabCa } from './lab-ca.ts';
