// The browser host's export download: GET /export.zip on the page's own server with this tab's access
// token (main/host/server.ts). The zip is fetched first (the server exports the run, then sends it),
// so the page can say it is being prepared and show the server's message when it is refused.
import { TOKEN_STORAGE_KEY } from '../api';

export function exportZipUrl(runId: string, onnx: boolean, token: string | null): string {
  const query = new URLSearchParams({ run: runId, ...(onnx ? {} : { onnx: '0' }), ...(token ? { token } : {}) });
  return `/export.zip?${query}`;
}

function tabToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_STORAGE_KEY);
  } catch {
    return null;
  }
}

/** Fetches a run's export as a zip and hands it to the browser as a download named `filename`. */
export async function downloadExportZip(runId: string, onnx: boolean, filename: string): Promise<number> {
  const response = await fetch(exportZipUrl(runId, onnx, tabToken()));
  if (!response.ok) throw new Error((await response.text()).trim() || `The server answered ${response.status} ${response.statusText}`);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  try {
    const a = document.createElement('a');
    a.href = url;
    a.download = filename;
    document.body.append(a);
    a.click();
    a.remove();
  } finally {
    // The download has taken the blob once click() returned; free it a little later.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
  return blob.size;
}
