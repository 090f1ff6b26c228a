"""The laptop's side of team mode, as logic: what the user is told when the team service is busy, down or
unreachable, and how the two rankings merge. A stand-in HTTP server plays the service's replies; the real
service, servers and keyring are in tests/team/test_service.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sealroom.core.answer import team
from sealroom.core.answer.team import BUSY, UNREACHABLE, MergedRetriever, TeamIndex, fuse
from sealroom.core.protocols import Hit
from tests.fakes import TEAM_HIT, TEAM_PASSAGE, FakeEmbedder, FakeRetriever, FakeTeamService


@pytest.fixture
def service() -> Iterator[FakeTeamService]:
    s = FakeTeamService()
    yield s
    s.stop()


def merged(url: str) -> MergedRetriever:
    return MergedRetriever(FakeRetriever(), TeamIndex(url, "srt_test"))


def test_team_passages_are_merged_and_labelled(service: FakeTeamService) -> None:
    r = merged(service.url)
    hits = r.search("when are backups kept and when does the lease end", k=4)
    origins = {h.path: h.origin for h in hits}
    assert origins["/share/matter-a/lease.pdf"] == "team"
    assert origins["/docs/policy.pdf"] == ""
    assert r.notice == ""
    assert r.indexes == ["local", f"team {service.url}"]


def test_a_busy_service_is_said_busy_and_tried_again_at_once(service: FakeTeamService) -> None:
    service.reply = 503, {"error": "every connection was in use for 60 s", "busy": True}
    r = merged(service.url)
    hits = r.search("backups kept", k=4)
    assert r.notice == BUSY
    assert [h.path for h in hits] == ["/docs/policy.pdf"]  # this computer's folders still answer
    service.reply = 200, {"hits": [TEAM_HIT], "notice": ""}
    r.search("lease end backups", k=4)
    assert service.requests == 2  # busy is not down: no pause before the next request
    assert r.notice == ""


def test_a_service_whose_catalog_is_down_is_said_unreachable(service: FakeTeamService) -> None:
    service.reply = 503, {"error": "the team's catalog (PostgreSQL) did not answer"}
    r = merged(service.url)
    r.search("backups kept", k=4)
    assert r.notice == UNREACHABLE


def test_an_unreachable_service_is_not_tried_again_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = FakeTeamService()
    url = gone.url
    gone.stop()
    r = merged(url)
    hits = r.search("backups kept", k=4)
    assert r.notice == UNREACHABLE and [h.origin for h in hits] == [""]
    tries: list[str] = []
    real = TeamIndex._connect

    def counted(self: TeamIndex) -> Any:
        tries.append("connect")
        return real(self)

    monkeypatch.setattr(TeamIndex, "_connect", counted)
    r.search("backups kept", k=4)
    assert tries == [] and r.notice == UNREACHABLE  # within RETRY_S: no new attempt, no wait
    monkeypatch.setattr(r.team, "_down_until", 0.0)  # RETRY_S later
    r.search("backups kept", k=4)
    assert tries == ["connect"]
    assert team.RETRY_S >= 10


def test_fuse_keeps_one_copy_of_a_passage_held_by_both_indexes() -> None:
    def hit(cid: str, text: str, origin: str = "") -> Hit:
        return Hit(cid, "/x.txt", None, None, text, 1.0, None, False, 0, len(text), "", 0, origin=origin)

    local = [hit("a", "same words"), hit("b", "only here")]
    remote = [hit("z", "same words", "team"), hit("y", "only there", "team")]
    fused = fuse([local, remote], 10)
    assert [h.text for h in fused].count("same words") == 1
    assert {h.text for h in fused} == {"same words", "only here", "only there"}
    assert fused[0].text == "same words"  # first in both rankings


def test_a_team_passage_is_read_with_its_section(service: FakeTeamService) -> None:
    shown = TeamIndex(service.url, "srt_test").passage("a" * 64, 4, 120, 178)
    assert (shown.before, shown.after, shown.page) == ("ARTICLE 7 — TERM. ", TEAM_PASSAGE["after"], 3)
    assert shown.text == TEAM_HIT["text"] and shown.lines is None


def test_similarity_ranks_the_two_indexes_together_only_when_it_compares(service: FakeTeamService) -> None:
    """This computer's weak match (similarity 0.6) and the team's strong one (0.9): with the same
    embedding model on both sides the team's comes first; with another model, or a side searched by keyword
    only, similarities do not compare and the two rankings interleave by rank alone."""
    local = FakeRetriever()
    local.embedder = FakeEmbedder()  # type: ignore[attr-defined]
    question = "when are backups kept, and when does the lease end in writing"
    same = MergedRetriever(local, TeamIndex(service.url, "srt_test")).search(question, k=4)
    assert [h.origin for h in same] == ["team", ""]
    assert same[0].score > same[1].score  # the merged order's score: the window's relevance bars follow it
    service.routes["/v1/search"] = (200, {"hits": [TEAM_HIT], "notice": "", "embedding_model": "other"})
    other = MergedRetriever(local, TeamIndex(service.url, "srt_test")).search(question, k=4)
    assert other[0].origin == "" and {h.origin for h in other} == {"", "team"}
    keyword_only = dict(TEAM_HIT, similarity=None)
    service.routes["/v1/search"] = (200, {"hits": [keyword_only], "notice": "", "embedding_model": "fake"})
    assert MergedRetriever(local, TeamIndex(service.url, "srt_test")).search(question, k=4)[0].origin == ""
