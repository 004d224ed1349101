"""The send layer: a real aiogram Bot over HTTP to the Bot API stand-in, and the token bucket on a fake clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypedDict

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import AnswerCallbackQuery, GetMe, SendMediaGroup, SendMessage
from aiogram.types import InputMediaPhoto
from aiogram.utils.chat_action import ChatActionSender

from bot.sending import SendLayer, TokenBucket, install_send_layer, is_message
from tests.bot.conftest import BOT_TOKEN
from tests.bot.telegram_stub import Call, TelegramStub

MakeBot = Callable[..., Bot]

# Fast limits for the HTTP tests: a step is 100 ms, so pacing shows without slowing the suite.
class Limits(TypedDict):
    chat_rate: float
    chat_burst: int
    global_rate: float
    global_burst: int


FAST: Limits = {"chat_rate": 10.0, "chat_burst": 2, "global_rate": 1000.0, "global_burst": 1000}
SLACK = 0.02  # arrival-time jitter allowed over HTTP on localhost


@pytest.fixture
async def make_bot(telegram: TelegramStub) -> AsyncIterator[MakeBot]:
    """Bots talking to the stand-in through a send layer built from the keyword arguments."""
    bots: list[Bot] = []

    def make(base_url: str | None = None, layer: SendLayer | None = None, **params: Any) -> Bot:
        session = AiohttpSession(api=TelegramAPIServer.from_base(base_url or telegram.base_url))
        bot = Bot(token=BOT_TOKEN, session=session)
        install_send_layer(bot, layer or SendLayer(**params))
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        await bot.session.close()


def texts(calls: list[Call]) -> list[str]:
    return [str(c.params["text"]) for c in calls]


# ---- flood waits --------------------------------------------------------------------------------------------------


async def test_every_third_send_refused_still_delivers_every_message_exactly_once(
    telegram: TelegramStub, make_bot: MakeBot
) -> None:
    bot = make_bot(**{**FAST, "retry_budget_s": 30.0})
    telegram.refuse_every = 3
    chats = range(1, 11)

    async def answer(chat: int) -> None:  # one answer: three messages, one after another
        for n in range(3):
            await bot.send_message(chat, f"chat {chat} message {n}")

    await asyncio.gather(*(answer(chat) for chat in chats))

    delivered = texts(telegram.accepted("sendMessage"))
    expected = [f"chat {chat} message {n}" for chat in chats for n in range(3)]
    assert sorted(delivered) == sorted(expected)  # none lost, none twice
    for chat in chats:  # and each chat's messages in the order they were sent
        assert texts(telegram.accepted("sendMessage", chat)) == [f"chat {chat} message {n}" for n in range(3)]
    assert len(telegram.refused) >= 10  # a third of all attempts, retries included
    assert len(telegram.sent("sendMessage")) == 30 + len(telegram.refused)


async def test_a_flood_wait_pauses_the_chat_for_retry_after(telegram: TelegramStub, make_bot: MakeBot) -> None:
    bot = make_bot(**FAST)
    telegram.flood_waits[7] = 1
    await bot.send_message(7, "hello")
    refused, accepted = telegram.sent("sendMessage", 7)
    assert accepted.at - refused.at >= 1.0 - SLACK
    assert refused.status == 429 and accepted.status == 200


async def test_a_chat_refused_forever_raises_once_the_retry_budget_is_spent(
    telegram: TelegramStub, make_bot: MakeBot
) -> None:
    bot = make_bot(**{**FAST, "retry_budget_s": 1.5})
    telegram.flood_waits[5] = 1_000
    started = time.monotonic()
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(5, "never")
    assert len(telegram.sent("sendMessage", 5)) == 2  # waited 1 s once; another 1 s would pass the 1.5 s budget
    assert 1.0 - SLACK <= time.monotonic() - started < 1.5


async def test_a_callback_answer_is_retried_on_its_own_short_budget(telegram: TelegramStub, make_bot: MakeBot) -> None:
    bot = make_bot(**{**FAST, "retry_budget_s": 30.0, "callback_retry_budget_s": 1.0})
    telegram.failures["answerCallbackQuery"] = [429]
    assert await bot.answer_callback_query("q1", "saved") is True
    assert len(telegram.sent("answerCallbackQuery")) == 2

    telegram.failures["answerCallbackQuery"] = [429] * 3
    with pytest.raises(TelegramRetryAfter):
        await bot.answer_callback_query("q2", "saved")
    assert len(telegram.sent("answerCallbackQuery")) == 2 + 2


async def test_other_errors_of_a_send_are_not_retried(telegram: TelegramStub, make_bot: MakeBot) -> None:
    bot = make_bot(**FAST)
    telegram.failures["sendMessage"] = [500]
    with pytest.raises(TelegramServerError):
        await bot.send_message(3, "maybe delivered")
    assert len(telegram.sent("sendMessage")) == 1


# ---- chat actions -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 429, 500])
async def test_a_refused_chat_action_never_aborts_the_answer(
    telegram: TelegramStub, make_bot: MakeBot, status: int
) -> None:
    bot = make_bot(**FAST)
    telegram.failures["sendChatAction"] = [status] * 10
    started = time.monotonic()
    assert await bot.send_chat_action(9, "typing") is True
    assert time.monotonic() - started < 0.5  # not retried, not even after a 429

    async with ChatActionSender.upload_photo(bot=bot, chat_id=9):
        await bot.send_message(9, "the description")
        await bot.send_message(9, "the vote")
    assert texts(telegram.accepted("sendMessage", 9)) == ["the description", "the vote"]
    assert all(c.status == status for c in telegram.sent("sendChatAction", 9))


async def test_a_chat_action_that_cannot_reach_telegram_is_ignored(make_bot: MakeBot) -> None:
    bot = make_bot(base_url="http://127.0.0.1:1", **FAST)  # nothing listens there
    assert await bot.send_chat_action(9, "upload_photo") is True
    with pytest.raises(TelegramNetworkError):  # a send is not: it may have been delivered, so it is not retried
        await bot.send_message(9, "lost")


# ---- pacing -------------------------------------------------------------------------------------------------------


async def test_one_chat_is_paced_after_its_burst_and_other_chats_are_not_held_back(
    telegram: TelegramStub, make_bot: MakeBot
) -> None:
    bot = make_bot(**FAST)  # 10/s per chat, burst 2
    step = 1 / FAST["chat_rate"]
    started = time.monotonic()
    flood = [bot.send_message(1, f"busy {n}") for n in range(8)]
    others = [bot.send_message(chat, "hello") for chat in range(2, 7)]
    await asyncio.gather(*flood, *others)

    busy = sorted(c.at - started for c in telegram.accepted("sendMessage", 1))
    assert len(busy) == 8
    assert busy[1] < step  # the burst goes at once
    for n in range(2, 8):  # then one a step
        assert busy[n] >= (n - 1) * step - SLACK
    assert busy[-1] < 7 * step + 0.2
    for chat in range(2, 7):
        (hello,) = telegram.accepted("sendMessage", chat)
        assert hello.at - started < step  # not queued behind chat 1


async def test_an_album_costs_one_token_per_item_but_goes_at_once(telegram: TelegramStub, make_bot: MakeBot) -> None:
    bot = make_bot(chat_rate=10.0, chat_burst=3, global_rate=1000.0, global_burst=1000)
    started = time.monotonic()
    await bot.send_media_group(4, [InputMediaPhoto(media=f"tg-photo-{n}") for n in range(5)])
    await bot.send_message(4, "after the album")
    album, after = telegram.accepted(chat_id=4)
    assert album.at - started < 0.1  # the album was not stalled by its own size
    assert after.at - album.at >= 0.3 - SLACK  # it ran the bucket 2 into debt: the next message pays 3 steps


async def test_the_global_rate_caps_total_throughput(telegram: TelegramStub, make_bot: MakeBot) -> None:
    bot = make_bot(chat_rate=1000.0, chat_burst=10, global_rate=20.0, global_burst=2)
    started = time.monotonic()
    await asyncio.gather(*(bot.send_message(chat, "news") for chat in range(100, 120)))
    times = sorted(c.at - started for c in telegram.accepted("sendMessage"))
    assert len(times) == 20
    assert times[-1] >= 18 / 20 - SLACK  # 20 messages, burst 2: 18 more steps of 50 ms
    assert times[-1] < 18 / 20 + 0.3


async def test_calls_that_are_not_messages_are_never_paced(telegram: TelegramStub, make_bot: MakeBot) -> None:
    bot = make_bot(chat_rate=1.0, chat_burst=1, global_rate=1.0, global_burst=1)
    started = time.monotonic()
    await bot.send_message(1, "takes the only token")
    await asyncio.gather(*(bot.answer_callback_query(f"q{n}") for n in range(5)), bot.get_me())
    assert time.monotonic() - started < 0.5
    assert is_message(SendMessage(chat_id=1, text="x")) and is_message(SendMediaGroup(chat_id=1, media=[]))
    assert not is_message(AnswerCallbackQuery(callback_query_id="q")) and not is_message(GetMe())


async def test_per_chat_buckets_are_bounded(telegram: TelegramStub, make_bot: MakeBot) -> None:
    layer = SendLayer(**FAST, max_chats=3)
    bot = make_bot(layer=layer)
    for chat in range(10):
        await bot.send_message(chat, "hi")
    assert layer.chats_tracked <= 3
    assert len(telegram.accepted("sendMessage")) == 10


async def test_a_bot_gets_one_send_layer_only(make_bot: MakeBot) -> None:
    bot = make_bot(**FAST)
    with pytest.raises(ValueError):  # two layers would pace every message twice
        install_send_layer(bot)


# ---- the token bucket, on a fake clock ----------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when told to; its sleep jumps the clock (enough for one sleeper)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class VirtualTime(FakeClock):
    """A fake clock for several concurrent sleepers: `run()` wakes them one at a time, earliest first."""

    def __init__(self) -> None:
        super().__init__()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, len(self._sleepers), wake))
        await wake

    async def settle(self) -> None:
        for _ in range(10):  # let every runnable task reach its next sleep
            await asyncio.sleep(0)

    async def run(self) -> None:
        await self.settle()
        while self._sleepers:
            self._sleepers.sort(key=lambda s: s[:2])
            at, _, wake = self._sleepers.pop(0)
            self.now = max(self.now, at)
            wake.set_result(None)
            await self.settle()


def test_a_full_bucket_lets_a_burst_through_then_spaces_by_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(6)] == [0, 0, 0, 0.5, 1.0, 1.5]


def test_a_bucket_refills_with_time_but_never_beyond_its_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=3, clock=clock)
    for _ in range(3):
        bucket.reserve()
    clock.now += 2
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 1.0]
    clock.now += 3600
    assert [bucket.reserve() for _ in range(4)] == [0, 0, 0, 1.0]


def test_a_large_cost_goes_at_once_and_the_next_caller_pays_the_debt() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=3, clock=clock)
    assert bucket.reserve(5) == 0
    assert bucket.reserve() == 3.0  # 5 taken from 3: two in debt, and the next one needs one more


def test_a_pause_holds_everything_and_restarts_the_bucket_empty() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=3, clock=clock)
    bucket.pause(2.0)
    assert not bucket.idle
    assert [bucket.reserve() for _ in range(3)] == [2.0, 3.0, 4.0]  # no burst straight after the pause


async def test_waiters_queued_before_a_pause_wait_it_out_in_order() -> None:
    clock = VirtualTime()
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock, sleep=clock.sleep)
    went: list[tuple[str, float]] = []

    async def send(name: str) -> None:
        await bucket.acquire()
        went.append((name, clock.now))

    await send("first")  # t=100
    waiting = [asyncio.create_task(send(name)) for name in ("second", "third")]
    await clock.settle()  # both asleep, with slots at 101 and 102
    bucket.pause(5.0)  # a 429 at t=100: nothing before 105
    await clock.run()
    await asyncio.gather(*waiting)
    assert went == [("first", 100.0), ("second", 105.0), ("third", 106.0)]


def test_a_bucket_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=3)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0)
    with pytest.raises(ValueError):
        SendLayer(chat_rate=-1)


async def test_the_layer_retries_a_flood_wait_on_the_fake_clock() -> None:
    """The retry loop alone: a stand-in make_request that floods twice, no HTTP and no real sleeping."""
    clock = FakeClock()
    layer = SendLayer(chat_rate=1.0, chat_burst=1, retry_budget_s=10.0, clock=clock, sleep=clock.sleep)
    method = SendMessage(chat_id=1, text="hi")
    answers: list[Any] = [TelegramRetryAfter(method, "flood", 4), TelegramRetryAfter(method, "flood", 4), "sent"]
    tried_at: list[float] = []

    async def make_request(bot: Any, m: Any) -> Any:
        tried_at.append(clock.now)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await layer(make_request, None, method) == "sent"  # type: ignore[arg-type,comparison-overlap]
    assert tried_at == [100.0, 104.0, 108.0]

    answers[:] = [TelegramRetryAfter(method, "flood", 11)]
    with pytest.raises(TelegramRetryAfter):  # more than the whole budget: raised at once, nothing slept
        await layer(make_request, None, method)  # type: ignore[arg-type]
    assert tried_at[-1] == 109.0
