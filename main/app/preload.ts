// The preload exposes only the typed contract as window.api (filled in by the desktop-app issue).
import { contextBridge } from 'electron';

contextBridge.exposeInMainWorld('api', Object.freeze({ version: 1 }));
