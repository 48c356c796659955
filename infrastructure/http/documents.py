"""Trusted documents (persisted operations): the student app's GraphQL operations, one per
file in webapp/operations/, listed by id ("sha256:" + the SHA-256 of the document's UTF-8
text) in a manifest that `make documents` builds (`python -m infrastructure.http.documents
build SOURCE OUT`) beside the operations.js the app imports.

A request may name a document instead of sending it: `{"documentId": "sha256:<hex>"}` (the
GraphQL-over-HTTP persisted documents form; a GET query parameter too, or a field of a
graphql-transport-ws `subscribe` payload) or Apollo's `{"extensions": {"persistedQuery":
{"version": 1, "sha256Hash": "<hex>"}}}`. With the text as well, the text must hash to the
id. With COURSEREG_TRUSTED_DOCUMENTS=students, students and anonymous callers run only the
manifest's documents (by id or as text); staff keep any document, for GraphiQL.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from cachetools import LRUCache
from graphql import GraphQLError, OperationDefinitionNode, parse, validate
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types import ExecutionResult

from domain.errors import DomainError, ErrorCode
from infrastructure.http.limits import CodedTransportWS
from resolvers.context import Context

Mode = Literal["off", "students"]
APP = Path(__file__).parent / "pages" / "static" / "app"
MANIFEST = APP / "manifest.json"
OPERATIONS_JS = "operations.js"
# Apollo's code and message, which its clients answer by sending the document's text again.
# Not one of the contract's codes: those cover documents sent as text.
NOT_FOUND_CODE = "PERSISTED_QUERY_NOT_FOUND"
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
# Documents Apollo clients sent once with their hash (automatic persisted queries), found by
# the hash alone afterwards in this process; bounded by their total length in characters.
LEARNED_CHARACTERS = 4_000_000
_HEX = re.compile(r"[0-9a-f]{64}")
_PREFIX = "sha256:"


def document_id(document: str) -> str:
    return _PREFIX + hashlib.sha256(document.encode()).hexdigest()


class DocumentRefused(Exception):
    """A reference that names no document, a text that does not match it, or a document
    this caller may not run; answered as one coded GraphQL error."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.error = GraphQLError(message, extensions={"code": code})

    def result(self) -> ExecutionResult:
        return ExecutionResult(data=None, errors=[self.error])


def _bad(message: str) -> DocumentRefused:
    return DocumentRefused(message, ErrorCode.BAD_USER_INPUT.value)


def lift(request: Any) -> Any:
    """Moves a request's top-level documentId into its extensions: Strawberry carries
    extensions to execution unchanged and drops fields it does not know."""
    for item in request if isinstance(request, list) else [request]:
        if isinstance(item, dict) and "documentId" in item:
            extensions = item.get("extensions")
            if extensions is None or isinstance(extensions, dict):
                item["extensions"] = {**(extensions or {}), "documentId": item.pop("documentId")}
    return request


def _named_id(given: object) -> str:
    if isinstance(given, str) and given[: len(_PREFIX)].lower() == _PREFIX:
        digest = given[len(_PREFIX) :].lower()
        if _HEX.fullmatch(digest):
            return _PREFIX + digest
    raise _bad("documentId must be 'sha256:' followed by 64 hex digits")


def _apollo_id(given: object) -> str:
    if isinstance(given, dict) and given.get("version") == 1 and given["version"] is not True:
        digest = given.get("sha256Hash")
        if isinstance(digest, str) and _HEX.fullmatch(digest.lower()):
            return _PREFIX + digest.lower()
    raise _bad("extensions.persistedQuery must be {version: 1, sha256Hash: 64 hex digits}")


def reference(extensions: object) -> str | None:
    """The document id a request names (lifted documentId or Apollo's persistedQuery)."""
    if not isinstance(extensions, dict):
        return None
    named = set()
    if extensions.get("documentId") is not None:  # null is absent, as for `query`
        named.add(_named_id(extensions["documentId"]))
    if extensions.get("persistedQuery") is not None:
        named.add(_apollo_id(extensions["persistedQuery"]))
    if len(named) > 1:
        raise _bad("documentId and extensions.persistedQuery name different documents")
    return named.pop() if named else None


class TrustedDocuments:
    """The manifest's documents, those Apollo clients registered, and who may run what."""

    def __init__(self, manifest: Mapping[str, str], mode: Mode) -> None:
        self.mode = mode
        self._by_id = dict(manifest)
        self._listed = frozenset(self._by_id.values())
        self.listed = sorted(self._listed)  # the manifest's texts, for plans.py
        self._learned: LRUCache[str, str] = LRUCache(LEARNED_CHARACTERS, getsizeof=len)

    @classmethod
    def load(cls, mode: Mode, path: Path = MANIFEST) -> TrustedDocuments:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        wrong = [key for key, text in manifest.items() if document_id(text) != key]
        if wrong:
            raise ValueError(f"{path}: ids that are not their document's hash: {wrong}")
        return cls(manifest, mode)

    def prepare(self, query: str | None, extensions: object, context: Context) -> str | None:
        """The document to run (the text, or the one the request names), once this caller
        may run it; raises DocumentRefused. None: neither text nor id (Strawberry answers)."""
        named = reference(extensions)
        if named is None:
            if query is not None:
                self._admit(query, context)
            return query
        if query is None:
            found = self._by_id.get(named) or self._learned.get(named)
            if found is None:
                raise DocumentRefused(NOT_FOUND_MESSAGE, NOT_FOUND_CODE)
            self._admit(found, context)
            return found
        if document_id(query) != named:
            raise _bad("the document's sha256 hash is not the id given with it")
        self._admit(query, context)
        if query not in self._listed:
            self._learned[named] = query
        return query

    def _admit(self, document: str, context: Context) -> None:
        if self.mode == "off" or document in self._listed:
            return
        try:
            actor = context.actor_or_none()
        except DomainError as exc:
            raise DocumentRefused(exc.message, exc.code.value) from exc
        if actor is None or not actor.reads_any_student:
            raise DocumentRefused(
                "Only the student app's trusted documents run here for students and "
                "anonymous callers: send one of them (or its documentId)",
                ErrorCode.FORBIDDEN.value,
            )


class _HoldsDocuments(Protocol):
    documents: TrustedDocuments


class TrustedTransportWS(CodedTransportWS):
    """graphql-transport-ws whose `subscribe` payloads may name a trusted document."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload: Any = message.get("payload")
        query = payload.get("query") if isinstance(payload, dict) else None
        # What the protocol handler refuses itself (no ack yet, a duplicate id, a malformed
        # payload) it still refuses, as before.
        if (
            self.connection_acknowledged
            and isinstance(payload, dict)
            and (query is None or isinstance(query, str))
            and message.get("id") not in self.operations
        ):
            documents = cast(_HoldsDocuments, self.view).documents
            try:
                query = documents.prepare(query, lift(payload).get("extensions"), self.context)
            except DocumentRefused as exc:
                error = {"id": message["id"], "type": "error", "payload": [exc.error.formatted]}
                await self.send_message(error)
                return
            if query is not None:
                message = cast(
                    SubscribeMessage, {**message, "payload": {**payload, "query": query}}
                )
        await super().handle_subscribe(message)


def names_document(params: Mapping[str, str]) -> bool:
    """Whether GET parameters name a document (by documentId or Apollo's extension)."""
    return "documentId" in params or "persistedQuery" in params.get("extensions", "")


def query_params(params: Mapping[str, str], decode: Any) -> dict[str, Any]:
    """A GET request's parameters as Strawberry reads them (variables and extensions decoded
    as JSON), the documentId lifted; its JSON values are never lifted."""
    data: MutableMapping[str, Any] = dict(params)
    for key in ("variables", "extensions"):
        if data.get(key):
            data[key] = decode(data[key])
    return cast(dict[str, Any], lift(data))


# The build: webapp/operations/<Name>.graphql -> manifest.json and operations.js.


def operations(source: Path) -> dict[str, str]:
    """Name -> document of every <Name>.graphql: one operation of that name (and the
    fragments it uses), valid against the served schema."""
    from resolvers.root import schema  # the build alone needs the schema

    found: dict[str, str] = {}
    for path in sorted(source.glob("*.graphql")):
        document = path.read_text(encoding="utf-8").strip() + "\n"
        parsed = parse(document)
        names = [
            d.name.value if d.name else None
            for d in parsed.definitions
            if isinstance(d, OperationDefinitionNode)
        ]
        if names != [path.stem]:
            raise ValueError(f"{path}: must hold one operation named {path.stem}, has {names}")
        errors = validate(schema._schema, parsed)
        if errors:
            raise ValueError(f"{path}: {'; '.join(e.message for e in errors)}")
        found[path.stem] = document
    if not found:
        raise ValueError(f"{source}: no *.graphql operations")
    return found


def render(source: Path) -> dict[str, str]:
    """File name -> content of the two outputs."""
    documents = operations(source)
    manifest = {document_id(text): text for text in documents.values()}
    listed = {name: {"id": document_id(text), "document": text} for name, text in documents.items()}
    script = (
        "// Generated by `make documents` from webapp/operations/*.graphql: do not edit.\n"
        "// id: \"sha256:\" + the SHA-256 of the document's UTF-8 text; the server's\n"
        "// manifest.json lists the same ids (infrastructure/http/documents.py).\n"
        f"export const OPERATIONS = {json.dumps(listed, indent=2, sort_keys=True)};\n"
    )
    return {
        MANIFEST.name: json.dumps(manifest, indent=2, sort_keys=True) + "\n",
        OPERATIONS_JS: script,
    }


def build(source: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in render(source).items():
        (out / name).write_text(content, encoding="utf-8")
        written.append(out / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.http.documents")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("build", help="write manifest.json and operations.js")
    run.add_argument("source", type=Path, help="the folder of <Name>.graphql operations")
    run.add_argument("out", type=Path, help="where to write them")
    args = parser.parse_args(argv)
    try:
        written = build(args.source, args.out)
    except (ValueError, GraphQLError, OSError) as exc:
        print(f"documents: {exc}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
