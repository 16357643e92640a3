// N sender/receiver pairs, one connection each, wired to a Tracker: acks and errors of sender i
// and deliveries to receiver i are accounted to pair i. Shared by the closed and open loops.
import type { ClientConnection, Identity } from '../lib/drivers.js';
import { pool } from '../lib/http.js';
import type { Peer } from '../lib/peers.js';
import { sleep } from '../lib/proc.js';
import type { Tracker } from '../lib/tracker.js';

export interface PairSet {
  senders: ClientConnection[];
  receivers: Identity[];
  /** Connections that closed while the scenario ran. */
  unexpectedCloses(): number;
  close(): void;
}

export async function openPairs(
  peer: Peer,
  senders: Identity[],
  receivers: Identity[],
  tracker: Tracker,
  /** Called after an ack or a refusal of pair i, with the time it arrived. */
  onSettled: (pair: number) => void = () => {},
): Promise<PairSet> {
  let closing = false;
  let closes = 0;
  const onClose = () => {
    if (!closing) closes += 1;
  };
  const pairs = senders.length;
  const senderConns: ClientConnection[] = new Array(pairs);
  const receiverConns: ClientConnection[] = new Array(pairs);
  try {
    // Receivers first, so that no delivery is missed.
    await pool(pairs, 20, async (i) => {
      receiverConns[i] = await peer.driver.connect(receivers[i] as Identity, {
        ack: () => tracker.onAck(undefined, performance.now()),
        message: (content) => tracker.onDelivery(i, content, performance.now()),
        error: (code, clientId) => void tracker.onError(code, clientId),
        close: onClose,
      });
    });
    await pool(pairs, 20, async (i) => {
      senderConns[i] = await peer.driver.connect(senders[i] as Identity, {
        ack: (clientId) => {
          const pair = tracker.onAck(clientId, performance.now());
          if (pair >= 0) onSettled(pair);
        },
        message: () => {},
        error: (code, clientId) => {
          const pair = tracker.onError(code, clientId);
          if (pair >= 0) onSettled(pair);
        },
        close: onClose,
      });
    });
  } catch (error) {
    closing = true;
    for (const c of [...senderConns, ...receiverConns]) c?.close();
    throw error;
  }
  return {
    senders: senderConns,
    receivers,
    unexpectedCloses: () => closes,
    close() {
      closing = true;
      for (const c of [...senderConns, ...receiverConns]) c.close();
    },
  };
}

/** Waits until nothing is outstanding or `ms` passed; returns the seconds waited. */
export async function drain(tracker: Tracker, ms: number): Promise<number> {
  const start = performance.now();
  while (tracker.outstanding > 0 && performance.now() - start < ms) await sleep(20);
  return Math.round(performance.now() - start) / 1000;
}
