"""A local stand-in for the Telegram Bot API: serves getUpdates and files, records what the bot sends.

The bot talks to it over real HTTP through aiogram's `TelegramAPIServer.from_base`, exactly as it would talk to a
self-hosted Bot API server. Tests push updates in and read the recorded calls out.

Failures on demand, checked in this order: `blocked` chats (403 for send*), `flood_waits` (per chat, 429 for any
send*), `failures` (per method, a queue of HTTP statuses for its next calls), `refuse_every` (every Nth message send,
all chats together, answered 429). Every call is recorded with its arrival time and the status it was answered with;
`accepted()` lists those answered 200, `refused` those answered 429.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_ID = 4242


FLOOD_BODY = {
    "ok": False,
    "error_code": 429,
    "description": "Too Many Requests: retry after 1",
    "parameters": {"retry_after": 1},
}
FAILURE_DESCRIPTIONS = {
    400: "Bad Request: refused by the test",
    403: "Forbidden: refused by the test",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when the stub received it (same clock as the test's)
    status: int = 0  # the HTTP status it was answered with; 0 while it is being answered


class TelegramStub:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes)
        self.refuse_download: set[str] = set()  # file_ids getFile answers "file is too big" for
        self.blocked: set[int] = set()  # chats whose user blocked the bot: every send* answers 403 Forbidden
        self.flood_waits: dict[int, int] = {}  # chat -> how many send* calls still answer 429 "retry after 1"
        self.failures: dict[str, list[int]] = {}  # method -> HTTP statuses its next calls answer (429: retry after 1)
        self.refuse_every = 0  # N > 0: every Nth message send (send*, not sendChatAction), all chats counted together
        self.refused: list[Call] = []  # every call answered 429, whichever switch refused it
        self._message_sends = 0
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._photo_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self._new_call = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ---- life cycle -------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- what tests do ------------------------------------------------------------------------
    def add_file(self, file_id: str, data: bytes, path: str | None = None) -> None:
        self.files[file_id] = (path or f"documents/{file_id}", data)

    def push_update(self, kind: str, payload: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, kind: payload})
        self._new_update.set()
        return update_id

    def user(self, user_id: int, language_code: str = "en") -> dict[str, Any]:
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": f"User{user_id}",
            "language_code": language_code,
        }

    def send_message(self, user_id: int, lang: str = "en", **content: Any) -> int:
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"},
            "from": self.user(user_id, lang),
            **content,
        }
        return self.push_update("message", message)

    def send_media(
        self,
        user_id: int,
        kind: str,
        data: bytes,
        lang: str = "en",
        *,
        mime: str = "video/mp4",
        file_size: int | None = None,
        file_id: str | None = None,
    ) -> str:
        """A user sends a `video`, `video_note`, `animation` (which Telegram also delivers as a `document`) or a
        `document`; the file is served to getFile and the file endpoint. `file_size` is what Telegram reports
        (the real size if None). Returns the file_id."""
        file_id = file_id or f"{kind}-{next(self._file_ids)}"
        self.add_file(file_id, data, f"{'documents' if kind == 'document' else 'videos'}/{file_id}")
        size = len(data) if file_size is None else file_size
        common = {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_size": size}
        clip = {**common, "width": 64, "height": 48, "duration": 1}
        content: dict[str, Any]
        if kind == "video":
            content = {"video": {**clip, "mime_type": mime}}
        elif kind == "video_note":
            content = {"video_note": {**common, "length": 64, "duration": 1}}
        elif kind == "animation":
            document = {**common, "mime_type": mime, "file_name": "animation.mp4"}
            content = {"animation": {**clip, "mime_type": mime}, "document": document}
        elif kind == "document":
            content = {"document": {**common, "mime_type": mime, "file_name": "upload"}}
        else:
            raise ValueError(f"not a file kind: {kind}")
        self.send_message(user_id, lang, **content)
        return file_id

    def press(self, user_id: int, data: str, message: dict[str, Any] | None = None, lang: str = "en") -> int:
        query = {
            "id": str(next(self._message_ids)),
            "from": self.user(user_id, lang),
            "chat_instance": "ci",
            "data": data,
            "message": message
            or {"message_id": 1, "date": int(time.time()), "chat": {"id": user_id, "type": "private"}},
        }
        return self.push_update("callback_query", query)

    def accepted(self, method: str | None = None, chat_id: int | None = None) -> list[Call]:
        """Calls answered 200, in arrival order; `call.at` is when each arrived."""
        return [c for c in self.sent(method, chat_id) if c.status == 200]

    def sent(self, method: str | None = None, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if (method is None or c.method == method)
            and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))
        ]

    async def wait_for(self, predicate: Any, timeout: float = 60.0) -> Call:
        """Wait until a recorded call satisfies `predicate(call)`; fail loudly with what was sent instead."""
        deadline = time.monotonic() + timeout
        async with self._new_call:
            while True:
                for call in self.calls:
                    if predicate(call):
                        return call
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    summary = [(c.method, {k: str(v)[:80] for k, v in c.params.items()}) for c in self.calls]
                    raise AssertionError(f"no matching call within {timeout}s; calls: {summary}")
                try:
                    await asyncio.wait_for(self._new_call.wait(), remaining)
                except TimeoutError:
                    continue

    async def wait_text(self, chat_id: int, fragment: str, timeout: float = 60.0, after: int = 0) -> Call:
        return await self.wait_for(
            lambda c: (
                c.method == "sendMessage"
                and str(c.params.get("chat_id")) == str(chat_id)
                and fragment in str(c.params.get("text", ""))
                and self.calls.index(c) >= after
            ),
            timeout,
        )

    async def reply_after(self, chat_id: int, mark: int, timeout: float = 30.0) -> str:
        """The text of the first message sent to `chat_id` after call number `mark`."""
        call = await self.wait_for(
            lambda c: (
                c.method == "sendMessage"
                and str(c.params.get("chat_id")) == str(chat_id)
                and any(c is new for new in self.calls[mark:])  # identical replies compare equal: match by identity
            ),
            timeout,
        )
        return str(call.params["text"])

    # ---- the HTTP side --------------------------------------------------------------------------
    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params, files = await _read_params(request)
        call = Call(method, params, files)
        if method != "getUpdates":
            async with self._new_call:
                self.calls.append(call)
                self._new_call.notify_all()
        response = await self._answer(call)
        call.status = response.status
        if response.status == 429:
            self.refused.append(call)
        return response

    async def _answer(self, call: Call) -> web.Response:
        method, params, files = call.method, call.params, call.files
        if method.startswith("send") and int(params.get("chat_id") or 0) in self.blocked:
            return web.json_response(
                {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}, status=403
            )
        if method.startswith("send") and self.flood_waits.get(int(params.get("chat_id") or 0), 0) > 0:
            self.flood_waits[int(params["chat_id"])] -= 1
            return web.json_response(FLOOD_BODY, status=429)
        if self.failures.get(method):
            return _failure(self.failures[method].pop(0))
        if method.startswith("send") and method != "sendChatAction" and self.refuse_every > 0:
            self._message_sends += 1
            if self._message_sends % self.refuse_every == 0:
                return web.json_response(FLOOD_BODY, status=429)
        handler = getattr(self, f"_on_{method}", None)
        if handler is None:
            return _ok(True)
        return await handler(params, files)

    async def _file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        for file_path, data in self.files.values():
            if file_path == path:
                return web.Response(body=data)
        return web.Response(status=404)

    async def _on_getMe(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        return _ok({"id": BOT_ID, "is_bot": True, "first_name": "ArtMatch", "username": "artmatch_test_bot"})

    async def _on_getUpdates(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 1.0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), timeout)
            except TimeoutError:
                pass
        return _ok(list(self._updates))

    async def _on_getFile(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        file_id = str(params["file_id"])
        if file_id in self.refuse_download:
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: file is too big"}, status=400
            )
        if file_id not in self.files:
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}, status=400
            )
        path, data = self.files[file_id]
        return _ok({"file_id": file_id, "file_unique_id": file_id, "file_size": len(data), "file_path": path})

    def _message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": int(params["chat_id"]), "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "ArtMatch"},
            **content,
        }

    def _photo(self) -> list[dict[str, Any]]:
        n = next(self._photo_ids)
        return [{"file_id": f"tg-photo-{n}", "file_unique_id": f"u{n}", "width": 320, "height": 320}]

    async def _on_sendMessage(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        extra = {"reply_markup": params["reply_markup"]} if params.get("reply_markup") else {}
        return _ok(self._message(params, text=params.get("text", ""), **extra))

    async def _on_sendPhoto(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        return _ok(self._message(params, photo=self._photo(), caption=params.get("caption")))

    async def _on_sendMediaGroup(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        media = params["media"]
        return _ok(
            [self._message(params, photo=self._photo(), caption=item.get("caption")) for item in media]
        )

    async def _on_editMessageText(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        extra = {"reply_markup": params["reply_markup"]} if params.get("reply_markup") else {}
        edited = self._message(params, text=params.get("text", ""), **extra)
        return _ok({**edited, "message_id": int(params.get("message_id") or edited["message_id"])})

    async def _on_editMessageReplyMarkup(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> web.Response:
        return _ok(self._message(params, text="", reply_markup=params.get("reply_markup")))


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _failure(status: int) -> web.Response:
    if status == 429:
        return web.json_response(FLOOD_BODY, status=429)
    description = FAILURE_DESCRIPTIONS.get(status, f"Error {status}")
    return web.json_response({"ok": False, "error_code": status, "description": description}, status=status)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """aiogram sends multipart forms; JSON-ish fields (reply_markup, media) arrive as JSON strings."""
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if part.filename:  # type: ignore[union-attr]
                files[part.name] = await part.read()  # type: ignore[union-attr,index]
            else:
                params[part.name] = await part.text()  # type: ignore[union-attr,index]
    elif request.content_type == "application/json":
        params = await request.json()
    else:
        params = dict(await request.post())
    for key in ("reply_markup", "media"):
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                pass
    return params, files
