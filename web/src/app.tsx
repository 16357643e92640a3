// The page: the sign-in screen, or the conversation list beside the open conversation (one at a
// time on a narrow screen), with the connection banner and notices above them.
import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import type { Chat } from './chat';
import { Auth } from './auth';
import { Sidebar } from './sidebar';
import { ConversationPane } from './conversation';

const ChatContext = createContext<Chat | null>(null);

/** The page's state; components re-render with the App, which follows every change. */
export function useChat(): Chat {
  const chat = useContext(ChatContext);
  if (!chat) throw new Error('useChat outside <App>');
  return chat;
}

export function App({ chat }: { chat: Chat }) {
  const [, setVersion] = useState(chat.version);
  useEffect(() => {
    const off = chat.subscribe(() => setVersion(chat.version));
    setVersion(chat.version); // what changed before this subscription
    return off;
  }, [chat]);
  return (
    <ChatContext.Provider value={chat}>
      {chat.booting ? (
        <p class="booting" role="status">
          Loading…
        </p>
      ) : chat.user ? (
        <Main />
      ) : (
        <Auth />
      )}
      <Notices />
    </ChatContext.Provider>
  );
}

function Main() {
  const chat = useChat();
  const open = chat.selected !== null;
  return (
    <div class={`layout ${open ? 'show-conversation' : 'show-list'}`}>
      <Banner />
      <Sidebar />
      <ConversationPane />
    </div>
  );
}

/** The connection: nothing while online; otherwise what is happening and what it means. */
function Banner() {
  const chat = useChat();
  const s = chat.connection;
  let text: string | null = null;
  let action: { label: string; run: () => void } | null = null;
  const waiting = chat.pending.length;
  const outbox =
    waiting > 0
      ? ` ${waiting} message${waiting === 1 ? '' : 's'} will be sent when the connection is back.`
      : '';
  if (!chat.networkOnline) {
    text = `You are offline.${outbox || ' Messages you write will be sent when you are back online.'}`;
  } else if (s.status === 'reconnecting') {
    text = `Connection lost; reconnecting in ${Math.max(1, Math.round(s.delayMs / 1000))} s.${outbox}`;
    action = { label: 'Retry now', run: () => (chat.client.disconnect(), chat.client.connect()) };
  } else if (s.status === 'connecting') {
    text = s.attempt > 0 ? `Reconnecting…${outbox}` : 'Connecting…';
  } else if (s.status === 'syncing') {
    text = 'Catching up…';
  } else if (s.status === 'stopped') {
    text =
      s.reason === 'forbidden' ? 'The server refused this page’s connection.' : 'Disconnected.';
    action = { label: 'Reconnect', run: () => chat.client.connect() };
  } else if (s.status === 'idle') {
    text = `Not connected.${outbox}`;
  }
  return (
    <div
      class={`banner ${text ? 'banner-on' : ''}`}
      role="status"
      aria-live="polite"
      data-connection={s.status}
    >
      {text}
      {action && (
        <button type="button" class="link" onClick={action.run}>
          {action.label}
        </button>
      )}
    </div>
  );
}

function Notices() {
  const chat = useChat();
  return (
    <div class="notices" role="alert" aria-live="assertive">
      {chat.notices.map((n) => (
        <p key={n.id} class="notice">
          {n.text}{' '}
          <button
            type="button"
            class="link"
            onClick={() => chat.dismiss(n.id)}
            aria-label="Dismiss"
          >
            ×
          </button>
        </p>
      ))}
    </div>
  );
}
