export * from './types.js';
export { MemStore, type MemStoreOptions } from './mem-store.js';
export { FsStore, type FsStoreOptions } from './fs-store.js';
export { S3Store, DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE, type S3StoreOptions } from './s3-store.js';
export { toStorageError, parseRetryAfter, s3Url, type S3ErrorContext } from './s3-errors.js';
export { openStore, parseS3Url, type OpenStoreOptions } from './open.js';
export { abortable, fsKeyProblem, rollUp, TMP_PREFIX } from './common.js';
