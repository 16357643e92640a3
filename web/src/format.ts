// Dates and times as people read them, in the browser's locale.

const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const day = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

/** A time today, else a day. */
export function shortTime(iso: string): string {
  const d = new Date(iso);
  const today = new Date();
  return d.toDateString() === today.toDateString() ? time.format(d) : day.format(d);
}

export function clockTime(iso: string): string {
  return time.format(new Date(iso));
}

export function fullTime(iso: string): string {
  return full.format(new Date(iso));
}

export function lastSeen(iso: string | null): string {
  return iso === null ? 'offline' : `last seen ${shortTime(iso)}`;
}
