"""What a run concluded: how many hypotheses reached each verdict, and what to do next."""

from __future__ import annotations

from collections import Counter
from typing import Dict, List, NamedTuple, Sequence

from ..core.classification import HypothesisStatus, Polarity
from ..core.listing import some_of
from ..finding.layout import SCRIPT_PATTERN
from .records import Record
from .wording import is_cut_short

#: Verdicts in the order they are counted and shown.
COUNTED = (
    HypothesisStatus.FALSIFIED,
    HypothesisStatus.SUPPORTED,
    HypothesisStatus.INCONCLUSIVE,
    HypothesisStatus.PENDING,
)


def verdict_counts(records: Sequence[Record]) -> Dict[str, int]:
    """How many hypotheses reached each verdict; ``pending`` counts those without one because
    the run stopped first (cut short, or never started)."""
    counts = Counter(record["status"] for record in records)
    return {status.value: counts[status.value] for status in COUNTED}


def next_action(records: Sequence[Record]) -> str:
    """What to do next, from the supported hypotheses (the ones the evidence did not refute)."""
    supported = [r for r in records if r["status"] == HypothesisStatus.SUPPORTED.value]
    confirmed = [r for r in supported if r.get("polarity") == Polarity.CONFIRM.value]
    unfinished = Unfinished.of(records)
    if not records:
        return f"No hypothesis was found: write scripts named {SCRIPT_PATTERN} first."
    if confirmed:
        action = _merge_action(confirmed)
    elif not supported:
        return _none_supported(records, unfinished)
    elif len(supported) == 1:
        only = supported[0]
        action = (
            f"Exactly one hypothesis is supported ({only['hypothesis_id']} on {_where(only)}): "
            "focus the fix on it."
        )
    else:
        names = ", ".join(r["hypothesis_id"] for r in supported)
        action = (
            f"{len(supported)} hypotheses are supported ({names}): refine them with tests "
            "that tell them apart."
        )
    undecided = _undecided(records)
    if undecided:
        them = "it" if len(undecided) == 1 else "them"
        action += (
            f" ({len(undecided)} reached no verdict ({_named(undecided)}): fix what stopped "
            f"{them} before concluding.)"
        )
    if unfinished.total:
        action += f" ({unfinished.words}: run {unfinished.them} before concluding.)"
    return action


def _undecided(records: Sequence[Record]) -> List[str]:
    """The hypotheses that ran and reached no verdict (a broken script, a timeout, a failed
    setup step): one of them may be the cause as well."""
    return [r["hypothesis_id"] for r in records if r["status"] == _INCONCLUSIVE]


def _named(ids: Sequence[str]) -> str:
    """``a, b, c, d, e and 2 more``."""
    return some_of(ids, shown=5)


def _none_supported(records: Sequence[Record], unfinished: Unfinished) -> str:
    """With no hypothesis supported: new ones, unless some reached no verdict, which is still
    to be had (a broken script, a timeout, a failed setup step, a run stopped before they
    ended)."""
    undecided = _undecided(records)
    if undecided:
        one = len(undecided) == 1
        them, their = ("it", "its error says") if one else ("them", "their errors say")
        return (
            f"No hypothesis is supported, but {len(undecided)} reached no verdict "
            f"({_named(undecided)}): "
            f"fix what stopped {them} ({their}) and run {them} again before generating new "
            "ones."
            + (f" ({unfinished.words}: run {unfinished.them} too.)" if unfinished.total else "")
        )
    if unfinished.total == len(records):
        return f"No hypothesis reached a verdict ({unfinished.words}): run {unfinished.them} first."
    if unfinished.total:
        return (
            f"No hypothesis that finished is supported, but {unfinished.words}: run "
            f"{unfinished.them} before generating new ones."
        )
    return "No hypothesis is supported: generate new hypotheses."


class Unfinished(NamedTuple):
    """The hypotheses without a verdict because the run stopped first: how many it cut
    short, and how many it never started."""

    cut: int
    not_run: int

    @classmethod
    def of(cls, records: Sequence[Record]) -> Unfinished:
        pending = [r for r in records if r["status"] == HypothesisStatus.PENDING.value]
        cut = sum(1 for record in pending if is_cut_short(record))
        return cls(cut, len(pending) - cut)

    @property
    def total(self) -> int:
        return self.cut + self.not_run

    @property
    def words(self) -> str:
        """``1 was cut short and 2 did not run`` (empty when there are none)."""
        words = [f"{self.cut} {'was' if self.cut == 1 else 'were'} cut short"] if self.cut else []
        return " and ".join(words + ([f"{self.not_run} did not run"] if self.not_run else []))

    @property
    def them(self) -> str:
        return "it" if self.total == 1 else "them"


_INCONCLUSIVE = HypothesisStatus.INCONCLUSIVE.value


def _merge_action(confirmed: Sequence[Record]) -> str:
    """The action when scripts written to confirm a fix passed: review and merge. Fixes on
    one branch are one thing to merge, so the branch is named once."""
    places: Dict[str, List[str]] = {}
    for record in confirmed:
        places.setdefault(_where(record), []).append(record["hypothesis_id"])
    fixes = "; ".join(f"{', '.join(ids)} on {where}" for where, ids in places.items())
    if len(confirmed) == 1:
        action = f"A fix is confirmed ({fixes}): review that branch and merge it."
    elif len(places) == 1:
        action = f"{len(confirmed)} fixes are confirmed ({fixes}): review that branch and merge it."
    else:
        action = (
            f"{len(confirmed)} fixes are confirmed ({fixes}): review them and merge the branch "
            "to keep."
        )
    return action + _uncommitted_words(confirmed)


def _uncommitted_words(confirmed: Sequence[Record]) -> str:
    """What to commit first, where a confirmed fix's worktree has changes its branch does not
    hold: merging the branch would leave out the code that passed."""
    changed = {
        record["worktree_path"]: record["uncommitted"]
        for record in confirmed
        if record.get("uncommitted")
    }
    if not changed:
        return ""
    where = "; ".join(f"{some_of(paths, shown=3)} in {tree}" for tree, paths in changed.items())
    return f" First commit what passed: it is not on the branch yet ({where} not committed)."


def _where(record: Record) -> str:
    branch = record["branch"]
    return f"branch {branch}" if branch else str(record["worktree_path"])


def counts_line(records: Sequence[Record]) -> str:
    """``2 falsified, 1 supported, 0 inconclusive`` (and how many were ``cut short`` or ``not
    run`` when the run stopped before some)."""
    counts = verdict_counts(records)
    parts = [f"{counts[status.value]} {status.value}" for status in COUNTED[:-1]]
    cut, not_run = Unfinished.of(records)
    stopped = ((cut, "cut short"), (not_run, "not run"))
    return ", ".join(parts + [f"{count} {name}" for count, name in stopped if count])
