/** The local KMS-compatible server: see {@link startLocalKms}. */
export { startLocalKms, localKmsOperations } from './server';
export type {
  LocalKms,
  LocalKmsOptions,
  LocalKmsFault,
  LocalKmsCreateKeyOptions,
  LocalKmsPolicy,
} from './server';
export type { CallCounters } from './aws-json-server';
export type { KeyStoreState } from './key-store';
