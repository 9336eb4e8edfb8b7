// Entry point: pick the transport, build the state, mount the app, load.
import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import { createApi } from './api';
import { AppState } from './state/app.svelte';

function showStartupFailure(err: unknown) {
  const target = document.getElementById('app') ?? document.body;
  const box = document.createElement('div');
  box.setAttribute('role', 'alert');
  box.style.cssText = 'max-width:640px;margin:15vh auto;padding:20px;font-family:system-ui,sans-serif;border:1px solid #e5a0a0;border-radius:10px;background:#fdecec;color:#3a0d0d';
  const title = document.createElement('strong');
  title.textContent = 'Refit could not start its window.';
  const message = document.createElement('p');
  message.textContent = err instanceof Error ? err.message : String(err);
  const hint = document.createElement('p');
  hint.textContent = 'Reload the page. If you use the browser host, check that `npm run serve` is running and that you opened the URL it printed (with its token).';
  box.append(title, message, hint);
  target.replaceChildren(box);
}

try {
  // In a browser, createApi moves the access token from the address into this tab's sessionStorage.
  const api = createApi();
  const app = new AppState(api);
  window.addEventListener('unhandledrejection', (e) => app.report('Something failed in the background', e.reason, null));
  window.addEventListener('error', (e) => {
    if (e.error) app.report('Something failed', e.error, null);
  });
  mount(App, { target: document.getElementById('app')!, props: { app } });
  void app.init();
} catch (err) {
  showStartupFailure(err);
}
