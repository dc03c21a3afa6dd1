/**
 * What catalog sync and rebuild read of anomaly detection from the repository
 * (docs/repository-format.md): a manifest's `anomalies`, a version record's `sig`, and the
 * acknowledgements in acks/. Kept out of rebuild.ts, which both import paths share.
 */
import { insertAck, type AckDocument } from '../catalog/anomalies.js';
import type { ObjectSignal, PartitionStats, RunAnomalies } from '../catalog/anomaly-types.js';
import type { Catalog } from '../catalog/catalog.js';
import { IntegrityError, errorMessage, isNotFound } from '../errors.js';
import { objectKey } from '../repository/layout.js';
import type { Repository } from '../repository/repository.js';

/** Why a manifest's `anomalies` is malformed, or null when it is absent or well formed. */
export function anomaliesProblem(a: Partial<RunAnomalies> | null | undefined): string | null {
  if (a === undefined) return null;
  if (a === null || typeof a !== 'object' || typeof a.suspect !== 'boolean' || !Number.isInteger(a.flaggedObjects)) return 'malformed anomalies';
  const named = (x: { bucket?: unknown; partition?: unknown } | null): boolean => x !== null && typeof x === 'object' && typeof x.bucket === 'string' && typeof x.partition === 'string';
  if (!Array.isArray(a.findings) || !a.findings.every((f) => named(f) && Array.isArray(f.rules) && Array.isArray(f.reasons))) return 'malformed anomaly findings';
  const counts = ['before', 'added', 'changed', 'deleted', 'bytesAdded', 'bytesChanged', 'bytesDeleted'] as const;
  const wellFormed = (p: PartitionStats): boolean =>
    named(p) && counts.every((c) => Number.isInteger(p[c])) && (p.changedVerified === undefined || Number.isInteger(p.changedVerified)) && typeof p.signals === 'object';
  if (!Array.isArray(a.partitions) || !a.partitions.every(wellFormed)) {
    return 'malformed partition statistics';
  }
  return null;
}

/**
 * The signals of a version record's `sig`, or undefined when it has none. Names this lakeguard
 * does not know (from a newer one) are kept: they still flag the version.
 */
export function recordSignals(sig: unknown): ObjectSignal[] | undefined {
  if (!Array.isArray(sig)) return undefined;
  const signals = sig.filter((s): s is ObjectSignal => typeof s === 'string' && /^[a-z-]{1,40}$/.test(s));
  return signals.length === 0 ? undefined : signals;
}

/** Checks an ack document against its name (the seal already bound it to acks/<name>). */
export function checkAck(doc: AckDocument, name: string, repo: Repository): AckDocument {
  const bad = (why: string): IntegrityError => new IntegrityError(`${repo.where('acks', name)}: not a valid acknowledgement (${why})`);
  if (doc === null || typeof doc !== 'object' || doc.version !== 1) throw bad('not version 1');
  if (doc.id !== name) throw bad(`it names ${JSON.stringify(doc.id)}`);
  if (typeof doc.run !== 'string' || typeof doc.host !== 'string' || Number.isNaN(Date.parse(doc.created))) throw bad('run, host or created missing');
  if ((doc.by !== undefined && typeof doc.by !== 'string') || (doc.note !== undefined && typeof doc.note !== 'string')) throw bad('by or note is not text');
  if (doc.incident !== undefined && doc.incident !== true) throw bad('incident is not true');
  if ((doc.group !== undefined && typeof doc.group !== 'string') || (doc.started !== undefined && (typeof doc.started !== 'string' || Number.isNaN(Date.parse(doc.started))))) {
    throw bad('group or started is not valid');
  }
  return doc;
}

/**
 * Reads ack documents and records them in the catalog; returns how many. One that cannot be
 * read is reported through `damaged` (its run stays marked suspect: nothing is lost); one
 * deleted since the listing is skipped.
 */
export async function loadAcks(
  repo: Repository,
  catalog: Catalog,
  names: readonly string[],
  damaged: (what: string, problem: string) => void,
  checkSignal: () => void,
): Promise<number> {
  let loaded = 0;
  for (const name of names) {
    checkSignal();
    let doc: AckDocument;
    try {
      doc = checkAck(await repo.readDocument<AckDocument>('acks', name), name, repo);
    } catch (err) {
      if (isNotFound(err)) continue;
      if (!(err instanceof IntegrityError)) throw err;
      damaged(objectKey('acks', name), `${errorMessage(err)}; the run it acknowledges stays marked suspect`);
      continue;
    }
    catalog.transaction(() => insertAck(catalog, doc));
    loaded++;
  }
  return loaded;
}
