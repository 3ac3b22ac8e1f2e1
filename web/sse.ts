/**
 * A Server-Sent Events reader over fetch (EventSource cannot send an Authorization header): calls `onEvent`
 * for each event and reconnects after a failure until `stop` is called.
 */
export interface SseHandlers {
  onEvent(event: string, data: string): void;
  onState(connected: boolean, error?: string): void;
}

export function openStream(url: string, headers: () => Record<string, string>, h: SseHandlers): () => void {
  let stopped = false;
  let controller: AbortController | undefined;
  const run = async (): Promise<void> => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const res = await fetch(url, { headers: headers(), signal: controller.signal });
        if (res.status !== 200 || res.body === null) throw new Error(`HTTP ${res.status}`);
        h.onState(true);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        let event = '';
        let data: string[] = [];
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).replace(/\r$/, '');
            buf = buf.slice(nl + 1);
            if (line === '') {
              if (data.length > 0) h.onEvent(event || 'message', data.join('\n'));
              event = '';
              data = [];
            } else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            else if (line.startsWith('event:')) event = line.slice(6).trim();
          }
        }
        h.onState(false, 'the node closed the stream');
      } catch (err) {
        if (stopped) return;
        h.onState(false, err instanceof Error ? err.message : String(err));
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
