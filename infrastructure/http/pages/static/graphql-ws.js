// A small client of the graphql-transport-ws protocol (the one the graphql-ws library
// speaks), hand-written so the dashboard needs no package, bundler or CDN. It sends the
// token in connection_init, answers pings, and after a lost connection reconnects with
// backoff and subscribes again: the server then starts each subscription with a snapshot.

const PROTOCOL = "graphql-transport-ws";
const FORBIDDEN = 4403;

export class GraphQLSocket {
  constructor(url, { connectionParams = {}, onStatus = () => {} } = {}) {
    this.url = url;
    this.connectionParams = connectionParams;
    this.onStatus = onStatus;
    this.subscriptions = new Map();
    this.nextId = 0;
    this.acknowledged = false;
    this.closing = false;
    this.retries = 0;
    this.connect();
  }

  connect() {
    this.onStatus(this.retries ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url, PROTOCOL);
    this.ws = ws;
    ws.onopen = () => this.send({ type: "connection_init", payload: this.connectionParams });
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => this.closed(event);
  }

  send(message) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  receive(message) {
    const subscription = this.subscriptions.get(message.id);
    switch (message.type) {
      case "connection_ack":
        this.acknowledged = true;
        this.retries = 0;
        this.onStatus("live");
        for (const [id, { payload }] of this.subscriptions) {
          this.send({ id, type: "subscribe", payload });
        }
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "next":
        subscription?.sink.next(message.payload);
        break;
      case "error":
        this.subscriptions.delete(message.id);
        subscription?.sink.error(message.payload);
        break;
      case "complete":
        this.subscriptions.delete(message.id);
        subscription?.sink.complete();
        break;
    }
  }

  closed(event) {
    this.acknowledged = false;
    if (this.closing) return;
    if (event.code === FORBIDDEN) {
      this.onStatus("forbidden");
      return;
    }
    const delay = Math.min(500 * 2 ** this.retries, 10000);
    this.retries += 1;
    this.onStatus("reconnecting");
    setTimeout(() => this.connect(), delay);
  }

  // Returns a function that ends the subscription.
  subscribe(payload, sink) {
    const id = String(++this.nextId);
    const full = { next() {}, error() {}, complete() {}, ...sink };
    this.subscriptions.set(id, { payload, sink: full });
    if (this.acknowledged) this.send({ id, type: "subscribe", payload });
    return () => {
      if (this.subscriptions.delete(id) && this.acknowledged) {
        this.send({ id, type: "complete" });
      }
    };
  }

  close() {
    this.closing = true;
    this.ws.close(1000, "done");
  }
}
