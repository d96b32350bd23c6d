/** The statistics behind every figure of bench/results. */
import { growth, percentile, perThousand, ratios, shuffled, summarize } from '../../../bench/stats';

describe('bench stats', () => {
  describe('percentile', () => {
    it('is the nearest-rank sample, never an interpolation', () => {
      const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
      expect(percentile(sorted, 50)).toBe(50);
      expect(percentile(sorted, 95)).toBe(95);
      expect(percentile(sorted, 99)).toBe(99);
      expect(percentile(sorted, 100)).toBe(100);
    });

    it('rounds the rank up on small samples', () => {
      expect(percentile([1, 2, 3], 50)).toBe(2);
      expect(percentile([1, 2, 3], 99)).toBe(3);
      expect(percentile([7], 1)).toBe(7);
    });

    it('refuses no samples and percentiles outside (0, 100]', () => {
      expect(() => percentile([], 50)).toThrow(RangeError);
      expect(() => percentile([1], 0)).toThrow(RangeError);
      expect(() => percentile([1], 101)).toThrow(RangeError);
    });
  });

  describe('summarize', () => {
    it('sorts a copy and reports n, percentiles, mean and range', () => {
      const samples = [5, 1, 4, 2, 3];
      const s = summarize(samples);
      expect(s).toEqual({ n: 5, p50: 3, p95: 5, p99: 5, mean: 3, min: 1, max: 5 });
      expect(samples).toEqual([5, 1, 4, 2, 3]);
    });

    it('refuses no samples', () => {
      expect(() => summarize([])).toThrow(RangeError);
    });
  });

  describe('ratios', () => {
    it('divides each percentile by the same percentile of the floor', () => {
      const floor = summarize([2, 2, 2, 2]);
      const value = summarize([3, 3, 3, 4]);
      expect(ratios(value, floor)).toEqual({ p50: 1.5, p95: 2, p99: 2 });
    });
  });

  describe('perThousand and growth', () => {
    it('scales counts to 1,000 requests', () => {
      expect(perThousand(3, 600)).toBe(5);
      expect(perThousand(0, 600)).toBe(0);
      expect(() => perThousand(1, 0)).toThrow(RangeError);
    });

    it('is last over first', () => {
      expect(growth(2, 3)).toBe(1.5);
      expect(() => growth(0, 1)).toThrow(RangeError);
    });
  });

  describe('shuffled', () => {
    it('is a deterministic permutation for a seed', () => {
      const items = ['a', 'b', 'c', 'd', 'e'];
      const once = shuffled(items, 42);
      expect(shuffled(items, 42)).toEqual(once);
      expect([...once].sort()).toEqual(items);
      expect(items).toEqual(['a', 'b', 'c', 'd', 'e']);
    });

    it('gives different orders for different seeds', () => {
      const items = Array.from({ length: 10 }, (_, i) => i);
      const orders = new Set([1, 2, 3, 4, 5].map((seed) => shuffled(items, seed).join(',')));
      expect(orders.size).toBeGreaterThan(1);
    });
  });
});
