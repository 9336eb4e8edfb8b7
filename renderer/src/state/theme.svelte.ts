// Light / dark: follows the system (prefers-color-scheme) until the person picks one.
export type ThemeChoice = 'system' | 'light' | 'dark';
const KEY = 'refit.theme';

function systemPrefersDark(): boolean {
  return typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches;
}

export class ThemeState {
  choice = $state<ThemeChoice>('system');
  systemDark = $state(false);
  resolved = $derived<'light' | 'dark'>(this.choice === 'system' ? (this.systemDark ? 'dark' : 'light') : this.choice);

  constructor() {
    try {
      const saved = localStorage.getItem(KEY);
      if (saved === 'light' || saved === 'dark' || saved === 'system') this.choice = saved;
    } catch {
      /* storage unavailable */
    }
    this.systemDark = systemPrefersDark();
    if (typeof matchMedia === 'function') {
      const mq = matchMedia('(prefers-color-scheme: dark)');
      mq.addEventListener?.('change', (e) => (this.systemDark = e.matches));
    }
  }

  set(choice: ThemeChoice) {
    this.choice = choice;
    try {
      localStorage.setItem(KEY, choice);
    } catch {
      /* storage unavailable */
    }
  }

  /** system → light → dark → system. */
  cycle() {
    this.set(this.choice === 'system' ? 'light' : this.choice === 'light' ? 'dark' : 'system');
  }

  /** Sets data-theme on <html>; the CSS variables follow. */
  apply(root: HTMLElement = document.documentElement) {
    root.dataset.theme = this.resolved;
    root.style.colorScheme = this.resolved;
  }
}
