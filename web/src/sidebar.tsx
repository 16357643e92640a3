// The conversation list (unread counts, last messages, presence), finding people to write to,
// and the account: settings, blocked users, sign out.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { User } from '@chat-server/client';
import { describe, type ConversationState } from './chat';
import { useChat } from './app';
import { shortTime } from './format';
import { NewGroupDialog, SettingsDialog } from './dialogs';

export function Sidebar() {
  const chat = useChat();
  const [dialog, setDialog] = useState<'group' | 'settings' | null>(null);
  return (
    <aside class="sidebar" aria-label="Conversations">
      <header class="bar">
        <h1 class="brand">Chat</h1>
        <span class="me" title="Signed in as">
          {chat.user?.username}
        </span>
        <button type="button" onClick={() => setDialog('settings')}>
          Settings
        </button>
        <button type="button" onClick={() => void chat.signOut()}>
          Sign out
        </button>
      </header>
      <Search />
      <div class="actions-row">
        <button type="button" onClick={() => setDialog('group')}>
          New group
        </button>
      </div>
      <ConversationList />
      {dialog === 'group' && <NewGroupDialog onClose={() => setDialog(null)} />}
      {dialog === 'settings' && <SettingsDialog onClose={() => setDialog(null)} />}
    </aside>
  );
}

/** Users by name prefix; choosing one opens (or starts) the direct conversation. */
function Search() {
  const chat = useChat();
  const [q, setQ] = useState('');
  const [results, setResults] = useState<User[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const seq = useRef(0);

  useEffect(() => {
    const query = q.trim();
    if (query === '') {
      setResults(null);
      setError(null);
      return;
    }
    const mine = ++seq.current;
    const timer = setTimeout(() => {
      chat.client
        .searchUsers(query, { limit: 10 })
        .then((users) => {
          if (seq.current !== mine) return;
          const me = chat.user?.username.toLowerCase();
          setResults(users.filter((u) => u.username.toLowerCase() !== me));
          setError(null);
        })
        .catch((e: unknown) => seq.current === mine && setError(describe(e)));
    }, 250);
    return () => clearTimeout(timer);
  }, [q]);

  const open = (username: string) => {
    setQ('');
    void chat.select({ kind: 'draft', username });
  };

  return (
    <div class="search" role="search">
      <label for="user-search">Find people</label>
      <input
        id="user-search"
        type="search"
        autocomplete="off"
        autocapitalize="none"
        spellcheck={false}
        placeholder="Username"
        maxLength={32}
        value={q}
        onInput={(e) => setQ(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') setQ('');
        }}
      />
      {error && <p class="error">{error}</p>}
      {results && (
        <ul class="results" aria-label="People found">
          {results.length === 0 && <li class="muted">No one by that name.</li>}
          {results.map((u) => (
            <li key={u.id}>
              <button type="button" class="result" onClick={() => open(u.username)}>
                Message <strong>{u.username}</strong>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function ConversationList() {
  const chat = useChat();
  const list = chat.list();
  if (!chat.listLoaded && list.length === 0) return <p class="muted pad">Loading…</p>;
  if (list.length === 0)
    return <p class="muted pad">No conversations yet. Find someone above, or create a group.</p>;
  return (
    <nav aria-label="Conversation list" class="list-nav">
      <ul class="conversations">
        {list.map((s) => (
          <ConversationItem key={s.conversation.id} state={s} />
        ))}
      </ul>
      {chat.listHasMore && (
        <button type="button" class="link pad" onClick={() => void chat.loadConversations(true)}>
          Older conversations
        </button>
      )}
    </nav>
  );
}

function ConversationItem({ state }: { state: ConversationState }) {
  const chat = useChat();
  const c = state.conversation;
  const title = chat.title(c);
  const peer = c.kind === 'direct' ? chat.peer(c) : undefined;
  const presence = peer ? chat.presenceOf(peer) : undefined;
  const current = chat.selectedState() === state;
  const last = c.lastMessage;
  const typers = chat.typers(c.id);
  const preview =
    typers.length > 0
      ? `${typers.join(', ')} typing…`
      : last
        ? `${c.kind === 'group' || last.sender === chat.user?.username ? `${last.sender === chat.user?.username ? 'You' : last.sender}: ` : ''}${last.deletedAt ? 'Message deleted' : (last.content ?? '')}`
        : c.kind === 'group'
          ? `${c.memberCount} members`
          : 'No messages yet';
  const unread = c.unreadCount;
  return (
    <li>
      <button
        type="button"
        class={`conversation ${current ? 'current' : ''} ${unread > 0 ? 'has-unread' : ''}`}
        aria-current={current ? 'true' : undefined}
        data-conversation={c.id}
        onClick={() => void chat.select({ kind: 'conversation', id: c.id })}
      >
        <span class="avatar" aria-hidden="true">
          {title.slice(0, 1).toUpperCase()}
          {presence && <span class={`dot ${presence.online ? 'online' : 'offline'}`} />}
        </span>
        <span class="conversation-text">
          <span class="conversation-top">
            <span class="title">{title}</span>
            {presence && (
              <span class="visually-hidden">{presence.online ? ', online' : ', offline'}</span>
            )}
            {last && <span class="when">{shortTime(last.createdAt)}</span>}
          </span>
          <span class="conversation-bottom">
            <span class="preview">{preview}</span>
            {unread > 0 && (
              <span class="unread" aria-label={`${unread} unread`}>
                {unread}
              </span>
            )}
          </span>
        </span>
      </button>
    </li>
  );
}
