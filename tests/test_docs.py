"""The README's reason-code table is the enum: docs and code cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from backstop.domain.enums import REASON_MEANINGS, ReasonCode

ROOT = Path(__file__).resolve().parents[1]


def test_readme_reason_table_matches_enum() -> None:
    text = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| (.+) \|$", text, flags=re.M))
    assert rows == {c.name: REASON_MEANINGS[c] for c in ReasonCode}


def test_readme_opens_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert "backstop backtest" in block[0]
    assert block[1] == ".venv/bin/python -m pytest"


def test_readme_profile_tables_match_the_key_table_and_presets() -> None:
    from backstop.engine.core.riskslots import RISK_KEYS
    from backstop.engine.profile import preset_names

    text = (ROOT / "README.md").read_text()
    keys = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| ", text, flags=re.M)
    assert keys == [k.key for k in RISK_KEYS]
    presets = re.findall(r"^\| `([a-z-]+)` \| ", text, flags=re.M)
    assert presets == list(preset_names())


def test_journal_md_names_every_column_the_journal_has(tmp_path: Path) -> None:
    """JOURNAL.md documents the schema the code writes: its version, every table, and every
    column of each table inside that table's section."""
    import duckdb

    from backstop import Backtest, sample_bars
    from backstop.engine.journal import JOURNAL_SCHEMA_VERSION, TABLES, write_journal

    text = (ROOT / "JOURNAL.md").read_text()
    assert text.startswith(f"# Journal schema (version {JOURNAL_SCHEMA_VERSION})\n")
    sections = dict(re.findall(r"^## (\w+)[^\n]*\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S))
    assert sorted(sections) == sorted(TABLES)
    path = write_journal(Backtest(sample_bars(), "sma_cross").run(), tmp_path / "j.duckdb")
    con = duckdb.connect(str(path), read_only=True)
    try:
        for table in TABLES:
            columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            documented = set(re.findall(r"`([a-z_]+)`", sections[table]))
            assert set(columns) <= documented, (table, sorted(set(columns) - documented))
    finally:
        con.close()
