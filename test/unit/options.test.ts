/** The option checks the stores and key rings share (shared/options.ts). */
import { ConfigurationError } from '../../shared/errors';
import { hasReadyClient, type ClientChoice } from '../../shared/options';
import { thrownBy } from './thrown';

interface Options {
  readonly client?: object;
  readonly clientConfig?: object;
  readonly clusterConfig?: object;
  readonly timeoutMs?: number;
}

const TWO: ClientChoice<Options, 'client'> = {
  ready: 'client',
  build: ['clientConfig'],
  buildOnly: ['timeoutMs'],
  pass: 'a ready client, or its config',
};
const THREE: ClientChoice<Options, 'client'> = { ...TWO, build: ['clientConfig', 'clusterConfig'] };

describe('hasReadyClient', () => {
  it('is true for a ready client and false for the settings to build one', () => {
    const ready: Options = { client: {} };
    const config: Options = { clientConfig: {}, timeoutMs: 5 };
    const cluster: Options = { clusterConfig: {} };

    expect(hasReadyClient(ready, TWO)).toBe(true);
    expect(hasReadyClient(config, TWO)).toBe(false);
    expect(hasReadyClient(cluster, THREE)).toBe(false);
  });

  it.each([
    [
      'neither',
      {},
      TWO,
      'clientConfig',
      'received neither client nor clientConfig; pass exactly one: a ready client, or its config',
    ],
    [
      'none of three',
      {},
      THREE,
      'clientConfig',
      'received none of client, clientConfig and clusterConfig; pass exactly one',
    ],
    [
      'both',
      { client: {}, clientConfig: {} },
      TWO,
      'client',
      'received both client and clientConfig; pass exactly one',
    ],
    [
      'all three',
      { client: {}, clientConfig: {}, clusterConfig: {} },
      THREE,
      'client',
      'received client, clientConfig and clusterConfig; pass exactly one',
    ],
    [
      'two build options',
      { clientConfig: {}, clusterConfig: {} },
      THREE,
      'clientConfig',
      'received both clientConfig and clusterConfig',
    ],
    [
      'a build-only option beside a ready client',
      { client: {}, timeoutMs: 5 },
      TWO,
      'timeoutMs',
      'applies only to a client built from clientConfig; configure your own client instead',
    ],
    [
      'a build-only option, with its own advice',
      { client: {}, timeoutMs: 5 },
      { ...THREE, instead: 'set it on your client' },
      'timeoutMs',
      'applies only to a client built from clientConfig or clusterConfig; set it on your client',
    ],
  ] as const)('rejects %s, naming the setting', async (_case, options, choice, setting, message) => {
    const error = await thrownBy(() => hasReadyClient(options as Options, choice), ConfigurationError);

    expect(error.setting).toBe(setting);
    expect(error.message).toContain(`${setting}: ${message}`);
  });
});
