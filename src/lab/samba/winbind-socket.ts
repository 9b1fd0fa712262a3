/**
 * Running a program against one lab DC's winbindd. Samba's client library (libwbclient: `ntlm_auth`,
 * `wbinfo`) finds winbindd only at the compiled-in `/run/samba/winbindd`, whatever `winbindd socket
 * directory` or `--configfile` say, and refuses a symlink there, while each lab DC's winbindd listens in its
 * own directory (which winbindd itself does honour). So the program runs in a mount namespace of its own
 * (util-linux `unshare --mount`, propagation private) in which the DC's directory is bind-mounted on that
 * path: nothing is mounted on the machine, any number of DCs serve NTLM at once, and the mount goes with the
 * process, however it ends (docs/lab.md §5.5). Needs root (a mount namespace and `mount`).
 */
import { readFileSync } from 'node:fs';

/** Where libwbclient looks for winbindd (Debian's Samba, compiled in). */
export const winbindSocketDir = '/run/samba/winbindd';

/** The exit code of the wrapper when the mount point cannot be made or the bind mount fails. */
export const mountFailedExitCode = 97;

/**
 * The wrapper, run by `/bin/sh -c` inside the new namespace with `$1` the DC's directory, `$2` the mount
 * point, then the program and its arguments. The mount point is a directory of the machine's (a namespace
 * shares the files, only the mounts are its own): made when missing, empty and harmless. The program's own
 * stderr is dropped, as before; what reaches the caller's stderr pipe is only `unshare`'s, `mkdir`'s and
 * `mount`'s complaints.
 */
const wrapper = [
  `[ -d "$2" ] || mkdir -p -m 0755 "$2" || exit ${mountFailedExitCode}`,
  `mount --bind "$1" "$2" || exit ${mountFailedExitCode}`,
  'shift 2',
  'exec "$@" 2>/dev/null',
].join('\n');

/**
 * The command that runs `program args` with `socketDir` (a DC's `winbindd socket directory`) at
 * `/run/samba/winbindd` (or `mountPoint`), in a mount namespace of its own. The process keeps the pid of the
 * spawned command (unshare and the shell exec, never fork), so killing that pid kills the program.
 */
export function inWinbindNamespace(
  socketDir: string,
  program: string,
  args: readonly string[],
  o: { readonly mountPoint?: string } = {},
): { readonly command: string; readonly args: readonly string[] } {
  return {
    command: 'unshare',
    args: [
      '--mount',
      '--propagation',
      'private',
      '--',
      '/bin/sh',
      '-c',
      wrapper,
      'coexist-winbind',
      socketDir,
      o.mountPoint ?? winbindSocketDir,
      program,
      ...args,
    ],
  };
}

/**
 * The mounts on `path` in a mount namespace (`/proc/self/mountinfo` by default, or a helper's
 * `/proc/<pid>/mountinfo`): each one's root inside its filesystem (field 4; a bind mount's source directory
 * as that filesystem sees it), octal escapes undone. The lab mounts nothing on the machine; tests check that.
 */
export function mountRoots(path: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  const unescape = (s: string): string =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return mountinfo
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => unescape(fields[4] ?? '') === path)
    .map((fields) => unescape(fields[3] ?? ''));
}
