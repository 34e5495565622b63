"""The session's stop signals: SIGTERM and SIGHUP interrupt it as Ctrl-C does, and once it
ends the next stop signal is held, so that its reports get written."""

from __future__ import annotations

import signal
from typing import Any, Dict, Iterator

import pytest

from pytest_parallel_hypotheses.plugin.session import StopSignals, Terminated

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@pytest.fixture(autouse=True)
def as_in_a_terminal() -> Iterator[None]:
    """SIGINT as in a pytest run from a terminal: a suite run as a background job (``pytest
    &``, a CI script) inherits it ignored, which the tests of that case set themselves."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


@pytest.fixture
def handlers_before() -> Dict[int, Any]:
    return {signum: signal.getsignal(signum) for signum in HANDLED}


@pytest.fixture
def stop_signals(handlers_before: Dict[int, Any]) -> Iterator[StopSignals]:
    signals = StopSignals()
    signals.install()
    yield signals
    signals.restore()
    for signum, handler in handlers_before.items():  # whatever a failed test left
        signal.signal(signum, handler)


def test_sigterm_interrupts_the_session(stop_signals: StopSignals) -> None:
    with pytest.raises(Terminated, match="received SIGTERM"):
        signal.raise_signal(signal.SIGTERM)


def test_once_the_session_ends_one_stop_signal_is_held_and_the_next_raises(
    stop_signals: StopSignals, capfd: pytest.CaptureFixture[str]
) -> None:
    stop_signals.hold()

    signal.raise_signal(signal.SIGTERM)

    assert "SIGTERM received while the run ends: its reports are being written" in (
        capfd.readouterr().err
    )
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_a_signal_is_held_once_however_often_the_session_says_it_ends(
    stop_signals: StopSignals,
) -> None:
    """Interrupted, the session ends twice: at the interruption and at its finish."""
    stop_signals.hold()
    signal.raise_signal(signal.SIGHUP)

    stop_signals.hold()

    with pytest.raises(Terminated, match="received SIGHUP"):
        signal.raise_signal(signal.SIGHUP)


def test_a_sigint_the_process_ignores_stays_ignored(stop_signals: StopSignals) -> None:
    """pytest started in the background inherits SIGINT ignored, and its scripts with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    stop_signals.hold()

    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_hangup_the_process_ignores_stays_ignored(
    handlers_before: Dict[int, Any],
) -> None:
    """Under ``nohup``, a closed terminal must not end the run."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signals = StopSignals()
    try:
        signals.install()
        signals.hold()

        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        signal.raise_signal(signal.SIGTERM)  # held
        with pytest.raises(Terminated, match="received SIGTERM"):
            signal.raise_signal(signal.SIGTERM)
    finally:
        signals.restore()
        for signum, handler in handlers_before.items():
            signal.signal(signum, handler)


def test_the_handlers_before_are_given_back(
    stop_signals: StopSignals, handlers_before: Dict[int, Any]
) -> None:
    stop_signals.hold()
    signal.raise_signal(signal.SIGTERM)  # held: the handlers now raise

    stop_signals.restore()

    assert {signum: signal.getsignal(signum) for signum in HANDLED} == handlers_before
