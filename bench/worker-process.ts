/**
 * A bench worker: a .ts file run in its own process under tsx, spoken to over IPC (the
 * herd's workers, the capacity simulation's instances, the bench services).
 */
import { fork, type ChildProcess } from 'node:child_process';

/** Forks `file` under tsx with an IPC channel, its stdout and stderr on ours. */
export function forkTs(file: string, args: readonly string[] = []): ChildProcess {
  return fork(file, [...args], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** What a worker reports when it fails, and what its exit becomes while a message is awaited. */
export interface WorkerError {
  readonly type: 'error';
  readonly message: string;
}

/** A worker's messages, taken one at a time in order, each checked to be of the expected type. */
export class WorkerProcess<In, Out extends { readonly type: string }> {
  private readonly inbox: (Out | WorkerError)[] = [];
  private waiting: ((m: Out | WorkerError) => void) | undefined;

  constructor(
    protected readonly child: ChildProcess,
    /** For the errors: `herd worker`. */
    private readonly name: string,
  ) {
    child.on('message', (m: Out) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w(m);
      else this.inbox.push(m);
    });
    child.on('exit', (code) => this.waiting?.({ type: 'error', message: `${name} exited (${code})` }));
  }

  send(m: In): void {
    this.child.send(m as object);
  }

  async next<T extends Out['type']>(type: T): Promise<Extract<Out, { type: T }>> {
    const m = this.inbox.shift() ?? (await new Promise<Out | WorkerError>((done) => (this.waiting = done)));
    if (m.type !== type) throw new Error(`${this.name}: expected ${type}, got ${JSON.stringify(m)}`);
    return m as Extract<Out, { type: T }>;
  }
}
