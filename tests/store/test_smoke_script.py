"""`python -m store.smoke`, the manual check run against a real Supabase project, must itself pass on a real PostgreSQL
(so a failure there points at the project, not at the script)."""

from __future__ import annotations

from store.smoke import run_checks


def test_the_smoke_check_passes_on_a_real_postgres(store_factory):
    lines: list[str] = []
    assert run_checks(store_factory(), say=lines.append), "\n".join(lines)
    assert not [line for line in lines if line.startswith("FAIL")]
    assert lines[-1].startswith("all checks passed")
