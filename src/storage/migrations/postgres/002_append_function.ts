// append_messages: a whole appendMessages batch in one statement, so in one round trip.
// Every append of every node waits for the advisory lock taken first thing here, and the lock is
// held until commit: each round trip made while holding it (and each wake-up of the backend)
// would be time that no node of the deployment can append. Called alone, in autocommit, so the
// call is its own transaction and returns once that has committed (synchronous_commit=on).
//
// Runs in READ COMMITTED (the default): each statement below takes a new snapshot, after the
// lock, so it sees every batch committed before. SET search_path FROM CURRENT: the schema the
// migration runs in (the store's), whatever the caller's search_path.
//
// Inputs are parallel arrays, one element per message to store, in batch order: its direct
// conversation's key and id (NULL when the caller has not cached it), sender, receiver, content,
// clientId (NULL for none; no two alike per sender, repeats are resolved by the caller). Returns
// one row per message (ord = 1-based place in the arrays): the id it was stored with or, when its
// clientId is held within the window, duplicate = true and the original message's fields.
//
// Plans: PL/pgSQL keeps each statement's plan for the session. force_generic_plan: left to
// choose, the plan cache keeps preferring custom plans for small batches, and re-planning these
// statements on every call costs about as much as running them. A generic plan cannot see the
// arrays' sizes, so the statements are shaped so that no plan can scan a table or join two
// batch-sized sets: one lookup of messages_by_client_id per clientId (a LATERAL subquery with
// LIMIT is never flattened into a join), conversations by their key, messages by primary key,
// ids taken from an array by rank. The test checks the tables' scan counters.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE FUNCTION append_messages(
      lock_class integer,
      lock_key integer,
      at timestamptz,
      released_before timestamptz,
      direct_keys text[],
      conversation_ids bigint[],
      sender_ids bigint[],
      receiver_ids bigint[],
      contents text[],
      client_ids text[]
    ) RETURNS TABLE (
      ord integer,
      id bigint,
      conversation_id bigint,
      duplicate boolean,
      sender text,
      receiver text,
      content text,
      created_at timestamptz
    )
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
    SET plan_cache_mode = force_generic_plan
    AS $$
    #variable_conflict use_column
    -- (The output columns are variables too; in a query, a name that is a column means the column.)
    DECLARE
      duplicate_ords bigint[];
      duplicate_ids bigint[];
      expired_ids bigint[];
      ids bigint[];
    BEGIN
      -- Commit order = id order across nodes: one batch at a time draws ids and commits.
      PERFORM pg_advisory_xact_lock(lock_class, lock_key);

      -- The conversations not cached, created if missing, with their members, read from the key
      -- ("smaller id:larger id"; one member for a conversation with oneself). Only this function
      -- creates conversations, under the lock, so none can appear between snapshot and insert.
      IF array_position(conversation_ids, NULL) IS NOT NULL THEN
        WITH created AS (
          INSERT INTO conversations AS c (kind, direct_key, created_at)
          SELECT DISTINCT 'direct', w.direct_key, at
          FROM unnest(direct_keys, conversation_ids) AS w(direct_key, known)
          WHERE w.known IS NULL
          ON CONFLICT (direct_key) DO NOTHING
          RETURNING c.id, c.direct_key
        )
        INSERT INTO conversation_members (conversation_id, user_id, joined_at)
        SELECT c.id, split_part(c.direct_key, ':', 1)::bigint, at FROM created c
        UNION
        SELECT c.id, split_part(c.direct_key, ':', 2)::bigint, at FROM created c;
      END IF;

      -- The clientIds: held within the window, the message is a duplicate; held by an older
      -- message, the key is released (as SqliteStore does when it meets one) and reused.
      SELECT array_agg(k.ord) FILTER (WHERE h.created_at > released_before),
        array_agg(h.id) FILTER (WHERE h.created_at > released_before),
        array_agg(h.id) FILTER (WHERE h.created_at <= released_before)
      INTO duplicate_ords, duplicate_ids, expired_ids
      FROM unnest(sender_ids, client_ids) WITH ORDINALITY AS k(sender_id, client_id, ord)
      CROSS JOIN LATERAL (
        SELECT h.id, h.created_at FROM messages h
        WHERE h.sender_id = k.sender_id AND h.client_id = k.client_id LIMIT 1
      ) h
      WHERE k.client_id IS NOT NULL;
      IF expired_ids IS NOT NULL THEN
        UPDATE messages SET client_id = NULL WHERE messages.id = ANY (expired_ids);
      END IF;

      -- One id per message to store, sorted: the k-th smallest goes to the k-th message, so ids
      -- follow the batch's order whatever order nextval ran in.
      ids := ARRAY(
        SELECT nextval('messages_id_seq')
        FROM generate_series(1, cardinality(sender_ids) - coalesce(cardinality(duplicate_ords), 0))
        ORDER BY 1
      );

      -- The messages and their inbox rows (one for a message to oneself). No ON CONFLICT: the
      -- claim above ran under the lock, so a (sender, clientId) conflict can only come from a
      -- writer not holding it, and the unique index then aborts the batch.
      RETURN QUERY
      WITH input AS MATERIALIZED (
        SELECT t.ord, ids[row_number() OVER (ORDER BY t.ord)] AS id,
          coalesce(t.known, (SELECT c.id FROM conversations c WHERE c.direct_key = t.direct_key))
            AS conversation_id,
          t.sender_id, t.receiver_id, t.content, t.client_id
        FROM unnest(direct_keys, conversation_ids, sender_ids, receiver_ids, contents, client_ids)
          WITH ORDINALITY AS t(direct_key, known, sender_id, receiver_id, content, client_id, ord)
        WHERE t.ord <> ALL (coalesce(duplicate_ords, '{}'))
      ), stored AS (
        INSERT INTO messages AS m
          (id, conversation_id, sender_id, receiver_id, content, created_at, client_id)
        SELECT i.id, i.conversation_id, i.sender_id, i.receiver_id, i.content, at, i.client_id
        FROM input i
        RETURNING m.id, m.sender_id, m.receiver_id
      ), streams AS (
        INSERT INTO inbox (user_id, message_id)
        SELECT s.sender_id, s.id FROM stored s
        UNION ALL
        SELECT s.receiver_id, s.id FROM stored s WHERE s.receiver_id <> s.sender_id
      )
      SELECT i.ord::integer, i.id, i.conversation_id, false,
        NULL::text, NULL::text, NULL::text, NULL::timestamptz
      FROM input i
      UNION ALL
      SELECT d.ord::integer, m.id,
        coalesce(conversation_ids[d.ord],
          (SELECT c.id FROM conversations c WHERE c.direct_key = direct_keys[d.ord])),
        true,
        (SELECT u.username FROM users u WHERE u.id = m.sender_id),
        (SELECT u.username FROM users u WHERE u.id = m.receiver_id),
        m.content, m.created_at
      FROM unnest(duplicate_ords, duplicate_ids) AS d(ord, id)
      JOIN messages m ON m.id = d.id;
    END
    $$`.execute(db);
}
