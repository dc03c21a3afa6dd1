/**
 * `runs ack`: a person records that they looked at a suspect run. The acknowledgement is a
 * sealed, create-only document in acks/ (docs/repository-format.md), so every host's catalog
 * learns it on its next sync and stops marking the run; the run's verdict itself never changes.
 */
import { hostname, userInfo } from 'node:os';
import { acksOfRun, insertAck, runVerdict, shownAck, type AckDocument } from '../catalog/anomalies.js';
import type { Catalog } from '../catalog/catalog.js';
import type { RunRow } from '../catalog/types.js';
import { UsageError } from '../errors.js';
import { newAckName } from '../repository/documents.js';
import { RepositoryLock } from '../repository/locks.js';
import type { Repository } from '../repository/repository.js';

export interface AckResult {
  run: RunRow;
  ack: AckDocument;
}

/**
 * Writes the acknowledgement of a suspect run and records it in the catalog. Refuses (exit 2) a
 * run that is not suspect or is acknowledged already, naming who acknowledged it when.
 */
export async function acknowledgeRun(repo: Repository, catalog: Catalog, run: RunRow, opts: { note?: string; by?: string; incident?: boolean } = {}): Promise<AckResult> {
  const verdict = runVerdict(catalog, run.seq);
  if (verdict === undefined || !verdict.suspect) {
    throw new UsageError(`run ${run.id} is not suspect; there is nothing to acknowledge`, { hint: 'list suspect runs with `lakeguard runs`' });
  }
  const acks = acksOfRun(catalog, run.id);
  const earlier = shownAck(acks);
  // One correction is allowed: changes first taken as expected, then found to be damage. The
  // incident counts over the earlier acknowledgement (notCleanSuspectSql); never the reverse.
  if (earlier !== undefined && !(opts.incident === true && earlier.incident === 0)) {
    const who = earlier.by === null ? `on ${earlier.host}` : `by ${earlier.by} on ${earlier.host}`;
    const kind = earlier.incident === 1 ? ' as an incident' : '';
    throw new UsageError(`run ${run.id} was already acknowledged${kind} ${who} at ${new Date(earlier.created).toISOString()}`, {
      hint:
        earlier.incident === 1
          ? `see \`lakeguard runs show ${run.id} --anomalies\``
          : `see \`lakeguard runs show ${run.id} --anomalies\`; if its changes were damage after all, \`lakeguard runs ack ${run.id} --incident\``,
    });
  }
  repo.requireWritable();
  // Catalog sync lists acks/ after a time marker that is safe only for names taken while their
  // writer holds a lock (docs/catalog.md "Sync"): the name is chosen after the lock is written.
  const lock = await RepositoryLock.acquire(repo, 'shared', `acknowledgement of run ${run.id}`);
  try {
    const now = new Date();
    const by = opts.by ?? currentUser();
    lock.throwIfLost();
    const ack = await writeAck(repo, catalog, { run: run.id, host: hostname(), created: now, by: by ?? null, note: opts.note ?? null, incident: opts.incident === true });
    return { run, ack };
  } finally {
    await lock.release().catch(() => {});
  }
}

/**
 * Writes an acks/ document, named now (the caller holds a repository lock: see above), and
 * records it in the catalog. `created` is when the person acknowledged (a copy keeps the
 * source's). Fields null or false are left out of the document.
 */
export async function writeAck(
  repo: Repository,
  catalog: Catalog,
  a: { run: string; host: string; created: Date; by: string | null; note: string | null; incident: boolean },
): Promise<AckDocument> {
  // The run's group and start: they outlive the run in the acknowledgement (AckDocument).
  const run = catalog.findRun(a.run);
  const ack: AckDocument = {
    version: 1,
    id: newAckName(new Date()),
    run: a.run,
    host: a.host,
    created: a.created.toISOString(),
    ...(a.by === null ? {} : { by: a.by }),
    ...(a.note === null ? {} : { note: a.note }),
    ...(a.incident ? { incident: true as const } : {}),
    ...(run === undefined ? {} : { group: run.group, started: new Date(run.started).toISOString() }),
  };
  await repo.writeDocument('acks', ack.id, ack);
  catalog.transaction(() => insertAck(catalog, ack));
  return ack;
}

function currentUser(): string | undefined {
  try {
    return userInfo().username || undefined;
  } catch {
    return undefined; // no passwd entry (a container's arbitrary uid)
  }
}
