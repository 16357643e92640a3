// The browser client's entry: one Chat (the client library plus the page's state), rendered.
import { render } from 'preact';
import { App } from './app';
import { Chat } from './chat';

const chat = new Chat();
const root = document.getElementById('app');
if (root) render(<App chat={chat} />, root);
void chat.start();
