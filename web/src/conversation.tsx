// The open conversation: its header (presence, typing, members, blocking), the messages (older
// ones load when scrolling up), and the composer (Enter sends, Shift+Enter breaks the line).
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Conversation, Message, OutboxEntry } from '@chat-server/client';
import { CONTENT_MAX } from '@chat-server/client';
import type { ConversationState, MessageStatus } from './chat';
import { describe } from './chat';
import { useChat } from './app';
import { clockTime, fullTime, lastSeen } from './format';
import { MembersDialog } from './dialogs';

export function ConversationPane() {
  const chat = useChat();
  const s = chat.selected;
  const state = chat.selectedState();
  if (!s)
    return (
      <main class="pane empty-pane" id="conversation">
        <p class="muted">Choose a conversation, or find someone to write to.</p>
      </main>
    );
  const draft = s.kind === 'draft' ? s.username : undefined;
  const key = state ? `c${state.conversation.id}` : `d${draft ?? ''}`;
  return <Pane key={key} state={state} draft={draft} />;
}

function Pane({ state, draft }: { state: ConversationState | undefined; draft?: string }) {
  const chat = useChat();
  const c = state?.conversation;
  const title = c ? chat.title(c) : (draft ?? '');
  const [members, setMembers] = useState(false);
  return (
    <main class="pane" id="conversation" aria-labelledby="conversation-title">
      <header class="bar conversation-bar">
        <button
          type="button"
          class="back"
          aria-label="Back to conversations"
          onClick={() => {
            void chat.select(null);
            // Keyboard and screen-reader users land where they left the list.
            requestAnimationFrame(() =>
              document.querySelector<HTMLElement>(`[data-conversation="${c?.id ?? ''}"]`)?.focus(),
            );
          }}
        >
          ←
        </button>
        <div class="heading">
          <h2 id="conversation-title">{title}</h2>
          <Subtitle conversation={c} draft={draft} />
        </div>
        {c?.kind === 'group' && (
          <button type="button" onClick={() => setMembers(true)}>
            Members
          </button>
        )}
        {(c?.kind === 'direct' || draft) && <BlockButton username={draft ?? chat.peer(c!) ?? ''} />}
      </header>
      <Messages state={state} draft={draft} />
      <Typing conversation={c} />
      <Composer state={state} draft={draft} />
      {members && c && <MembersDialog conversation={c} onClose={() => setMembers(false)} />}
    </main>
  );
}

function Subtitle({ conversation, draft }: { conversation?: Conversation; draft?: string }) {
  const chat = useChat();
  if (conversation?.kind === 'group')
    return <p class="subtitle">{conversation.memberCount} members</p>;
  const peer = conversation ? chat.peer(conversation) : draft;
  if (!peer) return null;
  if (chat.isBlocked(peer)) return <p class="subtitle">Blocked</p>;
  const p = chat.presenceOf(peer);
  if (!p) return null;
  return (
    <p class="subtitle presence" data-online={p.online ? 'true' : 'false'}>
      <span class={`dot inline ${p.online ? 'online' : 'offline'}`} aria-hidden="true" />
      {p.online ? 'online' : lastSeen(p.lastSeen)}
    </p>
  );
}

function BlockButton({ username }: { username: string }) {
  const chat = useChat();
  const blocked = chat.isBlocked(username);
  const [busy, setBusy] = useState(false);
  const toggle = async () => {
    setBusy(true);
    try {
      if (blocked) await chat.unblock(username);
      else await chat.block(username);
    } catch (e) {
      chat.notify(describe(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <button type="button" disabled={busy} onClick={() => void toggle()}>
      {blocked ? 'Unblock' : 'Block'}
    </button>
  );
}

function Typing({ conversation }: { conversation?: Conversation }) {
  const chat = useChat();
  const typers = conversation ? chat.typers(conversation.id) : [];
  return (
    <p class="typing" aria-live="polite">
      {typers.length === 0
        ? ''
        : `${typers.join(', ')} ${typers.length === 1 ? 'is' : 'are'} typing…`}
    </p>
  );
}

/** The messages, oldest first; scrolled to the newest, older pages loaded near the top. */
function Messages({ state, draft }: { state: ConversationState | undefined; draft?: string }) {
  const chat = useChat();
  const list = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const before = useRef<{ height: number; top: number; first?: string } | null>(null);
  const messages = state?.messages ?? [];
  const pending = chat.pendingFor(state, draft);
  const first = messages[0]?.id;
  const count = messages.length + pending.length;

  // Keep the view where it was: at the bottom when it was there, still when older ones came in.
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    const b = before.current;
    if (b && b.first !== first) el.scrollTop = b.top + (el.scrollHeight - b.height);
    else if (stick.current) el.scrollTop = el.scrollHeight;
    before.current = null;
  }, [count, first]);

  const older = () => {
    const el = list.current;
    if (!state || !el) return;
    before.current = { height: el.scrollHeight, top: el.scrollTop, first };
    void chat.loadOlder(state);
  };

  const onScroll = () => {
    const el = list.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 120 && state?.loaded && state.hasMore && !state.loadingOlder) older();
  };

  // A short first page does not fill the view: there is nothing to scroll, so load more.
  useEffect(() => {
    const el = list.current;
    if (
      el &&
      state?.loaded &&
      state.hasMore &&
      !state.loadingOlder &&
      el.scrollHeight <= el.clientHeight
    )
      older();
  }, [state?.loaded, first]);

  return (
    <div class="messages" ref={list} onScroll={onScroll} tabIndex={0} aria-label="Messages">
      {state && state.loaded && state.hasMore && (
        <button type="button" class="link older" disabled={state.loadingOlder} onClick={older}>
          {state.loadingOlder ? 'Loading older messages…' : 'Load older messages'}
        </button>
      )}
      {state && !state.loaded && <p class="muted center">Loading…</p>}
      {!state && pending.length === 0 && (
        <p class="muted center">No messages yet. Say hello to {draft}.</p>
      )}
      <ol
        class="message-list"
        aria-live="polite"
        aria-relevant="additions"
        aria-label="Message list"
      >
        {messages.map((m, i) => (
          <MessageItem
            key={m.id}
            message={m}
            conversation={state!.conversation}
            previous={messages[i - 1]}
          />
        ))}
        {pending.map((e) => (
          <PendingItem key={e.clientId} entry={e} />
        ))}
      </ol>
    </div>
  );
}

const STATUS_TEXT: Record<MessageStatus, string> = {
  sending: 'Sending',
  sent: 'Sent',
  delivered: 'Delivered',
  read: 'Read',
};

function MessageItem({
  message: m,
  conversation,
  previous,
}: {
  message: Message;
  conversation: Conversation;
  previous?: Message;
}) {
  const chat = useChat();
  const mine = m.sender.toLowerCase() === chat.user?.username.toLowerCase();
  const [editing, setEditing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const status = mine && !m.deletedAt ? chat.status(conversation, m.id) : undefined;
  const showSender = conversation.kind === 'group' && !mine && previous?.sender !== m.sender;
  return (
    <li
      class={`message ${mine ? 'mine' : 'theirs'} ${m.deletedAt ? 'deleted' : ''}`}
      data-id={m.id}
      data-status={status}
    >
      <div class="bubble">
        {showSender && <p class="sender">{m.sender}</p>}
        {!mine && conversation.kind === 'direct' && (
          <span class="visually-hidden">{m.sender}: </span>
        )}
        {mine && <span class="visually-hidden">You: </span>}
        {m.deletedAt ? (
          <p class="content muted">Message deleted</p>
        ) : editing ? (
          <EditForm
            message={m}
            onDone={(content) => {
              setEditing(false);
              if (content !== undefined && content !== m.content) chat.edit(m.id, content);
            }}
          />
        ) : (
          <p class="content">{m.content}</p>
        )}
        <p class="meta">
          <time dateTime={m.createdAt} title={fullTime(m.createdAt)}>
            {clockTime(m.createdAt)}
          </time>
          {m.editedAt && !m.deletedAt && <span> · edited</span>}
          {status && (
            <span class="status" data-status={status}>
              {' '}
              · {STATUS_TEXT[status]}
            </span>
          )}
        </p>
      </div>
      {mine && !m.deletedAt && !editing && (
        <div class={`message-actions ${confirming ? 'confirming' : ''}`}>
          {confirming ? (
            <>
              <span>Delete this message?</span>
              <button
                type="button"
                class="danger"
                onClick={() => {
                  setConfirming(false);
                  chat.delete(m.id);
                }}
              >
                Delete
              </button>
              <button type="button" onClick={() => setConfirming(false)}>
                Keep
              </button>
            </>
          ) : (
            <>
              <button type="button" onClick={() => setEditing(true)} aria-label="Edit message">
                Edit
              </button>
              <button type="button" onClick={() => setConfirming(true)} aria-label="Delete message">
                Delete
              </button>
            </>
          )}
        </div>
      )}
    </li>
  );
}

function EditForm({
  message,
  onDone,
}: {
  message: Message;
  onDone: (content: string | undefined) => void;
}) {
  const [text, setText] = useState(message.content ?? '');
  const ref = useRef<HTMLTextAreaElement>(null);
  // Before the browser paints: a caret placed later would land in the middle of what is typed.
  useLayoutEffect(() => {
    const el = ref.current;
    el?.focus();
    el?.setSelectionRange(el.value.length, el.value.length);
  }, []);
  const save = () => onDone(text.trim() === '' ? undefined : text);
  return (
    <form
      method="post"
      class="edit-form"
      onSubmit={(e) => {
        e.preventDefault();
        save();
      }}
    >
      <label for={`edit-${message.id}`} class="visually-hidden">
        Edit message
      </label>
      <textarea
        ref={ref}
        id={`edit-${message.id}`}
        rows={2}
        maxLength={CONTENT_MAX * 2}
        value={text}
        onInput={(e) => setText(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            save();
          } else if (e.key === 'Escape') {
            e.preventDefault();
            onDone(undefined);
          }
        }}
      />
      <button type="submit">Save</button>
      <button type="button" onClick={() => onDone(undefined)}>
        Cancel
      </button>
    </form>
  );
}

function PendingItem({ entry }: { entry: OutboxEntry }) {
  const f = entry.frame;
  const content = 'content' in f ? f.content : '';
  return (
    <li class="message mine pending" data-status="sending" data-client-id={entry.clientId}>
      <div class="bubble">
        <span class="visually-hidden">You: </span>
        <p class="content">{content}</p>
        <p class="meta">
          <span class="status" data-status="sending">
            Sending…
          </span>
        </p>
      </div>
    </li>
  );
}

function Composer({ state, draft }: { state: ConversationState | undefined; draft?: string }) {
  const chat = useChat();
  const [text, setText] = useState('');
  const ref = useRef<HTMLTextAreaElement>(null);
  // Write at once when a conversation opens; not on touch screens, where focusing would cover half
  // the conversation with the on-screen keyboard.
  useEffect(() => {
    if (matchMedia('(hover: hover)').matches) ref.current?.focus();
  }, []);
  const length = [...text].length;
  const tooLong = length > CONTENT_MAX;
  const peer = state?.conversation.kind === 'direct' ? chat.peer(state.conversation) : draft;
  const blocked = peer !== undefined && chat.isBlocked(peer);
  const send = () => {
    if (text.trim() === '' || tooLong) return;
    chat.send(text);
    setText('');
  };
  return (
    <form
      method="post"
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      <label for="composer-input" class="visually-hidden">
        Message
      </label>
      <textarea
        ref={ref}
        id="composer-input"
        rows={1}
        placeholder={blocked ? `You blocked ${peer}` : 'Message'}
        aria-describedby="composer-hint"
        aria-invalid={tooLong ? 'true' : undefined}
        value={text}
        onInput={(e) => {
          setText(e.currentTarget.value);
          chat.typingIn();
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            send();
          }
        }}
      />
      <button type="submit" class="primary" disabled={text.trim() === '' || tooLong}>
        Send
      </button>
      <p id="composer-hint" class={`hint composer-hint ${tooLong ? 'error' : ''}`}>
        {tooLong
          ? `${length} of ${CONTENT_MAX} characters: too long.`
          : 'Enter sends, Shift+Enter starts a new line.'}
      </p>
    </form>
  );
}
