/** The ActiveSync client: the session (client.ts), its typed errors, and the pure builders and parsers. */
export type {
  ActiveSyncClientOptions,
  ActiveSyncStep,
  AutodiscoverResult,
  FirstSession,
  OptionsResult,
  ProtocolVersion,
  ProvisionResult,
} from './client.ts';
export { ActiveSyncClient, clientVersions, userAgent } from './client.ts';
export type { ActiveSyncErrorKind } from './errors.ts';
export {
  ActiveSyncAuthError,
  ActiveSyncClientError,
  ActiveSyncHttpError,
  ActiveSyncStatusError,
} from './errors.ts';
export type { AutodiscoverAnswer, AutodiscoverServer } from './autodiscover.ts';
export {
  autodiscoverRequest,
  autodiscoverUrl,
  mobileSyncRequestSchema,
  mobileSyncResponseSchema,
  parseAutodiscoverAnswer,
} from './autodiscover.ts';
export type {
  DeviceInformation,
  Folder,
  FolderKind,
  FolderSyncResult,
  PingFolder,
  PingResult,
  ProvisionAnswer,
  SettingsResult,
  SyncItem,
  SyncRequestOptions,
  SyncResult,
} from './commands.ts';
export {
  folderSyncRequest,
  parseFolderSync,
  parsePing,
  parseProvision,
  parseSettings,
  parseSync,
  pingRequest,
  provisionRequest,
  settingsRequest,
  syncRequest,
} from './commands.ts';
export type { CommandLine, EncodedQuery, QueryForm } from './query.ts';
export { base64Query, encodeQuery } from './query.ts';
