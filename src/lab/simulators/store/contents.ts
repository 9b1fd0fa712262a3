/**
 * The mailbox's contents, the same for every mailbox with its owner and server written in: the folders
 * ActiveSync and EWS list, and the two messages of the Inbox.
 */
import type { StoreContext } from './common.ts';
import { buildText, profiles } from './versions.ts';

/** A folder of the mailbox, with its names in ActiveSync and EWS. */
export interface LabFolder {
  /** ActiveSync ServerId. */
  readonly id: string;
  readonly name: string;
  /** FolderHierarchy Type (MS-ASCMD FolderSync Type values). */
  readonly type: number;
  /** AirSync Class of its items. */
  readonly itemClass: 'Email' | 'Calendar' | 'Contacts';
  /** EWS DistinguishedFolderId. */
  readonly distinguished: string;
}

/** The folders of every mailbox, in ActiveSync ServerId order. */
export const folders: readonly LabFolder[] = [
  { id: '1', name: 'Inbox', type: 2, itemClass: 'Email', distinguished: 'inbox' },
  { id: '2', name: 'Drafts', type: 3, itemClass: 'Email', distinguished: 'drafts' },
  { id: '3', name: 'Deleted Items', type: 4, itemClass: 'Email', distinguished: 'deleteditems' },
  { id: '4', name: 'Sent Items', type: 5, itemClass: 'Email', distinguished: 'sentitems' },
  { id: '5', name: 'Outbox', type: 6, itemClass: 'Email', distinguished: 'outbox' },
  { id: '6', name: 'Calendar', type: 8, itemClass: 'Calendar', distinguished: 'calendar' },
  { id: '7', name: 'Contacts', type: 9, itemClass: 'Contacts', distinguished: 'contacts' },
];

/** A message of the Inbox. */
export interface LabMessage {
  readonly serverId: string;
  readonly subject: string;
  readonly from: string;
  readonly received: string;
  readonly body: string;
}

/** The Inbox of `ctx.mailbox`: two messages naming the mailbox, its server and version. */
export function inboxMessages(ctx: StoreContext): LabMessage[] {
  const { address, displayName } = ctx.mailbox;
  const domain = address.slice(address.indexOf('@') + 1);
  const p = profiles[ctx.version];
  const from = `"coexist lab" <postmaster@${domain}>`;
  return [
    {
      serverId: '1:1',
      subject: `Welcome to ${ctx.serverName}, ${displayName}`,
      from,
      received: '2026-01-05T09:00:00.000Z',
      body: `Hello ${displayName}, this is your mailbox ${address} on ${ctx.serverName} (${p.product}).`,
    },
    {
      serverId: '1:2',
      subject: `Your mailbox lives on ${ctx.serverName}`,
      from,
      received: '2026-01-05T09:05:00.000Z',
      body: `${ctx.serverName} (Exchange ${buildText(p)}) holds ${address}. Served by the coexist lab mailbox store simulator.`,
    },
  ];
}
