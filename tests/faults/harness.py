"""Fault harness: the real `python -m bot` process under simulated users while Postgres, Redis, Telegram or the
inference service misbehave; what the users saw is counted against what Postgres holds afterwards.

Everything runs on 127.0.0.1: the Bot API stand-in (tests/bot/telegram_stub.py) in this event loop, the bot as a
subprocess (its log in a file), an inference service (an instant canned one, or the real one over the tiny models
in a subprocess that can be killed), and private Postgres and Redis servers (tests/private_services.py).

A user sends a photo (a small JPEG of its own), waits for the vote panel (or a message saying why not), then
presses buttons: a vote, likes on distinct works, and the same vote again. Each press targets its own row, so
"every press answered saved/queued is stored exactly once, with its value" is checkable without any ordering
assumptions. A scenario is a fault task running beside the users on a `Timeline`: users do their "before" part,
wait for the fault to start, press through it, wait for it to end, then resend a photo that got no panel and press
once more. `Counts` is what tests assert on and what benchmarks/bench_faults.py writes out.

Every wait is bounded; every process and server started here is stopped in a `finally`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from PIL import Image
from redis.asyncio import Redis

from bot.texts import CATALOGUE
from tests.bot.telegram_stub import Call, TelegramStub
from tests.inference_stub import canned_inference
from tests.private_services import PrivatePostgres, PrivateRedis
from tests.service_process import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
BOT_TOKEN = "4242:fault-token-never-logged"
SERVICE_TOKEN = "fault-inference-token"
CONTROL_USER = 1
FIRST_USER = 10_000
VOTE_CHOICES = ("left", "right", "both", "neither")

# Answers to a press that mean "your press counts" (written now, or queued and written once Postgres is back).
ACCEPTED_KEYS = frozenset({"vote_saved", "vote_unchanged", "liked", "disliked", "like_cleared"}) | frozenset(
    key for key in CATALOGUE if "queued" in key or "pending" in key
)
# Answers to a photo that tell the user clearly why there are no sets this time and what to do.
CLEAR_PHOTO_KEYS = frozenset({"service_down", "service_busy", "not_saved", "description_failed", "rate_limited"})
# Messages of the photo flow that are not its end.
PROGRESS_KEYS = frozenset({"working", "description", "set_title"})


# ---- reading what the bot says ----------------------------------------------------------------------------------


def _templates() -> list[tuple[str, str, bool]]:
    """(text or prefix, key, exact) for every catalogue entry in every language; longest prefixes first."""
    entries: list[tuple[str, str, bool]] = []
    for key, texts in CATALOGUE.items():
        for text in texts.values():
            if "{" in text:
                entries.append((text.split("{", 1)[0], key, False))
            else:
                entries.append((text, key, True))
    return sorted(entries, key=lambda entry: len(entry[0]), reverse=True)


_TEMPLATES = _templates()
_EXACT = {text: key for text, key, exact in _TEMPLATES if exact}


def text_key(text: str) -> str:
    """The catalogue key a message came from (`?<text>` when none matches)."""
    if text in _EXACT:
        return _EXACT[text]
    for prefix, key, exact in _TEMPLATES:
        if not exact and prefix and text.startswith(prefix):
            return key
    return "?" + text[:60]


@dataclass(frozen=True)
class Panel:
    """The vote + like keyboard under an answered photo."""

    analysis_id: int
    message_id: int
    likes: dict[str, list[int]]  # side label ("A", "B") -> artwork ids of its like buttons, in order


def parse_panel(markup: Any, message_id: int) -> Panel | None:
    """The panel in a reply_markup, or None when it has no vote/like buttons."""
    rows = (markup or {}).get("inline_keyboard") if isinstance(markup, dict) else None
    analysis_id = None
    likes: dict[str, list[int]] = defaultdict(list)
    for row in rows or []:
        for button in row:
            data = str(button.get("callback_data") or "")
            parts = data.split(":")
            if parts[0] == "v" and len(parts) == 3:
                analysis_id = int(parts[1])
            elif parts[0] == "l" and len(parts) == 4:
                analysis_id = int(parts[1])
                label = str(button.get("text") or "?")[:1]
                if int(parts[2]) not in likes[label]:
                    likes[label].append(int(parts[2]))
    if analysis_id is None:
        return None
    return Panel(analysis_id, message_id, dict(likes))


@dataclass
class Delivery:
    """A message Telegram accepted (answered 200) for a chat."""

    method: str
    text: str
    markup: Any
    message_id: int
    at: float

    @property
    def panel(self) -> Panel | None:
        return parse_panel(self.markup, self.message_id) if self.method == "sendMessage" else None

    @property
    def is_album(self) -> bool:
        return self.method in ("sendMediaGroup", "sendPhoto")

    @property
    def is_description(self) -> bool:
        return self.method == "sendMessage" and text_key(self.text) == "description"


class FaultStub(TelegramStub):
    """The Bot API stand-in, indexing what it accepted per chat and the answers to each callback query."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.deliveries: dict[int, list[Delivery]] = defaultdict(list)
        self.answers: dict[str, Call] = {}
        self._chat_wake: dict[int, asyncio.Event] = {}
        self._answer_waiters: dict[str, asyncio.Future[Call]] = {}

    async def _answer(self, call: Call) -> web.Response:
        response = await super()._answer(call)
        if response.status == 200:
            self._observe(call, response)
        return response

    def _observe(self, call: Call, response: web.Response) -> None:
        if call.method == "answerCallbackQuery":
            query_id = str(call.params.get("callback_query_id"))
            self.answers.setdefault(query_id, call)
            waiter = self._answer_waiters.pop(query_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(call)
            return
        if call.method not in ("sendMessage", "sendPhoto", "sendMediaGroup"):
            return
        result = json.loads(response.body)["result"]  # type: ignore[arg-type]
        first = result[0] if isinstance(result, list) else result
        chat = int(call.params["chat_id"])
        text = str(call.params.get("text") or call.params.get("caption") or "")
        self.deliveries[chat].append(
            Delivery(call.method, text, call.params.get("reply_markup"), int(first["message_id"]), time.monotonic())
        )
        wake = self._chat_wake.get(chat)
        if wake is not None:
            wake.set()

    async def next_delivery(
        self, chat: int, start: int, matches: Callable[[Delivery], bool], timeout: float
    ) -> tuple[int, Delivery] | None:
        """The first delivery to `chat` at index >= `start` that `matches`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        position = start
        wake = self._chat_wake.setdefault(chat, asyncio.Event())
        while True:
            found = self.deliveries[chat]
            while position < len(found):
                if matches(found[position]):
                    return position, found[position]
                position += 1
            wake.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), remaining)

    def expect_answer(self, query_id: str) -> asyncio.Future[Call]:
        future: asyncio.Future[Call] = asyncio.get_running_loop().create_future()
        self._answer_waiters[query_id] = future
        return future


# ---- processes -----------------------------------------------------------------------------------------------


class BotProcess:
    """`python -m bot` with BOT_* settings; stdout and stderr go to `log_path`."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot"],
                # ARTMATCH_BOT_ROOT runs another release's bot (a checkout of it) under the same faults
                cwd=os.environ.get("ARTMATCH_BOT_ROOT", ROOT),
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM (aiogram stops polling cleanly), SIGKILL after 15 s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)


def log_tail(path: Path, lines: int = 40) -> str:
    """The problems in a bot log (warnings, errors, tracebacks' last lines), then its last lines."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    notable = [line for line in text if " WARNING " in line or " ERROR " in line or line.startswith(("Trace", "  F"))]
    notable += [line for line in text if line and not line.startswith(" ") and "Error" in line.split(":", 1)[0]]
    out = ["--- notable lines (last 30) ---", *notable[-30:], f"--- last {lines} lines of {path} ---", *text[-lines:]]
    return "\n".join(out)


def _jpeg(seed: str, size: tuple[int, int] = (64, 48)) -> bytes:
    """A noise JPEG of its own per seed (flat colours can encode to identical files, which the bot's cache
    would then answer without asking the service)."""
    noise = random.Random(seed).randbytes(size[0] * size[1] * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, noise).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


# ---- users -----------------------------------------------------------------------------------------------------


@dataclass
class PhotoResult:
    """One photo a user sent and how it ended: `panel`, `clear` (a message saying why not), `error` (the generic
    apology), `silent` (nothing within the deadline) or `other` (some other message)."""

    user: int
    attempt: int
    phase: str
    start: int  # index of the chat's deliveries when it was sent
    outcome: str = "silent"
    key: str = ""
    seconds: float = 0.0
    panel: Panel | None = None


@dataclass(frozen=True)
class Press:
    kind: str  # "vote" | "like"
    analysis_id: int
    target: int  # the analysis (vote) or the artwork (like)
    value: str | int  # the choice or the like value

    @property
    def data(self) -> str:
        if self.kind == "vote":
            return f"v:{self.analysis_id}:{self.value}"
        return f"l:{self.analysis_id}:{self.target}:{self.value}"


@dataclass
class PressResult:
    user: int
    press: Press
    phase: str
    key: str = "unanswered"  # the catalogue key of the answer ("" for an empty answer)
    alert: bool = False
    seconds: float = 0.0

    @property
    def answered(self) -> bool:
        return self.key != "unanswered"

    @property
    def accepted(self) -> bool:
        return self.key in ACCEPTED_KEYS


def press_plan(panel: Panel, user: int, presses: int) -> list[Press]:
    """A vote, likes (+1/-1 alternating) on distinct works from A and B in turn, and the same vote again last."""
    vote = Press("vote", panel.analysis_id, panel.analysis_id, VOTE_CHOICES[user % len(VOTE_CHOICES)])
    if presses <= 1:
        return [vote]
    columns = [panel.likes.get(label, []) for label in sorted(panel.likes)]
    order: list[int] = []
    for position in range(max((len(c) for c in columns), default=0)):
        for column in columns:
            if position < len(column) and column[position] not in order:
                order.append(column[position])
    likes = [
        Press("like", panel.analysis_id, artwork_id, 1 if i % 2 == 0 else -1)
        for i, artwork_id in enumerate(order[: max(0, presses - 2)])
    ]
    return [vote, *likes, vote]


# ---- the rig ---------------------------------------------------------------------------------------------------


@dataclass
class Timings:
    photo_deadline_s: float = 60.0
    press_deadline_s: float = 20.0
    settle_s: float = 30.0  # how long the outbox may take to replay after the fault


class Rig:
    """The stub, the bot process and the stores of one scenario run, with the users' records."""

    def __init__(self, stub: FaultStub, bot: BotProcess, postgres_dsn: str, redis_url: str, timings: Timings):
        self.stub = stub
        self.bot = bot
        self.postgres_dsn = postgres_dsn
        self.redis_url = redis_url
        self.timings = timings
        self.phase = "before"
        self.photos: list[PhotoResult] = []
        self.presses: list[PressResult] = []
        self._query_ids = iter(range(1, 10**9))

    @property
    def panels(self) -> int:
        return sum(1 for p in self.photos if p.panel is not None)

    @property
    def chats_answering(self) -> int:
        """Users whose chat has received anything yet (the first album comes right after /v1/look)."""
        return sum(1 for chat, found in self.stub.deliveries.items() if chat != CONTROL_USER and found)

    async def send_photo(self, user: int, attempt: int = 0) -> PhotoResult:
        """Send a JPEG of this user's own and wait for the panel or a message that ends the flow."""
        file_id = f"fault-{user}-{attempt}"
        data = _jpeg(file_id)
        self.stub.add_file(file_id, data, f"photos/{file_id}.jpg")
        result = PhotoResult(user, attempt, self.phase, start=len(self.stub.deliveries[user]))
        self.photos.append(result)
        started = time.monotonic()
        size = {"file_id": file_id, "file_unique_id": file_id, "width": 64, "height": 48, "file_size": len(data)}
        self.stub.send_message(user, "en", photo=[size])
        found = await self.stub.next_delivery(user, result.start, _ends_photo, self.timings.photo_deadline_s)
        result.seconds = time.monotonic() - started
        if found is None:
            return result
        delivery = found[1]
        result.panel = delivery.panel
        result.key = "panel" if result.panel is not None else text_key(delivery.text)
        if result.panel is not None:
            result.outcome = "panel"
        elif result.key in CLEAR_PHOTO_KEYS:
            result.outcome = "clear"
        elif result.key == "error":
            result.outcome = "error"
        else:
            result.outcome = "other"
        return result

    async def press(self, user: int, press: Press, message_id: int) -> PressResult:
        """Push a callback query for `press` and wait for its answerCallbackQuery."""
        query_id = f"q{next(self._query_ids)}"
        result = PressResult(user, press, self.phase)
        self.presses.append(result)
        waiter = self.stub.expect_answer(query_id)
        started = time.monotonic()
        self.stub.push_update(
            "callback_query",
            {
                "id": query_id,
                "from": self.stub.user(user, "en"),
                "chat_instance": f"ci{user}",
                "data": press.data,
                "message": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": user, "type": "private"},
                },
            },
        )
        try:
            call = await asyncio.wait_for(waiter, self.timings.press_deadline_s)
        except TimeoutError:
            result.seconds = time.monotonic() - started
            return result
        result.seconds = time.monotonic() - started
        text = str(call.params.get("text") or "")
        result.key = text_key(text) if text else ""
        result.alert = str(call.params.get("show_alert")).lower() == "true"
        if self.phase != result.phase:
            result.phase = "fault" if "fault" in (self.phase, result.phase) else result.phase
        return result

    async def until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Poll `condition` every 50 ms for up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


def _ends_photo(delivery: Delivery) -> bool:
    if delivery.method != "sendMessage":
        return False
    if delivery.panel is not None:
        return True
    return text_key(delivery.text) not in PROGRESS_KEYS


@contextlib.asynccontextmanager
async def open_rig(
    postgres: PrivatePostgres,
    redis: PrivateRedis,
    inference_url: str,
    log_path: Path,
    timings: Timings | None = None,
    **settings: str,
) -> AsyncIterator[Rig]:
    """Start the stub and the bot against these servers; yield once the bot answers /start; stop everything."""
    stub = FaultStub(BOT_TOKEN)
    await stub.start()
    env = {
        "BOT_TOKEN": BOT_TOKEN,
        "BOT_API_BASE_URL": stub.base_url,
        "BOT_INFERENCE_URL": inference_url,
        "BOT_INFERENCE_TOKEN": SERVICE_TOKEN,
        "BOT_POSTGRES_DSN": postgres.dsn,
        "BOT_REDIS_URL": redis.url,
        "BOT_OUTBOX_FLUSH_INTERVAL_S": "0.2",
        "BOT_METRICS_PORT": "0",  # replicas would fight over one port
        "BOT_ARENA_RECOMMENDERS": "by_look,by_meaning",
        "BOT_PHOTOS_PER_MINUTE": "100000",
        "BOT_LOOK_TIMEOUT_S": "20",
        "BOT_ANALYZE_TIMEOUT_S": "40",
        "BOT_DAILY_POLL_S": "3600",
        "BOT_ARENA_REFRESH_S": "3600",
        **{f"BOT_{key.upper()}": value for key, value in settings.items()},
    }
    bot = BotProcess(env, log_path)
    try:
        bot.start()
        stub.send_message(CONTROL_USER, "en", text="/start")
        deadline = time.monotonic() + 90
        while not stub.deliveries[CONTROL_USER]:
            if not bot.alive:
                raise RuntimeError(f"the bot exited at start:\n{bot.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not answer /start in 90 s:\n{bot.tail()}")
            await asyncio.sleep(0.1)
        yield Rig(stub, bot, postgres.dsn, redis.url, timings or Timings())
    finally:
        await asyncio.to_thread(bot.stop)
        await stub.stop()


# ---- scenarios' shape: users on a timeline -------------------------------------------------------------------


@dataclass
class Timeline:
    """Barriers between the users and the fault task: users arrive `before` (their first press done), wait for
    `started`, press through the fault, arrive `during`, wait for `done`, then resend and press once more."""

    users: int
    started: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    before: int = 0
    during: int = 0
    fault_at: float = 0.0
    fault_end: float = 0.0

    def start(self, rig: Rig) -> None:
        rig.phase = "fault"
        self.fault_at = time.monotonic()
        self.started.set()

    def finish(self, rig: Rig) -> None:
        rig.phase = "after"
        self.fault_end = time.monotonic()
        self.done.set()


async def _wait_event(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


async def journey(
    rig: Rig, user: int, timeline: Timeline, *, presses: int, late: bool = False, gap: float = 0.2
) -> None:
    """One user's part: photo and first press before the fault (a `late` user sends the photo during it), the
    middle presses during it, then after it a resend if there was no panel, and the last press (or all of the
    resend's presses)."""
    wait = rig.timings.photo_deadline_s + 60

    async def photo(attempt: int) -> tuple[Panel | None, list[Press]]:
        panel = (await rig.send_photo(user, attempt)).panel
        plan = press_plan(panel, user, presses) if panel is not None else []
        if panel is not None and attempt == 0:
            await rig.press(user, plan[0], panel.message_id)
        return panel, plan

    panel, plan = (None, []) if late else await photo(0)
    timeline.before += 1
    await _wait_event(timeline.started, wait)
    if late:
        panel, plan = await photo(0)
    if panel is not None:
        for press in plan[1:-1]:
            await rig.press(user, press, panel.message_id)
            await asyncio.sleep(gap)
    timeline.during += 1
    await _wait_event(timeline.done, wait)
    if panel is None:
        panel, plan = await photo(1)
        for press in plan:
            await rig.press(user, press, panel.message_id if panel is not None else 0)
    elif len(plan) > 1:
        await rig.press(user, plan[-1], panel.message_id)


async def run_users(
    rig: Rig,
    users: int,
    fault: Callable[[Timeline], Awaitable[None]],
    *,
    presses: int = 4,
    late: Callable[[int], bool] = lambda i: False,
    gap: float = 0.2,
) -> Timeline:
    """All users' journeys at once beside the fault task; the fault always ends (its `finally` marks it done)."""
    timeline = Timeline(users)

    async def guarded_fault() -> None:
        try:
            await fault(timeline)
        finally:
            if not timeline.started.is_set():
                timeline.start(rig)
            if not timeline.done.is_set():
                timeline.finish(rig)

    tasks = [
        asyncio.create_task(journey(rig, FIRST_USER + i, timeline, presses=presses, late=late(i), gap=gap))
        for i in range(users)
    ]
    fault_task = asyncio.create_task(guarded_fault())
    try:
        await asyncio.gather(fault_task, *tasks)
    finally:
        for task in [fault_task, *tasks]:
            task.cancel()
        await asyncio.gather(fault_task, *tasks, return_exceptions=True)
    return timeline


# ---- counting -------------------------------------------------------------------------------------------------


@dataclass
class Counts:
    """What happened in one scenario run. The invariants are in `problems()`."""

    scenario: str
    users: int
    seconds: float = 0.0
    fault_seconds: float = 0.0
    photos: int = 0  # first photos
    photos_answered: int = 0  # got the vote panel
    photos_clear: int = 0  # got a clear message (service down, not saved, busy ...)
    photos_generic_error: int = 0  # got only "Something went wrong"
    photos_silent: int = 0  # nothing within the deadline
    photos_other: int = 0
    resends: int = 0  # photos sent again after the fault, by users who got no panel
    resends_answered: int = 0
    full_answers: int = 0  # panels whose photo got both albums and the description, each once
    duplicated_messages: int = 0  # panels, descriptions or albums sent more than once for one photo
    presses: int = 0
    presses_answered: int = 0
    presses_accepted: int = 0  # answered saved / queued / already counted
    presses_refused: int = 0  # answered, but with an error or a refusal
    presses_unanswered: int = 0
    presses_during_fault: int = 0
    rows_expected: int = 0  # distinct (user, analysis) votes and (user, artwork) likes of accepted presses
    rows_stored_once: int = 0  # of those, rows present with the pressed value
    lost_after_saved: int = 0  # accepted, but missing or different in Postgres after the settle time
    stored_without_ack: int = 0  # rows of presses that were refused or not answered
    outbox_left: int = 0
    dead_letters: int = 0
    settle_seconds: float = 0.0
    photo_p50_ms: float = 0.0
    photo_p95_ms: float = 0.0
    press_p50_ms: float = 0.0
    press_p95_ms: float = 0.0
    telegram_refusals: int = 0  # send calls the stand-in answered 429
    photo_answers: dict[str, int] = field(default_factory=dict)
    press_answers: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)  # a few concrete failures, for the report
    notes: list[str] = field(default_factory=list)  # what the fault task did, where it matters
    log: str = ""

    def problems(self, *, all_accepted: bool = True, all_panels: bool = False, full_answers: bool = False) -> list[str]:
        """The broken invariants: always 0 unanswered presses, 0 lost after "saved", 0 photos without an answer
        or a clear message, nothing sent twice, every resend answered; optionally every press accepted, every
        photo answered with the panel, every answer complete."""
        found = []
        if self.presses_unanswered:
            found.append(f"{self.presses_unanswered} of {self.presses} presses got no answerCallbackQuery")
        if self.lost_after_saved:
            queued = f" ({self.outbox_left} events still queued in the outbox)" if self.outbox_left else ""
            found.append(
                f"{self.lost_after_saved} of {self.rows_expected} accepted presses not stored as pressed "
                f"{self.settle_seconds} s after the fault{queued}"
            )
        bad_photos = self.photos_generic_error + self.photos_silent + self.photos_other
        if bad_photos:
            found.append(
                f"{bad_photos} of {self.photos} photos without the panel or a clear message "
                f"(generic error {self.photos_generic_error}, nothing {self.photos_silent}, other {self.photos_other})"
            )
        if self.resends != self.resends_answered:
            found.append(f"{self.resends - self.resends_answered} of {self.resends} resends after the fault unanswered")
        if self.duplicated_messages:
            found.append(f"{self.duplicated_messages} messages sent twice")
        if all_accepted and self.presses_refused:
            found.append(f"{self.presses_refused} of {self.presses} presses refused: {self.press_answers}")
        if all_panels and self.photos_answered != self.photos:
            found.append(f"only {self.photos_answered} of {self.photos} photos got the panel: {self.photo_answers}")
        if full_answers and self.full_answers != self.photos_answered + self.resends_answered:
            found.append(
                f"only {self.full_answers} of {self.photos_answered + self.resends_answered} answers complete "
                "(two albums, the description, the panel)"
            )
        if self.dead_letters:
            found.append(f"{self.dead_letters} feedback events dead-lettered")
        return found

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return round(values[0] * 1000, 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000, 1)


def _expected_rows(presses: list[PressResult]) -> dict[tuple[str, int, int], str | int]:
    expected: dict[tuple[str, int, int], str | int] = {}
    for result in presses:
        if result.accepted:
            expected[(result.press.kind, result.user, result.press.target)] = result.press.value
    return expected


async def _stored_rows(dsn: str, users: list[int]) -> dict[tuple[str, int, int], str | int]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        votes = await conn.fetch(
            "SELECT user_id, analysis_id, choice FROM votes WHERE user_id = ANY($1::bigint[])", users
        )
        likes = await conn.fetch(
            "SELECT user_id, artwork_id, value FROM likes WHERE user_id = ANY($1::bigint[])", users
        )
    finally:
        await conn.close()
    rows: dict[tuple[str, int, int], str | int] = {}
    for row in votes:
        rows[("vote", row["user_id"], row["analysis_id"])] = row["choice"]
    for row in likes:
        rows[("like", row["user_id"], row["artwork_id"])] = int(row["value"])
    return rows


async def _outbox_lengths(redis_url: str) -> tuple[int, int]:
    """Events still queued and dead-lettered (lists whose key mentions the outbox)."""
    client = Redis.from_url(redis_url, socket_timeout=5)
    try:
        queued = dead = 0
        async for key in client.scan_iter(match="*outbox*", count=200):
            if await client.type(key) != b"list":
                continue
            length = int(await client.llen(key))
            if b"dead" in key:
                dead += length
            else:
                queued += length
        return queued, dead
    finally:
        await client.aclose()


async def count(rig: Rig, scenario: str, users: int, started: float, timeline: Timeline | None = None) -> Counts:
    """Let the outbox replay (up to `settle_s`), then count what users saw against what Postgres holds."""
    counts = Counts(scenario=scenario, users=users, log=str(rig.bot.log_path))
    expected = _expected_rows(rig.presses)
    user_ids = sorted({p.user for p in rig.photos})
    settle_started = time.monotonic()
    stored: dict[tuple[str, int, int], str | int] = {}
    while True:
        with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
            stored = await _stored_rows(rig.postgres_dsn, user_ids)
        if all(stored.get(k) == v for k, v in expected.items()):
            break
        if time.monotonic() - settle_started > rig.timings.settle_s:
            break
        await asyncio.sleep(0.25)
    counts.settle_seconds = round(time.monotonic() - settle_started, 2)
    counts.seconds = round(time.monotonic() - started, 2)
    if timeline is not None and timeline.fault_end:
        counts.fault_seconds = round(timeline.fault_end - timeline.fault_at, 2)
    with contextlib.suppress(Exception):  # diagnostics only: a Redis that is gone must not hide the counts
        counts.outbox_left, counts.dead_letters = await _outbox_lengths(rig.redis_url)

    _count_photos(rig, counts)
    _count_presses(rig, counts, expected, stored)
    counts.telegram_refusals = len(rig.stub.refused)
    return counts


def _count_photos(rig: Rig, counts: Counts) -> None:
    by_user: dict[int, list[PhotoResult]] = defaultdict(list)
    for photo in rig.photos:
        by_user[photo.user].append(photo)
    outcomes: Counter[str] = Counter()
    for photos in by_user.values():
        photos.sort(key=lambda p: p.start)
        for position, photo in enumerate(photos):
            end = photos[position + 1].start if position + 1 < len(photos) else None
            window = rig.stub.deliveries[photo.user][photo.start : end]
            panels = sum(1 for d in window if d.panel is not None)
            descriptions = sum(1 for d in window if d.is_description)
            albums = sum(1 for d in window if d.is_album)
            counts.duplicated_messages += max(0, panels - 1) + max(0, descriptions - 1) + max(0, albums - 2)
            if photo.panel is not None and (panels, descriptions, albums) == (1, 1, 2):
                counts.full_answers += 1
            elif photo.panel is not None and len(counts.examples) < 8:
                counts.examples.append(
                    f"user {photo.user}: panel with {albums} albums, {descriptions} descriptions, {panels} panels"
                )
            if photo.attempt == 0:
                counts.photos += 1
                outcomes[photo.key or photo.outcome] += 1
                counts.photos_answered += photo.outcome == "panel"
                counts.photos_clear += photo.outcome == "clear"
                counts.photos_generic_error += photo.outcome == "error"
                counts.photos_silent += photo.outcome == "silent"
                counts.photos_other += photo.outcome == "other"
            else:
                counts.resends += 1
                counts.resends_answered += photo.outcome == "panel"
                outcomes[f"resend:{photo.key or photo.outcome}"] += 1
            if photo.outcome not in ("panel", "clear") and len(counts.examples) < 8:
                counts.examples.append(
                    f"user {photo.user} photo {photo.attempt} ({photo.phase}): {photo.outcome} {photo.key}"
                )
    counts.photo_answers = dict(outcomes)
    seconds = [p.seconds for p in rig.photos if p.outcome != "silent"]
    counts.photo_p50_ms = _percentile(seconds, 50)
    counts.photo_p95_ms = _percentile(seconds, 95)


def _count_presses(
    rig: Rig,
    counts: Counts,
    expected: dict[tuple[str, int, int], str | int],
    stored: dict[tuple[str, int, int], str | int],
) -> None:
    answers: Counter[str] = Counter()
    for result in rig.presses:
        counts.presses += 1
        answers[result.key] += 1
        counts.presses_answered += result.answered
        counts.presses_accepted += result.accepted
        counts.presses_refused += result.answered and not result.accepted
        counts.presses_unanswered += not result.answered
        counts.presses_during_fault += result.phase == "fault"
        if not result.accepted and len(counts.examples) < 8:
            counts.examples.append(f"user {result.user} press {result.press.data} ({result.phase}): {result.key}")
    counts.press_answers = dict(answers)
    counts.rows_expected = len(expected)
    counts.rows_stored_once = sum(1 for k, v in expected.items() if stored.get(k) == v)
    counts.lost_after_saved = counts.rows_expected - counts.rows_stored_once
    for k, v in expected.items():
        if stored.get(k) != v and len(counts.examples) < 8:
            counts.examples.append(f"lost: {k} pressed {v!r}, stored {stored.get(k)!r}")
    counts.stored_without_ack = sum(1 for k in stored if k not in expected)
    seconds = [r.seconds for r in rig.presses if r.answered]
    counts.press_p50_ms = _percentile(seconds, 50)
    counts.press_p95_ms = _percentile(seconds, 95)


# ---- the scenarios ---------------------------------------------------------------------------------------------


@dataclass
class Servers:
    """What a scenario may start, kill and restart; `gallery` and `model_env` only for the real service."""

    postgres: PrivatePostgres
    redis: PrivateRedis
    workdir: Path
    gallery: Path | None = None
    model_env: dict[str, str] | None = None
    timings: Timings = field(default_factory=Timings)
    bot_settings: dict[str, str] = field(default_factory=dict)  # extra BOT_* settings, lower-case names

    def rig(self, inference_url: str, scenario: str) -> contextlib.AbstractAsyncContextManager[Rig]:
        """The bot on these servers, logging to `<workdir>/bot-<scenario>.log`."""
        log = self.workdir / f"bot-{scenario}.log"
        return open_rig(self.postgres, self.redis, inference_url, log, self.timings, **self.bot_settings)


async def postgres_restart(servers: Servers, users: int) -> Counts:
    """Postgres stopped (fast) while users press, started again a few seconds later: presses during the outage
    are answered and land exactly once when it is back (the outbox replays them)."""
    started = time.monotonic()
    async with canned_inference() as url, servers.rig(url, "postgres_restart") as rig:

        async def fault(timeline: Timeline) -> None:
            await rig.until(lambda: timeline.before >= users, 120)
            timeline.start(rig)  # the users' next presses race the shutdown
            await asyncio.to_thread(servers.postgres.stop, "fast")
            await rig.until(lambda: timeline.during >= users and time.monotonic() - timeline.fault_at > 3, 60)
            await asyncio.to_thread(servers.postgres.start)
            timeline.finish(rig)

        timeline = await run_users(rig, users, fault, presses=5)
        return await count(rig, "postgres_restart", users, started, timeline)


async def redis_kill(servers: Servers, users: int) -> Counts:
    """Redis SIGKILLed while users send photos and press, restarted ~3 s later (its durable config replays the
    AOF): no press answered "saved" is lost; every photo gets the panel or a clear message."""
    started = time.monotonic()
    async with canned_inference() as url, servers.rig(url, "redis_kill") as rig:

        async def fault(timeline: Timeline) -> None:
            await rig.until(lambda: timeline.before >= users, 120)  # early users pressed; late ones about to send
            timeline.start(rig)
            await asyncio.to_thread(servers.redis.kill)
            await asyncio.sleep(3)
            await asyncio.to_thread(servers.redis.restart)
            await rig.until(lambda: timeline.during >= users, 90)
            timeline.finish(rig)

        timeline = await run_users(rig, users, fault, presses=4, late=lambda i: i % 2 == 1)
        return await count(rig, "redis_kill", users, started, timeline)


async def crash_redis_while_draining(
    redis: PrivateRedis, notes: list[str], *, down_s: float = 3.0, tries: int = 5
) -> None:
    """SIGKILL Redis at the worst moment for the outbox, while its drainer holds the drain lock, and restart it
    `down_s` later. Until a restart finds that very lock recovered from the AOF, crash again (at most `tries`
    times). `notes` says what happened."""
    for attempt in range(1, tries + 1):
        client = Redis.from_url(redis.url, socket_timeout=2)
        try:
            queues = [k async for k in client.scan_iter(match="*outbox*", count=1000) if b"dead" not in k]
            lock = min(queues, key=len) + b":lock" if queues else b"artmatch:outbox:feedback:lock"
            deadline = time.monotonic() + 5
            token = None
            while time.monotonic() < deadline and token is None:
                token = await client.get(lock)
                if token is None:
                    await asyncio.sleep(0.001)
        finally:
            redis.kill()  # at once, not in a thread
            await client.aclose()
        await asyncio.sleep(down_s)
        await asyncio.to_thread(redis.restart)
        client = Redis.from_url(redis.url, socket_timeout=2)
        try:
            survived = token is not None and await client.get(lock) == token  # the same drain's lock, not a new one
        finally:
            await client.aclose()
        if survived:
            notes.append(f"redis crashed {attempt}x; the outbox drain lock survived the last crash")
            return
    notes.append(f"redis crashed {tries}x; the drain lock never survived a crash")


async def postgres_down_redis_kill(servers: Servers, users: int) -> Counts:
    """Postgres down, presses answered and queued in the outbox, then Redis SIGKILLed while the outbox drainer
    holds its lock and restarted (durable config), then Postgres back: every accepted press is in Postgres
    within the settle time."""
    started = time.monotonic()
    async with canned_inference() as url, servers.rig(url, "postgres_down_redis_kill") as rig:

        async def fault(timeline: Timeline) -> None:
            await rig.until(lambda: timeline.before >= users, 120)
            await asyncio.to_thread(servers.postgres.stop, "fast")
            timeline.start(rig)
            await rig.until(lambda: timeline.during >= users, 90)
            await crash_redis_while_draining(servers.redis, notes)
            await asyncio.sleep(1)
            await asyncio.to_thread(servers.postgres.start)
            timeline.finish(rig)

        notes: list[str] = []
        timeline = await run_users(rig, users, fault, presses=5)
        counts = await count(rig, "postgres_down_redis_kill", users, started, timeline)
        counts.notes = notes
        return counts


async def telegram_flood(servers: Servers, users: int) -> Counts:
    """The Bot API answers every third message send with 429 retry_after 1: every user still gets both albums,
    the description and the panel, each exactly once, and every press is answered and stored."""
    started = time.monotonic()
    async with canned_inference() as url, servers.rig(url, "telegram_flood") as rig:
        rig.stub.refuse_every = 3

        async def fault(timeline: Timeline) -> None:
            timeline.start(rig)
            await rig.until(lambda: timeline.during >= users, servers.timings.photo_deadline_s + 120)
            timeline.finish(rig)

        timeline = await run_users(rig, users, fault, presses=4)
        return await count(rig, "telegram_flood", users, started, timeline)


async def inference_restart(servers: Servers, users: int) -> Counts:
    """The real inference service SIGKILLed mid-burst and restarted: every user gets the panel or is told clearly
    (service_down), and every photo sent again after the restart is answered."""
    if servers.gallery is None or servers.model_env is None:
        raise ValueError("inference_restart needs the tiny gallery and the tiny models' environment")
    started = time.monotonic()
    env = {**servers.model_env, "INFERENCE_TOKEN": SERVICE_TOKEN}
    service = ServiceProcess(servers.gallery, env, servers.workdir / "inference.log")
    try:
        await asyncio.to_thread(service.start)
        async with servers.rig(service.url, "inference_restart") as rig:

            async def fault(timeline: Timeline) -> None:
                await rig.until(lambda: rig.chats_answering >= max(1, users // 4), 120)  # mid-burst
                await asyncio.to_thread(service.kill)
                timeline.start(rig)
                await rig.until(lambda: timeline.during >= users and time.monotonic() - timeline.fault_at > 1, 120)
                await asyncio.to_thread(service.start)
                timeline.finish(rig)

            timeline = await run_users(rig, users, fault, presses=3, late=lambda i: i % 3 == 2)
            return await count(rig, "inference_restart", users, started, timeline)
    finally:
        await asyncio.to_thread(service.kill)


async def burst(servers: Servers, users: int) -> Counts:
    """All users at once, no fault: every photo gets the full answer, every press is answered and stored once."""
    started = time.monotonic()
    async with canned_inference() as url, servers.rig(url, "burst") as rig:

        async def fault(timeline: Timeline) -> None:
            timeline.start(rig)
            await rig.until(lambda: timeline.during >= users, servers.timings.photo_deadline_s + 120)
            timeline.finish(rig)

        timeline = await run_users(rig, users, fault, presses=4, gap=0.0)
        return await count(rig, "burst", users, started, timeline)


Scenario = Callable[[Servers, int], Awaitable[Counts]]

SCENARIOS: dict[str, Scenario] = {
    "postgres_restart": postgres_restart,
    "redis_kill": redis_kill,
    "postgres_down_redis_kill": postgres_down_redis_kill,
    "telegram_flood": telegram_flood,
    "inference_restart": inference_restart,
    "burst": burst,
}

# What each scenario must hold beyond the invariants every run holds (see Counts.problems).
EXPECTATIONS: dict[str, dict[str, bool]] = {
    "postgres_restart": {"all_accepted": True, "all_panels": True},
    "redis_kill": {"all_accepted": False},
    "postgres_down_redis_kill": {"all_accepted": True, "all_panels": True},
    "telegram_flood": {"all_accepted": True, "all_panels": True, "full_answers": True},
    "inference_restart": {"all_accepted": True},
    "burst": {"all_accepted": True, "all_panels": True, "full_answers": True},
}
