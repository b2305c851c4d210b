"""`edgewise demo` tells the whole story on small data."""

from __future__ import annotations

from edgewise.demo import run_demo


def test_demo_trains_compiles_scores_and_quarantines(tmp_path):
    lines: list[str] = []
    summary = run_demo(tmp_path, rows=100_000, train_rows=2_000, say=lines.append)
    assert summary.rows_read == 100_000
    assert 0 < summary.rows_quarantined < 100
    assert summary.rows_scored + summary.rows_quarantined == 100_000
    assert (tmp_path / "credit-risk-1.ewb").exists()
    text = "\n".join(lines)
    assert "fidelity against scikit-learn: native: max |diff|" in text
    assert "fidelity against scikit-learn: onnxruntime: max |diff|" in text
    assert "column 'channel' is null" in text
    assert "verified: signed as credit-risk version 1 under root version 1" in text
    assert (tmp_path / "repo" / "metadata" / "1.root.json").exists()
