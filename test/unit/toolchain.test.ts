import { jwtVerify } from 'jose';

describe('toolchain', () => {
  it('loads ESM-only jose through the swc transform', () => {
    expect(typeof jwtVerify).toBe('function');
  });
});
