/** Watching what an AWS SDK v3 client is asked to send, from inside its middleware stack. */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * Adds an `initialize` middleware named `name` to `client` that records each command's input
 * (before the SDK serializes it); the returned array fills as commands are sent. Remove it
 * again with `client.middlewareStack.remove(name)`.
 */
export function recordSdkInputs(client: Pick<DynamoDBClient, 'middlewareStack'>, name: string): unknown[] {
  const inputs: unknown[] = [];
  client.middlewareStack.add(
    (next) => (args) => {
      inputs.push(args.input);
      return next(args);
    },
    { step: 'initialize', name },
  );
  return inputs;
}
