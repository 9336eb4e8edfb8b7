import type { ForgeConfig } from '@electron-forge/shared-types';
import { MakerZIP } from '@electron-forge/maker-zip';
import { MakerDeb } from '@electron-forge/maker-deb';
import { VitePlugin } from '@electron-forge/plugin-vite';

const config: ForgeConfig = {
  packagerConfig: {
    name: 'Refit',
    executableName: 'refit-app',
    asar: { unpack: '**/node_modules/{sharp,@img,@tensorflow}/**' },
  },
  makers: [
    new MakerZIP({}, ['linux', 'darwin', 'win32']),
    new MakerDeb({ options: { name: 'refit', productName: 'Refit', categories: ['Graphics', 'Science'] } }),
  ],
  plugins: [
    new VitePlugin({
      build: [
        { entry: 'main/app/main.ts', config: 'vite.main.config.mts', target: 'main' },
        { entry: 'main/app/preload.ts', config: 'vite.preload.config.mts', target: 'preload' },
      ],
      renderer: [{ name: 'main_window', config: 'vite.renderer.config.mts' }],
    }),
  ],
};

export default config;
