// Live updates: the server's websocket feeds (/ws/live-jobs, /ws/robot-status,
// /ws/queue-metrics), authenticated by the session cookie, reconnected with backoff. A page
// subscribes while it is shown; leaving the page closes its sockets.

/**
 * Calls `onMessage(parsedJson)` for every message of `feed` until the returned function is
 * called. `onState(open)` hears of the connection's state, for the page's "live" marker.
 */
export function subscribe(feed, onMessage, onState = () => {}) {
  let socket = null;
  let closed = false;
  let delay = 500;
  let timer = null;
  let pinger = null;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/ws/${feed}`);
    socket.onopen = () => {
      delay = 500;
      onState(true);
      pinger = setInterval(() => socket.readyState === 1 && socket.send("ping"), 25000);
    };
    socket.onmessage = (event) => {
      if (event.data === "pong") return;
      try { onMessage(JSON.parse(event.data)); } catch { /* a frame that is not JSON */ }
    };
    socket.onclose = () => {
      clearInterval(pinger);
      onState(false);
      if (closed) return;
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  };
  connect();
  return () => {
    closed = true;
    clearTimeout(timer);
    clearInterval(pinger);
    if (socket) socket.close();
  };
}
