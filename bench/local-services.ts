/**
 * The three local services a bench runs against, started together: dynalite, the local
 * KMS and the local Entra-compatible authority with one confidential app.
 */
import { startLocalAuthority, type LocalAuthority } from '../local/authority';
import { startLocalDynamo, type LocalDynamo } from '../local/dynamodb';
import { startLocalKms, type LocalKms } from '../local/kms';

export interface LocalServices {
  readonly dynamo: LocalDynamo;
  readonly kms: LocalKms;
  readonly authority: LocalAuthority;
  /** Stops all three (errors ignored). */
  stop(): Promise<void>;
}

export interface LocalServicesOptions {
  readonly tableName: string;
  /** The one app the authority knows. */
  readonly clientId: string;
  readonly clientSecret: string;
  readonly accessTokenLifetimeSeconds: number;
}

/** Starts the three services; when one fails to start, stops the others and throws its error. */
export async function startLocalServices(options: LocalServicesOptions): Promise<LocalServices> {
  const [dynamo, kms, authority] = await Promise.allSettled([
    startLocalDynamo({ tableName: options.tableName }),
    startLocalKms(),
    startLocalAuthority({
      clients: [{ clientId: options.clientId, clientSecret: options.clientSecret }],
      accessTokenLifetimeSeconds: options.accessTokenLifetimeSeconds,
    }),
  ]);
  const stopStarted = async (): Promise<void> => {
    await Promise.allSettled(
      [dynamo, kms, authority].map((s) => (s.status === 'fulfilled' ? s.value.stop() : Promise.resolve())),
    );
  };
  if (dynamo.status === 'fulfilled' && kms.status === 'fulfilled' && authority.status === 'fulfilled') {
    return { dynamo: dynamo.value, kms: kms.value, authority: authority.value, stop: stopStarted };
  }
  await stopStarted();
  throw [dynamo, kms, authority].find((s) => s.status === 'rejected')!.reason;
}
