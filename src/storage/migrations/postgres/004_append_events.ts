// append_events: a whole appendMessages batch of the NewEvent union (direct messages by receiver,
// messages to a conversation, edits and deletions) in one statement, so in one round trip. It
// replaces 002's append_messages, whose arguments and result differ (so CREATE OR REPLACE could
// not change it in place); a node still calling append_messages fails its appends rather than
// store direct messages without the block rule.
//
// What 002 says still holds: every append of every node waits for the advisory lock taken first
// thing here and held until commit (the same lock changeConversation takes), so ids are drawn and
// committed in one order; READ COMMITTED, so each statement sees every batch committed before;
// search_path fixed to the store's schema; statements with generic plans (force_generic_plan)
// shaped so that no plan scans a table or joins two batch-sized sets: every table is reached by
// a key per event (a CASE-guarded scalar subquery, or a LATERAL subquery with LIMIT, neither of
// which the planner turns into a join), and the OFFSET 0 levels keep each subquery evaluated once
// per event. The test checks the tables' scan counters.
//
// A batch of direct messages by receiver only (what most batches are) costs what it cost under
// append_messages: the pass that gathers each event's facts is skipped, and the insert finds
// conversations and blocks itself, one key lookup each, as 002 found conversations.
//
// Inputs are parallel arrays, one element per event, in batch order:
//   kinds             'message', 'edit' or 'delete'
//   direct_keys       a direct message by receiver: its conversation's key ("smaller id:larger
//                     id"); NULL otherwise
//   conversation_ids  by receiver: the conversation's id when the caller has it cached, else NULL;
//                     a message to a conversation: that conversation; NULL for an edit or deletion
//   sender_ids, receiver_ids (by receiver only), target_ids (edit, delete: the message),
//   contents, client_ids (NULL for none)
//   repeat_of         the place (1-based) of the batch's first event with the same (sender,
//                     clientId), or NULL: the caller finds repeats, this function decides them
// Unknown receivers are the caller's to report: such events are not passed.
//
// Each event is decided as SqliteStore decides it, in batch order: first whether it may be stored
// at all (the sender is a member of the conversation; an edit or deletion is of the sender's own
// message, visible to them and not deleted, also not by an earlier deletion of the batch), then
// its clientId (held within the window: a duplicate of the original; held by an earlier stored
// event of the batch: a repeat of it; held by an older message: released and reused).
//
// Returns one row per event (ord = 1-based place), whose `result` is:
//   stored     id, conversation_id, and recipients (the users whose streams it joined), except
//              for a direct message by receiver that joined the sender's and the receiver's
//              streams (NULL: the caller knows them); receiver: the receiver's name, for a direct
//              message sent to its conversation
//   duplicate  the original event as stored now (the columns of an EventRow, rows.ts)
//   repeat     duplicate_of: the ord of the event of this batch that it repeats
//   conversation_not_found, message_not_found, not_message_sender: nothing was written for it
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION append_messages(integer, integer, timestamptz, timestamptz, text[],
    bigint[], bigint[], bigint[], text[], text[])`.execute(db);
  await sql`CREATE OR REPLACE FUNCTION append_events(
      lock_class integer,
      lock_key integer,
      at timestamptz,
      released_before timestamptz,
      kinds text[],
      direct_keys text[],
      conversation_ids bigint[],
      sender_ids bigint[],
      receiver_ids bigint[],
      target_ids bigint[],
      contents text[],
      client_ids text[],
      repeat_of integer[]
    ) RETURNS TABLE (
      ord integer,
      result text,
      duplicate_of integer,
      recipients bigint[],
      id bigint,
      kind text,
      conversation_id bigint,
      target_id bigint,
      sender text,
      receiver text,
      content text,
      payload text,
      created_at timestamptz,
      edited_at timestamptz,
      deleted_at timestamptz
    )
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
    SET plan_cache_mode = force_generic_plan
    AS $$
    #variable_conflict use_column
    -- (The output columns are variables too; in a query, a name that is a column means the column.
    -- Every column below is qualified, and local variables are named v_….)
    DECLARE
      -- Per event, by ord: 'stored', 'duplicate', 'repeat' or the refusal.
      v_outcome text[];
      v_conversation bigint[];
      -- A direct message's receiver.
      v_receiver bigint[];
      -- The row's hidden_from: the receiver who blocks the sender; an edit's target's.
      v_hidden bigint[];
      -- Joins the stream of every member of the conversation (else the sender's and receiver's).
      v_fanout boolean[];
      -- The message holding the event's clientId within the window.
      v_original bigint[];
      v_duplicate_of integer[];
      v_duplicate_ords integer[];
      v_duplicate_ids bigint[];
      v_expired_ids bigint[];
      v_firsts integer[] := array_remove(repeat_of, NULL);
      v_changes boolean := array_position(kinds, 'edit') IS NOT NULL
        OR array_position(kinds, 'delete') IS NOT NULL;
      -- Some event is not a direct message by receiver. When none is (the common batch), the
      -- facts below are not gathered: the insert finds conversations and blocks itself.
      v_general boolean := array_position(direct_keys, NULL) IS NOT NULL;
      v_claimed integer[];
      v_deleted bigint[] := '{}';
      v_stored integer[];
      v_ids bigint[];
      v_at integer;
      v_claim integer;
    BEGIN
      -- Commit order = id order across nodes: one batch at a time draws ids and commits.
      PERFORM pg_advisory_xact_lock(lock_class, lock_key);

      -- The direct conversations not cached, created if missing (in the order of the batch, as
      -- SqliteStore creates them), with their members, read from the key (one member for a
      -- conversation with oneself). Only this function creates direct conversations, under the
      -- lock, so none can appear between snapshot and insert.
      IF array_position(conversation_ids, NULL) IS NOT NULL AND EXISTS (
        SELECT FROM unnest(direct_keys, conversation_ids) AS w(direct_key, known)
        WHERE w.direct_key IS NOT NULL AND w.known IS NULL
      ) THEN
        WITH created AS (
          INSERT INTO conversations AS c (kind, direct_key, created_at)
          SELECT 'direct', w.direct_key, at
          FROM unnest(direct_keys, conversation_ids) WITH ORDINALITY AS w(direct_key, known, ord)
          WHERE w.direct_key IS NOT NULL AND w.known IS NULL
          GROUP BY w.direct_key ORDER BY min(w.ord)
          ON CONFLICT (direct_key) DO NOTHING
          RETURNING c.id, c.direct_key
        )
        INSERT INTO conversation_members (conversation_id, user_id, joined_at)
        SELECT c.id, split_part(c.direct_key, ':', 1)::bigint, at FROM created c
        UNION
        SELECT c.id, split_part(c.direct_key, ':', 2)::bigint, at FROM created c;
      END IF;

      -- The clientIds held: within the window by the original, or by an older message, whose key
      -- is released (as SqliteStore does when it meets one) and reused.
      SELECT array_agg(k.ord::integer) FILTER (WHERE h.created_at > released_before),
        array_agg(h.id) FILTER (WHERE h.created_at > released_before),
        array_agg(h.id) FILTER (WHERE h.created_at <= released_before)
      INTO v_duplicate_ords, v_duplicate_ids, v_expired_ids
      FROM unnest(sender_ids, client_ids) WITH ORDINALITY AS k(sender_id, client_id, ord)
      CROSS JOIN LATERAL (
        SELECT h.id, h.created_at FROM messages h
        WHERE h.sender_id = k.sender_id AND h.client_id = k.client_id LIMIT 1
      ) h
      WHERE k.client_id IS NOT NULL;
      IF v_expired_ids IS NOT NULL THEN
        UPDATE messages SET client_id = NULL WHERE messages.id = ANY (v_expired_ids);
      END IF;

      -- What each event is, against the committed state: its conversation, whether it may be
      -- stored, its receiver, whether it is hidden and who gets it. Lookups run only for the
      -- events that need them (CASE), by primary key or unique key.
      IF NOT v_general THEN
        v_outcome := array_fill('stored'::text, ARRAY[cardinality(kinds)]);
        v_original := array_fill(NULL::bigint, ARRAY[cardinality(kinds)]);
        FOR v_at IN 1 .. coalesce(cardinality(v_duplicate_ords), 0) LOOP
          v_outcome[v_duplicate_ords[v_at]] := 'duplicate';
          v_original[v_duplicate_ords[v_at]] := v_duplicate_ids[v_at];
        END LOOP;
      ELSE
        WITH events AS (
          SELECT t.ord::integer AS ord, t.kind, t.direct_key, t.sender_id,
            t.receiver_id AS given_receiver,
            CASE
              WHEN t.direct_key IS NOT NULL THEN coalesce(t.known,
                (SELECT c.id FROM conversations c WHERE c.direct_key = t.direct_key))
              WHEN t.kind = 'message' THEN t.known
              ELSE (SELECT h.conversation_id FROM messages h WHERE h.id = t.target_id)
            END AS conversation_id,
            CASE WHEN t.kind = 'message' AND t.direct_key IS NULL THEN
              (SELECT c.kind FROM conversations c WHERE c.id = t.known)
            END AS conversation_kind,
            CASE WHEN t.kind <> 'message' THEN
              (SELECT h FROM messages h WHERE h.id = t.target_id)
            END AS target,
            CASE WHEN v_duplicate_ords IS NOT NULL THEN
              v_duplicate_ids[array_position(v_duplicate_ords, t.ord::integer)]
            END AS original
          FROM unnest(kinds, direct_keys, conversation_ids, sender_ids, receiver_ids, target_ids)
            WITH ORDINALITY AS t(kind, direct_key, known, sender_id, receiver_id, target_id, ord)
          OFFSET 0
        ), membership AS (
          SELECT e.*,
            CASE WHEN e.direct_key IS NULL THEN
              (SELECT cm.joined_after FROM conversation_members cm
               WHERE cm.conversation_id = e.conversation_id AND cm.user_id = e.sender_id)
            END AS member_after
          FROM events e
          OFFSET 0
        ), decided AS (
          SELECT m.*,
            CASE
              WHEN m.direct_key IS NOT NULL THEN NULL
              WHEN m.kind = 'message' THEN
                CASE WHEN m.member_after IS NULL THEN 'conversation_not_found' END
              WHEN (m.target).kind IS DISTINCT FROM 'message' OR (m.target).hidden_from = m.sender_id
                OR m.member_after IS NULL OR (m.target).id <= m.member_after THEN 'message_not_found'
              WHEN (m.target).sender_id <> m.sender_id THEN 'not_message_sender'
              WHEN (m.target).deleted_at IS NOT NULL THEN 'message_not_found'
            END AS refusal,
            CASE
              WHEN m.direct_key IS NOT NULL THEN m.given_receiver
              WHEN m.conversation_kind = 'direct' AND m.member_after IS NOT NULL THEN coalesce(
                (SELECT cm.user_id FROM conversation_members cm
                 WHERE cm.conversation_id = m.conversation_id AND cm.user_id <> m.sender_id LIMIT 1),
                m.sender_id)
            END AS receiver_id
          FROM membership m
          OFFSET 0
        )
        SELECT array_agg(f.outcome), array_agg(f.conversation_id), array_agg(f.receiver_id),
          array_agg(f.hidden_from), array_agg(f.fanout), array_agg(f.original)
        INTO v_outcome, v_conversation, v_receiver, v_hidden, v_fanout, v_original
        FROM (
          SELECT d.ord,
            CASE WHEN d.refusal IS NOT NULL THEN d.refusal
              WHEN d.original IS NOT NULL THEN 'duplicate' ELSE 'stored' END AS outcome,
            d.conversation_id, d.receiver_id,
            CASE
              WHEN d.kind <> 'message' THEN (d.target).hidden_from
              WHEN d.receiver_id <> d.sender_id AND EXISTS (
                SELECT FROM blocks b WHERE b.blocker_id = d.receiver_id AND b.blocked_id = d.sender_id
              ) THEN d.receiver_id
            END AS hidden_from,
            CASE WHEN d.kind <> 'message' THEN (d.target).hidden_from IS NULL
              ELSE d.conversation_kind = 'group' END AS fanout,
            d.original
          FROM decided d
          ORDER BY d.ord
        ) f;
      END IF;

      -- In batch order, only for the events whose outcome can depend on an earlier one of the
      -- batch (edits and deletions, and events sharing a clientId): a deletion stored makes a
      -- later edit or deletion of its message not found; the first event stored with a clientId
      -- makes the later ones with it repeats.
      IF v_changes OR cardinality(v_firsts) > 0 THEN
        v_claimed := array_fill(NULL::integer, ARRAY[cardinality(kinds)]);
        v_duplicate_of := v_claimed;
        FOR v_at IN
          SELECT s.ord::integer FROM unnest(kinds, repeat_of) WITH ORDINALITY AS s(kind, first, ord)
          WHERE s.kind <> 'message' OR s.first IS NOT NULL OR s.ord::integer = ANY (v_firsts)
          ORDER BY s.ord
        LOOP
          CONTINUE WHEN v_outcome[v_at] NOT IN ('stored', 'duplicate');
          v_claim := coalesce(repeat_of[v_at], v_at);
          IF kinds[v_at] <> 'message' AND target_ids[v_at] = ANY (v_deleted) THEN
            v_outcome[v_at] := 'message_not_found';
          ELSIF v_outcome[v_at] = 'stored' AND client_ids[v_at] IS NOT NULL THEN
            IF v_claimed[v_claim] IS NOT NULL THEN
              v_outcome[v_at] := 'repeat';
              v_duplicate_of[v_at] := v_claimed[v_claim];
            ELSE
              v_claimed[v_claim] := v_at;
            END IF;
          END IF;
          IF v_outcome[v_at] = 'stored' AND kinds[v_at] = 'delete' THEN
            v_deleted := v_deleted || target_ids[v_at];
          END IF;
        END LOOP;
      END IF;

      -- The edited and deleted messages: the last edit's content, or '' once deleted.
      IF v_changes THEN
        UPDATE messages m SET
          content = CASE WHEN u.deleted THEN '' ELSE u.content END,
          edited_at = CASE WHEN u.content IS NOT NULL THEN at ELSE m.edited_at END,
          deleted_at = CASE WHEN u.deleted THEN at ELSE m.deleted_at END
        FROM (
          SELECT t.target_id, bool_or(t.kind = 'delete') AS deleted,
            (array_agg(t.content ORDER BY t.ord DESC) FILTER (WHERE t.kind = 'edit'))[1] AS content
          FROM unnest(kinds, target_ids, contents, v_outcome)
            WITH ORDINALITY AS t(kind, target_id, content, outcome, ord)
          WHERE t.outcome = 'stored' AND t.kind <> 'message'
          GROUP BY t.target_id
        ) u
        WHERE m.id = u.target_id;
      END IF;

      -- One id per event to store, sorted: the k-th smallest goes to the k-th event, so ids
      -- follow the batch's order whatever order nextval ran in.
      v_stored := array_positions(v_outcome, 'stored');
      v_ids := ARRAY(
        SELECT nextval('messages_id_seq') FROM generate_series(1, cardinality(v_stored)) ORDER BY 1
      );

      -- The events and their inbox rows. No ON CONFLICT: the claims above ran under the lock, so
      -- a (sender, clientId) conflict can only come from a writer not holding it, and the unique
      -- index then aborts the batch.
      RETURN QUERY
      WITH facts AS (
        SELECT s.ord, s.id,
          CASE WHEN v_general THEN v_conversation[s.ord] ELSE coalesce(conversation_ids[s.ord],
            (SELECT c.id FROM conversations c WHERE c.direct_key = direct_keys[s.ord]))
          END AS conversation_id,
          CASE WHEN v_general THEN v_receiver[s.ord] ELSE receiver_ids[s.ord] END AS receiver_id,
          CASE
            WHEN v_general THEN v_hidden[s.ord]
            WHEN receiver_ids[s.ord] <> sender_ids[s.ord] AND EXISTS (
              SELECT FROM blocks b
              WHERE b.blocker_id = receiver_ids[s.ord] AND b.blocked_id = sender_ids[s.ord]
            ) THEN receiver_ids[s.ord]
          END AS hidden_from
        FROM unnest(v_stored, v_ids) AS s(ord, id)
        OFFSET 0
      ), input AS MATERIALIZED (
        SELECT f.ord, f.id, kinds[f.ord] AS kind, f.conversation_id,
          sender_ids[f.ord] AS sender_id, f.receiver_id, target_ids[f.ord] AS target_id,
          contents[f.ord] AS content, client_ids[f.ord] AS client_id, f.hidden_from,
          CASE
            WHEN v_general AND v_fanout[f.ord] THEN ARRAY(
              SELECT cm.user_id FROM conversation_members cm
              WHERE cm.conversation_id = f.conversation_id ORDER BY cm.user_id)
            WHEN f.receiver_id IS NULL OR f.hidden_from IS NOT NULL
              OR f.receiver_id = sender_ids[f.ord] THEN ARRAY[sender_ids[f.ord]]
            WHEN direct_keys[f.ord] IS NULL THEN ARRAY[sender_ids[f.ord], f.receiver_id]
          END AS recipients
        FROM facts f
      ), stored AS (
        INSERT INTO messages AS m (id, kind, conversation_id, sender_id, receiver_id, target_id,
          content, created_at, client_id, hidden_from)
        SELECT i.id, i.kind, i.conversation_id, i.sender_id, i.receiver_id, i.target_id,
          CASE WHEN i.kind = 'delete' THEN '' ELSE i.content END, at, i.client_id, i.hidden_from
        FROM input i
      ), streams AS (
        INSERT INTO inbox (user_id, message_id)
        SELECT i.sender_id, i.id FROM input i WHERE i.recipients IS NULL
        UNION ALL
        SELECT i.receiver_id, i.id FROM input i WHERE i.recipients IS NULL
        UNION ALL
        SELECT r.user_id, i.id FROM input i CROSS JOIN LATERAL unnest(i.recipients) AS r(user_id)
        WHERE i.recipients IS NOT NULL
      )
      SELECT i.ord, 'stored', NULL::integer, i.recipients, i.id, i.kind, i.conversation_id,
        i.target_id, NULL::text,
        CASE WHEN i.kind = 'message' AND direct_keys[i.ord] IS NULL AND i.receiver_id IS NOT NULL
          THEN (SELECT u.username FROM users u WHERE u.id = i.receiver_id) END,
        NULL::text, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz
      FROM input i;

      -- The duplicates, each with its original event as stored now; the repeats and refusals.
      IF v_duplicate_ords IS NOT NULL THEN
        RETURN QUERY
        SELECT d.ord, 'duplicate', NULL::integer, NULL::bigint[], o.id, o.kind, o.conversation_id,
          o.target_id, o.sender, o.receiver, o.content, o.payload, o.created_at, o.edited_at,
          o.deleted_at
        FROM unnest(array_positions(v_outcome, 'duplicate')) AS d(ord)
        CROSS JOIN LATERAL (
          SELECT m.id, m.kind, m.conversation_id, m.target_id, su.username AS sender,
            ru.username AS receiver, m.content, m.payload, m.created_at, m.edited_at, m.deleted_at
          FROM messages m JOIN users su ON su.id = m.sender_id
          LEFT JOIN users ru ON ru.id = m.receiver_id
          WHERE m.id = v_original[d.ord] LIMIT 1
        ) o;
      END IF;
      IF v_general OR cardinality(v_firsts) > 0 THEN
        RETURN QUERY
        SELECT o.ord::integer, o.outcome, v_duplicate_of[o.ord], NULL::bigint[], NULL::bigint,
          NULL::text, NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text,
          NULL::timestamptz, NULL::timestamptz, NULL::timestamptz
        FROM unnest(v_outcome) WITH ORDINALITY AS o(outcome, ord)
        WHERE o.outcome NOT IN ('stored', 'duplicate');
      END IF;
    END
    $$`.execute(db);
}
