#!/usr/bin/env node
/**
 * Before the suite runs (`npm test` runs this first): are the Debian programs the tests drive installed?
 * When some are not, one block says which packages are missing and the one command that installs them,
 * so the cause comes first rather than scattered through hundreds of failures. The tests then run all the
 * same (none is skipped: a test that needs a missing program fails, with its own hint). When nothing is
 * missing, one short line.
 *
 * Plain JavaScript with no dependency, because scripts/setup.sh asks it (`--missing`) what to install
 * before `npm ci` has installed anything; the list below is the one list of the suite's Debian packages.
 * Never fails: its exit code is 0 whatever it finds, so `npm test` ends with the tests' own.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Each Debian package the suite drives and how to tell it is there: `files` at the absolute paths the
 * code uses (joined to `root` in tests), `programs` on PATH, as the tests run them, `multiarch` files under
 * a multiarch library dir, /usr/lib/<triplet>.
 */
export const requirements = [
  // OpenLDAP: test/directory/ldap-directory.contract.test.ts and src/lab/slapd.ts start throwaway slapds.
  { package: 'slapd', files: ['/usr/sbin/slapd', '/usr/sbin/slapadd'] },
  { package: 'ldap-utils', programs: ['ldapmodify'] },
  // The shared store of several front ends: src/lab/redis.ts starts throwaway redis-servers.
  { package: 'redis-server', files: ['/usr/bin/redis-server'] },
  // The load balancers of deploy/ (test/deploy/): a real HAProxy in front of two front ends, and nginx's and
  // systemd's own checks of the shipped configuration files.
  { package: 'haproxy', files: ['/usr/sbin/haproxy'] },
  { package: 'nginx', files: ['/usr/sbin/nginx'] },
  {
    package: 'libnginx-mod-stream',
    files: ['/usr/lib/nginx/modules/ngx_stream_module.so'],
    executable: false,
  },
  { package: 'systemd', programs: ['systemd-analyze'] },
  // A real EWS client, run with Debian's interpreter (test/support/clients/run-client.ts).
  { package: 'python3-exchangelib', python: 'exchangelib' },
  // The lab's printed curl lines are run by a test.
  { package: 'curl', programs: ['curl'] },
  // A real ActiveSync back end (src/lab/sogo/, and what its sogoAvailable() looks for).
  { package: 'sogo', files: ['/usr/sbin/sogod'] },
  { package: 'sogo-activesync', files: ['/usr/lib/GNUstep/SOGo/ActiveSync.SOGo'], executable: false },
  { package: 'dovecot-imapd', files: ['/usr/sbin/dovecot', '/usr/lib/dovecot/imap'] },
  { package: 'memcached', files: ['/usr/bin/memcached'] },
  { package: 'postgresql', postgres: ['initdb', 'postgres', 'pg_isready', 'psql'] },
  // xml2wbxml/wbxml2xml decode ActiveSync traffic (test/support/libwbxml.ts).
  { package: 'libwbxml2-utils', programs: ['xml2wbxml', 'wbxml2xml'] },
  // OWA in a real browser (test/browser/owa.browser.test.ts): Debian's Chromium, driven by playwright-core,
  // and certutil to trust the lab CA in a throwaway NSS database.
  { package: 'chromium', files: ['/usr/bin/chromium'] },
  { package: 'libnss3-tools', programs: ['certutil'] },
  // A real Active Directory: src/lab/samba/ provisions throwaway Samba AD domain controllers
  // (test/directory/*ad*.test.ts; docs/lab.md §5). The provisioning data and the directory modules are only
  // recommended by samba, and provisioning fails without the VFS modules (the sysvol ACLs).
  { package: 'samba', files: ['/usr/sbin/samba', '/usr/bin/samba-tool'] },
  {
    package: 'samba-ad-provision',
    files: ['/usr/share/samba/setup/aggregate_schema.ldif'],
    executable: false,
  },
  { package: 'samba-dsdb-modules', multiarch: ['samba/ldb/samba_dsdb.so'] },
  { package: 'samba-vfs-modules', multiarch: ['samba/vfs/acl_xattr.so'] },
  { package: 'winbind', files: ['/usr/sbin/winbindd'] },
  // Kerberos at the edge (docs/lab.md §5.6): kinit against the lab DC's KDC, and squid's GSS-API acceptor
  // negotiate_kerberos_auth (what coexist serve --keytab runs; the squid service itself is never started).
  { package: 'krb5-user', programs: ['kinit'] },
  {
    package: 'squid',
    files: ['/usr/lib/squid/negotiate_kerberos_auth', '/usr/lib/squid/negotiate_kerberos_auth_test'],
  },
];

/**
 * The packages whose programs are missing, in the order above.
 * @param {{ root?: string, path?: string }} [where] `root` prefixes the absolute paths (default `/`);
 *   `path` is the PATH programs are looked up in (default the environment's).
 * @returns {string[]}
 */
export function missingPackages(where = {}) {
  const root = where.root ?? '/';
  const dirs = (where.path ?? process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '');
  const at = (file) => join(root, file);
  const onPath = (program) => dirs.some((d) => usable(join(d, program), true));
  return requirements
    .filter((r) => {
      if (r.files && !r.files.every((f) => usable(at(f), r.executable !== false))) return true;
      if (r.programs && !r.programs.every(onPath)) return true;
      if (r.python && !imports(at('/usr/bin/python3'), r.python)) return true;
      if (r.postgres && !postgresBinaries(at('/usr/lib/postgresql'), r.postgres)) return true;
      if (r.multiarch && !multiarchFiles(at('/usr/lib'), r.multiarch)) return true;
      return false;
    })
    .map((r) => r.package);
}

/**
 * What `npm test` prints first: one block when something is missing, else one line.
 * @param {readonly string[]} missing
 * @param {{ asRoot: boolean }} who whether the user already is root (then no sudo)
 */
export function report(missing, who) {
  if (missing.length === 0) return 'preflight: every Debian program the tests drive is installed\n';
  const install = who.asRoot ? 'npm run setup' : 'sudo npm run setup';
  return [
    `preflight: ${missing.length} Debian package${missing.length === 1 ? '' : 's'} the tests drive ${missing.length === 1 ? 'is' : 'are'} not installed;`,
    '  the tests that need them will fail (none is skipped), each saying what it lacks.',
    `  missing: ${missing.join(' ')}`,
    `  install with: ${install}`,
    '',
  ].join('\n');
}

/** The Node.js major version the project runs on (package.json `engines`, README "Runtime"). */
export const nodeMajor = 24;

/**
 * One line when the running node is not Node 24 or later (empty otherwise): the suite, the lab and the
 * benches are meant for it, and the libraries need at least Node 22, so a run on another version fails in
 * ways that do not say why. `npm install` brings Node 24 (the `node` package) and npm scripts put it first
 * on PATH; running `node` by hand bypasses it.
 * @param {string} version `process.version`
 * @param {string} execPath `process.execPath`
 */
export function runtimeNote(version, execPath) {
  const major = Number(/^v?(\d+)/.exec(version)?.[1]);
  if (major >= nodeMajor) return '';
  return [
    `preflight: this is Node ${version} (${execPath}), not Node ${nodeMajor}: coexist and its libraries need Node ${nodeMajor};`,
    '  run npm install (its `node` package brings Node 24) and then the npm scripts (npm test), which use it.',
    '',
  ].join('\n');
}

function usable(file, executable) {
  try {
    accessSync(file, executable ? constants.X_OK : constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether the interpreter at `python` exists and imports `module`. */
function imports(python, module) {
  if (!usable(python, true)) return false;
  const r = spawnSync(python, ['-c', `import ${module}`], { stdio: 'ignore', timeout: 30_000 });
  return r.status === 0;
}

/** Whether some multiarch library dir, /usr/lib/<triplet> (x86_64-linux-gnu, aarch64-linux-gnu, ...), holds every one of `files`. */
function multiarchFiles(dir, files) {
  let triplets;
  try {
    triplets = readdirSync(dir).filter((d) => /^[a-z0-9_]+-linux-[a-z0-9_]+$/.test(d));
  } catch {
    return false;
  }
  return triplets.some((t) => files.every((f) => usable(join(dir, t, f), false)));
}

/** Whether some /usr/lib/postgresql/<major>/bin holds every one of `binaries` (any major version). */
function postgresBinaries(dir, binaries) {
  let majors;
  try {
    majors = readdirSync(dir).filter((d) => /^\d+$/.test(d));
  } catch {
    return false;
  }
  return majors.some((m) => binaries.every((b) => usable(join(dir, m, 'bin', b), true)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--missing')) {
    // For scripts/setup.sh: the packages to install, space-separated (nothing when none); a failure here
    // fails setup rather than installing nothing.
    const missing = missingPackages();
    process.stdout.write(missing.length > 0 ? `${missing.join(' ')}\n` : '');
  } else {
    try {
      process.stdout.write(runtimeNote(process.version, process.execPath));
      process.stdout.write(report(missingPackages(), { asRoot: process.getuid?.() === 0 }));
    } catch (e) {
      process.stderr.write(`preflight: could not check the Debian programs: ${String(e)}\n`);
    }
  }
}
