/** The YAML policy: what to protect and where to put it. See DESIGN.md, "Policy (YAML)". */
export type { Encryption, Group, PathSource, Policy, Problem, RepositoryPolicy, Retention, S3Source, Source } from './types.js';
export { ENCRYPTIONS, INLINE_POLICY_FILE, isEncryption, POLICY_DEFAULTS } from './types.js';
export { defaultPolicyForRepository, loadPolicy, parsePolicy, PolicyError } from './load.js';
export { normalizeRepositoryUrl, parseSize } from './values.js';
export { bucketNameProblem } from '../storage/s3-url.js';
export { compileExcludes, compileGlob, GlobError } from './glob.js';
