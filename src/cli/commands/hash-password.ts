/** `coexist hash-password`: print a password hash for the estate file's users[].password. */
import type { Command } from 'commander';
import { hashPassword } from '../../directory/password-hash.ts';
import type { Io } from '../common.ts';

export function registerHashPassword(program: Command, io: Io): void {
  program
    .command('hash-password')
    .description('Hash a password (read from stdin, one line) for users[].password in an estate file.')
    .action(async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      const password = Buffer.concat(chunks)
        .toString('utf8')
        .replace(/\r?\n$/, '');
      if (!password) throw new Error('no password on stdin');
      io.out((await hashPassword(password)) + '\n');
    });
}
