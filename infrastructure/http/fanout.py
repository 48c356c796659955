"""graphql-transport-ws whose `next` frames of shared results (resolvers/fanout.py) are
encoded once per change: the payload's JSON is reused and only the subscriber's operation
id is spliced in, so a change watched by 10,000 subscribers costs one json.dumps of its
payload, not 10,000. The frame is byte for byte the one Strawberry would have encoded.

Everything else (each subscriber's own task, its bounded queue, its awaited send, so a slow
socket holds up only itself) is Strawberry's handler as before.
"""

from __future__ import annotations

from typing import Any

from infrastructure.http.documents import TrustedTransportWS
from resolvers.fanout import shared_results

MAX_HEADS = 1024


class EncodedFrame(dict[str, Any]):
    """A message already encoded: `text` is what the view's encode_json returns for it
    (GraphQLView.encode_json), the dict itself only what handlers look at (id, type)."""

    __slots__ = ("text",)

    def __init__(self, operation_id: str, text: str) -> None:
        super().__init__(id=operation_id, type="next")
        self.text = text


class SharedFramesTransportWS(TrustedTransportWS):
    # Operation id -> the frame's text up to its payload: ids repeat ("1") across sockets.
    _heads: dict[str, str] = {}

    async def send_message(self, message: Any) -> None:
        payload = message.get("payload")
        if message.get("type") == "next" and isinstance(payload, dict) and len(payload) == 1:
            data = payload.get("data")
            encoded = shared_results.encoded(data, self._encode) if data is not None else None
            if encoded is not None:
                head = self._head(message["id"])
                message = EncodedFrame(message["id"], head + encoded + "}")
        await super().send_message(message)

    def _encode(self, value: object) -> str:
        encoded = self.view.encode_json(value)
        return encoded.decode() if isinstance(encoded, bytes) else encoded

    def _head(self, operation_id: str) -> str:
        head = self._heads.get(operation_id)
        if head is None:
            # Encoded the way the view encodes the whole frame, then cut before the payload.
            whole = self._encode({"id": operation_id, "type": "next", "payload": 0})
            if not whole.endswith("0}"):
                raise RuntimeError(f"unexpected frame encoding: {whole!r}")
            head = whole[:-2]
            if len(self._heads) >= MAX_HEADS:
                self._heads.clear()
            self._heads[operation_id] = head
        return head
