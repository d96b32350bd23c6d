/**
 * One place for the "start a world before the tests, stop it after" lifecycle that every
 * suite over the local servers repeats: `const world = useWorld(startCacheWorld)` at file or
 * `describe` scope registers the `beforeAll`/`afterAll` pair and hands back the world.
 */

/** Anything a suite starts once and must stop at the end (a world, a rig, a server). */
export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Starts `start()`'s world in `beforeAll` and stops it in `afterAll` of the enclosing scope.
 * Returns a stand-in that forwards to the started world, so tests read `world.authority`
 * exactly as before; touching it before `beforeAll` ran throws instead of reading `undefined`.
 */
export function useWorld<W extends Stoppable>(start: () => Promise<W>): W {
  let started: W | undefined;
  beforeAll(async () => {
    started = await start();
  });
  afterAll(async () => {
    await started?.stop();
    started = undefined;
  });
  const current = (): W => {
    if (started === undefined) throw new Error('useWorld: the world is used outside its beforeAll/afterAll');
    return started;
  };
  return new Proxy({} as W, {
    get(_target, property) {
      const world = current();
      const value: unknown = Reflect.get(world, property, world);
      // Methods keep their own `this` (class worlds with private fields need it).
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(world) : value;
    },
    has: (_target, property) => Reflect.has(current(), property),
    ownKeys: () => Reflect.ownKeys(current()),
    getOwnPropertyDescriptor: (_target, property) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(current(), property);
      return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
    },
  });
}

/** Anything a suite builds that holds connections and is destroyed at the end (a store, an SDK client). */
export interface Destroyable {
  destroy(): void;
}

/**
 * Collects what a suite builds and destroys it in `afterAll` of the enclosing scope. Call it
 * before the `useWorld` of the servers these talk to: `afterAll` hooks run in the order they
 * are registered, so the clients are destroyed before their servers stop.
 */
export function useDestroyables(): <T extends Destroyable>(item: T) => T {
  const items: Destroyable[] = [];
  afterAll(() => {
    for (const item of items.splice(0)) item.destroy();
  });
  return (item) => {
    items.push(item);
    return item;
  };
}

/**
 * Starts a group of servers that depend on each other (a server, then proxies in front of
 * it): `start` passes each one it starts through `own`, and the group's `stop()` stops them
 * in reverse order, each proxy before the server behind it. What `start` owned is stopped
 * again if it throws.
 */
export async function startGroup<G extends object>(
  start: (own: <S extends Stoppable>(server: S) => S) => Promise<G>,
): Promise<G & Stoppable> {
  const owned: Stoppable[] = [];
  const stopAll = async () => {
    for (const server of owned.splice(0).reverse()) await server.stop();
  };
  try {
    const group = await start((server) => {
      owned.push(server);
      return server;
    });
    return { ...group, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
