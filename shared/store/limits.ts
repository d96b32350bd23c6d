/**
 * Item size limits of the stores and the one check they share. Every store measures an
 * item the way its service does and calls {@link assertItemSize} before the network call,
 * so an oversized blob fails fast with a {@link SizeLimitError} and the stored item stays
 * as it was.
 */
import { SizeLimitError } from '../errors';

/** DynamoDB's item limit: 400 KB, counted as attribute names plus values. */
export const DYNAMODB_MAX_ITEM_BYTES = 400 * 1024;

/** Cosmos DB's item limit: 2 MB of UTF-8 JSON, system properties included. */
export const COSMOS_MAX_ITEM_BYTES = 2 * 1024 * 1024;

/** Throws {@link SizeLimitError} when `size` exceeds `limit`. */
export function assertItemSize(store: string, size: number, limit: number): void {
  if (size > limit) throw new SizeLimitError(store, size, limit);
}

/** UTF-8 length of a string, the unit both services count in. */
export function utf8Length(value: string): number {
  return Buffer.byteLength(value, 'utf8');
}
