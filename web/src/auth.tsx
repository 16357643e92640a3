// Sign in, or create an account (which then signs in).
import { useEffect, useRef, useState } from 'preact/hooks';
import { describe } from './chat';
import { useChat } from './app';

export function Auth() {
  const chat = useChat();
  const [mode, setMode] = useState<'in' | 'up'>('in');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), [mode]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === 'up') await chat.signUp(username.trim(), password);
      else await chat.signIn(username.trim(), password);
    } catch (err) {
      setError(describe(err));
      setBusy(false);
    }
  };

  const signUp = mode === 'up';
  return (
    <main class="auth">
      <h1>Chat</h1>
      {chat.signedOutReason && <p class="info">{chat.signedOutReason}</p>}
      <form method="post" onSubmit={submit} aria-labelledby="auth-title">
        <h2 id="auth-title">{signUp ? 'Create an account' : 'Sign in'}</h2>
        <label for="auth-username">Username</label>
        <input
          ref={first}
          id="auth-username"
          name="username"
          autocomplete="username"
          autocapitalize="none"
          spellcheck={false}
          required
          minLength={3}
          maxLength={32}
          pattern="[A-Za-z0-9_.\-]+"
          aria-describedby={signUp ? 'auth-username-hint' : undefined}
          value={username}
          onInput={(e) => setUsername(e.currentTarget.value)}
        />
        {signUp && (
          <p id="auth-username-hint" class="hint">
            3 to 32 letters, digits, _ . or -
          </p>
        )}
        <label for="auth-password">Password</label>
        <input
          id="auth-password"
          name="password"
          type="password"
          autocomplete={signUp ? 'new-password' : 'current-password'}
          required
          minLength={signUp ? 8 : 1}
          aria-describedby={signUp ? 'auth-password-hint' : undefined}
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        {signUp && (
          <p id="auth-password-hint" class="hint">
            At least 8 characters; common passwords are refused.
          </p>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {signUp ? 'Create account' : 'Sign in'}
        </button>
      </form>
      <p>
        {signUp ? 'Have an account? ' : 'New here? '}
        <button
          type="button"
          class="link"
          onClick={() => {
            setMode(signUp ? 'in' : 'up');
            setError(null);
          }}
        >
          {signUp ? 'Sign in' : 'Create an account'}
        </button>
      </p>
    </main>
  );
}
