// Modal dialogs (the native <dialog>: focus kept inside, Escape closes, focus returns after):
// a new group, a group's members, and the account's settings with its blocked users.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Conversation, Role } from '@chat-server/client';
import { describe } from './chat';
import { useChat } from './app';

function Dialog({
  title,
  onClose,
  children,
}: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    const el = ref.current;
    el?.showModal();
    return () => {
      el?.close();
      opener?.focus();
    };
  }, []);
  const id = `dialog-${title.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <dialog
      ref={ref}
      class="dialog"
      aria-labelledby={id}
      onClose={onClose}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <header class="dialog-header">
        <h2 id={id}>{title}</h2>
        <button type="button" onClick={onClose} aria-label="Close">
          ×
        </button>
      </header>
      {children}
    </dialog>
  );
}

/** Usernames separated by commas or spaces. */
const names = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');

export function NewGroupDialog({ onClose }: { onClose: () => void }) {
  const chat = useChat();
  const [title, setTitle] = useState('');
  const [members, setMembers] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await chat.createGroup(title.trim(), names(members));
      onClose();
    } catch (err) {
      setError(describe(err));
      setBusy(false);
    }
  };
  return (
    <Dialog title="New group" onClose={onClose}>
      <form method="post" onSubmit={submit} class="stack">
        <label for="group-title">Name</label>
        <input
          id="group-title"
          required
          maxLength={100}
          value={title}
          onInput={(e) => setTitle(e.currentTarget.value)}
        />
        <label for="group-members">Members</label>
        <input
          id="group-members"
          aria-describedby="group-members-hint"
          autocapitalize="none"
          spellcheck={false}
          value={members}
          onInput={(e) => setMembers(e.currentTarget.value)}
        />
        <p id="group-members-hint" class="hint">
          Usernames, separated by commas. You can add more later.
        </p>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          Create group
        </button>
      </form>
    </Dialog>
  );
}

export function MembersDialog({
  conversation: c,
  onClose,
}: {
  conversation: Conversation;
  onClose: () => void;
}) {
  const chat = useChat();
  const [adding, setAdding] = useState('');
  const [title, setTitle] = useState(c.title ?? '');
  const [error, setError] = useState<string | null>(null);
  const admin = c.role === 'admin';
  const me = chat.user?.username.toLowerCase();

  const run = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
      await chat.refreshConversation(c.id);
    } catch (err) {
      setError(describe(err));
    }
  };

  return (
    <Dialog title={`${c.title ?? 'Group'}: members`} onClose={onClose}>
      {admin && (
        <form
          method="post"
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            void run(() => chat.client.renameGroup(c.id, title.trim()));
          }}
        >
          <label for="group-rename">Group name</label>
          <input
            id="group-rename"
            required
            maxLength={100}
            value={title}
            onInput={(e) => setTitle(e.currentTarget.value)}
          />
          <button type="submit">Rename</button>
        </form>
      )}
      <ul class="members" aria-label="Members">
        {c.members.map((m) => {
          const self = m.username.toLowerCase() === me;
          const other: Role = m.role === 'admin' ? 'member' : 'admin';
          return (
            <li key={m.username}>
              <span class="member-name">
                {m.username}
                {self && ' (you)'}
              </span>
              <span class="role">{m.role}</span>
              {admin && !self && (
                <>
                  <button
                    type="button"
                    onClick={() => void run(() => chat.client.setRole(c.id, m.username, other))}
                  >
                    {other === 'admin' ? 'Make admin' : 'Make member'}
                  </button>
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Remove ${m.username}`}
                    onClick={() => void run(() => chat.client.removeMember(c.id, m.username))}
                  >
                    Remove
                  </button>
                </>
              )}
            </li>
          );
        })}
      </ul>
      {c.memberCount > c.members.length && (
        <p class="muted">and {c.memberCount - c.members.length} more</p>
      )}
      {admin && (
        <form
          method="post"
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            const list = names(adding);
            if (list.length === 0) return;
            void run(async () => {
              await chat.client.addMembers(c.id, list);
              setAdding('');
            });
          }}
        >
          <label for="group-add">Add members</label>
          <input
            id="group-add"
            autocapitalize="none"
            spellcheck={false}
            placeholder="Usernames, separated by commas"
            value={adding}
            onInput={(e) => setAdding(e.currentTarget.value)}
          />
          <button type="submit">Add</button>
        </form>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p>
        <button
          type="button"
          class="danger"
          onClick={() =>
            void chat
              .leave(c.id)
              .then(onClose)
              .catch((err: unknown) => setError(describe(err)))
          }
        >
          Leave group
        </button>
      </p>
    </Dialog>
  );
}

export function SettingsDialog({ onClose }: { onClose: () => void }) {
  const chat = useChat();
  const s = chat.settings;
  const [error, setError] = useState<string | null>(null);
  const toggle = (key: 'readReceipts' | 'showLastSeen', value: boolean) =>
    void chat.updateSettings({ [key]: value }).catch((e: unknown) => setError(describe(e)));
  return (
    <Dialog title="Settings" onClose={onClose}>
      <p>
        Signed in as <strong>{chat.user?.username}</strong>.
      </p>
      <fieldset class="stack" disabled={!s}>
        <legend>Privacy</legend>
        <label class="check">
          <input
            type="checkbox"
            checked={s?.readReceipts ?? true}
            onChange={(e) => toggle('readReceipts', e.currentTarget.checked)}
          />
          Send read receipts (and see others’)
        </label>
        <label class="check">
          <input
            type="checkbox"
            checked={s?.showLastSeen ?? true}
            onChange={(e) => toggle('showLastSeen', e.currentTarget.checked)}
          />
          Show when I was last online
        </label>
      </fieldset>
      <h3>Blocked users</h3>
      {chat.blocks.length === 0 ? (
        <p class="muted">No one.</p>
      ) : (
        <ul class="members" aria-label="Blocked users">
          {chat.blocks.map((u) => (
            <li key={u.id}>
              <span class="member-name">{u.username}</span>
              <button
                type="button"
                onClick={() =>
                  void chat.unblock(u.username).catch((e: unknown) => setError(describe(e)))
                }
              >
                Unblock
              </button>
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </Dialog>
  );
}
