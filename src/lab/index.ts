/** The lab's public surface: the whole estate on loopback, its CA and its hop records. */
export type { Lab, LabOptions } from './lab.ts';
export { demoPassword, hostsByServer, labAddresses, labImplementation, startLab } from './lab.ts';
export type { Slapd } from './slapd.ts';
export type { SogoMessage, SogoStack, SogoUser } from './sogo.ts';
export { sogoAvailable, startSogoStack } from './sogo.ts';
export { HopRecorder } from './hop-recorder.ts';
export type { LabCa } from './lab-ca.ts';
export { createLabCa } from './lab-ca.ts';
