// A page reload: the outbox (IndexedDB) and the session (a shared token storage) survive it.
// Messages written offline before the reload go out when the new page connects, with their
// clientId, and the new page's `sent` events report them.
import { IDBFactory } from 'fake-indexeddb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startServer, type TestServer } from '../../test/helpers/server.js';
import { indexedDbStorage, memoryTokenStore } from '../src/index.js';
import { client, reach, record, signUp, until } from './support.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

it('sends after a reload what was written offline before it', async () => {
  const indexedDB = new IDBFactory();
  const tokens = memoryTokenStore(); // localStorage in a browser
  const bob = client(server);
  const bobName = await signUp(bob);

  const page1 = client(server, { tokens, storage: indexedDbStorage({ indexedDB }) });
  const aliceName = await signUp(page1);
  const lost = page1.send({ to: bobName, content: 'written offline' });
  const second = page1.send({ to: bobName, content: 'and this too' });
  await until(() => page1.pending().length === 2);
  const clientIds = page1.pending().map((e) => e.clientId);
  page1.close(); // the page goes away before it ever connected
  await expect(lost).rejects.toMatchObject({ code: 'closed' });
  await expect(second).rejects.toMatchObject({ code: 'closed' });

  const page2 = client(server, { tokens, storage: indexedDbStorage({ indexedDB }) });
  const events = record(page2);
  expect(await page2.resume()).toMatchObject({ username: aliceName });
  page2.connect();
  await reach(page2, 'online');
  await until(() => events.of('sent').length === 2, 5000, 'the restored outbox acked');
  expect(events.of('sent').map((s) => s.clientId)).toEqual(clientIds);
  await until(() => events.of('message').length === 2, 5000, 'own messages as events');

  const history = await bob.history(aliceName);
  expect(history.messages.map((m) => m.content)).toEqual(['written offline', 'and this too']);
  expect(page2.pending()).toEqual([]);
  page2.close();
  bob.close();
});
