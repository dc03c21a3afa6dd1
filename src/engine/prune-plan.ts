/**
 * What prune does with each pack, decided from sizes and usage alone (a pure function, so the
 * policy is table-tested). Modelled on restic's `prune --max-unused`: packs with no used blob
 * are deleted; partly used packs are repacked, emptiest first, until the unused bytes left
 * are at most `maxUnused` of all pack bytes that remain.
 */

export interface PackFacts {
  name: string;
  /** Size in the repository listing; null when the pack is not in the repository. */
  size: number | null;
  /** Whether the catalog knows the pack (packs left by crashed runs may be unknown). */
  known: boolean;
  /** Blob rows the catalog locates in this pack. */
  blobs: number;
  /** Of those, the ones a catalogued version or a run manifest's records still use. */
  usedBlobs: number;
  usedBytes: number;
  /** Object Lock keeps the pack until then (ms): repacking it would only store its data twice. */
  retainedUntil?: number;
  /**
   * Blobs the catalog locates in a missing pack of which this pack holds another copy (its index
   * entries say so): the pack is kept whole, as `catalog rebuild` can restore from that copy.
   */
  otherCopies?: number;
}

export interface PlannedPack {
  name: string;
  size: number;
  usedBytes: number;
  unusedBytes: number;
  usedBlobs: number;
}

export interface PrunePlan {
  /** No used blob: deleted. */
  remove: PlannedPack[];
  /** Used blobs copied into new packs, then deleted. */
  repack: PlannedPack[];
  keep: PlannedPack[];
  /** Used by the catalog but absent from the repository: damage, left alone (verify names it). */
  missing: string[];
  /** Known to the catalog, absent from the repository and unused: only the catalog rows go. */
  forgetInCatalog: string[];
  packBytes: number;
  usedBytes: number;
  unusedBytes: number;
  /** Unused bytes that remain after the plan is carried out (new pack headers not counted). */
  unusedAfter: number;
  /** The most unused bytes `maxUnused` tolerates. */
  limitBytes: number;
}

/** Bytes of a pack that are not blob data: u32 count, 41 bytes per entry, u32 trailer, plus the header's seal. */
export function packOverhead(blobs: number, encrypted: boolean): number {
  return 8 + 41 * blobs + (encrypted ? 28 : 0);
}

/**
 * `maxUnused` is a fraction (0.05 = 5 %): after pruning, unused ≤ maxUnused × (used + unused),
 * i.e. unused ≤ used × maxUnused / (1 − maxUnused). Pack headers count as used.
 */
export function planPrune(packs: readonly PackFacts[], opts: { maxUnused: number; encrypted: boolean; now?: number }): PrunePlan {
  const now = opts.now ?? Date.now();
  const plan: PrunePlan = { remove: [], repack: [], keep: [], missing: [], forgetInCatalog: [], packBytes: 0, usedBytes: 0, unusedBytes: 0, unusedAfter: 0, limitBytes: 0 };
  const partly: PlannedPack[] = [];
  let retainedUnused = 0;
  for (const p of packs) {
    if (p.size === null) {
      if (p.usedBlobs > 0) plan.missing.push(p.name);
      else if (p.known) plan.forgetInCatalog.push(p.name);
      continue;
    }
    plan.packBytes += p.size;
    if ((p.otherCopies ?? 0) > 0) {
      // All of it counts as used: what the catalog calls unused here is the only data left of a missing pack.
      plan.keep.push({ name: p.name, size: p.size, usedBytes: p.size, unusedBytes: 0, usedBlobs: p.usedBlobs });
      plan.usedBytes += p.size;
      continue;
    }
    if (p.usedBlobs === 0) {
      plan.remove.push({ name: p.name, size: p.size, usedBytes: 0, unusedBytes: p.size, usedBlobs: 0 });
      plan.unusedBytes += p.size;
      continue;
    }
    // Unused = what is neither a used blob nor header; blobs the catalog locates elsewhere (a
    // second copy) are unused here. Clamped: a catalog that under-counts must not go negative.
    const unused = Math.max(0, p.size - p.usedBytes - packOverhead(p.blobs, opts.encrypted));
    const planned = { name: p.name, size: p.size, usedBytes: p.size - unused, unusedBytes: unused, usedBlobs: p.usedBlobs };
    plan.usedBytes += planned.usedBytes;
    plan.unusedBytes += unused;
    if (unused === 0) plan.keep.push(planned);
    else if (p.retainedUntil !== undefined && p.retainedUntil > now) {
      plan.keep.push(planned);
      retainedUnused += unused;
    } else partly.push(planned);
  }

  const f = Math.min(Math.max(opts.maxUnused, 0), 1);
  plan.limitBytes = f >= 1 ? Number.POSITIVE_INFINITY : Math.floor((plan.usedBytes * f) / (1 - f));
  // Emptiest first (largest unused share), then most unused bytes, then by name (stable plans).
  partly.sort((a, b) => b.unusedBytes * a.size - a.unusedBytes * b.size || b.unusedBytes - a.unusedBytes || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let left = retainedUnused + partly.reduce((n, p) => n + p.unusedBytes, 0);
  for (const p of partly) {
    if (left > plan.limitBytes) {
      plan.repack.push(p);
      left -= p.unusedBytes;
    } else {
      plan.keep.push(p);
    }
  }
  plan.unusedAfter = left;
  return plan;
}
