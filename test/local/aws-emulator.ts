/** The suite lifecycle the local AWS emulator tests share: the emulator and one SDK client on it. */

interface Emulator<Config> {
  readonly clientConfig: Config;
  stop(): Promise<void>;
}

/**
 * Before the suite's tests: starts the emulator in `region`, connects an `Sdk` client to it with
 * one attempt per call (so faults and counters are seen one to one) and hands both to `ready`.
 * After them: destroys the client and stops the emulator.
 */
export function useAwsEmulator<
  Config extends object,
  Service extends Emulator<Config>,
  Client extends { destroy(): void },
>(
  start: (options: { region: string }) => Promise<Service>,
  region: string,
  Sdk: new (config: Config & { maxAttempts: number }) => Client,
  ready: (started: [Service, Client]) => void,
): void {
  let service: Service | undefined;
  let client: Client | undefined;

  beforeAll(async () => {
    service = await start({ region });
    client = new Sdk({ ...service.clientConfig, maxAttempts: 1 });
    ready([service, client]);
  });

  afterAll(async () => {
    client?.destroy();
    await service?.stop();
  });
}
