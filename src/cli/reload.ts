/**
 * `coexist serve`'s life after start (docs/operations.md "Reload", "Drain"): SIGHUP and `POST /reload` read
 * the estate file and certificates again and swap them in only when they are good; SIGTERM and `POST /drain`
 * drain the server and end the process; a second SIGTERM or SIGINT during a drain stops at once; a first
 * SIGINT (Ctrl-C) stops as before, giving requests in flight a few seconds.
 */
import type { EstateIndex } from '../core/estate/estate-index.ts';
import { CoexistError } from '../core/errors.ts';
import { EstateConfigError } from '../config/index.ts';
import type { EstateSettings } from '../config/index.ts';
import type { Directory } from '../directory/directory.ts';
import type { CertificateEntry, ServerNode } from '../dataplane/index.ts';
import type { DrainReport } from '../dataplane/reload.ts';
import type { AdminActions, AdminAnswer } from '../observability/admin-actions.ts';
import type { LifecycleObserver } from '../observability/lifecycle-metrics.ts';
import type { Logger } from '../observability/log.ts';

/** Everything `serve` loads from files, read again at each reload. */
export interface Loaded {
  readonly index: EstateIndex;
  readonly settings: EstateSettings;
  /** The listeners' certificates (none: plain HTTP). */
  readonly certificates: readonly CertificateEntry[];
}

/** A directory `serve` opened (LDAP), closed once no request uses it. */
export type OpenedDirectory = Directory & { close(): Promise<void> };

export interface LifecycleOptions<L extends Loaded = Loaded> {
  /** The server node, or what stands for the workers in a `serve --workers` primary (serve-cluster.ts). */
  readonly node: Pick<ServerNode, 'generation' | 'reload' | 'drain' | 'close'>;
  /** Read and check every file, as at start: throws with every problem. */
  readonly load: () => Promise<L>;
  /** The directory an estate's settings name (LDAP), opened; undefined for the estate file's users. */
  readonly openDirectory: (
    index: EstateIndex,
    settings: EstateSettings,
  ) => Promise<OpenedDirectory | undefined>;
  /** The directory opened at start. */
  readonly directory: OpenedDirectory | undefined;
  readonly logger: Logger;
  readonly observer: LifecycleObserver;
  /** How long the listeners keep accepting once draining (`--drain-grace`). */
  readonly drainGraceMs: number;
  /** The longest a drain waits for requests in flight (`--drain-timeout`), from its start. */
  readonly drainTimeoutMs: number;
  /** For the log: the estate file. */
  readonly estateFile: string;
  /**
   * Whether SIGHUP reloads (default). A `serve --workers` worker leaves it to the primary, which checks the
   * estate once and then tells every worker (serve-cluster.ts); a SIGHUP sent to a worker is ignored.
   */
  readonly hangup?: boolean;
}

/** One problem of a refused reload, as the log and `POST /reload` give it. */
export interface ReloadProblem {
  readonly message: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  readonly path?: string;
  readonly code?: string;
}

/** Reload and drain of a running `serve`. */
export class Lifecycle<L extends Loaded = Loaded> {
  readonly #o: LifecycleOptions<L>;
  #directory: OpenedDirectory | undefined;
  /** Reloads run one after another: two SIGHUPs in a row load twice, in order. */
  #reloads: Promise<unknown> = Promise.resolve();
  #draining = false;
  #endGrace: () => void = () => undefined;
  readonly #graceEnded = new Promise<void>((resolve) => (this.#endGrace = resolve));
  #cutNow: () => void = () => undefined;
  readonly #cut = new Promise<void>((resolve) => (this.#cutNow = resolve));
  #stop: (how: 'drain' | 'close') => void = () => undefined;

  constructor(o: LifecycleOptions<L>) {
    this.#o = o;
    this.#directory = o.directory;
  }

  /** The admin listener's `POST /reload` and `POST /drain`. */
  get actions(): AdminActions {
    return {
      reload: () => this.reload('POST /reload'),
      drain: () => Promise.resolve(this.drain('POST /drain')),
    };
  }

  /** Read everything again and swap it in when it is good; the answer `POST /reload` gives. */
  reload(trigger: string): Promise<AdminAnswer> {
    const run = this.#reloads.then(() => this.#reload(trigger));
    this.#reloads = run.catch(() => undefined);
    return run;
  }

  async #reload(trigger: string): Promise<AdminAnswer> {
    const { node, logger, observer } = this.#o;
    const file = this.#o.estateFile;
    const refused = (status: number, problems: readonly ReloadProblem[], msg: string): AdminAnswer => {
      observer.reload('refused', node.generation);
      // Every problem, with its file, line and path; the estate in use keeps serving.
      logger.error({ trigger, file, generation: node.generation, problems }, msg);
      return { status, body: { reloaded: false, generation: node.generation, problems } };
    };
    let loaded: L;
    try {
      loaded = await this.#o.load();
    } catch (err) {
      return refused(
        422,
        problemsOf(err),
        'reload refused: the estate has problems; the one in use keeps serving',
      );
    }
    let directory: OpenedDirectory | undefined;
    try {
      directory = await this.#o.openDirectory(loaded.index, loaded.settings);
    } catch (err) {
      return refused(
        422,
        problemsOf(err),
        'reload refused: its directory cannot be opened; the one in use keeps serving',
      );
    }
    const { settings } = loaded;
    const result = await node.reload({
      index: loaded.index,
      directory,
      lockout: settings.lockout,
      limits: settings.limits,
      health: settings.health,
      ...(loaded.certificates.length > 0 ? { certificates: loaded.certificates } : {}),
    });
    if (!result.ok) {
      await directory?.close();
      return refused(
        409,
        result.reasons.map((message) => ({ message })),
        'reload refused: it needs a restart; the estate in use keeps serving',
      );
    }
    const previous = this.#directory;
    this.#directory = directory;
    // The old directory serves the requests that started with it, then closes.
    void result.retired.then(() => previous?.close());
    observer.reload('ok', result.generation);
    logger.info({ trigger, file, generation: result.generation }, 'estate reloaded');
    return { status: 200, body: { reloaded: true, generation: result.generation } };
  }

  /** Whether a drain has started. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Stop as a first SIGINT does (a worker told by its primary); while draining, cut what is left. */
  close(): void {
    if (this.#draining) this.#cutNow();
    else this.#stop('close');
  }

  /** Start draining, or end the grace of a drain under way; the answer `POST /drain` gives. */
  drain(trigger: string): AdminAnswer {
    if (this.#draining) {
      this.#endGrace();
      this.#o.logger.info({ trigger }, 'drain: grace ended, the listeners stop accepting');
      return { status: 202, body: { draining: true, graceEnded: true } };
    }
    this.#draining = true;
    this.#stop('drain');
    return { status: 202, body: { draining: true } };
  }

  /**
   * Serve until stopped: SIGHUP reloads, SIGTERM (or `drain`) drains, SIGINT closes; a second SIGTERM or
   * SIGINT while draining cuts what is left. Resolves once the node is closed and the directory with it.
   */
  async run(): Promise<DrainReport | undefined> {
    const { node, logger } = this.#o;
    const onHup =
      this.#o.hangup === false
        ? (): void => logger.warn({ signal: 'SIGHUP' }, 'SIGHUP ignored: send it to the primary process')
        : (): void => void this.reload('SIGHUP');
    const how = await new Promise<'drain' | 'close'>((resolve) => {
      this.#stop = resolve;
      process.on('SIGHUP', onHup);
      process.once('SIGTERM', () => this.drain('SIGTERM'));
      process.once('SIGINT', () => resolve('close'));
    });
    const again = (signal: NodeJS.Signals): void => {
      logger.warn({ signal }, 'drain cut short: what is left is cut now');
      this.#cutNow();
    };
    process.on('SIGTERM', again);
    process.on('SIGINT', again);
    try {
      if (how === 'close') {
        await node.close();
        return undefined;
      }
      this.#o.observer.draining();
      const { drainGraceMs: graceMs, drainTimeoutMs: timeoutMs } = this.#o;
      logger.info({ graceMs, timeoutMs, generation: node.generation }, 'draining');
      const report = await node.drain({
        graceMs,
        timeoutMs,
        endGrace: this.#graceEnded,
        cutNow: this.#cut,
      });
      logger.info({ ...report }, 'drained');
      return report;
    } finally {
      process.off('SIGHUP', onHup);
      process.off('SIGTERM', again);
      process.off('SIGINT', again);
      await this.#reloads;
      await this.#directory?.close();
    }
  }
}

/** A load's failure as problems: every one of a broken estate file, else the one error's message. */
export function problemsOf(err: unknown): ReloadProblem[] {
  if (err instanceof EstateConfigError)
    return err.problems.map((p) => ({
      file: p.file,
      ...(p.line === undefined ? {} : { line: p.line }),
      ...(p.column === undefined ? {} : { column: p.column }),
      path: p.path,
      code: p.code,
      message: p.message,
    }));
  if (err instanceof CoexistError) return [{ code: err.code, message: err.message }];
  return [{ message: err instanceof Error ? err.message : String(err) }];
}
