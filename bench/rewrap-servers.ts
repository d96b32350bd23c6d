/**
 * The rewrap benchmark's services in their own process (as bench/servers.ts does for the
 * main run): dynalite in memory and the local KMS with two keys, the old and the new master
 * key. Sends `{ type: 'ready', info }`, then answers `{ op: 'kms-calls' }` with the KMS
 * request counts and `{ op: 'reset' }` by zeroing them; `{ op: 'stop' }` ends it.
 */
import { startLocalDynamo } from '../local/dynamodb';
import { startLocalKms } from '../local/kms';

async function main(): Promise<void> {
  const dynamo = await startLocalDynamo({ tableName: 'rewrap-bench' });
  const kms = await startLocalKms();
  const oldKey = await kms.createKey({ description: 'old master key' });
  const newKey = await kms.createKey({ description: 'new master key' });
  process.on('message', (message: { op: string }) => {
    if (message.op === 'kms-calls') {
      process.send?.({
        type: 'kms-calls',
        generate: kms.counters.calls('GenerateDataKey'),
        decrypt: kms.counters.calls('Decrypt'),
        all: kms.counters.calls(),
      });
    } else if (message.op === 'reset') {
      kms.counters.reset();
      process.send?.({ type: 'reset' });
    } else if (message.op === 'stop') {
      void Promise.allSettled([dynamo.stop(), kms.stop()]).then(() => process.exit(0));
    }
  });
  process.send?.({
    type: 'ready',
    info: {
      dynamoEndpoint: dynamo.endpoint,
      tableName: dynamo.tableName,
      kmsEndpoint: kms.endpoint,
      oldKeyArn: oldKey.arn,
      newKeyArn: newKey.arn,
    },
  });
}

void main();
